// `esapn mpi-smoke`: runs every collective of the communicator on data whose
// result is known in closed form, on every rank, and checks each result
// (the checks: Comm/CollectiveSmoke.swift).
// Under mpirun it exercises MPICommunicator; alone it runs one rank.
import ArgumentParser
import Comm
import CommMPI
#if canImport(Glibc)
import Glibc
#endif

extension CollectiveSmoke.Fault: ExpressibleByArgument {}

struct MPISmokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpi-smoke",
        abstract: "Check every collective (all-reduce, all-to-all(-v), broadcast, all-gather, barrier) against known results.")

    @Option(help: CommunicatorChoice.help)
    var communicator: CommunicatorChoice = .auto

    /// A fault on one rank, to prove that the checks catch them (tests use these).
    @Option(help: .hidden)
    var injectFault: CollectiveSmoke.Fault?

    @Option(help: .hidden)
    var faultRank: Int = 0

    func run() throws {
        let (comm, mpi) = communicator.make()

        var smoke = CollectiveSmoke(comm, fault: injectFault.map { ($0, faultRank) })
        let failing = smoke.runAndAgree()
        for line in smoke.failures.prefix(20) {
            writeToStandardError("mpi-smoke: rank \(comm.rank): \(line)\n")
        }
        if comm.isRoot {
            let ranks = comm.size == 1 ? "1 rank" : "\(comm.size) ranks"
            let kind = mpi == nil ? "local" : "mpi"
            if failing == 0 {
                print("mpi-smoke: \(ranks) (\(kind)), all-reduce (float, double, max), all-to-all, all-to-all-v, broadcast, all-gather, barrier OK")
            } else {
                writeToStandardError("mpi-smoke: \(ranks) (\(kind)): FAILED on \(failing) of \(comm.size) ranks (details above)\n")
            }
        }
        fflush(nil)
        mpi?.finalize()
        if failing != 0 { throw ExitCode(1) }
    }
}


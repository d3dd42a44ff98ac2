// The esapn command line. This is the only place that chooses between the
// MPI communicator and the single-process one.
import Analysis
import ArgumentParser
import Synth

@main
struct Esapn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esapn",
        abstract: "Automated embedding size search (ESAPN) for streaming deep recommenders, over MPI.",
        version: Esapn.version,
        subcommands: [PrepareCommand.self, InspectCommand.self, SynthCommand.self, TrainCommand.self, CompareCommand.self, ReportCommand.self, BenchCommand.self, BenchCommCommand.self, PlanCommand.self,
                      MPISmokeCommand.self])

    /// This build's version (log.txt, --version).
    static let version = "0.5.0-dev"

    /// Sets the process up for OpenBLAS first (BLASAdvice: may execute itself
    /// again with OPENBLAS_CORETYPE set, before MPI starts), then parses.
    static func main() {
        BLASAdvice.prepareProcess()
        main(nil)
    }
}

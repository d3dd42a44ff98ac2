// The one place that chooses between MPI and a single local process.
import ArgumentParser
import Comm
import CommMPI

enum CommunicatorChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, mpi, local

    static let help: ArgumentHelp =
        "auto: MPI when started by mpirun or srun, else one local process; mpi: always MPI (alone: a singleton); local: one process."

    /// The communicator, and the MPI one when it was chosen (to finalize at the end).
    func make() -> (any Communicator, MPICommunicator?) {
        let useMPI = self == .mpi || (self == .auto && MPICommunicator.launchedByMPI())
        let mpi = useMPI ? MPICommunicator() : nil
        return (mpi ?? LocalCommunicator(), mpi)
    }
}

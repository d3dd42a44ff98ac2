// The one place where Swift element types and reductions map to MPI handles,
// and where MPI return codes are checked (Horovod's MPI_CHECK, in Swift).
import CMPI
import Comm
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Data types and operations

/// The element types the collectives move.
enum MPIElement {
    case float32, float64, int32, int64, byte

    /// Swift's `Int`, whatever its width on this platform.
    #if _pointerBitWidth(_64)
    static let int: MPIElement = .int64
    #else
    static let int: MPIElement = .int32
    #endif

    var handle: MPI_Datatype {
        switch self {
        case .float32: return esapn_mpi_float()
        case .float64: return esapn_mpi_double()
        case .int32: return esapn_mpi_int32()
        case .int64: return esapn_mpi_int64()
        case .byte: return esapn_mpi_byte()
        }
    }
}

/// The reductions the collectives apply.
enum MPIReduction {
    case sum, max

    var handle: MPI_Op {
        switch self {
        case .sum: return esapn_mpi_sum()
        case .max: return esapn_mpi_max()
        }
    }
}

// MARK: - Return codes

/// MPI's text for an error code, e.g. "MPI_ERR_TRUNCATE: message truncated".
func mpiErrorText(_ code: Int32) -> String {
    var text = [CChar](repeating: 0, count: Int(esapn_mpi_max_error_string()) + 1)
    var length: Int32 = 0
    let status = text.withUnsafeMutableBufferPointer { MPI_Error_string(code, $0.baseAddress, &length) }
    guard status == MPI_SUCCESS else { return "unknown MPI error" }
    return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Reports a failed MPI call with where it was made and MPI's explanation,
/// then stops every rank through `communicator` (MPI_COMM_WORLD if nil).
func mpiFail(_ code: Int32, _ call: StaticString, rank: Int?, communicator: MPI_Comm?,
             file: StaticString, line: UInt) -> Never {
    let who = rank.map { "rank \($0): " } ?? ""
    writeToStandardError("esapn: \(who)\(call) failed at \(file):\(line): \(mpiErrorText(code)) (MPI error code \(code))\n")
    var initialized: Int32 = 0, finalized: Int32 = 0
    _ = MPI_Initialized(&initialized)
    _ = MPI_Finalized(&finalized)
    if initialized != 0 && finalized == 0 {
        _ = MPI_Abort(communicator ?? esapn_mpi_comm_world(), code == 0 ? 1 : code)
    }
    exit(code == 0 ? 1 : code)
}

/// Checks one MPI return code; on failure reports it and aborts every rank.
@inline(__always)
func mpiCheck(_ code: Int32, _ call: StaticString, rank: Int? = nil, communicator: MPI_Comm? = nil,
              file: StaticString = #fileID, line: UInt = #line) {
    if code != MPI_SUCCESS {
        mpiFail(code, call, rank: rank, communicator: communicator, file: file, line: line)
    }
}

// `esapn bench-comm`: the latency α and the time per byte β of the two
// collectives a batch makes, measured on the ranks it runs on (under mpirun,
// across the links to calibrate). `esapn plan --calibration FILE` reads what
// it writes. Each size is timed as the slowest rank's mean over repeated
// calls, median of 5 rounds; α and β are a least-squares fit of
//   all-reduce:     t(n) = ⌈log₂P⌉·α + 2(P−1)/P · n · β     (n bytes reduced)
//   all-to-all-v:   t(n) = (P−1)·α + (P−1) · n · β          (n bytes to each other rank)
// the same forms the scaling model uses (Analysis/ScalingModel.swift). The
// measuring is Analysis/CommBenchmark.swift; this prints and writes it.
import Analysis
import ArgumentParser
import Comm
import Foundation
import Training

struct BenchCommCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-comm",
        abstract: "Measure latency and bandwidth of all-reduce and all-to-all-v between the ranks (for `esapn plan`).")

    @Option(help: CommunicatorChoice.help)
    var communicator: CommunicatorChoice = .auto

    @Option(help: "Largest message in bytes (sizes go up by 4× from 8 bytes; a batch's largest is the dense gradients, about 0.6 MB).")
    var maxBytes = 1 << 20

    @Option(help: "Seconds to spend on each size (about).")
    var secondsPerSize = 0.3

    @Option(help: "Write the fit and the measured points to this JSON file (rank 0).")
    var output: String?

    @Option(help: "A name for the link measured (stored in the JSON, shown by `esapn plan`).")
    var name = "calibrated"

    func validate() throws {
        guard maxBytes >= 8 else { throw ValidationError("--max-bytes \(maxBytes) is below 8 bytes: give at least 8") }
        guard secondsPerSize > 0 else { throw ValidationError("--seconds-per-size must be positive") }
    }

    func run() throws {
        let (comm, mpi) = communicator.make()
        defer { mpi?.finalize() }
        let P = comm.size
        guard P >= 2 else {
            if comm.isRoot {
                writeToStandardError("bench-comm: one rank has no link to measure: run it under mpirun with 2 or more ranks, e.g. mpirun -np 2 esapn bench-comm\n")
            }
            throw ExitCode(2)
        }
        let (sizes, points) = CommBenchmark.measure(comm, maxBytes: maxBytes, secondsPerSize: secondsPerSize)
        let calibration = CommCalibration(name: name, ranks: P, points: points)
        guard comm.isRoot else { return }
        print("bench-comm: \(P) ranks; slowest rank's mean time per call, median of 5 rounds")
        print("  bytes        all-reduce     all-to-all-v (bytes to each other rank)")
        for bytes in sizes {
            let ar = points.first { $0.kind == .allReduce && $0.bytes == bytes }?.seconds
            let av = points.first { $0.kind == .allToAllV && $0.bytes == bytes }?.seconds
            print("  " + String(bytes).padding(toLength: 10, withPad: " ", startingAt: 0)
                  + String(format: "%10.1f µs %12.1f µs", 1e6 * (ar ?? .nan), 1e6 * (av ?? .nan)))
        }
        let link = calibration.link
        print(String(format: "  fit: all-reduce α %.1f µs, β %.3f ns/byte (%.2f Gbit/s); all-to-all-v α %.1f µs, β %.3f ns/byte (%.2f Gbit/s)",
                     1e6 * link.allReduce.alpha, 1e9 * link.allReduce.beta, 8e-9 / link.allReduce.beta,
                     1e6 * link.allToAllV.alpha, 1e9 * link.allToAllV.beta, 8e-9 / link.allToAllV.beta))
        if let output {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            do {
                try encoder.encode(calibration).write(to: URL(fileURLWithPath: output))
                print("  wrote \(output)")
            } catch {
                writeToStandardError("bench-comm: cannot write \(output): \(error.localizedDescription)\n")
                throw ExitCode(1)
            }
        }
    }
}

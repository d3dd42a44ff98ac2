// `esapn bench`: the per-batch kernels in isolation (GFLOP/s of the sgemm
// shapes a batch runs, ns per element of tanh and BatchNorm), so figures in
// BENCHMARKS.md can be reproduced and compared across machines. Trainer
// throughput is measured by `esapn train` itself (results.json) and
// scripts/bench.sh.
import ArgumentParser
import Comm
import Foundation
import Kernels

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the per-batch kernels (sgemm shapes, tanh, BatchNorm) on this machine.")

    @Option(help: "Repetitions per measurement (the best of 5 rounds is reported).")
    var repetitions = 50

    @Option(help: "Records per slice (the global batch divided by the ranks).")
    var batch = 500

    func run() throws {
        print("OpenBLAS core \(BLASInfo.coreName), \(BLASInfo.threads) thread(s); \(BLASInfo.configuration)")
        let B = batch
        // (M, K, N, transposed A): the head's fc1 forward and its two backward products, the policy's fc1.
        let shapes: [(String, Int, Int, Int)] = [
            ("fc1 forward   (B×256)·(256×512)", B, 256, 512),
            ("fc1 dinput    (B×512)·(512×256)", B, 512, 256),
            ("policy fc1    (B×38)·(38×512)", B, 38, 512),
        ]
        for (name, M, K, N) in shapes {
            let rate = Self.sgemmRate(rows: M, inFeatures: K, outFeatures: N, repetitions: repetitions)
            print(String(format: "  %@  %7.1f GFLOP/s", name, rate / 1e9))
        }
        let n = B * 512
        let x = (0..<n).map { Float($0 % 97) / 20 - 2.4 }
        var y = [Float](repeating: 0, count: n)
        let tanhSeconds = Self.best {
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                for _ in 0..<repetitions { tanhForward(out: yp.baseAddress!, inp: xp.baseAddress!, count: n) }
            } }
        }
        print(String(format: "  tanh          %7.2f ns/element", tanhSeconds / Double(n * repetitions) * 1e9))
        let cache = BatchNormCache(channels: 512)
        let gamma = [Float](repeating: 1, count: 512), beta = [Float](repeating: 0, count: 512)
        let local = LocalCommunicator()
        let bnSeconds = Self.best {
            x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                for _ in 0..<repetitions {
                    batchNormForward(out: yp.baseAddress!, cache: cache, inp: xp.baseAddress!, gamma: gamma, beta: beta,
                                     batch: B, channels: 512, comm: local)
                }
            } }
        }
        print(String(format: "  batchnorm fwd %7.2f ns/element", bnSeconds / Double(n * repetitions) * 1e9))
    }

    /// FLOP/s of `linearForward` on (rows×inFeatures)·(inFeatures×outFeatures),
    /// `repetitions` calls per round, best of 5 rounds (also `esapn plan`'s sgemm rate).
    static func sgemmRate(rows M: Int, inFeatures K: Int, outFeatures N: Int, repetitions: Int) -> Double {
        let a = [Float](repeating: 0.5, count: M * K), w = [Float](repeating: 0.25, count: N * K)
        var c = [Float](repeating: 0, count: M * N)
        let seconds = best {
            a.withUnsafeBufferPointer { ap in w.withUnsafeBufferPointer { wp in c.withUnsafeMutableBufferPointer { cp in
                for _ in 0..<repetitions {
                    linearForward(out: cp.baseAddress!, inp: ap.baseAddress!, weight: wp.baseAddress!, bias: nil,
                                  batch: M, inFeatures: K, outFeatures: N)
                }
            } } }
        }
        return 2 * Double(M * K * N * repetitions) / seconds
    }

    /// The best wall time of 5 rounds of `body`.
    static func best(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<5 {
            let start = clock.now
            body()
            best = min(best, (clock.now - start).seconds)
        }
        return best
    }
}

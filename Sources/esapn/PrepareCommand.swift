import ArgumentParser
import Data
import Foundation

extension RatingsFormat: ExpressibleByArgument {}
extension StreamOrder: ExpressibleByArgument {}

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Turn MovieLens rating files into a stream file (time-ordered, dense IDs, frequencies).",
        discussion: """
        Formats: ratings.csv (ml-20m, ml-25m, ml-latest), ratings.dat (ml-1m, ml-10m), u.data (ml-100k), \
        RecBole .inter. The format is detected from the file name unless --format is given. Several inputs \
        are concatenated before ordering. The output and its ID map are written atomically.
        """)

    @Argument(help: "Rating files to read.")
    var inputs: [String]

    @Option(name: .shortAndLong, help: "The stream file to write.")
    var output: String

    @Option(help: "Input format: csv, dat, u.data or inter (default: from the file name).")
    var format: RatingsFormat?

    @Option(help: "Record order: time (stable sort by timestamp) or shuffle (the reference code's random order).")
    var order: StreamOrder = .time

    @Option(help: "Seed of the shuffle.")
    var seed: UInt64 = 0

    @Flag(help: "Skip malformed lines (reporting how many and the first few) instead of stopping.")
    var skipInvalid = false

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        var raw = RawRatings()
        for input in inputs {
            let report = try RatingsReader.read(path: input, format: format, skipInvalid: skipInvalid, into: &raw)
            print("read \(input): \(report.records) records" + (report.skipped > 0 ? ", skipped \(report.skipped) invalid lines" : ""))
            for message in report.firstSkipped { print("  skipped \(message)") }
        }
        let readSeconds = (clock.now - start).seconds
        let source = "prepare " + inputs.map { ($0 as NSString).lastPathComponent }.joined(separator: " ")
        let header = try StreamBuilder.write(raw, order: order, seed: seed, source: source, to: output)
        let total = (clock.now - start).seconds
        print("wrote \(output): \(header.records) records, \(header.users) users, \(header.items) items, order \(order.rawValue)"
              + String(format: " (read %.1f s, total %.1f s, %.2f M records/s)", readSeconds, total, Double(header.records) / total / 1e6))
    }
}


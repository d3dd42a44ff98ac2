import ArgumentParser
import Data
import Foundation
import Synth

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Verify a stream file's checksum and print its counts, rating histogram and frequency quantiles.")

    @Argument(help: "The stream file.")
    var stream: String

    @Flag(help: "Print JSON for machines.")
    var json = false

    @Flag(help: """
        Also print the statistics a stand-in is tuned on (variance explained by biases and by a rank-8 \
        interaction on held-out records, users' spread, arrivals); for a stream of the small preset, beside \
        real ml-100k's.
        """)
    var diagnose = false

    @Option(help: ArgumentHelp("With --diagnose: another stream to print beside this one (a real data set, say).",
                               valueName: "STREAM"))
    var beside: String?

    func validate() throws {
        if beside != nil && !diagnose { throw ValidationError("--beside goes with --diagnose") }
    }

    func run() throws {
        let file = try StreamFile(path: stream, verify: true)
        var summary = StreamSummary(file)
        summary.published = SyntheticPreset.of(source: file.header.source)?.published
        if diagnose {
            var columns = [(title: URL(fileURLWithPath: stream).lastPathComponent, diagnosis: StreamDiagnosis(file))]
            if let beside {
                let other = try StreamFile(path: beside, verify: true)
                columns.append((URL(fileURLWithPath: beside).lastPathComponent, StreamDiagnosis(other)))
            }
            if SyntheticPreset.of(source: file.header.source) == .small {
                columns.append(("real ml-100k", .ml100k))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(Dictionary(columns.map { ($0.title, $0.diagnosis) },
                                                                     uniquingKeysWith: { a, _ in a })), as: UTF8.self))
            } else {
                print(render(summary) + "\n\n" + StreamDiagnosis.table(columns), terminator: "")
            }
            return
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            return
        }
        print(render(summary))
    }

    func render(_ s: StreamSummary) -> String {
        var out = """
        stream     \(s.path)
        format     version \(s.version), checksum \(s.checksum) verified
        source     \(s.source)
        order      \(s.order)\(s.order == "shuffle" ? " (seed \(s.seed))" : "")
        records    \(s.records)
        users      \(s.users)
        items      \(s.items)
        time       \(s.firstTimestamp) … \(s.lastTimestamp)
        positive   \(String(format: "%.4f", s.positiveShare)) of records have rating > 3.5 (binary label 1)

        rating histogram
        """
        for key in s.ratingHistogram.keys.sorted(by: { (Double($0) ?? 0) < (Double($1) ?? 0) }) {
            out += "\n  " + key.padding(toLength: 6, withPad: " ", startingAt: 0) + String(format: "%6.2f%%", 100 * s.ratingHistogram[key]!)
        }
        func freq(_ name: String, _ f: FrequencySummary) -> String {
            "\n  \(name)  min \(f.min)  p25 \(f.p25)  median \(f.median)  p75 \(f.p75)  p90 \(f.p90)  p99 \(f.p99)  max \(f.max)  mean "
                + String(format: "%.1f", f.mean)
        }
        out += "\n\nratings per ID at the end of the stream"
        out += freq("users", s.userFrequency)
        out += freq("items", s.itemFrequency)
        if let p = s.published {
            out += "\n\nbeside the real \(p.dataset) (published figures)"
            func row(_ name: String, _ mine: Int, _ real: Int) -> String {
                "\n  " + name.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + String(mine).leftPadded(12) + String(real).leftPadded(12)
            }
            out += "\n  " + "".padding(toLength: 9, withPad: " ", startingAt: 0) + "this stream".leftPadded(12) + "real".leftPadded(12)
            out += row("records", s.records, p.records) + row("users", s.users, p.users) + row("items", s.items, p.items)
            for (level, fraction) in zip(p.ratingLevels, p.ratingFractions) {
                let key = ratingLabel(level)
                out += "\n  " + ("rating " + key).padding(toLength: 11, withPad: " ", startingAt: 0)
                    + String(format: "%9.2f%%  %9.2f%%", 100 * (s.ratingHistogram[key] ?? 0), 100 * fraction)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

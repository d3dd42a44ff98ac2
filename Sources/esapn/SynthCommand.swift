import ArgumentParser
import Data
import Foundation
import Synth

extension SyntheticPreset: ExpressibleByArgument {}

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Make a MovieLens-like synthetic stream (heavy-tailed popularity, arrivals over time, latent-factor ratings).",
        discussion: """
        Presets: small (ml-100k-like), ml-20m (20,000,263 ratings, 138,493 users, 26,744 items, every user \
        at least 20 ratings), ml-latest (27,753,444 ratings, 283,228 users, 53,889 items, half stars). \
        --records N gives the first N records of the full preset. The same seed gives byte-identical output.
        """)

    @Option(help: "small, ml-20m or ml-latest.")
    var preset: SyntheticPreset

    @Option(help: "Keep the first N records of the full preset.")
    var records: Int?

    @Option(help: "Seed of the generator.")
    var seed: UInt64

    @Option(name: .shortAndLong, help: "The stream file to write.")
    var output: String

    @Option(help: "Also write the records as a MovieLens ratings.csv.")
    var csv: String?

    func validate() throws {
        if let records, records <= 0 || records > preset.spec.records {
            throw ValidationError("--records must be within 1…\(preset.spec.records) for the \(preset.rawValue) preset, got \(records)")
        }
    }

    func run() throws {
        let clock = ContinuousClock()
        let start = clock.now
        try preset.spec.validate()
        let raw = SyntheticGenerator(spec: preset.spec, seed: seed).generate(records: records)
        let generated = (clock.now - start).seconds
        var source = "synth --preset \(preset.rawValue) --seed \(seed)"
        if let records { source += " --records \(records)" }
        let header = try StreamBuilder.write(raw, order: .time, seed: 0, source: source, to: output)
        if let csv { try writeMovieLensCSV(raw, to: URL(fileURLWithPath: csv)) }
        let total = (clock.now - start).seconds
        print("wrote \(output): \(header.records) records, \(header.users) users, \(header.items) items"
              + String(format: " (generated in %.1f s, total %.1f s, %.2f M records/s)", generated, total,
                       Double(header.records) / total / 1e6)
              + (csv.map { "; and \($0)" } ?? ""))
    }
}

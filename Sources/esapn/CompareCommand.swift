import Analysis
import ArgumentParser
import Foundation
import Training

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a run folder with a reference run as the multi-rank contract does.",
        discussion: """
        Both folders are runs of `esapn train` on the same stream, model, task, seed and records (for example \
        P ranks against 1). Prints the first batch in which some ID got another size (batches.csv's \
        sizes_digest), the largest batch-loss difference before it, the test and overall metric differences \
        and, when both runs were trained with --save-sizes, how many IDs end at another width.
        """)

    @Argument(help: ArgumentHelp("The run to check.", valueName: "RUN_DIR"))
    var runDirectory: String

    @Argument(help: ArgumentHelp("The reference run (for example the 1-rank run).", valueName: "REFERENCE_DIR"))
    var reference: String

    @Flag(help: "Print the comparison as JSON.")
    var json = false

    func run() throws {
        let comparison = try RunComparison(run: runDirectory, reference: reference)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(comparison), as: UTF8.self))
        } else {
            print(comparison.summary)
        }
    }
}

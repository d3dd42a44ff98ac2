import Analysis
import ArgumentParser
import Foundation
import Training

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print the paper's Table 1 and Table 2, and memory per shard, for run folders, in Markdown.",
        discussion: """
        Each RUN_DIR is a folder written by `esapn train --output` (it holds results.json). \
        Runs of the same model and task on the same stream (e.g. seeds) are shown as mean ± std.
        """)

    @Argument(help: ArgumentHelp("Run folders written by `esapn train`.", valueName: "RUN_DIR"))
    var runDirectories: [String] = []

    @Option(help: "Write the Markdown to this file (atomically) instead of standard output.")
    var output: String?

    func validate() throws {
        if runDirectories.isEmpty { throw ValidationError("give at least one RUN_DIR (a folder written by `esapn train`)") }
    }

    func run() throws {
        let markdown = ReportRenderer.markdown(runs: try loadRuns(runDirectories))
        guard let output else {
            print(markdown, terminator: "")
            return
        }
        do {
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
        } catch {
            throw ReportError.cannotWrite(path: output, reason: "\(error.localizedDescription)")
        }
    }
}

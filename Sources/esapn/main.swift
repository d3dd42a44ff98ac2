// The esapn command line. A file named main.swift is top-level code, so
// `@main` cannot be used here (without -parse-as-library): the entry point is
// the explicit `Esapn.main()` below.
import ArgumentParser

struct Esapn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "esapn",
        abstract: "Automated embedding size search (ESAPN) as a distributed streaming trainer.",
        subcommands: [MPISmokeCommand.self])
}

Esapn.main()

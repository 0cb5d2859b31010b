// loom: the command-line tool — parses arguments and hands over to Training. It is not where
// training logic lives; each subcommand is a thin shell around library calls.
import ArgumentParser
import Foundation

@main
struct Loom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "Data-parallel Transformer training on CPUs.",
        subcommands: [TrainCommand.self, SampleCommand.self, BenchCommand.self, TokenizerCommand.self, TokenizeCommand.self])
}

/// Runs `body`, turning a thrown error into "error: …" on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let exit as ExitCode { throw exit } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

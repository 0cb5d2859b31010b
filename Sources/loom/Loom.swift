// loom: the command-line tool — parses arguments and hands over to Training; each subcommand is a
// thin shell around library calls.
import ArgumentParser
import Foundation
import Distributed

@main
struct Loom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loom",
        abstract: "Data-parallel Transformer training on CPUs.",
        subcommands: [TrainCommand.self, SampleCommand.self, BenchCommand.self, InspectCommand.self,
                      TokenizerCommand.self, TokenizeCommand.self,
                      TranslateCommand.self, EvalCommand.self, AverageCommand.self, SystemCommand.self,
                      ExportCommand.self, LogitsCommand.self, TranslationLogitsCommand.self, ScalingCommand.self,
                      PlotCommand.self, FillMaskCommand.self])

    /// Checks OpenBLAS's kernels against the CPU before anything else runs (MPI, threads, parsing):
    /// the library chose them when it loaded, so a correction means starting the program over.
    static func main() {
        BLASStartup.check()
        main(nil)
    }
}

/// The job this process belongs to, once a command has joined it (for the error path).
nonisolated(unsafe) var activeCommunicator: Communicator?

/// Runs `body`, turning a thrown error into "error: …" on stderr and exit status 1. In a job of
/// several ranks the message names the rank, and MPI_Abort ends every rank: none is left waiting.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let exit as ExitCode { throw exit } catch {
        if let job = activeCommunicator, job.worldSize > 1 {
            FileHandle.standardError.write(Data("error (\(job.rankDescription)): \(error)\n".utf8))
            job.abort(code: 1)
        }
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Joins the job: MPI when launched by mpirun/srun, otherwise a single process.
func joinJob() throws -> Communicator {
    let job = try Launch.communicator()
    activeCommunicator = job
    return job
}

/// Compute threads for this rank: the config's, or the node's cores shared among its ranks.
func threadsPerRank(configured: Int, job: Communicator) -> Int {
    configured > 0 ? configured : max(1, ProcessInfo.processInfo.activeProcessorCount / max(job.localSize, 1))
}

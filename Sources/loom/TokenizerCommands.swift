// TokenizerCommands: `loom tokenizer train …` (learn a byte-level BPE) and `loom tokenize …`
// (encode text files into memory-mappable shards). Thin shells over Data; not where BPE lives.
import ArgumentParser
import Foundation
import Data
import Distributed
import Training
import Support

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer tools.",
                                                    subcommands: [TokenizerTrainCommand.self])
}

struct TokenizerTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Learn a byte-level BPE (GPT-2 scheme) and save it as a Hugging Face tokenizer.json.")

    @Option(name: .customLong("vocab-size"), help: "Vocabulary size: 256 bytes + merges + special tokens.") var vocabSize: Int
    @Option(name: .customLong("special"), help: "A special token, e.g. <|endoftext|> (repeatable).") var specials: [String] = []
    @Option(help: "Where to write the tokenizer.") var out: String = "tokenizer.json"
    @Argument(help: "UTF-8 (or any) text files to learn from.") var files: [String]

    func run() throws {
        try reportingErrors {
            guard vocabSize >= 256 + specials.count else {
                throw ValidationError("--vocab-size must be at least 256 (the bytes) + \(specials.count) special token(s), got \(vocabSize)")
            }
            guard !files.isEmpty else { throw ValidationError("give at least one text file") }
            let t0 = monotonicSeconds()
            var trainer = BPETrainer(specials: specials)
            for path in files {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("\(path): input file not found or unreadable")
                }
                guard !data.isEmpty else { throw ValidationError("\(path): the input file is empty; remove it from the list") }
                data.withUnsafeBytes { trainer.add($0) }
            }
            let counted = monotonicSeconds() - t0
            let bpe = try trainer.train(vocabularySize: vocabSize, specials: specials)
            let total = monotonicSeconds() - t0
            let directory = PathName.directory(of: out)
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            try AtomicFile.write(out, data: try bpe.serialized())
            print(String(format: "loom tokenizer train: %.1f MB, %d unique words, %d merges, vocabulary %d; counting %.2f s, merging %.2f s, total %.2f s; wrote %@",
                         Double(trainer.bytesRead) / 1e6, trainer.uniqueWords, bpe.merges.count, bpe.vocabularySize,
                         counted, total - counted, total, out))
        }
    }
}

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Encode text files into token shards (+ index.json) for training.")

    @Option(help: "A tokenizer file (Hugging Face tokenizer.json, GPT-2 vocab.json, or Loom's).") var tokenizer: String
    @Option(help: "Output directory.") var out: String
    @Option(name: .customLong("shard-tokens"), help: "Tokens per shard.") var shardTokens: Int = 1 << 24
    @Option(help: "Encoding threads (0 = all cores).") var threads: Int = 0
    @Option(help: "Parallel corpus: the source-language file (line i pairs with line i of --target).") var source: String?
    @Option(help: "Parallel corpus: the target-language file.") var target: String?
    @Argument(help: "Text files; each is one document (also split after <|endoftext|>). Under `mpirun -np W`, rank r encodes files i with i mod W = r.")
    var files: [String] = []

    func run() throws {
        try reportingErrors {
            guard shardTokens > 0 else { throw ValidationError("--shard-tokens must be positive") }
            if source != nil || target != nil {
                guard source != nil, target != nil else { throw ValidationError("--source and --target go together") }
                guard files.isEmpty else { throw ValidationError("give either FILES or --source/--target, not both") }
            } else {
                guard !files.isEmpty else { throw ValidationError("give at least one text file (or --source and --target)") }
            }
            let job = try joinJob()
            let tok = try TokenizerFile.load(tokenizer)
            let report: CorpusTokenizer.Report
            do {
                report = try tokenize(tok, job: job)
            } catch let failure as TokenizationFailure {
                // Every rank knows of the failure: each says so and leaves the job cleanly.
                FileHandle.standardError.write(Data("error (\(job.rankDescription)): \(failure)\n".utf8))
                job.finish()
                throw ExitCode(1)
            }
            print(String(format: "loom tokenize: %.1f MB → %d tokens (%.2f bytes/token), %d document(s)/pair(s), %d shard(s) in %@; "
                         + "encoding %.2f s = %.2f MB/s, total %.2f s",
                         Double(report.bytes) / 1e6, report.tokens, Double(report.bytes) / Double(max(1, report.tokens)),
                         report.documents, report.shards, out, report.encodeSeconds,
                         Double(report.bytes) / 1e6 / report.encodeSeconds, report.totalSeconds))
            job.finish()
        }
    }

    /// Runs the pipeline on every rank of `job`; prints which files this rank encoded.
    func tokenize(_ tok: Tokenizer, job: Communicator) throws -> CorpusTokenizer.Report {
        if let source, let target {
            return try ShardedTokenization.tokenizeParallel(source: source, target: target, tokenizer: tok, out: out,
                                                            shardTokens: shardTokens, communicator: job)
        }
        let n = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        let report = try ShardedTokenization.tokenize(files: files, tokenizer: tok, out: out, shardTokens: shardTokens,
                                                      threads: n, communicator: job)
        let (rank, size) = (job.rank, job.worldSize)
        if size > 1 { print("rank \(rank) of \(size): encoded files i with i mod \(size) = \(rank)") }
        if let m = report.merged {
            print("rank 0 merged every rank's files: index.json lists \(m.tokens) tokens, \(m.documents) document(s), \(m.shards) shard(s)")
        }
        return report
    }
}

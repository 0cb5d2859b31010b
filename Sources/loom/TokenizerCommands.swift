// TokenizerCommands: `loom tokenizer train …` (learn a byte-level BPE or a WordPiece vocabulary),
// `loom tokenizer encode` / `decode` (text ⇄ ids, line by line) and `loom tokenize …` (encode text
// files into memory-mappable shards). Thin shells over Data; not where the tokenizers live.
import ArgumentParser
import Foundation
import Data
import Distributed
import Training
import Support

extension WordPieceTrainer.Score: ExpressibleByArgument {}

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tokenizer", abstract: "Tokenizer tools.",
                                                    subcommands: [TokenizerTrainCommand.self, TokenizerEncodeCommand.self,
                                                                  TokenizerDecodeCommand.self, TokenizerExportCommand.self])
}

struct TokenizerTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Learn a byte-level BPE (GPT-2 scheme) or a WordPiece vocabulary (BERT scheme) and save it as a Hugging Face tokenizer.json.",
        discussion: """
            --kind bpe (the default): 256 bytes, then merges by frequency, then the --special tokens. --kind wordpiece: \
            [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4), the characters of the text (word-initial and ## forms), then \
            merges by WordPiece's score count(ab)/(count(a)*count(b)) (--merge-score frequency: by count(ab)); the text \
            is lowercased and its accents stripped unless --cased. WordPiece's special tokens are fixed (no --special).
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable { case bpe, wordpiece }

    @Option(help: "What to learn: bpe or wordpiece.") var kind: Kind = .bpe
    @Option(name: .customLong("vocab-size"), help: "Vocabulary size (bpe: 256 bytes + merges + special tokens; wordpiece: the 5 special tokens + characters + merges).") var vocabSize: Int
    @Option(name: .customLong("special"), help: "bpe: a special token, e.g. <|endoftext|> (repeatable).") var specials: [String] = []
    @Flag(help: "wordpiece: keep case and accents (BERT's cased setting); the default lowercases and strips accents.") var cased = false
    @Option(name: .customLong("merge-score"), help: "wordpiece: frequency (count(ab), as BPE and tokenizers' WordPieceTrainer; the default) or likelihood (count(ab)/(count(a)*count(b)): rare words first, more tokens per text).")
    var mergeScore: WordPieceTrainer.Score?
    @Option(help: "Where to write the tokenizer.") var out: String = "tokenizer.json"
    @Argument(help: "UTF-8 (or, for bpe, any) text files to learn from.") var files: [String]

    func run() throws {
        try reportingErrors {
            guard !files.isEmpty else { throw ValidationError("give at least one text file") }
            var inputs: [(path: String, data: Data)] = []
            for path in files {
                guard let data = FileManager.default.contents(atPath: path) else {
                    throw ValidationError("\(path): input file not found or unreadable")
                }
                guard !data.isEmpty else { throw ValidationError("\(path): the input file is empty; remove it from the list") }
                inputs.append((path, data))
            }
            switch kind {
            case .bpe: try trainBPE(inputs)
            case .wordpiece: try trainWordPiece(inputs)
            }
        }
    }

    func write(_ data: Data) throws {
        let directory = PathName.directory(of: out)
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try AtomicFile.write(out, data: data)
    }

    func trainBPE(_ inputs: [(path: String, data: Data)]) throws {
        guard !cased else { throw ValidationError("--cased is for --kind wordpiece; a byte-level BPE always keeps the text as it is") }
        guard mergeScore == nil else { throw ValidationError("--merge-score is for --kind wordpiece; a byte-level BPE merges the most frequent pair") }
        guard vocabSize >= 256 + specials.count else {
            throw ValidationError("--vocab-size must be at least 256 (the bytes) + \(specials.count) special token(s), got \(vocabSize)")
        }
        let t0 = monotonicSeconds()
        var trainer = BPETrainer(specials: specials)
        for input in inputs { input.data.withUnsafeBytes { trainer.add($0) } }
        let counted = monotonicSeconds() - t0
        let bpe = try trainer.train(vocabularySize: vocabSize, specials: specials)
        let total = monotonicSeconds() - t0
        try write(try bpe.serialized())
        print(String(format: "loom tokenizer train: %.1f MB, %d unique words, %d merges, vocabulary %d; counting %.2f s, merging %.2f s, total %.2f s; wrote %@",
                     Double(trainer.bytesRead) / 1e6, trainer.uniqueWords, bpe.merges.count, bpe.vocabularySize,
                     counted, total - counted, total, out))
    }

    func trainWordPiece(_ inputs: [(path: String, data: Data)]) throws {
        guard specials.isEmpty else {
            throw ValidationError("--special is for --kind bpe; a WordPiece vocabulary's special tokens are fixed: \(WordPiece.defaultSpecials.joined(separator: " ")) (ids 0-4)")
        }
        let t0 = monotonicSeconds()
        var trainer = WordPieceTrainer(lowercase: !cased, score: mergeScore ?? .frequency)
        for input in inputs {
            do { try input.data.withUnsafeBytes { try trainer.add($0) } } catch {
                throw ValidationError("\(input.path): \(error)")
            }
        }
        let counted = monotonicSeconds() - t0
        let trained: WordPieceTrainer.Trained
        do { trained = try trainer.train(vocabularySize: vocabSize) } catch {
            throw ValidationError("--vocab-size: \(error)")
        }
        let total = monotonicSeconds() - t0
        try write(try trained.tokenizer.serialized())
        print(String(format: "loom tokenizer train: %.1f MB, %d unique words, %d characters, %d merges, vocabulary %d (WordPiece, %@, %@ merges); counting %.2f s, merging %.2f s, total %.2f s; wrote %@",
                     Double(trainer.bytesRead) / 1e6, trainer.uniqueWords, trained.alphabetSize, trained.merges,
                     trained.tokenizer.vocabularySize, cased ? "cased" : "uncased", trainer.score.rawValue, counted, total - counted, total, out))
    }
}

/// The bytes of FILE, or of standard input for "-".
func readInput(_ path: String) throws -> [UInt8] {
    if path == "-" { return [UInt8](FileHandle.standardInput.readDataToEndOfFile()) }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw TextFileError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
    }
    return [UInt8](data)
}

/// Byte ranges of the lines of `bytes`, without their "\n": a final newline ends the last line,
/// a last line without one counts, empty lines count.
func lineRanges(_ bytes: [UInt8]) -> [Range<Int>] {
    var out: [Range<Int>] = [], start = 0
    for (i, b) in bytes.enumerated() where b == 0x0A { out.append(start..<i); start = i + 1 }
    if start < bytes.count { out.append(start..<bytes.count) }
    return out
}

/// Writes raw bytes to standard output (text a byte-level token decodes to need not be UTF-8).
func writeStandardOutput(_ bytes: [UInt8]) {
    bytes.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
}

struct TokenizerEncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode", abstract: "Text to token ids, one output line per input line.",
        discussion: """
            Each input line is encoded on its own and its ids are printed space-separated on one line (--json: as one \
            JSON array per line, JSON Lines). A line's ids do not include its newline: the "\\n" that ends it is not \
            encoded (a "\\r" before it is part of the line). An empty line gives an empty output line ([] with --json); \
            a final newline does not start another line. Special tokens written in the text (e.g. <|endoftext|>) become \
            their ids. These are the ids `loom tokenize --source/--target` stores for each line. --document encodes the \
            whole input as one sequence, newlines included, and prints one line: the ids `loom tokenize FILE` stores for \
            that file. Text a character tokenizer cannot encode is an error naming the line. A WordPiece tokenizer \
            gives the ids without [CLS]/[SEP] (Hugging Face's add_special_tokens=False) and [UNK] for what its \
            vocabulary lacks.
            """)

    @Option(help: "A tokenizer file (Hugging Face tokenizer.json with a BPE or WordPiece model, GPT-2 vocab.json, or Loom's).") var tokenizer: String
    @Flag(help: "Print each line's ids as a JSON array.") var json = false
    @Flag(help: "Encode the whole input as one document (newlines included), as `loom tokenize FILE` does.") var document = false
    @Argument(help: "The text file; - (the default) reads standard input.") var file: String = "-"

    func run() throws {
        try reportingErrors {
            let tok = try TokenizerFile.load(tokenizer)
            let bytes = try readInput(file)
            let name = file == "-" ? "(standard input)" : file
            func line(_ ids: [Int32]) -> String {
                json ? "[" + ids.map(String.init).joined(separator: ",") + "]" : ids.map(String.init).joined(separator: " ")
            }
            if document {
                let ids = try bytes.withUnsafeBytes { try CorpusTokenizer.encode($0, tokenizer: tok, threads: 1, path: name) }
                print(line(ids))
                return
            }
            var out = ""
            for (n, range) in lineRanges(bytes).enumerated() {
                let ids: [Int32]
                do { ids = try tok.encode(bytes: Array(bytes[range])) } catch {
                    throw TextFileError(path: name, message: "line \(n + 1): \(error)")
                }
                out += line(ids) + "\n"
                if out.utf8.count > 1 << 16 { print(out, terminator: ""); out = "" }
            }
            print(out, terminator: "")
        }
    }
}

struct TokenizerDecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode", abstract: "Token ids back to text, one output line per input line.",
        discussion: """
            Each input line holds one sequence of ids, space- or comma-separated, or a JSON array (what `loom tokenizer \
            encode` prints, with or without --json); its text (the bytes the ids stand for, special tokens as their text) \
            is written followed by a newline. An empty line gives an empty line. --document writes the sequences' bytes \
            with no newline added, the inverse of `encode --document`. A WordPiece tokenizer decodes as Hugging Face's \
            WordPiece decoder does (tokens joined by spaces, ## continuations attached, " ." → "." and the like; \
            special tokens kept): normalised text, not the original bytes. An id outside the vocabulary, or anything not an \
            id, is an error naming the line and the id; nothing after it is written.
            """)

    @Option(help: "A tokenizer file (Hugging Face tokenizer.json with a BPE or WordPiece model, GPT-2 vocab.json, or Loom's).") var tokenizer: String
    @Flag(help: "Add no newline after each sequence (the inverse of `encode --document`).") var document = false
    @Argument(help: "A file of ids; - (the default) reads standard input.") var file: String = "-"

    func run() throws {
        try reportingErrors {
            let tok = try TokenizerFile.load(tokenizer)
            let bytes = try readInput(file)
            let name = file == "-" ? "(standard input)" : file
            let separators: Set<UInt8> = [0x20, 0x09, 0x2C, 0x0D, 0x5B, 0x5D]   // space, tab , \r [ ]
            var sequences: [[Int32]] = []
            for (n, range) in lineRanges(bytes).enumerated() {
                var ids: [Int32] = []
                for word in bytes[range].split(whereSeparator: { separators.contains($0) }) {
                    let text = String(decoding: word, as: UTF8.self)
                    guard let id = Int(text) else {
                        throw TextFileError(path: name, message: "line \(n + 1): \(String(reflecting: text)) is not a token id")
                    }
                    guard id >= 0 && id < tok.vocabularySize else {
                        throw TextFileError(path: name, message: "line \(n + 1): id \(id) is out of range; the tokenizer \(tokenizer) has ids 0…\(tok.vocabularySize - 1)")
                    }
                    ids.append(Int32(id))
                }
                sequences.append(ids)
            }
            var out: [UInt8] = []
            for ids in sequences {
                out += tok.decodeBytes(ids)
                if !document { out.append(0x0A) }
            }
            writeStandardOutput(out)
            fflush(stdout)
        }
    }
}

struct TokenizerExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a tokenizer's files for transformers' AutoTokenizer into a directory.",
        discussion: """
            The files a model export writes beside the weights (tokenizer.json, tokenizer_config.json, \
            special_tokens_map.json, and vocab.txt for WordPiece or vocab.json + merges.txt for a byte-level BPE), \
            so that AutoTokenizer.from_pretrained(DIR) gives the ids Loom gives.
            """)

    @Option(help: "A tokenizer file (Hugging Face tokenizer.json with a BPE or WordPiece model, GPT-2 vocab.json, or Loom's).") var tokenizer: String
    @Option(help: "The directory to write into (created if missing).") var out: String
    @Option(name: .customLong("model-max-length"), help: "transformers' model_max_length: the model's context.") var modelMaxLength: Int = 512

    func run() throws {
        try reportingErrors {
            guard modelMaxLength > 0 else { throw ValidationError("--model-max-length must be positive") }
            let tok = try TokenizerFile.load(tokenizer)
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let written = try HuggingFaceTokenizerFiles.write(tok, modelMaxLength: modelMaxLength, into: out)
            print("loom tokenizer export: wrote \(written.files.joined(separator: ", ")) in \(out)" + (written.note.map { "; \($0)" } ?? ""))
        }
    }
}

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Encode text files into token shards (+ index.json) for training.")

    @Option(help: "A tokenizer file (Hugging Face tokenizer.json with a BPE or WordPiece model, GPT-2 vocab.json, or Loom's).") var tokenizer: String
    @Option(help: "Output directory.") var out: String
    @Option(name: .customLong("shard-tokens"), help: "Tokens per shard.") var shardTokens: Int = 1 << 24
    @Option(help: "Encoding threads (0 = all cores).") var threads: Int = 0
    @Option(help: "Parallel corpus: the source-language file (line i pairs with line i of --target).") var source: String?
    @Option(help: "Parallel corpus: the target-language file.") var target: String?
    @Argument(help: "Text files; each is one document (also split after <|endoftext|> when the tokenizer has it). Under `mpirun -np W`, rank r encodes files i with i mod W = r.")
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

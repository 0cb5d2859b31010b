// EvalCommands: `loom eval bleu` (sacreBLEU-compatible corpus BLEU, with its signature) and
// `loom eval loss` (a trained GPT's NLL, perplexity and bits per byte on a text or shards). Thin
// shells over Data (BLEU) and Training (LossEvaluation).
import ArgumentParser
import Foundation
import Training
import Models
import Data
import Kernels
import Support

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Score translations (BLEU), a language model (loss) or a masked language model (mlm).",
                                                    subcommands: [BLEUCommand.self, LossCommand.self, MaskedLanguageModelEvalCommand.self])
}

struct BLEUCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bleu", abstract: "Corpus BLEU as sacreBLEU computes it (13a, mixed case, exp smoothing by default).",
        discussion: """
            Prints sacreBLEU's text line (BLEU = … precisions (BP … ratio … hyp_len … ref_len …)) on standard output and \
            the signature of the settings on standard error, in sacreBLEU's form: \
            nrefs:N|case:mixed|eff:no|tok:13a|smooth:METHOD|version:\(BLEU.sacreBLEUVersion). The version is that of the \
            sacreBLEU release whose corpus_bleu Loom reproduces (same statistics, smoothing and rounding). \
            --json prints sacreBLEU's JSON object instead (name, score, signature, verbose_score and the signature's fields).
            """)

    @Option(help: "Hypotheses, one sentence per line.") var hypotheses: String
    @Option(help: "References, line i for hypothesis i (repeat for several reference sets).") var references: [String]
    @Option(help: "Precision smoothing, as sacreBLEU's -sm: exp (default; mteval-v13a's), floor, add-k or none (a zero n-gram count gives 0).")
    var smooth: String = "exp"
    @Option(name: .customLong("smooth-value"), help: "The value of floor (default 0.1) or add-k (default 1), as sacreBLEU's -sv.")
    var smoothValue: Double?
    @Option(help: "Decimals of the score.") var width: Int = 2
    @Flag(help: "Print sacreBLEU's JSON object (score rounded to --width) instead of the text line and signature.") var json = false

    func run() throws {
        try reportingErrors {
            guard let smoothing = BLEU.Smoothing(rawValue: smooth) else {
                throw ValidationError("--smooth must be one of \(BLEU.Smoothing.allCases.map(\.rawValue).joined(separator: ", ")), got \(smooth)")
            }
            if smoothValue != nil && smoothing.defaultValue == nil {
                throw ValidationError("--smooth-value goes with --smooth floor or add-k, not \(smooth)")
            }
            guard !references.isEmpty else { throw ValidationError("give at least one --references file") }
            guard (0...10).contains(width) else { throw ValidationError("--width must be 0…10") }
            let hyps = try BLEU.readLines(hypotheses)
            let refs = try references.map { path -> [String] in
                let lines = try BLEU.readLines(path)
                guard lines.count == hyps.count else {
                    throw TextFileError(path: path, message: "\(lines.count) lines, but \(hypotheses) has \(hyps.count)")
                }
                return lines
            }
            let score = BLEU.corpus(hypotheses: hyps, references: refs, smoothing: smoothing, value: smoothValue)
            let signature = BLEU.signature(references: refs.count, smoothing: smoothing, value: smoothValue)
            if json {
                let line = score.formatted(width: width)
                var object: [String: Any] = ["name": "BLEU", "score": Double(String(format: "%.\(width)f", score.score)) ?? score.score,
                                             "signature": signature,
                                             "verbose_score": String(line[line.index(after: line.firstIndex(of: "=")!)...]
                                                .drop { $0 == " " }.drop { $0 != " " }.dropFirst())]
                for field in signature.split(separator: "|") {
                    let parts = field.split(separator: ":", maxSplits: 1)
                    object[String(parts[0])] = String(parts[1])
                }
                Progress.printJSON(object)
            } else {
                print(score.formatted(width: width))
                FileHandle.standardError.write(Data("signature: \(signature)\n".utf8))
            }
        }
    }
}

struct LossCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss", abstract: "A trained GPT's loss on a text: mean NLL per token, perplexity, bits per byte.",
        discussion: """
            MODEL is a run directory of `loom train` (its model.safetensors) or one of its checkpoints \
            (RUN/checkpoints/step-N); the config and tokenizer are the run's. The text (--text, encoded whole as \
            `loom tokenize` encodes a file, special tokens such as <|endoftext|> included) or the shards' token stream \
            (--shards, documents concatenated as training reads them) is scored in windows of context-length T: window k \
            starts at token k·stride and predicts up to T tokens; it scores only the tokens the previous window did not, \
            so every token but the first is scored exactly once (stride T, the default: non-overlapping windows; a \
            smaller stride gives each scored token at least T − stride tokens of context, like Hugging Face's perplexity \
            guide). Figures: mean NLL = Σ −ln p(token | context) / scored tokens, in nats; perplexity = exp(mean NLL); \
            bits per byte = Σ NLL / ln 2 / (UTF-8 bytes of the scored tokens, i.e. the text's bytes without those of its \
            first token). --validation-windows scores instead exactly the windows training's validation drew \
            (evaluation.batches batches of training.micro_batch_size windows from the validation split, seeded by \
            training.seed) and reports their mean of batch means, the val_loss of metrics.jsonl; the data are the run's \
            (data.corpus or data.shards, read from the current directory as in training) unless --text or --shards \
            replaces them. The model computes in the run's training.precision.
            """)

    @Argument(help: "A run directory or RUN/checkpoints/step-N.") var model: String
    @Option(help: "A text file to score (UTF-8 for a character tokenizer; any bytes for a byte-level BPE).") var text: String?
    @Option(help: "A shard directory of `loom tokenize` (made with the run's tokenizer) to score.") var shards: String?
    @Option(help: "Tokens between window starts, 1…context length (default: the context length).") var stride: Int?
    @Flag(name: .customLong("validation-windows"), help: "Score training's validation windows (see below) instead of the whole text.")
    var validationWindows = false
    @Option(help: "Windows run together.") var batch: Int = 8
    @Option(help: "Compute threads.") var threads: Int = 1
    @Flag(help: "Print one JSON object instead of the sentence.") var json = false

    func run() throws {
        try reportingErrors {
            guard batch >= 1, threads >= 1 else { throw ValidationError("--batch and --threads must be ≥ 1") }
            guard text == nil || shards == nil else { throw ValidationError("give --text or --shards, not both") }
            ThreadPool.configure(threads: threads)
            let report: LossReport, source: String
            if validationWindows {
                guard stride == nil else { throw ValidationError("--stride does not apply to --validation-windows (training's windows are drawn at random)") }
                (report, source) = try scoreValidation()
            } else {
                guard let input = text ?? shards else {
                    throw ValidationError("give --text FILE or --shards DIR to score (or --validation-windows for training's validation windows)")
                }
                let trained = try TrainedGPT(path: model, maxBatch: batch)
                let tokens: TokenStream
                if let text {
                    tokens = try encodeTextFile(text, tokenizer: trained.tokenizer, threads: threads)
                } else {
                    tokens = try ShardCorpus(directory: input, tokenizer: trained.tokenizer).tokens
                }
                report = try LossEvaluation.strided(model: trained.model, tokens: tokens,
                                                    stride: stride ?? trained.model.config.contextLength, batch: batch,
                                                    tokenizer: trained.tokenizer)
                source = input
            }
            if json {
                Progress.printJSON(["model": model, "source": source, "windowing": report.windowing, "windows": report.windows,
                                    "context_length": report.contextLength, "stride": report.stride, "tokens": report.tokens,
                                    "bytes": report.bytes, "total_nll": report.totalNLL, "mean_nll": report.meanNLL,
                                    "perplexity": report.perplexity, "bits_per_byte": report.bitsPerByte])
            } else {
                let windows = report.windowing == "validation"
                    ? "training's \(report.windows) validation windows of \(report.contextLength)"
                    : "\(report.windows) window(s) of ≤ \(report.contextLength), stride \(report.stride)"
                print(String(format: "loom eval loss: %@ on %@: %d tokens scored in %@; mean NLL %.6f nats/token, perplexity %.4f, %.4f bits per byte (%d bytes)",
                             model, source, report.tokens, windows, report.meanNLL, report.perplexity, report.bitsPerByte, report.bytes))
            }
        }
    }

    /// Training's validation windows of the run's data (or of --text / --shards), with its batches.
    func scoreValidation() throws -> (LossReport, String) {
        let probe = try TrainedGPT(path: model, maxBatch: 1)
        var config = probe.config
        let micro = config.training.microBatchSize
        config.data.tokenizer = .file(probe.tokenizerPath)
        if let text { config.data.corpus = text; config.data.shards = ""; config.data.validationShards = "" }
        if let shards { config.data.shards = shards; config.data.validationShards = ""; config.data.corpus = "" }
        let data = try PreparedData(config: config)
        let trained = micro == 1 ? probe : try TrainedGPT(path: model, maxBatch: micro)
        let report = try LossEvaluation.validationWindows(model: trained.model, validation: data.corpus.validation,
                                                          seed: UInt64(config.training.seed), batches: config.evaluation.batches,
                                                          microBatch: micro, tokenizer: trained.tokenizer, path: data.corpus.path)
        return (report, data.corpus.path + " (validation split)")
    }
}

/// The tokens of a whole text file, encoded as `loom tokenize` encodes a file (special tokens
/// written in it included); a missing or unencodable file is an error naming it.
func encodeTextFile(_ path: String, tokenizer: Tokenizer, threads: Int) throws -> TokenStream {
    guard let bytes = FileManager.default.contents(atPath: path) else { throw CorpusError.missing(path: path) }
    do {
        return TokenStream(try bytes.withUnsafeBytes { try CorpusTokenizer.encode($0, tokenizer: tokenizer, threads: threads, path: path) })
    } catch let error as ShardError { throw error } catch {
        throw CorpusError.unreadable(path: path, reason: "\(error)")
    }
}

// MaskedLanguageModelCommands: `loom fill-mask` (a trained BERT's top predictions for each [MASK]
// of a text) and `loom eval mlm` (masked-token loss and accuracy on held-out sequences, with the
// unigram baseline). Thin shells over Training (MaskedLanguageModelReading).
import ArgumentParser
import Foundation
import Training
import Data
import Support
import Kernels

extension Precision: ExpressibleByArgument {}

struct FillMaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-mask", abstract: "A trained BERT's most probable tokens for each [MASK] of a text.",
        discussion: """
            MODEL is a run directory of `loom train` (model.kind bert) or one of its checkpoints. The text is encoded \
            with the run's tokenizer ([MASK] written in it is the mask token) and run once as [CLS] text [SEP], as \
            Hugging Face's fill-mask pipeline does; each [MASK] gets its --top-k tokens with their probabilities.
            """)

    @Argument(help: "A run directory or RUN/checkpoints/step-N.") var model: String
    @Option(help: "The text, with one or more [MASK] tokens.") var text: String
    @Option(name: .customLong("top-k"), help: "Candidates per [MASK].") var topK: Int = 5
    @Flag(help: "Print one JSON object instead of the lines.") var json = false
    @Flag(help: .hidden) var logits = false   // with --json: each [MASK]'s logits (checks against Hugging Face)
    @Option(help: "fp32 or bf16 products (default: the run's training.precision).") var precision: Precision?

    func run() throws {
        try reportingErrors {
            guard topK >= 1 else { throw ValidationError("--top-k must be ≥ 1") }
            ThreadPool.configure(threads: 1)
            let trained = try TrainedBERT(path: model, maxBatch: 1, maxPredictions: Int.max, precision: precision)
            let (ids, masks, rows) = try FillMask.predict(trained, text: text, topK: topK)
            if json {
                var object: [String: Any] = ["model": model, "text": text, "ids": ids.map(Int.init),
                                             "masks": masks.map { $0.map { ["token": $0.token, "id": Int($0.id), "probability": $0.probability] } }]
                if logits { object["logits"] = rows.map { $0.map(Double.init) } }
                Progress.printJSON(object)
                return
            }
            for (k, candidates) in masks.enumerated() {
                print("[MASK] \(k + 1) of \(masks.count): "
                      + candidates.map { String(format: "%@ %.4f", $0.token, $0.probability) }.joined(separator: " | "))
            }
        }
    }
}

struct MaskedLanguageModelEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlm", abstract: "A trained BERT's masked-token loss and accuracy on held-out sequences.",
        discussion: """
            MODEL is a run directory of `loom train` (model.kind bert) or one of its checkpoints. Sequences are drawn \
            and masked exactly as training's validation draws them (training.seed, the run's masking, batch b the same \
            every time): from the run's validation split by default (the same figures as its val_loss and \
            val_accuracy, with --batches evaluation.batches and --batch training.micro_batch_size), or from the whole of \
            --text FILE or --shards DIR. Prints the mean cross-entropy at the masked positions (nats), the arg-max \
            accuracy there, and the unigram baseline: the most frequent target's share and the entropy of the \
            targets' own distribution, which no unigram model beats on these targets.
            """)

    @Argument(help: "A run directory or RUN/checkpoints/step-N.") var model: String
    @Option(help: "A text file to draw sequences from (instead of the run's validation split).") var text: String?
    @Option(help: "A shard directory of `loom tokenize` (the run's tokenizer) to draw sequences from.") var shards: String?
    @Option(help: "Batches to score (default: the run's evaluation.batches).") var batches: Int?
    @Option(help: "Sequences per batch (default: the run's training.micro_batch_size).") var batch: Int?
    @Option(help: "Compute threads.") var threads: Int = 1
    @Option(help: "fp32 or bf16 products (default: the run's training.precision).") var precision: Precision?
    @Flag(help: "Print one JSON object instead of the sentence.") var json = false

    func run() throws {
        try reportingErrors {
            guard text == nil || shards == nil else { throw ValidationError("give --text or --shards, not both") }
            guard threads >= 1, (batches ?? 1) >= 1, (batch ?? 1) >= 1 else {
                throw ValidationError("--threads, --batches and --batch must be ≥ 1")
            }
            ThreadPool.configure(threads: threads)
            let files = try TrainedRunFiles(path: model)
            var config = files.config
            let B = batch ?? config.training.microBatchSize, n = batches ?? config.evaluation.batches
            let trained = try TrainedBERT(files: files, maxBatch: B, precision: precision)
            config.data.tokenizer = .file(files.tokenizerPath)
            let tokens: TokenStream, source: String
            if let text {
                tokens = try encodeTextFile(text, tokenizer: trained.tokenizer, threads: threads)
                source = text
            } else if let shards {
                tokens = try ShardCorpus(directory: shards, tokenizer: trained.tokenizer).tokens; source = shards
            } else {
                let data = try PreparedData(config: config)
                tokens = data.corpus.validation; source = data.corpus.path + " (validation split)"
            }
            let report = try MaskedLanguageModelEvaluation.evaluate(trained, tokens: tokens, path: source, batches: n, batchSize: B)
            let s = report.score, baseline = s.unigramBaseline
            if json {
                Progress.printJSON(["model": model, "source": source, "batches": n, "batch": B, "sequences": s.sequences,
                                    "context_length": report.contextLength, "predictions": s.count, "correct": s.correct,
                                    "loss": s.loss, "accuracy": s.accuracy, "unigram_accuracy": baseline.accuracy,
                                    "unigram_loss": baseline.loss])
            } else {
                print(String(format: "loom eval mlm: %@ on %@: %d sequences of %d, %d masked positions; loss %.4f nats, accuracy %.2f %% (unigram baseline: accuracy %.2f %%, loss %.4f)",
                             model, source, s.sequences, report.contextLength, s.count, s.loss, 100 * s.accuracy,
                             100 * baseline.accuracy, baseline.loss))
            }
        }
    }
}

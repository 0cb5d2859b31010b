// Config: the YAML schema of a Loom run (Codable, snake_case keys, full-word names), its loading
// with `--set` overrides, and its validation. It is not the trainer: Trainer reads a valid Config.
import Foundation
import Yams
import Kernels
import Models
import Kernels

/// Everything a run needs, as plain data. Optional keys take the documented defaults.
public struct LoomConfig: Codable, Equatable {
    public var model: ModelSection
    public var data: DataSection
    public var training: TrainingSection
    public var optimizer: OptimizerSection
    public var schedule: ScheduleSection
    public var evaluation: EvaluationSection
    public var logging: LoggingSection
    public var distributed: DistributedSection
    public var checkpoint: CheckpointSection
    public var kernels: KernelsSection

    enum CodingKeys: String, CodingKey {
        case model, data, training, optimizer, schedule, evaluation, logging, distributed, checkpoint, kernels
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelSection.self, forKey: .model)
        data = try c.decode(DataSection.self, forKey: .data)
        training = try c.decodeIfPresent(TrainingSection.self, forKey: .training) ?? TrainingSection()
        optimizer = try c.decodeIfPresent(OptimizerSection.self, forKey: .optimizer) ?? OptimizerSection()
        schedule = try c.decodeIfPresent(ScheduleSection.self, forKey: .schedule) ?? ScheduleSection()
        evaluation = try c.decodeIfPresent(EvaluationSection.self, forKey: .evaluation) ?? EvaluationSection()
        logging = try c.decodeIfPresent(LoggingSection.self, forKey: .logging) ?? LoggingSection()
        distributed = try c.decodeIfPresent(DistributedSection.self, forKey: .distributed) ?? DistributedSection()
        checkpoint = try c.decodeIfPresent(CheckpointSection.self, forKey: .checkpoint) ?? CheckpointSection()
        kernels = try c.decodeIfPresent(KernelsSection.self, forKey: .kernels) ?? KernelsSection()
    }
}

/// The model: `kind: gpt` (GPT-2 architecture; `layers` blocks) or `kind: transformer` (the
/// encoder-decoder of "Attention Is All You Need": `encoder_layers` + `layers` decoder blocks).
public struct ModelSection: Codable, Equatable {
    public var kind: String = "gpt"
    public var layers: Int
    public var heads: Int
    public var width: Int
    /// Positions the model reads: the GPT's position table; the encoder-decoder's longest sequence.
    public var contextLength: Int
    /// Embedding, attention and residual dropout probability. Default 0.
    public var dropout: Double = 0
    /// Vocabulary size; default 0 = the tokenizer's. `loom bench` without a corpus needs it.
    public var vocabularySize: Int = 0
    /// transformer: encoder blocks (default = layers), feed-forward width (0 = 4 × width), pre-LN
    /// instead of the paper's post-LN.
    public var encoderLayers: Int = 0
    public var ffnWidth: Int = 0
    public var preNorm: Bool = false

    enum CodingKeys: String, CodingKey {
        case kind, layers, heads, width, dropout
        case contextLength = "context_length", vocabularySize = "vocabulary_size"
        case encoderLayers = "encoder_layers", ffnWidth = "ffn_width", preNorm = "pre_norm"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "gpt"
        layers = try c.decode(Int.self, forKey: .layers)
        heads = try c.decode(Int.self, forKey: .heads)
        width = try c.decode(Int.self, forKey: .width)
        contextLength = try c.decode(Int.self, forKey: .contextLength)
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
        vocabularySize = try c.decodeIfPresent(Int.self, forKey: .vocabularySize) ?? 0
        encoderLayers = try c.decodeIfPresent(Int.self, forKey: .encoderLayers) ?? layers
        ffnWidth = try c.decodeIfPresent(Int.self, forKey: .ffnWidth) ?? 0
        preNorm = try c.decodeIfPresent(Bool.self, forKey: .preNorm) ?? false
    }
}

public struct DataSection: Codable, Equatable {
    /// A text file; relative paths are taken from the current directory.
    public var corpus: String = ""
    /// A shard directory from `loom tokenize --out DIR` (index.json, shard-*.bin, tokenizer.json).
    public var shards: String = ""
    /// Optional second shard directory used whole for validation; then all of `shards` trains and
    /// `validation_fraction` is ignored. Default: none.
    public var validationShards: String = ""
    /// `character` (nanoGPT's char-level vocabulary of the corpus) or the path of a tokenizer file
    /// (Hugging Face tokenizer.json, GPT-2 vocab.json, Loom's). With `shards`, `character` (the
    /// default) means the tokenizer.json inside the shard directory; a path must have the shards'
    /// vocabulary size.
    public var tokenizer: String = "character"
    /// The last fraction of the tokens (of the corpus, or of the shards in index order) held out
    /// for validation. Default 0.1.
    public var validationFraction: Double = 0.1

    enum CodingKeys: String, CodingKey {
        case corpus, shards, tokenizer
        case validationShards = "validation_shards", validationFraction = "validation_fraction"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        corpus = try c.decodeIfPresent(String.self, forKey: .corpus) ?? ""
        shards = try c.decodeIfPresent(String.self, forKey: .shards) ?? ""
        validationShards = try c.decodeIfPresent(String.self, forKey: .validationShards) ?? ""
        tokenizer = try c.decodeIfPresent(String.self, forKey: .tokenizer) ?? "character"
        validationFraction = try c.decodeIfPresent(Double.self, forKey: .validationFraction) ?? 0.1
    }
}

public struct TrainingSection: Codable, Equatable {
    /// Optimizer steps.
    public var steps: Int = 1000
    /// Sequences per optimizer step, over all ranks and micro-steps.
    public var batchSize: Int = 12
    /// Sequences per forward/backward; batch_size / micro_batch_size micro-steps accumulate.
    public var microBatchSize: Int = 12
    public var seed: Int = 1337
    /// Compute threads per rank (sgemm and parallel loops); 0 = cores on this node / ranks on this node.
    public var threads: Int = 0
    /// How a rank's threads share a GPT micro-batch: `batch` = each thread runs the whole model on
    /// micro_batch_size / threads sequences and the gradients are summed (fewer thread meetings;
    /// used when the micro-batch divides evenly), `kernel` = the threads split every kernel,
    /// `auto` = `batch` for small models, where a kernel is short and the meetings cost most
    /// (micro_batch_size · context_length · width² < 2²⁶: the shakespeare-char recipe), else
    /// `kernel` (the small GPT is ~4 % faster so). The encoder-decoder always uses `kernel`.
    public var threadParallelism: String = "auto"
    /// A step whose loss or gradient is not finite is skipped (no update) and counted; this many in
    /// a row stop the run, without writing a checkpoint of the poisoned state.
    public var maximumNonfiniteSteps: Int = 5
    /// transformer: the token budget of a global batch (sentences × longest side; 0 = no limit,
    /// then `batch_size` sentences), and the label smoothing ε of the loss (0.1 in the paper).
    public var maxTokens: Int = 0
    public var labelSmoothing: Double = 0
    /// How the matrix products run: `fp32`, or `bf16` (bf16 weights and activations into products
    /// that accumulate in fp32, on AVX512_BF16 or AMX; master weights, AdamW, gradients, the
    /// all-reduce, LayerNorm, softmax, GELU and the loss stay fp32; checkpoints are fp32 and load in
    /// either precision). Default fp32.
    public var precision: Precision = .fp32

    enum CodingKeys: String, CodingKey {
        case steps, seed, threads, precision, batchSize = "batch_size", microBatchSize = "micro_batch_size"
        case threadParallelism = "thread_parallelism"
        case maximumNonfiniteSteps = "maximum_nonfinite_steps", maxTokens = "max_tokens", labelSmoothing = "label_smoothing"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? 1000
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? 12
        microBatchSize = try c.decodeIfPresent(Int.self, forKey: .microBatchSize) ?? batchSize
        seed = try c.decodeIfPresent(Int.self, forKey: .seed) ?? 1337
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? 0
        threadParallelism = try c.decodeIfPresent(String.self, forKey: .threadParallelism) ?? "auto"
        maximumNonfiniteSteps = try c.decodeIfPresent(Int.self, forKey: .maximumNonfiniteSteps) ?? 5
        maxTokens = try c.decodeIfPresent(Int.self, forKey: .maxTokens) ?? 0
        labelSmoothing = try c.decodeIfPresent(Double.self, forKey: .labelSmoothing) ?? 0
        if let name = try c.decodeIfPresent(String.self, forKey: .precision) {
            guard let value = Precision(rawValue: name) else {
                let choices = Precision.allCases.map(\.rawValue).joined(separator: " or ")
                throw DecodingError.dataCorruptedError(forKey: .precision, in: c,
                                                       debugDescription: "must be \(choices), got `\(name)`")
            }
            precision = value
        }
    }
}

/// AdamW. Weight decay applies to matrices only: the token embedding and the attention and MLP
/// weights; never to biases, LayerNorm parameters or the position embedding.
public struct OptimizerSection: Codable, Equatable {
    public var learningRate: Double = 1e-3
    public var beta1: Double = 0.9
    public var beta2: Double = 0.99
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0.1
    /// Global gradient-norm clip; 0 disables.
    public var gradientClip: Double = 1.0

    enum CodingKeys: String, CodingKey {
        case beta1, beta2, epsilon
        case learningRate = "learning_rate", weightDecay = "weight_decay", gradientClip = "gradient_clip"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? 1e-3
        beta1 = try c.decodeIfPresent(Double.self, forKey: .beta1) ?? 0.9
        beta2 = try c.decodeIfPresent(Double.self, forKey: .beta2) ?? 0.99
        epsilon = try c.decodeIfPresent(Double.self, forKey: .epsilon) ?? 1e-8
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0.1
        gradientClip = try c.decodeIfPresent(Double.self, forKey: .gradientClip) ?? 1.0
    }
}

/// Learning-rate schedule, decided by the coordinator (rank 0) and broadcast every step:
/// - `constant`, `cosine`, `linear`: linear warmup lr·(s+1)/(warmup+1) as nanoGPT, then constant,
///   cosine or straight-line decay to `minimum_learning_rate` at the last step;
/// - `inverse_sqrt` ("Attention Is All You Need"): learning_rate · width^−½ · min(n^−½, n·warmup^−³ᐟ²),
///   n = step + 1 — `optimizer.learning_rate` is the paper's factor (e.g. 1–2);
/// - `plateau`: warmup, then constant, multiplied by `plateau_factor` whenever `plateau_patience`
///   validations in a row fail to improve the best validation loss (never below the minimum).
/// Any kind: `cooldown_steps` > 0 ends the run with a straight-line decay from the schedule's rate
/// to `minimum_learning_rate` over that many last steps.
public struct ScheduleSection: Codable, Equatable {
    public var kind: String = "cosine"
    public var warmupSteps: Int = 100
    public var minimumLearningRate: Double = 1e-4
    public var plateauFactor: Double = 0.5
    public var plateauPatience: Int = 2
    public var cooldownSteps: Int = 0

    enum CodingKeys: String, CodingKey {
        case kind, warmupSteps = "warmup_steps", minimumLearningRate = "minimum_learning_rate"
        case plateauFactor = "plateau_factor", plateauPatience = "plateau_patience", cooldownSteps = "cooldown_steps"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(String.self, forKey: .kind) ?? "cosine"
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 100
        minimumLearningRate = try c.decodeIfPresent(Double.self, forKey: .minimumLearningRate) ?? 1e-4
        plateauFactor = try c.decodeIfPresent(Double.self, forKey: .plateauFactor) ?? 0.5
        plateauPatience = try c.decodeIfPresent(Int.self, forKey: .plateauPatience) ?? 2
        cooldownSteps = try c.decodeIfPresent(Int.self, forKey: .cooldownSteps) ?? 0
    }
}

/// Checkpoints, written by the coordinator into RUN/checkpoints/step-NNNNNNNN/.
public struct CheckpointSection: Codable, Equatable {
    /// Steps between checkpoints (0 = only at the end and on preemption).
    public var interval: Int = 0
    /// How many of the newest checkpoints to keep (the best by validation loss is kept as well).
    public var keep: Int = 3

    enum CodingKeys: String, CodingKey { case interval, keep }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? 0
        keep = try c.decodeIfPresent(Int.self, forKey: .keep) ?? 3
    }
}

/// Validation passes: every `interval` steps and, when `at_end`, after the last step. A run with
/// neither evaluates nothing: no validation loss is logged, checkpoints carry none (so none is
/// kept as "best"), the plateau schedule never lowers the rate, and the summary says so.
public struct EvaluationSection: Codable, Equatable {
    /// Steps between validation passes (0 = none during training).
    public var interval: Int = 500
    /// Validation batches averaged per pass.
    public var batches: Int = 200
    /// Evaluate after the last step (unless a periodic pass just ran there). Default true.
    public var atEnd: Bool = true

    enum CodingKeys: String, CodingKey { case interval, batches, atEnd = "at_end" }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? 500
        batches = try c.decodeIfPresent(Int.self, forKey: .batches) ?? 200
        atEnd = try c.decodeIfPresent(Bool.self, forKey: .atEnd) ?? true
    }
}

public struct LoggingSection: Codable, Equatable {
    /// Steps between metrics lines.
    public var interval: Int = 10

    enum CodingKeys: String, CodingKey { case interval }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? 10
    }
}

/// Data parallelism over MPI (ignored in a single process).
public struct DistributedSection: Codable, Equatable {
    /// Gradient bucket size in MiB; 0 = one bucket per layout group (one transformer block).
    public var bucketMegabytes: Double = 0
    /// Start each bucket's all-reduce while backward continues (false: all after backward).
    public var overlap: Bool = true

    enum CodingKeys: String, CodingKey { case overlap, bucketMegabytes = "bucket_megabytes" }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bucketMegabytes = try c.decodeIfPresent(Double.self, forKey: .bucketMegabytes) ?? 0
        overlap = try c.decodeIfPresent(Bool.self, forKey: .overlap) ?? true
    }
}

/// Which engine runs the matrix products.
public struct KernelsSection: Codable, Equatable {
    /// `openblas` (the default: every product on OpenBLAS sgemm), `onednn` (every product shape of
    /// the step on a oneDNN matmul primitive made at start-up), or `auto`: both engines are timed
    /// on each of the model's product shapes after the first step, and a shape runs on oneDNN
    /// when it takes under 95 % of OpenBLAS's time there (the choice follows timings, so two
    /// `auto` runs may differ in the last bits).
    public var gemm: GemmSelection = .openblas

    enum CodingKeys: String, CodingKey { case gemm }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .gemm) {
            guard let value = GemmSelection(rawValue: text) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .gemm, in: c,
                    debugDescription: "unknown GEMM engine '\(text)' (choices: \(GemmSelection.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            gemm = value
        }
    }
}

/// A config problem, naming the file and the key at fault.
public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let key: String?
    public let message: String
    public var description: String {
        if let key { return "\(file): key '\(key)': \(message)" }
        return "\(file): \(message)"
    }
}

extension LoomConfig {
    /// Reads `path`, applies `key.path=value` overrides, decodes strictly and validates.
    public static func load(path: String, overrides: [String] = []) throws -> LoomConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(file: path, key: nil, message: "cannot read the config file")
        }
        return try parse(yaml: text, file: path, overrides: overrides)
    }

    public static func parse(yaml: String, file: String, overrides: [String] = []) throws -> LoomConfig {
        var node: Node
        do {
            guard let parsed = try Yams.compose(yaml: yaml) else {
                throw ConfigError(file: file, key: nil, message: "the file is empty")
            }
            node = parsed
        } catch let error as ConfigError { throw error } catch {
            throw ConfigError(file: file, key: nil, message: "not valid YAML: \(error)")
        }
        guard node.mapping != nil else { throw ConfigError(file: file, key: nil, message: "expected a mapping at the top level") }
        for override in overrides { try apply(override: override, to: &node, file: file) }

        let config: LoomConfig
        do { config = try YAMLDecoder().decode(LoomConfig.self, from: node) } catch let error as DecodingError {
            throw ConfigError(decoding: error, file: file)
        }
        // Unknown keys: every key in the input must survive a decode → encode round trip.
        let known = try Yams.compose(yaml: YAMLEncoder().encode(config))!
        try rejectUnknownKeys(node, known: known, path: "", file: file)
        try config.validate(file: file)
        return config
    }

    /// Sets the value at a dotted key path, creating intermediate mappings.
    static func apply(override: String, to node: inout Node, file: String) throws {
        guard let eq = override.firstIndex(of: "="), eq != override.startIndex else {
            throw ConfigError(file: "--set \(override)", key: nil, message: "expected key.path=value")
        }
        let path = override[..<eq].split(separator: ".").map(String.init)
        let valueText = String(override[override.index(after: eq)...])
        let value = (try? Yams.compose(yaml: valueText)).flatMap { $0 } ?? Node(valueText)
        func set(_ node: inout Node, _ path: ArraySlice<String>) throws {
            guard var mapping = node.mapping else {
                throw ConfigError(file: "--set \(override)", key: path.joined(separator: "."), message: "is not inside a mapping")
            }
            let key = path.first!
            if path.count == 1 {
                mapping[key] = value
            } else {
                var child = mapping[key] ?? Node.mapping(Node.Mapping([]))
                try set(&child, path.dropFirst())
                mapping[key] = child
            }
            node = .mapping(mapping)
        }
        try set(&node, path[...])
    }

    static func rejectUnknownKeys(_ node: Node, known: Node, path: String, file: String) throws {
        guard let mapping = node.mapping else { return }
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? "?"
            let full = path.isEmpty ? key : path + "." + key
            guard let knownValue = known.mapping?[key] else {
                let choices = known.mapping?.keys.compactMap(\.string).sorted().joined(separator: ", ") ?? ""
                throw ConfigError(file: file, key: full, message: "unknown key (known here: \(choices))")
            }
            try rejectUnknownKeys(value, known: knownValue, path: full, file: file)
        }
    }

    /// Checks values that decode but cannot work; names the key and how to fix it.
    public func validate(file: String) throws {
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }
        let m = model, t = training
        for (key, value) in [("model.layers", m.layers), ("model.heads", m.heads), ("model.width", m.width),
                             ("model.context_length", m.contextLength), ("training.steps", t.steps),
                             ("training.batch_size", t.batchSize), ("training.micro_batch_size", t.microBatchSize),
                             ("evaluation.batches", evaluation.batches), ("logging.interval", logging.interval)]
        where value <= 0 {
            throw fail(key, "must be positive, got \(value)")
        }
        if m.width % m.heads != 0 {
            throw fail("model.width", "\(m.width) is not divisible by model.heads = \(m.heads)")
        }
        if !(0..<1).contains(m.dropout) { throw fail("model.dropout", "must be in [0, 1), got \(m.dropout)") }
        if m.vocabularySize < 0 { throw fail("model.vocabulary_size", "must be ≥ 0 (0 = the tokenizer's)") }
        if t.batchSize % t.microBatchSize != 0 {
            throw fail("training.batch_size", "\(t.batchSize) is not a multiple of training.micro_batch_size = \(t.microBatchSize)")
        }
        if t.threads < 0 { throw fail("training.threads", "must be ≥ 0 (0 = all cores)") }
        if !["auto", "batch", "kernel"].contains(t.threadParallelism) {
            throw fail("training.thread_parallelism", "must be `auto`, `batch` or `kernel`, got `\(t.threadParallelism)`")
        }
        if t.seed < 0 { throw fail("training.seed", "must be ≥ 0") }
        if data.corpus.isEmpty == data.shards.isEmpty {
            throw fail(data.corpus.isEmpty ? "data.corpus" : "data.shards",
                       "set exactly one of data.corpus (a text file) and data.shards (a directory from `loom tokenize`)")
        }
        if data.tokenizer.isEmpty {
            throw fail("data.tokenizer", "is empty; use `character` or the path of a tokenizer file (e.g. from `loom tokenizer train`)")
        }
        if !(data.validationFraction > 0 && data.validationFraction < 1) {
            throw fail("data.validation_fraction", "must be between 0 and 1, got \(data.validationFraction)")
        }
        let o = optimizer
        if !(o.learningRate > 0) { throw fail("optimizer.learning_rate", "must be positive") }
        if !(0..<1).contains(o.beta1) { throw fail("optimizer.beta1", "must be in [0, 1)") }
        if !(0..<1).contains(o.beta2) { throw fail("optimizer.beta2", "must be in [0, 1)") }
        if !(o.epsilon > 0) { throw fail("optimizer.epsilon", "must be positive") }
        if o.weightDecay < 0 { throw fail("optimizer.weight_decay", "must be ≥ 0") }
        if o.gradientClip < 0 { throw fail("optimizer.gradient_clip", "must be ≥ 0 (0 disables clipping)") }
        let kinds = LearningRateSchedule.Kind.allCases.map(\.rawValue)
        if !kinds.contains(schedule.kind) {
            throw fail("schedule.kind", "unknown schedule '\(schedule.kind)' (available: \(kinds.joined(separator: ", ")))")
        }
        if !(schedule.plateauFactor > 0 && schedule.plateauFactor < 1) {
            throw fail("schedule.plateau_factor", "must be between 0 and 1, got \(schedule.plateauFactor)")
        }
        if schedule.plateauPatience < 0 { throw fail("schedule.plateau_patience", "must be ≥ 0") }
        if schedule.kind == "plateau" && evaluation.interval == 0 {
            throw fail("schedule.kind", "plateau lowers the rate after validation passes, and evaluation.interval 0 runs none during training; set evaluation.interval > 0 or choose another schedule")
        }
        if checkpoint.interval < 0 { throw fail("checkpoint.interval", "must be ≥ 0 (0 = only at the end)") }
        if checkpoint.keep < 1 { throw fail("checkpoint.keep", "must be ≥ 1") }
        if !["gpt", "transformer"].contains(m.kind) {
            throw fail("model.kind", "unknown model '\(m.kind)' (available: gpt, transformer)")
        }
        if m.encoderLayers <= 0 { throw fail("model.encoder_layers", "must be positive") }
        if m.ffnWidth < 0 { throw fail("model.ffn_width", "must be ≥ 0 (0 = 4 × width)") }
        if t.maxTokens < 0 { throw fail("training.max_tokens", "must be ≥ 0 (0 = no token limit)") }
        if !(0..<1).contains(t.labelSmoothing) { throw fail("training.label_smoothing", "must be in [0, 1)") }
        if t.maximumNonfiniteSteps < 1 { throw fail("training.maximum_nonfinite_steps", "must be ≥ 1") }
        if schedule.warmupSteps < 0 { throw fail("schedule.warmup_steps", "must be ≥ 0") }
        if schedule.cooldownSteps < 0 || schedule.cooldownSteps > t.steps {
            throw fail("schedule.cooldown_steps", "must be between 0 and training.steps (\(t.steps)), got \(schedule.cooldownSteps)")
        }
        if schedule.minimumLearningRate < 0 || schedule.minimumLearningRate > o.learningRate {
            throw fail("schedule.minimum_learning_rate", "must be between 0 and optimizer.learning_rate")
        }
        if !(distributed.bucketMegabytes >= 0) {
            throw fail("distributed.bucket_megabytes", "must be ≥ 0 (0 = one bucket per block)")
        }
        if evaluation.interval < 0 {
            throw fail("evaluation.interval", "must be ≥ 0 (0 = no passes during training; evaluation.at_end decides the last step)")
        }
    }

    /// The model shape for a tokenizer of `vocabularySize` tokens (unless the config fixes one).
    public func gptConfig(vocabularySize: Int) -> GPTConfig {
        GPTConfig(vocabularySize: model.vocabularySize > 0 ? model.vocabularySize : vocabularySize,
                  contextLength: model.contextLength, layers: model.layers, heads: model.heads,
                  width: model.width, dropout: Float(model.dropout))
    }

    /// The config as YAML (what a run directory stores as `config.yaml`).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }
}

extension ConfigError {
    init(decoding error: DecodingError, file: String) {
        func dotted(_ path: [CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .typeMismatch(type, context):
            self.init(file: file, key: dotted(context.codingPath), message: "expected \(Self.typeName(type))")
        case let .valueNotFound(type, context):
            self.init(file: file, key: dotted(context.codingPath), message: "missing value, expected \(Self.typeName(type))")
        case let .keyNotFound(key, context):
            self.init(file: file, key: dotted(context.codingPath + [key]), message: "required key is missing")
        case let .dataCorrupted(context):
            self.init(file: file, key: dotted(context.codingPath), message: context.debugDescription)
        @unknown default:
            self.init(file: file, key: nil, message: "\(error)")
        }
    }
    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default: return "a mapping"
        }
    }
}

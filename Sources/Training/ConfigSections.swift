// ConfigSections: the sections of a run config after `model:` — data, training, optimizer,
// schedule, evaluation, logging, distributed, checkpoint, kernels. Each property's initial value is
// its default (an absent key keeps it, ConfigCoding.swift); Config.swift validates the values.
import Foundation
import Kernels

public struct DataSection: Codable, Equatable {
    /// A text file; relative paths are taken from the current directory.
    public var corpus = ""
    /// A shard directory from `loom tokenize --out DIR` (index.json, shard-*.bin, tokenizer.json).
    public var shards = ""
    /// Optional second shard directory used whole for validation; then all of `shards` trains and
    /// `validation_fraction` is ignored. Default: none.
    public var validationShards = ""
    public var tokenizer = TokenizerSetting.character
    /// The last fraction of the tokens (of the corpus, or of the shards in index order) held out
    /// for validation.
    public var validationFraction = 0.1

    enum CodingKeys: String, CodingKey {
        case corpus, shards, tokenizer
        case validationShards = "validation_shards", validationFraction = "validation_fraction"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&corpus, .corpus)
        try c.read(&shards, .shards)
        try c.read(&validationShards, .validationShards)
        try c.read(&tokenizer, .tokenizer)
        try c.read(&validationFraction, .validationFraction)
    }
    /// The paths that are set, the tokenizer and the validation fraction.
    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        for (key, path) in [(CodingKeys.corpus, corpus), (.shards, shards), (.validationShards, validationShards)]
        where encoder.lists(!path.isEmpty) {
            try c.encode(path, forKey: key)
        }
        try c.encode(tokenizer, forKey: .tokenizer)
        try c.encode(validationFraction, forKey: .validationFraction)
    }
}

/// `data.tokenizer`: `character` or the path of a tokenizer file.
public enum TokenizerSetting: Equatable, Codable {
    /// nanoGPT's char-level vocabulary of the corpus; with `shards`, the tokenizer.json inside the
    /// shard directory.
    case character
    /// A tokenizer file (Hugging Face tokenizer.json, GPT-2 vocab.json, Loom's); with `shards`, it
    /// must have the shards' vocabulary size.
    case file(String)

    static let characterName = "character"
    /// The file's path; nil for `character`.
    public var path: String? {
        if case let .file(path) = self { return path }
        return nil
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let text = try c.decode(String.self)
        guard !text.isEmpty else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "is empty; use `character` or the path of a tokenizer file (e.g. from `loom tokenizer train`)")
        }
        self = text == Self.characterName ? .character : .file(text)
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(path ?? Self.characterName)
    }
}

/// How a rank's threads share a GPT micro-batch. The encoder-decoder always uses `kernel`.
public enum ThreadParallelism: String, Codable, CaseIterable, Sendable {
    /// `batch` for small models, where a kernel is short and the meetings cost most
    /// (micro_batch_size · context_length · width² < 2²⁶: the shakespeare-char recipe), else `kernel`.
    case auto
    /// Each thread runs the whole model on micro_batch_size / threads sequences and the gradients
    /// are summed: fewer thread meetings; used when the micro-batch divides evenly.
    case batch
    /// The threads split every kernel.
    case kernel
}

public struct TrainingSection: Codable, Equatable {
    /// Optimizer steps.
    public var steps = 1000
    /// Sequences per optimizer step, over all ranks and micro-steps.
    public var batchSize = 12
    /// Sequences per forward/backward; batch_size / micro_batch_size micro-steps accumulate.
    /// Default: batch_size.
    public var microBatchSize: Int
    public var seed = 1337
    /// Compute threads per rank (sgemm and parallel loops); 0 = cores on this node / ranks on this node.
    public var threads = 0
    public var threadParallelism = ThreadParallelism.auto
    /// A step whose loss or gradient is not finite is skipped (no update) and counted; this many in
    /// a row stop the run, without writing a checkpoint of the poisoned state.
    public var maximumNonfiniteSteps = 5
    /// transformer: the token budget of a global batch (sentences × longest side; 0 = no limit,
    /// then `batch_size` sentences), and the label smoothing ε of the loss (0.1 in the paper).
    public var maxTokens = 0
    public var labelSmoothing = 0.0
    /// How the matrix products run: `fp32`, or `bf16` (bf16 weights and activations into products
    /// that accumulate in fp32, on AVX512_BF16 or AMX; master weights, AdamW, gradients, the
    /// all-reduce, LayerNorm, softmax, GELU and the loss stay fp32; checkpoints are fp32 and load in
    /// either precision).
    public var precision = Precision.fp32

    enum CodingKeys: String, CodingKey {
        case steps, seed, threads, precision, batchSize = "batch_size", microBatchSize = "micro_batch_size"
        case threadParallelism = "thread_parallelism"
        case maximumNonfiniteSteps = "maximum_nonfinite_steps", maxTokens = "max_tokens", labelSmoothing = "label_smoothing"
    }
    init() { microBatchSize = batchSize }
    public init(from decoder: Decoder) throws {
        self.init()
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&steps, .steps)
        try c.read(&batchSize, .batchSize)
        microBatchSize = batchSize
        try c.read(&microBatchSize, .microBatchSize)
        try c.read(&seed, .seed)
        try c.read(&threads, .threads)
        try c.read(&threadParallelism, .threadParallelism)
        try c.read(&maximumNonfiniteSteps, .maximumNonfiniteSteps)
        try c.read(&maxTokens, .maxTokens)
        try c.read(&labelSmoothing, .labelSmoothing)
        try c.read(&precision, .precision)
    }
}

/// AdamW. Weight decay applies to matrices only: the token embedding and the attention and MLP
/// weights; never to biases, LayerNorm parameters or the position embedding.
public struct OptimizerSection: Codable, Equatable {
    public var learningRate = 1e-3
    public var beta1 = 0.9
    public var beta2 = 0.99
    public var epsilon = 1e-8
    public var weightDecay = 0.1
    /// Global gradient-norm clip; 0 disables.
    public var gradientClip = 1.0

    enum CodingKeys: String, CodingKey {
        case beta1, beta2, epsilon
        case learningRate = "learning_rate", weightDecay = "weight_decay", gradientClip = "gradient_clip"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&learningRate, .learningRate)
        try c.read(&beta1, .beta1)
        try c.read(&beta2, .beta2)
        try c.read(&epsilon, .epsilon)
        try c.read(&weightDecay, .weightDecay)
        try c.read(&gradientClip, .gradientClip)
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
    public var kind = LearningRateSchedule.Kind.cosine
    public var warmupSteps = 100
    public var minimumLearningRate = 1e-4
    public var plateauFactor = 0.5
    public var plateauPatience = 2
    public var cooldownSteps = 0

    enum CodingKeys: String, CodingKey {
        case kind, warmupSteps = "warmup_steps", minimumLearningRate = "minimum_learning_rate"
        case plateauFactor = "plateau_factor", plateauPatience = "plateau_patience", cooldownSteps = "cooldown_steps"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&kind, .kind)
        try c.read(&warmupSteps, .warmupSteps)
        try c.read(&minimumLearningRate, .minimumLearningRate)
        try c.read(&plateauFactor, .plateauFactor)
        try c.read(&plateauPatience, .plateauPatience)
        try c.read(&cooldownSteps, .cooldownSteps)
    }
}

/// Checkpoints, written by the coordinator into RUN/checkpoints/step-NNNNNNNN/.
public struct CheckpointSection: Codable, Equatable {
    /// Steps between checkpoints (0 = only at the end and on preemption).
    public var interval = 0
    /// How many of the newest checkpoints to keep (the best by validation loss is kept as well).
    public var keep = 3

    enum CodingKeys: String, CodingKey { case interval, keep }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&keep, .keep)
    }
}

/// Validation passes: every `interval` steps and, when `at_end`, after the last step. A run with
/// neither evaluates nothing: no validation loss is logged, checkpoints carry none (so none is
/// kept as "best"), the plateau schedule never lowers the rate, and the summary says so.
public struct EvaluationSection: Codable, Equatable {
    /// Steps between validation passes (0 = none during training).
    public var interval = 500
    /// Validation batches averaged per pass.
    public var batches = 200
    /// Evaluate after the last step (unless a periodic pass just ran there).
    public var atEnd = true

    enum CodingKeys: String, CodingKey { case interval, batches, atEnd = "at_end" }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&batches, .batches)
        try c.read(&atEnd, .atEnd)
    }
}

public struct LoggingSection: Codable, Equatable {
    /// Steps between metrics lines.
    public var interval = 10
    /// Also write the metrics as TensorBoard events in `RUN/tensorboard/` (TensorBoardEvents).
    public var tensorboard = false

    enum CodingKeys: String, CodingKey { case interval, tensorboard }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&interval, .interval)
        try c.read(&tensorboard, .tensorboard)
    }
}

/// Data parallelism over MPI (ignored in a single process).
public struct DistributedSection: Codable, Equatable {
    /// Gradient bucket size in MiB; 0 = one bucket per layout group (one transformer block).
    public var bucketMegabytes = 0.0
    /// Start each bucket's all-reduce while backward continues (false: all after backward).
    public var overlap = true
    /// The collective watchdog: a rank whose collective waits this long for its peers prints the
    /// ranks it is waiting for and ends the job (0: wait forever). Steps of a healthy run wait for
    /// the slowest rank's compute only.
    public var timeoutSeconds = 300.0
    /// The same limit until the first training step has finished: start-up (loading, tokenizing,
    /// the first step's set-up) runs on one rank while the others wait.
    public var firstStepTimeoutSeconds = 1800.0
    /// ZeRO-1: each rank keeps the AdamW moments of one slice of the parameters and updates only
    /// that slice; gradients are reduce-scattered and the parameters all-gathered each step. The
    /// same losses and the same checkpoint files as unsharded; on one rank it changes nothing.
    public var shardOptimizer = false

    enum CodingKeys: String, CodingKey {
        case overlap, bucketMegabytes = "bucket_megabytes", timeoutSeconds = "timeout_seconds"
        case firstStepTimeoutSeconds = "first_step_timeout_seconds", shardOptimizer = "shard_optimizer"
    }
    init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(&bucketMegabytes, .bucketMegabytes)
        try c.read(&overlap, .overlap)
        try c.read(&timeoutSeconds, .timeoutSeconds)
        try c.read(&firstStepTimeoutSeconds, .firstStepTimeoutSeconds)
        try c.read(&shardOptimizer, .shardOptimizer)
    }
}

/// Which engine runs the matrix products (`GemmSelection` says what each runs): `loom` (the
/// default: fp32 products on Loom's AVX-512 kernel where the CPU has AVX-512, on OpenBLAS sgemm
/// elsewhere), `openblas` (fp32 products on OpenBLAS sgemm), `onednn` (every product shape of the
/// step on a oneDNN matmul primitive made at start-up), or `auto`: the engines are timed on each
/// of the model's product shapes after the first step and the fastest kept, oneDNN only when it
/// takes under 95 % of the best other's time (the choice follows timings, so two `auto` runs may
/// differ in the last bits). bf16 products (OpenBLAS has none) run on Loom's own AVX512_BF16
/// kernel under `openblas` and `loom` (oneDNN on AMX CPUs, whose AMX kernels are faster), on
/// oneDNN under `onednn`, and under `auto` on Loom's kernel unless oneDNN is at least 5 % faster
/// on the shape; a CPU without AVX512_BF16 runs them on oneDNN.
public struct KernelsSection: Codable, Equatable {
    public var gemm = GemmSelection.loom

    enum CodingKeys: String, CodingKey { case gemm }
    init() {}
    public init(from decoder: Decoder) throws {
        try decoder.container(keyedBy: CodingKeys.self).read(&gemm, .gemm)
    }
}

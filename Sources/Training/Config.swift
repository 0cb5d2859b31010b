// Config: the YAML schema of a Loom run (Codable, snake_case keys, full-word names, enums for
// closed sets), its loading with `--set` overrides, and its validation. The sections are in
// ModelSection.swift and ConfigSections.swift.
import Foundation
import Yams
import Kernels
import Models
import Data

/// Everything a run needs, as plain data. Only `model` and `data` are required; an absent
/// section or key takes its default.
public struct LoomConfig: Codable, Equatable {
    public var model: ModelSection
    public var data: DataSection
    public var training = TrainingSection()
    public var optimizer = OptimizerSection()
    public var schedule = ScheduleSection()
    public var evaluation = EvaluationSection()
    public var logging = LoggingSection()
    public var distributed = DistributedSection()
    public var checkpoint = CheckpointSection()
    public var kernels = KernelsSection()

    enum CodingKeys: String, CodingKey {
        case model, data, training, optimizer, schedule, evaluation, logging, distributed, checkpoint, kernels
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(ModelSection.self, forKey: .model)
        data = try c.decode(DataSection.self, forKey: .data)
        try c.read(&training, .training)
        try c.read(&optimizer, .optimizer)
        try c.read(&schedule, .schedule)
        try c.read(&evaluation, .evaluation)
        try c.read(&logging, .logging)
        try c.read(&distributed, .distributed)
        try c.read(&checkpoint, .checkpoint)
        try c.read(&kernels, .kernels)
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
        try readEarlierSpelling(&node, file: file)
        try resolveInitialization(&node, file: file)

        let config: LoomConfig
        do { config = try YAMLDecoder().decode(LoomConfig.self, from: node) } catch let error as DecodingError {
            throw ConfigError(decoding: error, file: file)
        }
        // Unknown keys: every key in the input must be one the decoded config writes back.
        let known = try Yams.compose(yaml: YAMLEncoder().encode(config, userInfo: [listEveryKey: true]))
        try rejectUnknownKeys(node, known: known ?? node, path: "", file: file)
        try config.validate(file: file)
        return config
    }

    /// Sets the value at a dotted key path, creating intermediate mappings.
    static func apply(override: String, to node: inout Node, file: String) throws {
        let path = override.prefix { $0 != "=" }.split(separator: ".").map(String.init)
        guard let eq = override.firstIndex(of: "="), !path.isEmpty else {
            throw ConfigError(file: "--set \(override)", key: nil, message: "expected key.path=value")
        }
        let valueText = String(override[override.index(after: eq)...])
        let value = (try? Yams.compose(yaml: valueText)).flatMap { $0 } ?? Node(valueText)
        func set(_ node: inout Node, _ path: ArraySlice<String>) throws {
            guard var mapping = node.mapping else {
                throw ConfigError(file: "--set \(override)", key: path.joined(separator: "."), message: "is not inside a mapping")
            }
            let key = path[path.startIndex]
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

    /// A model section in the spelling Loom read and wrote before `norm_placement`: `pre_norm:
    /// true|false`, and in a GPT's resolved config also the encoder-decoder's `encoder_layers` and
    /// `ffn_width` (0 = 4 × width), which a GPT never read. Rewritten in today's keys, so that run
    /// directories of that time still load.
    static func readEarlierSpelling(_ node: inout Node, file: String) throws {
        guard var root = node.mapping, var model = root["model"]?.mapping, let preNorm = model["pre_norm"] else { return }
        guard model["norm_placement"] == nil else {
            throw ConfigError(file: file, key: "model.pre_norm", message: "and model.norm_placement are both set; keep model.norm_placement (pre or post)")
        }
        guard let pre = preNorm.bool else { throw ConfigError(file: file, key: "model.pre_norm", message: "must be true or false") }
        model["pre_norm"] = nil
        if model["kind"]?.string == ModelKind.transformer.rawValue {
            model["norm_placement"] = Node((pre ? NormPlacement.pre : .post).rawValue)
            if model["ffn_width"]?.int == 0 { model["ffn_width"] = nil }
        } else {
            model["encoder_layers"] = nil
            model["ffn_width"] = nil
        }
        root["model"] = .mapping(model)
        node = .mapping(root)
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
        try Self.validate(m, fail)
        if t.batchSize % t.microBatchSize != 0 {
            throw fail("training.batch_size", "\(t.batchSize) is not a multiple of training.micro_batch_size = \(t.microBatchSize)")
        }
        if t.threads < 0 { throw fail("training.threads", "must be ≥ 0 (0 = all cores)") }
        if t.seed < 0 { throw fail("training.seed", "must be ≥ 0") }
        if data.corpus.isEmpty == data.shards.isEmpty {
            throw fail(data.corpus.isEmpty ? "data.corpus" : "data.shards",
                       "set exactly one of data.corpus (a text file) and data.shards (a directory from `loom tokenize`)")
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
        if !(schedule.plateauFactor > 0 && schedule.plateauFactor < 1) {
            throw fail("schedule.plateau_factor", "must be between 0 and 1, got \(schedule.plateauFactor)")
        }
        if schedule.plateauPatience < 0 { throw fail("schedule.plateau_patience", "must be ≥ 0") }
        if schedule.kind == .plateau && evaluation.interval == 0 {
            throw fail("schedule.kind", "plateau lowers the rate after validation passes, and evaluation.interval 0 runs none during training; set evaluation.interval > 0 or choose another schedule")
        }
        if checkpoint.interval < 0 { throw fail("checkpoint.interval", "must be ≥ 0 (0 = only at the end)") }
        if checkpoint.keep < 1 { throw fail("checkpoint.keep", "must be ≥ 1") }
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
        if !(distributed.timeoutSeconds >= 0) { throw fail("distributed.timeout_seconds", "must be ≥ 0 (0 = wait forever)") }
        if !(distributed.firstStepTimeoutSeconds >= 0) {
            throw fail("distributed.first_step_timeout_seconds", "must be ≥ 0 (0 = wait forever)")
        }
        if evaluation.interval < 0 {
            throw fail("evaluation.interval", "must be ≥ 0 (0 = no passes during training; evaluation.at_end decides the last step)")
        }
    }

    /// The model's keys beyond their being positive.
    static func validate(_ m: ModelSection, _ fail: (String, String) -> ConfigError) throws {
        if m.width % m.heads != 0 {
            throw fail("model.width", "\(m.width) is not divisible by model.heads = \(m.heads)")
        }
        if !(0..<1).contains(m.dropout) { throw fail("model.dropout", "must be in [0, 1), got \(m.dropout)") }
        if m.vocabularySize < 0 { throw fail("model.vocabulary_size", "must be ≥ 0 (0 = the tokenizer's)") }
        if !(m.shape.layerNormEpsilon > 0) { throw fail("model.layer_norm_epsilon", "must be positive") }
        if case let .bert(shape, masking) = m {
            if shape.ffnWidth <= 0 { throw fail("model.ffn_width", "must be positive (omit it for 4 × width)") }
            if shape.typeVocabularySize < 1 { throw fail("model.type_vocabulary_size", "must be ≥ 1 (BERT's is 2)") }
            if shape.contextLength < 3 { throw fail("model.context_length", "must be ≥ 3 ([CLS], a token, [SEP])") }
            if !(0..<1).contains(shape.attentionDropout) {
                throw fail("model.attention_dropout", "must be in [0, 1), got \(shape.attentionDropout)")
            }
            if let problem = masking.problem { throw fail("model.masking", problem) }
            return
        }
        guard case let .transformer(shape) = m else { return }
        if shape.encoderLayers <= 0 { throw fail("model.encoder_layers", "must be positive") }
        if shape.ffnWidth <= 0 { throw fail("model.ffn_width", "must be positive (omit it for 4 × width)") }
        if shape.width % 2 != 0 {
            throw fail("model.width", "\(shape.width) must be even (sin and cos halves of the position signal)")
        }
        if !(0..<1).contains(shape.attentionDropout) {
            throw fail("model.attention_dropout", "must be in [0, 1), got \(shape.attentionDropout)")
        }
    }

    /// The GPT's shape for a tokenizer of `vocabularySize` tokens (unless the config fixes one).
    public func gptConfig(vocabularySize: Int) throws -> GPTConfig {
        guard case var .gpt(shape) = model else { throw wrongKind(.gpt) }
        shape.vocabularySize = try resolvedVocabulary(tokenizer: vocabularySize)
        return shape
    }

    /// The encoder-decoder's shape for a tokenizer of `vocabularySize` tokens (unless the config fixes one).
    public func encoderDecoderConfig(vocabularySize: Int) throws -> EncoderDecoderConfig {
        guard case var .transformer(shape) = model else { throw wrongKind(.transformer) }
        shape.vocabularySize = try resolvedVocabulary(tokenizer: vocabularySize)
        return shape
    }

    /// BERT's shape for a tokenizer of `vocabularySize` tokens (unless the config fixes one) and its masking.
    public func bertConfig(vocabularySize: Int) throws -> (shape: BERTConfig, masking: MaskingPolicy) {
        guard case .bert(var shape, let masking) = model else { throw wrongKind(.bert) }
        shape.vocabularySize = try resolvedVocabulary(tokenizer: vocabularySize)
        return (shape, masking)
    }

    /// `model.vocabulary_size`, or the tokenizer's when it is 0; never fewer rows than the tokenizer has ids.
    func resolvedVocabulary(tokenizer: Int) throws -> Int {
        let rows = model.vocabularySize > 0 ? model.vocabularySize : tokenizer
        guard rows >= tokenizer else {
            throw ConfigError(file: "config", key: "model.vocabulary_size", message: "\(rows) is smaller than the tokenizer's \(tokenizer)")
        }
        return rows
    }

    func wrongKind(_ wanted: ModelKind) -> ConfigError {
        ConfigError(file: "config", key: "model.kind", message: "is \(model.kind.rawValue); this needs a \(wanted.rawValue) model")
    }

    /// The config as YAML (what a run directory stores as `config.yaml`): the keys of its model kind.
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }
}

extension ConfigError {
    init(decoding error: DecodingError, file: String) {
        let (key, message) = describe(error)
        self.init(file: file, key: key, message: message)
    }
}

// The config's types: every closed set decodes as its enum or names the key, the value and the
// choices; an absent key takes its property's default; the model section holds the keys of its
// kind only, and the encoder-decoder's shape is the same in a run config and in model-config.json.
import Testing
import Foundation
import Kernels
import Models
import Training

let transformerYAML = """
model: {kind: transformer, layers: 2, heads: 2, width: 16, context_length: 8}
data: {shards: shards}
training: {steps: 10, batch_size: 4, micro_batch_size: 2}
"""

@Suite struct ConfigSchemaTests {
    /// Each enum key with a value outside its set: the error names the file, the key, the value
    /// and every allowed value.
    @Test func everyClosedSetNamesItsChoices() throws {
        let cases: [(yaml: String, key: String, names: [String])] = [
            (minimalYAML, "model.kind", ModelKind.allCases.map(\.rawValue)),
            (transformerYAML, "model.norm_placement", NormPlacement.allCases.map(\.rawValue)),
            (minimalYAML, "training.thread_parallelism", ThreadParallelism.allCases.map(\.rawValue)),
            (minimalYAML, "training.precision", Precision.allCases.map(\.rawValue)),
            (minimalYAML, "schedule.kind", LearningRateSchedule.Kind.allCases.map(\.rawValue)),
            (minimalYAML, "kernels.gemm", GemmSelection.allCases.map(\.rawValue)),
        ]
        for (yaml, key, names) in cases {
            let e = configError(yaml, overrides: ["\(key)=nonsense"])
            #expect(e.hasPrefix("test.yaml: key '\(key)': must be ") && e.contains("got 'nonsense'"), "\(e)")
            for name in names { #expect(e.contains(name), "\(key): \(e) does not name \(name)") }
            for name in names {
                #expect(configError(yaml, overrides: ["\(key)=\(name)", "evaluation.interval=5"]) == "no error", "\(key)=\(name)")
            }
        }
    }

    /// A section that is present but empty decodes to the same values as an absent one: each
    /// default comes from one place.
    @Test func emptySectionsTakeTheDefaults() throws {
        let absent = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml")
        let empty = try LoomConfig.parse(yaml: minimalYAML + """

            optimizer: {}
            schedule: {}
            evaluation: {}
            logging: {}
            distributed: {}
            checkpoint: {}
            kernels: {}
            """, file: "test.yaml")
        #expect(empty == absent)
        // micro_batch_size defaults to batch_size, encoder_layers to layers, ffn_width to 4 × width.
        let t = try LoomConfig.parse(yaml: transformerYAML, file: "test.yaml", overrides: ["model.ffn_width=48"])
        #expect(configError(transformerYAML, overrides: ["training.micro_batch_size=x"]).contains("'training.micro_batch_size'"))
        let shape = try LoomConfig.parse(yaml: transformerYAML, file: "test.yaml").encoderDecoderConfig(vocabularySize: 30)
        #expect(shape.encoderLayers == 2 && shape.decoderLayers == 2 && shape.ffnWidth == 64 && shape.vocabularySize == 30)
        #expect(shape.normPlacement == .post && shape.attentionDropout == 0)
        #expect(try t.encoderDecoderConfig(vocabularySize: 30).ffnWidth == 48)
        let noMicro = try LoomConfig.parse(yaml: "model: {layers: 1, heads: 1, width: 4, context_length: 4}\ndata: {corpus: c}\ntraining: {batch_size: 6}", file: "t.yaml")
        #expect(noMicro.training.microBatchSize == 6)
    }

    /// The resolved config lists what means something for the model's kind: a GPT's has no
    /// encoder keys and no `vocabulary_size: 0`; an encoder-decoder's has all of its shape.
    @Test func resolvedConfigShowsTheKeysOfItsKind() throws {
        let gpt = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml").yaml()
        for key in ["encoder_layers", "ffn_width", "norm_placement", "attention_dropout", "vocabulary_size"] {
            #expect(!gpt.contains(key), "\(key) in\n\(gpt)")
        }
        #expect(gpt.contains("kind: gpt") && gpt.contains("context_length: 8"))
        let sized = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["model.vocabulary_size=50"])
        #expect(try sized.yaml().contains("vocabulary_size: 50"))
        #expect(try LoomConfig.parse(yaml: sized.yaml(), file: "resolved.yaml") == sized)
        // vocabulary_size 0 is still accepted (the tokenizer's), though not written back.
        #expect(configError(minimalYAML, overrides: ["model.vocabulary_size=0"]) == "no error")
        let t = try LoomConfig.parse(yaml: transformerYAML, file: "test.yaml", overrides: ["model.attention_dropout=0.25"])
        let text = try t.yaml()
        for key in ["kind: transformer", "encoder_layers: 2", "ffn_width: 64", "norm_placement: post", "attention_dropout:"] {
            #expect(text.contains(key), "\(key) not in\n\(text)")
        }
        #expect(try LoomConfig.parse(yaml: text, file: "resolved.yaml") == t)
        #expect(try t.encoderDecoderConfig(vocabularySize: 9).attentionDropout == 0.25)
        // Only the data paths that are set are written.
        #expect(!gpt.contains("shards") && !text.contains("corpus"))
    }

    /// Keys of the other kind are refused naming the key.
    @Test func keysOfAnotherKindAreRefused() {
        let e = configError(minimalYAML, overrides: ["model.encoder_layers=2"])
        #expect(e.contains("'model.encoder_layers': unknown key"), "\(e)")
        #expect(configError(minimalYAML, overrides: ["model.attention_dropout=0.1"]).contains("'model.attention_dropout': unknown key"))
        #expect(configError(minimalYAML, overrides: ["model.layer_norm_epsilon=0"]).contains("'model.layer_norm_epsilon'"))
        #expect(configError(transformerYAML, overrides: ["model.ffn_width=0"]).contains("'model.ffn_width'"))
        #expect(configError(transformerYAML, overrides: ["model.attention_dropout=1"]).contains("'model.attention_dropout'"))
        #expect(configError(transformerYAML, overrides: ["model.width=15", "model.heads=3"]).contains("'model.width': 15 must be even"))
    }

    /// `pre_norm: true|false` is the earlier spelling of `norm_placement`; a GPT's resolved config of
    /// that time (with the encoder-decoder's keys, which it did not read) still loads.
    @Test func theEarlierSpellingStillLoads() throws {
        let pre = try LoomConfig.parse(yaml: transformerYAML, file: "test.yaml", overrides: ["model.pre_norm=true", "model.ffn_width=0"])
        let shape = try pre.encoderDecoderConfig(vocabularySize: 9)
        #expect(shape.normPlacement == .pre && shape.ffnWidth == 64)
        #expect(try pre.yaml().contains("norm_placement: pre") && !pre.yaml().contains("pre_norm"))
        let both = configError(transformerYAML, overrides: ["model.pre_norm=true", "model.norm_placement=post"])
        #expect(both.contains("'model.pre_norm'") && both.contains("norm_placement"), "\(both)")
        #expect(configError(transformerYAML, overrides: ["model.pre_norm=maybe"]).contains("'model.pre_norm': must be true or false"))
        let earlierGPT = """
        model: {kind: gpt, layers: 2, heads: 2, width: 16, dropout: 1e-1, context_length: 8, vocabulary_size: 0,
                encoder_layers: 2, ffn_width: 0, pre_norm: false}
        data: {corpus: c.txt, shards: '', tokenizer: character, validation_shards: '', validation_fraction: 1e-1}
        """
        let gpt = try LoomConfig.parse(yaml: earlierGPT, file: "config.yaml")
        #expect(try gpt.gptConfig(vocabularySize: 30) == GPTConfig(vocabularySize: 30, contextLength: 8, layers: 2, heads: 2, width: 16, dropout: 0.1))
    }

    /// An override needs a key before its `=`.
    @Test func anOverrideNeedsAKey() {
        for bad in [".=1", "=1", "novalue"] {
            #expect(configError(minimalYAML, overrides: [bad]).contains("expected key.path=value"), "\(bad)")
        }
    }

    /// `data.tokenizer` is `character` or a file's path; an empty one names the key.
    @Test func tokenizerIsCharacterOrAFile() throws {
        #expect(try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml").data.tokenizer == .character)
        let file = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["data.tokenizer=tok.json"])
        #expect(file.data.tokenizer == .file("tok.json") && file.data.tokenizer.path == "tok.json")
        #expect(try LoomConfig.parse(yaml: file.yaml(), file: "resolved.yaml") == file)
        let e = configError(minimalYAML, overrides: ["data.tokenizer="])
        #expect(e.contains("'data.tokenizer': is empty"), "\(e)")
    }

    /// The shape asked of the wrong kind, or with fewer rows than the tokenizer, is refused.
    @Test func shapesOfTheWrongKindOrVocabularyAreRefused() throws {
        let gpt = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml")
        #expect { try gpt.encoderDecoderConfig(vocabularySize: 10) } throws: { "\($0)".contains("'model.kind'") }
        #expect(try gpt.gptConfig(vocabularySize: 10).vocabularySize == 10)
        let sized = try LoomConfig.parse(yaml: minimalYAML, file: "test.yaml", overrides: ["model.vocabulary_size=8"])
        #expect { try sized.gptConfig(vocabularySize: 10) } throws: { "\($0)".contains("'model.vocabulary_size': 8 is smaller") }
        #expect(try sized.gptConfig(vocabularySize: 5).vocabularySize == 8)
    }
}

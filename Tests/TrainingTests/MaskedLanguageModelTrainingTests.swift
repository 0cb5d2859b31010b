// BERT pre-training in process: the loss at initialisation near ln V at the masked positions, 1, 2
// and 4 ranks (threads) giving the same losses with the same masks, a bit-identical resume, the
// masked-token accuracy in the validation records, and the errors for a tokenizer without BERT's
// tokens and for a bad masking key.
import Testing
import Foundation
import Data
import Models
import Training
import Support
import TestSupport

/// A byte-level BPE of 300 tokens with BERT's special tokens, learned from the scratch corpus.
func bertTokenizer(_ dir: String) throws -> String {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    var trainer = BPETrainer(specials: specials)
    trainer.add(Array(try String(contentsOfFile: dir + "/corpus.txt", encoding: .utf8).utf8))
    let path = dir + "/bert-tokenizer.json"
    try trainer.train(vocabularySize: 300, specials: specials).serialized().write(to: URL(fileURLWithPath: path))
    return path
}

/// A 2-layer BERT on the scratch corpus with that tokenizer: context 16, batch 8 (one sequence per
/// micro-batch, so 1, 2 and 4 ranks divide it), dropout on, a loss logged at every step.
func tinyBERTConfig(_ dir: String, _ overrides: [String] = []) throws -> LoomConfig {
    let tokenizer = try bertTokenizer(dir)
    let yaml = """
    model: {kind: bert, layers: 2, heads: 2, width: 16, context_length: 16, dropout: 0.1, attention_dropout: 0.1}
    data: {corpus: \(dir)/corpus.txt, tokenizer: \(tokenizer)}
    training: {steps: 20, batch_size: 8, micro_batch_size: 1, seed: 5, threads: 1}
    optimizer: {learning_rate: 3.0e-3}
    schedule: {kind: cosine, warmup_steps: 2, minimum_learning_rate: 1.0e-4}
    evaluation: {interval: 10, batches: 4}
    logging: {interval: 1}
    checkpoint: {interval: 5, keep: 10}
    """
    ThreadPool.configure(threads: 1)
    return try LoomConfig.parse(yaml: yaml, file: "bert.yaml", overrides: overrides)
}

@Suite(.serialized) struct MaskedLanguageModelTrainingTests {
    func train(_ world: Int, _ config: LoomConfig, _ run: String, resume: ResumeRequest? = nil,
               stopAfter: Int? = nil) throws -> [TrainingSummary] {
        try trainOnThreadRanks(world, config, run, resume: resume, stopAfter: stopAfter)
    }

    @Test func theFirstLossIsNearLnVAtTheMaskedPositions() throws {
        let dir = try trainingScratch()
        let config = try tinyBERTConfig(dir, ["training.batch_size=32", "training.micro_batch_size=32"])
        let data = try PreparedData(config: config)
        let task = try MaskedLanguageModelTask(config: config, data: data, world: 1)
        task.model.initialize(seed: 5)
        let r = task.trainMicroBatch(step: 0, micro: 0, rank: 0, world: 1, scale: 1, dropoutKey: 1)
        let V = Double(task.bert.config.vocabularySize), loss = r.sum / Double(r.count)
        #expect(r.count == task.globalTokens(step: 0) && r.count == 32 * MaskingPolicy().chosenCount(candidates: 14))
        #expect(abs(loss - log(V)) / log(V) < 0.05, "initial loss \(loss) vs ln V \(log(V))")
    }

    @Test(arguments: [2, 4]) func ranksMatchOneRankWithTheSameMasks(ranks: Int) throws {
        let dir = try trainingScratch()
        let config = try tinyBERTConfig(dir)
        let one = try train(1, config, dir + "/one")
        let many = try train(ranks, config, dir + "/many")
        let difference = largestRelativeDifference(try stepLosses(dir + "/many"), try stepLosses(dir + "/one"))
        #expect(difference <= 1e-4, "\(ranks) ranks vs 1: largest relative loss difference \(difference)")
        #expect(try stepLosses(dir + "/one").count == 20)
        #expect(Set(many.map(\.parameterHash)).count == 1, "every rank holds the same parameters")
        #expect(abs(one[0].finalValidationLoss! - many[0].finalValidationLoss!) <= 1e-4 * one[0].finalValidationLoss!)
    }

    @Test func resumeIsBitIdenticalAndValidationReportsAccuracy() throws {
        let dir = try trainingScratch()
        let config = try tinyBERTConfig(dir)
        let straight = try train(1, config, dir + "/straight")
        _ = try train(1, config, dir + "/paused", stopAfter: 10)
        try FileManager.default.copyItem(atPath: dir + "/paused", toPath: dir + "/paused-2")
        let resumed = try train(1, config, dir + "/paused", resume: .latest)
        #expect(resumed[0].parameterHash == straight[0].parameterHash, "resumed: bit-identical final parameters")
        let a = try stepLosses(dir + "/straight"), b = try stepLosses(dir + "/paused")
        #expect((1...20).allSatisfy { a[$0] != nil && a[$0] == b[$0] }, "resumed: the same losses, bit for bit")
        // Resumed on 2 ranks: the same curve (sums in another order, so within rounding).
        _ = try train(2, config, dir + "/paused-2", resume: .latest)
        let c = try stepLosses(dir + "/paused-2")
        #expect((11...20).allSatisfy { c[$0] != nil && abs(a[$0]! - c[$0]!) <= 1e-4 * a[$0]! })
        // metrics.jsonl: validation records carry the masked-token accuracy, a fraction.
        let text = try String(contentsOfFile: dir + "/straight/metrics.jsonl", encoding: .utf8)
        let validations = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["val_loss"] != nil }
        #expect(validations.count == 2)
        #expect(validations.allSatisfy { ($0["val_accuracy"] as? Double).map { (0...1).contains($0) } ?? false })
        #expect(try String(contentsOfFile: dir + "/straight/config.yaml", encoding: .utf8).contains("kind: bert"))
    }

    @Test func badTokenizersAndMaskingAreNamed() throws {
        let dir = try trainingScratch()
        #expect {
            let config = try tinyBERTConfig(dir, ["data.tokenizer=character"])
            _ = try MaskedLanguageModelTask(config: config, data: try PreparedData(config: config), world: 1)
        } throws: { "\($0)".contains("data.tokenizer") && "\($0)".contains("[CLS]") }
        #expect { _ = try tinyBERTConfig(dir, ["model.masking.probability=1.5"]) } throws: {
            "\($0)".contains("model.masking") && "\($0)".contains("probability")
        }
        #expect { _ = try tinyBERTConfig(dir, ["model.masking.ratio=0.1"]) } throws: { "\($0)".contains("model.masking.ratio") }
    }
}

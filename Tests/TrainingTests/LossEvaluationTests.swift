// LossEvaluation in process: on a GPT trained here, the validation-window mode gives the val_loss
// that training wrote to metrics.jsonl; the strided windows score every token but the first exactly
// once with the context the stride promises (checked against one forward per token), whatever the
// batch; bits per byte count the scored tokens' bytes.
import Testing
import Foundation
import Distributed
import Data
import Kernels
import Models
import Training
import Support
import TestSupport

@Suite(.serialized) struct LossEvaluationTests {
    /// A finished tiny run (dropout on while training; evaluation has none) and its directory.
    func trainedRun(_ overrides: [String] = []) throws -> String {
        let dir = try trainingScratch()
        let config = try tinyRunConfig(dir, ["checkpoint.interval=0"] + overrides)
        let run = try TrainingRun(config: config, communicator: SingleProcessCommunicator(), directory: dir + "/run",
                                  resume: nil, progress: Progress(mode: .off))
        _ = try run.train()
        return dir + "/run"
    }

    func loggedValidationLosses(_ run: String) throws -> [(step: Int, loss: Double)] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            .compactMap { r in (r["val_loss"] as? Double).map { (r["step"] as! Int, $0) } }
    }

    /// metrics.jsonl prints val_loss with 9 significant digits and the windows run through the same
    /// model shape in the same order, so 1e-6 relative leaves room only for the print rounding (and
    /// for float sums in another order, should the thread split differ): any other window, batch
    /// or weight would miss it by far more (the losses of neighbouring steps differ by > 1e-3).
    @Test(arguments: [[String](), ["training.micro_batch_size=4", "evaluation.batches=3"]])
    func validationWindowsGiveTheLoggedValidationLoss(overrides: [String]) throws {
        let run = try trainedRun(overrides)
        let logged = try loggedValidationLosses(run)
        #expect(logged.count == 2 && logged.last!.step == 12)
        let config = try LoomConfig.load(path: run + "/config.yaml")
        let trained = try TrainedGPT(path: run, maxBatch: config.training.microBatchSize)
        var dataConfig = config
        dataConfig.data.tokenizer = .file(trained.tokenizerPath)
        let data = try PreparedData(config: dataConfig)
        let report = try LossEvaluation.validationWindows(model: trained.model, validation: data.corpus.validation,
                                                          seed: UInt64(config.training.seed), batches: config.evaluation.batches,
                                                          microBatch: config.training.microBatchSize, tokenizer: trained.tokenizer,
                                                          path: data.corpus.path)
        let final = logged.last!.loss
        #expect(abs(report.meanNLL - final) <= 1e-6 * final, "eval \(report.meanNLL) vs logged \(final)")
        #expect(abs(logged[0].loss - final) > 1e-3, "the two logged losses must differ for the check to mean anything")
        #expect(report.tokens == config.evaluation.batches * config.training.microBatchSize * config.model.contextLength)
        // A character tokenizer of ASCII text: one byte per token.
        #expect(report.bytes == report.tokens)
        #expect(abs(report.bitsPerByte - report.totalNLL / log(2.0) / Double(report.bytes)) < 1e-12)
    }

    /// Σ NLL with the context the stride definition gives each token, one forward per token:
    /// window k covers targets k·stride + 1 … min(k·stride + T, N − 1) and scores those past
    /// window k − 1's last, so token j is predicted from tokens k·stride ..< j of its window k.
    func reference(_ model: GPT, _ tokens: [Int32], stride: Int) -> Double {
        let T = model.config.contextLength, last = tokens.count - 1
        var total = 0.0
        for j in 1...last {
            var k = 0
            while min(k * stride + T, last) < j { k += 1 }
            let start = k * stride
            let input = Array(tokens[start..<j])
            let target = [Int32](repeating: -1, count: j - start - 1) + [tokens[j]]
            total += input.withUnsafeBufferPointer { i in
                target.withUnsafeBufferPointer { t in
                    model.forward(tokens: i.baseAddress!, targets: t.baseAddress!, batch: 1, time: j - start).sum
                }
            }
        }
        return total
    }

    @Test func stridedWindowsScoreEveryTokenOnceWithItsContext() throws {
        let run = try trainedRun()
        let trained = try TrainedGPT(path: run, maxBatch: 3)
        let text = try String(contentsOfFile: PathName.directory(of: run) + "/corpus.txt", encoding: .utf8)
        let tokens = Array(try trained.tokenizer.encode(text).prefix(83))     // 82 targets: 5 windows of 16 and one of 2
        let T = trained.model.config.contextLength
        for stride in [T, 5, 1] {
            let expected = reference(trained.model, tokens, stride: stride)
            for batch in [1, 3] {
                let r = try LossEvaluation.strided(model: trained.model, tokens: TokenStream(tokens), stride: stride, batch: batch,
                                                   tokenizer: trained.tokenizer)
                #expect(r.tokens == tokens.count - 1 && r.bytes == tokens.count - 1)
                #expect(abs(r.totalNLL - expected) <= 1e-5 * expected, "stride \(stride) batch \(batch): \(r.totalNLL) vs \(expected)")
                #expect(r.windows == (tokens.count - 1 - T + stride - 1) / stride + 1)
                #expect(abs(r.meanNLL - r.totalNLL / Double(r.tokens)) < 1e-12)
            }
        }
        #expect(throws: LossEvaluationError.self) {
            try LossEvaluation.strided(model: trained.model, tokens: TokenStream(tokens), stride: T + 1, batch: 1, tokenizer: trained.tokenizer)
        }
    }

    @Test func aMissingRunIsAReadersError() throws {
        let missing = scratchPath("no-run-")
        #expect(throws: RunNotFoundError.self) { try TrainedGPT(path: missing, maxBatch: 1) }
        #expect(throws: RunNotFoundError.self) { try RunDirectory(existing: missing) }
        do { _ = try RunDirectory(existing: missing) } catch {
            #expect("\(error)" == "no such run directory: \(missing); train one with `loom train` or pass a run directory")
        }
    }
}

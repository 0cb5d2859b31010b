// BERT: finite-difference gradient checks of the MLM head alone and of the whole model (post-LN
// and pre-LN, dropout on and off, with segments and a padded row), loss at initialisation,
// padding invariance, the head on predicted rows only, bf16 against fp32, the layout and its
// groups, allocation-free steps, and (when LOOM_BERT_CHECK_DIR is set) the run that
// tools/hf-check-bert-model.py compares with Hugging Face's BertForMaskedLM.
import Testing
import Foundation
import Kernels
@testable import Models
import TestSupport
import Support

/// A masked-LM batch: B rows of `lengths` valid tokens padded to T (`padding` gives the id of a
/// padded slot), segments 0 then 1 from the middle of each row, and a target (the original token)
/// at every position where `predicted(b, t)` holds.
struct MLMBatch {
    var tokens: [Int32], segments: [Int32], lengths: [Int32], targets: [Int32]
    let B: Int, T: Int
    var useSegments = true

    init(lengths: [Int], T: Int, vocabulary V: Int, seed: UInt64, padding: (Int) -> Int32 = { _ in 0 },
         predicted: (Int, Int) -> Bool) {
        B = lengths.count; self.T = T
        let key = CounterRandom.key(seed, 6)
        tokens = []; segments = []; targets = []
        self.lengths = lengths.map(Int32.init)
        for b in 0..<B {
            for t in 0..<T {
                let inside = t < lengths[b], i = b * T + t
                let token = inside ? Int32(CounterRandom.below(V, key: key, counter: UInt64(i))) : padding(i)
                tokens.append(token)
                segments.append(t >= lengths[b] / 2 ? 1 : 0)
                targets.append(inside && predicted(b, t) ? token : -1)
            }
        }
    }

    var predictedCount: Int { targets.filter { $0 >= 0 }.count }

    @discardableResult
    func forward(_ m: BERT, dropout: DropoutStream? = nil) -> (sum: Double, count: Int) {
        if useSegments {
            return m.forward(tokens: tokens, segments: segments, lengths: lengths, targets: targets, batch: B, time: T,
                             dropout: dropout)
        }
        return m.forward(tokens: tokens, segments: nil, lengths: lengths, targets: targets, batch: B, time: T, dropout: dropout)
    }
}

@Suite struct BERTTests {
    static func tiny(preNorm: Bool, dropout: Float = 0) -> BERTConfig {
        BERTConfig(vocabularySize: 13, contextLength: 6, layers: 2, heads: 2, width: 8, ffnWidth: 12, typeVocabularySize: 3,
                   dropout: dropout, attentionDropout: dropout / 2, normPlacement: preNorm ? .pre : .post)
    }

    static func noisyModel(_ config: BERTConfig, batch: Int, maxPredictions: Int? = nil, seed: UInt64,
                           precision: Precision = .fp32) -> BERT {
        let model = BERT(config: config, maxBatch: batch, maxPredictions: maxPredictions, precision: precision)
        model.initialize(seed: seed)
        // Perturb everything (LayerNorm scales and biases too) so every path carries signal.
        let noise = randomFloats(model.parameters.count, seed: seed + 1, scale: 0.3)
        for i in 0..<model.parameters.count { model.parameters.pointer[i] += noise[i] }
        model.parametersDidChange()
        return model
    }

    /// Every other valid position predicted, row 1 padded (4 of 5), row 2 short (2 of 5).
    static func smallBatch(seed: UInt64, padding: @escaping (Int) -> Int32 = { _ in 0 }) -> MLMBatch {
        MLMBatch(lengths: [5, 4, 2], T: 5, vocabulary: 13, seed: seed, padding: padding) { b, t in (b + t) % 2 == 0 }
    }

    @Test(arguments: [(false, Float(0), true), (false, Float(0.2), true), (true, Float(0), true), (true, Float(0.2), false)])
    func wholeModelGradientCheck(preNorm: Bool, dropout: Float, segments: Bool) {
        let model = Self.noisyModel(Self.tiny(preNorm: preNorm, dropout: dropout), batch: 3, maxPredictions: 8, seed: 1)
        var batch = Self.smallBatch(seed: 3)
        batch.useSegments = segments
        let stream = dropout > 0 ? DropoutStream(key: 99, firstExample: 2) : nil
        func loss() -> Double { batch.forward(model, dropout: stream).sum }
        let r0 = batch.forward(model, dropout: stream)
        #expect(r0.count == batch.predictedCount && r0.count == 6 && model.predictedCount == 6)
        model.backward(scale: 1)
        let analytic = Array(model.gradients.buffer)
        var indices: [Int] = []
        for t in model.layout.tensors { indices += sampleIndices(t.count, limit: 6, seed: UInt64(t.offset)).map { $0 + t.offset } }
        // The best of three steps per entry: the steepest entries (the head's dense weight behind the
        // final LayerNorm) leave 1e-2's truncation error near the bound.
        let r = kinkTolerantGradCheck(values: model.parameters.pointer, analytic: analytic, indices: indices, loss: loss)
        print("BERT gradient check (preNorm \(preNorm), dropout \(dropout), segments \(segments)): \(r)")
        #expect(r.worstRelativeError < 5e-2, "\(r)")
        // Every tensor receives gradient (no path is silently cut)…
        for t in model.layout.tensors {
            #expect(analytic[t.range].contains { $0 != 0 }, "\(t.name) has no gradient")
        }
        // …but position rows ≥ T and unused segment rows get none.
        let positions = model.layout.spec("bert.embeddings.position_embeddings.weight")!
        #expect(analytic[(positions.offset + 5 * 8)..<positions.range.upperBound].allSatisfy { $0 == 0 })
        let types = model.layout.spec("bert.embeddings.token_type_embeddings.weight")!
        #expect(analytic[(types.offset + (segments ? 2 : 1) * 8)..<types.range.upperBound].allSatisfy { $0 == 0 })
    }

    /// The head on its own: gathered rows → dense → GELU → LayerNorm → tied decoder + bias → loss,
    /// for its parameters, the embedding it is tied to and the encoder output.
    @Test func mlmHeadGradientCheck() {
        let bench = SublayerBench(), C = SublayerBench.C, V = 11, M = 5
        let config = BERTConfig(vocabularySize: V, contextLength: SublayerBench.T, layers: 1, heads: 2, width: C)
        let embedding = bench.builder.tensor("embedding", [V, C])
        let head = MLMHead(&bench.builder, config, predictions: M)
        bench.allocate(seed: 21)
        let s = bench.pass(dropout: 0), a = s.a
        let rows: [Int32] = [0, 2, 3, 5, 7], targets: [Int32] = [4, 10, 0, 4, 7]
        a.ints(head.rows, count: M).update(from: rows, count: M)
        a.ints(head.targets, count: M).update(from: targets, count: M)
        func loss() -> Double { head.forward(bench.x.p, count: M, embedding: embedding, vocabulary: V, s) }
        _ = loss()
        let dx = Buf(zeros: bench.rows * C)
        head.backward(dx: dx.p, count: M, embedding: embedding, vocabulary: V, scale: 1, s)
        // Rows that are not predicted get no gradient.
        for n in 0..<bench.rows where !rows.contains(Int32(n)) { #expect(dx.array[(n * C)..<((n + 1) * C)].allSatisfy { $0 == 0 }) }
        bench.expectGradients("MLM head", inputs: [(bench.x.p, dx.array)], loss: loss)
    }

    /// BERT's feed-forward (erf GELU fused into the Linear products) on its own, and inside a
    /// post-LN residual with dropout (SublayerGradientTests covers the tanh form).
    @Test func exactGELUFeedForwardGradientCheck() {
        for wrapped in [false, true] {
            let bench = SublayerBench(), C = SublayerBench.C
            let norm = bench.builder.norm("norm", width: C)
            let ffn = FeedForwardSublayer(&bench.builder, fc1: "fc1", fc2: "fc2", activation: .geluExact, rows: bench.rows,
                                          width: C, hidden: SublayerBench.F)
            let wrapper = ResidualSublayer(&bench.builder, norm: norm, placement: .post,
                                           site: MaskSite(layer: 0, BERT.DropoutSite.feedForwardOutput), rows: bench.rows,
                                           width: C, epsilon: 1e-12)
            bench.allocate(seed: wrapped ? 31 : 33)
            let s = bench.pass(dropout: wrapped ? 0.2 : 0), w = randomFloats(bench.rows * C, seed: 32)
            func loss() -> Double {
                weightedSum(wrapped ? wrapper.forward(bench.x.p, s) { ffn.forward($0, s) } : UnsafePointer(ffn.forward(bench.x.p, s)), w)
            }
            _ = loss()
            var dx = Buf(zeros: bench.rows * C).array
            if wrapped {
                var d = ResidualGradient(current: s.a[bench.scratch.gradient], spare: s.a[bench.scratch.spare])
                d.current.update(from: w, count: w.count)
                wrapper.backward(&d, x: bench.x.p, s) { branch, dinput, accumulate in
                    ffn.backward(branch: branch, dinput: dinput, accumulate: accumulate, inp: wrapper.input(bench.x.p, s.a), s)
                }
                dx = Array(UnsafeBufferPointer(start: d.current, count: w.count))
            } else {
                let d = Buf(zeros: bench.rows * C)
                ffn.backward(branch: w, dinput: d.p, accumulate: false, inp: bench.x.p, s)
                dx = d.array
            }
            bench.expectGradients("feed-forward geluExact\(wrapped ? " in a post-LN residual" : "")",
                                  inputs: [(bench.x.p, dx)], loss: loss)
        }
    }

    @Test(arguments: [false, true])
    func lossAtInitialisationIsLogVocabulary(preNorm: Bool) {
        let V = 1000
        let config = BERTConfig(vocabularySize: V, contextLength: 16, layers: 2, heads: 4, width: 32,
                                normPlacement: preNorm ? .pre : .post)
        let model = BERT(config: config, maxBatch: 4)
        model.initialize(seed: 7)
        let batch = MLMBatch(lengths: [16, 11, 16, 5], T: 16, vocabulary: V, seed: 8) { b, t in (3 * b + t) % 3 == 0 }
        let r = batch.forward(model)
        let mean = r.sum / Double(r.count)
        print("BERT loss at initialisation \(mean) over \(r.count) predictions, ln(\(V)) = \(log(Double(V)))")
        #expect(r.count == batch.predictedCount)
        #expect(abs(mean - log(Double(V))) < 0.02 * log(Double(V)))
    }

    /// Tokens and segments at positions ≥ length change neither the loss, the predicted logits nor
    /// any gradient; a valid token does.
    @Test(arguments: [false, true])
    func paddingDoesNotChangeValidOutputs(preNorm: Bool) {
        let model = Self.noisyModel(Self.tiny(preNorm: preNorm, dropout: 0.1), batch: 3, seed: 4)
        let stream = DropoutStream(key: 7, firstExample: 0)
        func run(_ batch: MLMBatch) -> (Double, [Float], [Float]) {
            VectorOps.zero(model.gradients.pointer, count: model.gradients.count)
            let loss = batch.forward(model, dropout: stream).sum
            let logits = Array(UnsafeBufferPointer(start: model.predictedLogits, count: model.predictedCount * 13))
            model.backward(scale: 0.5)
            return (loss, logits, Array(model.gradients.buffer))
        }
        let plain = Self.smallBatch(seed: 5)
        var noisy = Self.smallBatch(seed: 5) { i in Int32(1 + i % 12) }
        for b in 0..<3 { for t in Int(noisy.lengths[b])..<5 { noisy.segments[b * 5 + t] = 2 } }
        #expect(plain.tokens != noisy.tokens)
        let (l0, z0, g0) = run(plain), (l1, z1, g1) = run(noisy)
        #expect(l0 == l1)
        #expect(z0 == z1)
        #expect(g0 == g1)
        var changed = plain
        changed.tokens[5 + 1] = (changed.tokens[5 + 1] + 1) % 13
        #expect(run(changed).0 != l0)
    }

    /// The head's logits on a few predicted rows equal those rows of a forward predicting every
    /// position, in row-major order.
    @Test(arguments: [false, true])
    func predictedRowsMatchTheFullComputation(preNorm: Bool) {
        let V = 13
        let model = Self.noisyModel(Self.tiny(preNorm: preNorm), batch: 3, seed: 6)
        var full = Self.smallBatch(seed: 7)
        full.targets = full.tokens.enumerated().map { i, token in i % 5 < Int(full.lengths[i / 5]) ? token : -1 }
        full.forward(model)
        #expect(model.predictedCount == 11)
        let all = Array(UnsafeBufferPointer(start: model.predictedLogits, count: 11 * V))
        let fullRows = full.targets.indices.filter { full.targets[$0] >= 0 }
        let few = Self.smallBatch(seed: 7)
        few.forward(model)
        let fewRows = few.targets.indices.filter { few.targets[$0] >= 0 }
        #expect(model.predictedCount == fewRows.count && fewRows.count < fullRows.count)
        var worst: Float = 0
        for (m, n) in fewRows.enumerated() {
            let k = fullRows.firstIndex(of: n)!
            for v in 0..<V { worst = max(worst, abs(model.predictedLogits[m * V + v] - all[k * V + v])) }
        }
        #expect(worst <= 1e-5, "largest logit difference \(worst)")
    }

    @Test(arguments: [false, true])
    func bf16TracksFP32(preNorm: Bool) {
        ThreadPool.configure(threads: 2)
        let config = BERTConfig(vocabularySize: 17, contextLength: 6, layers: 2, heads: 2, width: 16, ffnWidth: 24,
                                normPlacement: preNorm ? .pre : .post)
        let fp32 = BERT(config: config, maxBatch: 3), bf16 = BERT(config: config, maxBatch: 3, precision: .bf16)
        #expect(bf16.precision == .bf16 && fp32.precision == .fp32)
        for m in [fp32, bf16] {
            m.initialize(seed: 11)
            let noise = randomFloats(m.parameters.count, seed: 12, scale: 0.1)
            for i in 0..<m.parameters.count { m.parameters.pointer[i] += noise[i] }
            m.parametersDidChange()
        }
        let batch = MLMBatch(lengths: [6, 4, 3], T: 6, vocabulary: 17, seed: 3) { b, t in (b + t) % 2 == 1 }
        let a = batch.forward(fp32)
        fp32.backward(scale: 0.1)
        let b = batch.forward(bf16)
        bf16.backward(scale: 0.1)
        #expect(a.count == b.count)
        #expect(a.sum != b.sum, "bf16 products must round")
        #expect(abs(a.sum - b.sum) / a.sum < 0.01, "loss fp32 \(a.sum) bf16 \(b.sum)")
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<fp32.gradients.count {
            let x = Double(fp32.gradients.pointer[i]), y = Double(bf16.gradients.pointer[i])
            ab += x * y; aa += x * x; bb += y * y
        }
        let cosine = ab / (aa * bb).squareRoot()
        #expect(cosine > 0.999, "gradient cosine \(cosine)")
        #expect(bf16.activationBytes > fp32.activationBytes + 2 * bf16.parameters.count - 1)
    }

    @Test func layoutGroupsAndNames() {
        for preNorm in [false, true] {
            let c = Self.tiny(preNorm: preNorm), layout = BERT.layout(c)
            #expect(layout.tensors.first?.name == "bert.embeddings.word_embeddings.weight")
            let head = preNorm ? "bert.encoder.final_layer_norm+cls.predictions" : "cls.predictions"
            #expect(layout.groups.map(\.name) == ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1", head])
            #expect(layout.groups.map(\.range.count).reduce(0, +) == layout.count)
            let shapes: [String: [Int]] = [
                "bert.embeddings.position_embeddings.weight": [6, 8], "bert.embeddings.token_type_embeddings.weight": [3, 8],
                "bert.embeddings.LayerNorm.bias": [8], "bert.encoder.layer.1.attention.self.qkv.weight": [8, 24],
                "bert.encoder.layer.1.attention.self.qkv.bias": [24], "bert.encoder.layer.0.attention.output.dense.weight": [8, 8],
                "bert.encoder.layer.0.attention.output.LayerNorm.weight": [8], "bert.encoder.layer.0.intermediate.dense.weight": [8, 12],
                "bert.encoder.layer.0.output.dense.weight": [12, 8], "bert.encoder.layer.1.output.LayerNorm.bias": [8],
                "cls.predictions.transform.dense.weight": [8, 8], "cls.predictions.transform.LayerNorm.weight": [8],
                "cls.predictions.bias": [13],
            ]
            for (name, shape) in shapes { #expect(layout.spec(name)?.shape == shape, "\(name)") }
            #expect((layout.spec("bert.encoder.final_layer_norm.weight") != nil) == preNorm)
            #expect(layout.tensors.count == 5 + 2 * 12 + 5 + (preNorm ? 2 : 0))
            for (name, range) in layout.groups.dropLast() {
                for t in layout.tensors where t.name.hasPrefix(name + ".") {
                    #expect(range.contains(t.offset) && t.range.upperBound <= range.upperBound, "\(t.name)")
                }
            }
            #expect(layout.spec("bert.embeddings.word_embeddings.weight")?.decay == true)
            #expect(layout.spec("bert.embeddings.position_embeddings.weight")?.decay == false)
            #expect(layout.tensors.filter(\.decay).allSatisfy { $0.shape.count == 2 })
            #expect(layout.tensors.filter { $0.shape.count == 1 }.allSatisfy { !$0.decay })
        }
        #expect(BERTConfig(vocabularySize: 10, contextLength: 8, layers: 1, heads: 3, width: 8).problem != nil)
        #expect(BERTConfig(vocabularySize: 10, contextLength: 8, layers: 1, heads: 2, width: 8).ffnWidth == 32)
        #expect(Self.tiny(preNorm: false).problem == nil)
    }

    @Test func initialisationIsBERTsAndDependsOnTheSeedAlone() {
        let config = BERTConfig(vocabularySize: 300, contextLength: 16, layers: 2, heads: 2, width: 32)
        let a = BERT(config: config, maxBatch: 1), b = BERT(config: config, maxBatch: 2)
        a.initialize(seed: 3); b.initialize(seed: 3)
        #expect(Array(a.parameters.buffer) == Array(b.parameters.buffer))
        for t in a.layout.tensors {
            let values = a.parameters.buffer[t.range]
            if t.shape.count == 2 {
                let std = (values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(t.count)).squareRoot()
                #expect(abs(std - 0.02) < 4 * 0.02 / Double(2 * t.count).squareRoot(), "\(t.name) std \(std)")
            } else {
                #expect(values.allSatisfy { $0 == (t.name.hasSuffix("LayerNorm.weight") ? 1 : 0) }, "\(t.name)")
            }
        }
        b.initialize(seed: 4)
        #expect(Array(a.parameters.buffer) != Array(b.parameters.buffer))
        #expect(a.kind == "bert")
    }

    /// Backward reports the head's group first, then the layers last to first, then the
    /// embeddings, each after its gradient is complete, with progress calls in between.
    @Test(arguments: [false, true])
    func groupsAreReportedInReverse(preNorm: Bool) {
        let model = Self.noisyModel(Self.tiny(preNorm: preNorm), batch: 3, seed: 9)
        Self.smallBatch(seed: 10).forward(model)
        var order: [Int] = [], progress = 0, snapshots: [Int: [Float]] = [:]
        model.onGroupReady = { g in
            order.append(g)
            snapshots[g] = Array(model.gradients.buffer[model.layout.groups[g].range])
        }
        model.onBackwardProgress = { progress += 1 }
        model.backward(scale: 1)
        #expect(order == [3, 2, 1, 0])
        #expect(progress > 6)
        for (g, values) in snapshots {
            #expect(values == Array(model.gradients.buffer[model.layout.groups[g].range]), "group \(g) changed after it was reported")
        }
    }

    /// Loom's BERT on the weights and inputs tools/hf-check-bert-model.py wrote into
    /// $LOOM_BERT_CHECK_DIR: `inputs.json` (the config, the tensors' names and shapes in layout
    /// order, batch, time, tokens, segments, lengths, targets) and `weights.bin` (float32,
    /// little-endian, the tensors in that order, Loom's (in, out) orientation). Writes
    /// `logits.bin` (float32, predicted rows × V, row-major order) and `result.json` (sum, count).
    @Test func huggingFaceCheckRun() throws {
        guard let directory = ProcessInfo.processInfo.environment["LOOM_BERT_CHECK_DIR"] else {
            print("BERT Hugging Face check skipped: LOOM_BERT_CHECK_DIR is not set (tools/hf-check-bert-model.py sets it)")
            return
        }
        let folder = URL(fileURLWithPath: directory)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("inputs.json")))
        let o = try #require(json as? [String: Any], "inputs.json is not a JSON object")
        func int(_ key: String) throws -> Int { try #require(o[key] as? Int, "inputs.json: \(key) is missing or not an integer") }
        func ints(_ key: String) throws -> [Int32] {
            try #require(o[key] as? [Int], "inputs.json: \(key) is missing or not a list of integers").map(Int32.init)
        }
        let epsilon = try #require(o["layer_norm_eps"] as? Double, "inputs.json: layer_norm_eps is missing")
        let config = BERTConfig(vocabularySize: try int("vocab_size"), contextLength: try int("max_position_embeddings"),
                                layers: try int("num_hidden_layers"), heads: try int("num_attention_heads"),
                                width: try int("hidden_size"), ffnWidth: try int("intermediate_size"),
                                typeVocabularySize: try int("type_vocab_size"),
                                normPlacement: (o["norm_placement"] as? String) == "pre" ? .pre : .post,
                                layerNormEpsilon: Float(epsilon))
        let B = try int("batch"), T = try int("time")
        let model = BERT(config: config, maxBatch: B)
        let names = try #require(o["tensors"] as? [[Any]], "inputs.json: tensors is missing")
        let expected = model.layout.tensors.map { [$0.name, $0.shape] as [Any] }
        #expect(names.count == expected.count, "inputs.json lists \(names.count) tensors; Loom's layout has \(expected.count)")
        for (i, t) in model.layout.tensors.enumerated() where i < names.count {
            #expect(names[i].first as? String == t.name && names[i].last as? [Int] == t.shape,
                    "inputs.json tensor \(i) is \(names[i]); Loom's layout has \(t.name) \(t.shape)")
        }
        let weights = try Data(contentsOf: folder.appendingPathComponent("weights.bin"))
        try #require(weights.count == model.parameters.bytes,
                     "weights.bin has \(weights.count) bytes; the layout needs \(model.parameters.bytes)")
        _ = weights.withUnsafeBytes { model.parameters.buffer.initialize(from: $0.bindMemory(to: Float.self)) }
        model.parametersDidChange()
        let result = model.forward(tokens: try ints("tokens"), segments: try ints("segments"), lengths: try ints("lengths"),
                                   targets: try ints("targets"), batch: B, time: T)
        let logits = Data(buffer: UnsafeBufferPointer(start: model.predictedLogits,
                                                      count: model.predictedCount * config.vocabularySize))
        try logits.write(to: folder.appendingPathComponent("logits.bin"))
        let summary = try JSONSerialization.data(withJSONObject: ["sum": result.sum, "count": result.count])
        try summary.write(to: folder.appendingPathComponent("result.json"))
        print("BERT Hugging Face check run: \(result.count) predicted rows, loss sum \(result.sum), written to \(directory)")
    }
}

/// Forward and backward allocate nothing after construction (the counter sees every thread, so a
/// test running alongside may add allocations: the best of several attempts must be zero).
@Suite struct BERTAllocationTests {
    @Test(arguments: [false, true])
    func stepsAreAllocationFree(preNorm: Bool) {
        let model = BERTTests.noisyModel(BERTTests.tiny(preNorm: preNorm, dropout: 0.1), batch: 3, seed: 2)
        let batch = BERTTests.smallBatch(seed: 3)
        let stream = DropoutStream(key: 1, firstExample: 0)
        var progress = 0, groups = 0
        model.onBackwardProgress = { progress += 1 }
        model.onGroupReady = { _ in groups += 1 }
        batch.tokens.withUnsafeBufferPointer { tokens in
            batch.segments.withUnsafeBufferPointer { segments in
                batch.lengths.withUnsafeBufferPointer { lengths in
                    batch.targets.withUnsafeBufferPointer { targets in
                        func step() {
                            model.forward(tokens: tokens.baseAddress!, segments: segments.baseAddress!, lengths: lengths.baseAddress!,
                                          targets: targets.baseAddress!, batch: 3, time: 5, dropout: stream)
                            model.backward(scale: 0.1)
                        }
                        step()
                        let fewest = fewestAllocations { step(); step() }
                        #expect(fewest == 0, "\(fewest) heap allocations in two training steps")
                    }
                }
            }
        }
        #expect(groups > 0 && progress > 0)
    }
}

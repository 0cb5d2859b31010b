// Translator: inference for the encoder-decoder — an incremental decoder (one position per step
// for many rows at once, cached self-attention keys/values, encoder-decoder keys/values computed
// once per sentence) and greedy and beam search on top of it, batched over sentences. It keeps no
// gradients and reads the parameters of an EncoderDecoder through its blocks' cached steps.
import Kernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cached decoding of several sentences × rows per sentence (beams) in lockstep. Row n belongs to
/// sentence n / rowsPerSentence. Shapes: N rows, P = maxLength cached positions, S source length.
public final class IncrementalDecoder {
    public let model: EncoderDecoder
    public let maxRows: Int
    /// Positions already in the cache (the same for every row).
    public private(set) var position = 0
    public private(set) var rows = 0, rowsPerSentence = 1, sentences = 0, sourceLength = 0
    private var selfCache: [UnsafeMutablePointer<Float>]    // per layer (N, P, 2C): keys then values
    private var spareCache: [UnsafeMutablePointer<Float>]   // the same, target of `reorder`
    private let crossKV: [UnsafeMutablePointer<Float>]      // per layer (sentences, S, 2C)
    private let logitsBuffer: UnsafeMutablePointer<Float>   // (N, V)
    private let tokens: UnsafeMutablePointer<Int32>         // (N)
    private let rowLengths: UnsafeMutablePointer<Int32>     // (N) source length of each row's sentence
    private let scratch: StepScratch
    private let storage: FlatBuffer

    /// Room for `maxRows` rows (sentences × beams) whose sentences fit the model's `maxBatch`.
    public init(model: EncoderDecoder, maxRows: Int) {
        self.model = model
        self.maxRows = maxRows
        let c = model.config, N = maxRows, P = c.maxLength, C = c.width, L = c.decoderLayers
        var b = ModelBuilder()
        let caches = (0..<L).map { _ in b.buffer(N * P * 2 * C) }, spares = (0..<L).map { _ in b.buffer(N * P * 2 * C) }
        let cross = (0..<L).map { _ in b.buffer(model.maxBatch * P * 2 * C) }
        let logits = b.buffer(N * c.vocabularySize), tokenSlot = b.buffer(N), lengthSlot = b.buffer(N)
        scratch = StepScratch(&b, rows: N, width: C, hidden: c.ffnWidth, heads: c.heads, positions: P)
        storage = FlatBuffer(count: b.activationCount)
        let a = Buffers(base: storage.pointer)
        selfCache = caches.map { a[$0] }; spareCache = spares.map { a[$0] }
        crossKV = cross.map { a[$0] }
        logitsBuffer = a[logits]
        tokens = a.ints(tokenSlot, count: N); rowLengths = a.ints(lengthSlot, count: N)
    }

    /// Encodes `sources` (each 1 … maxLength tokens), computes every decoder layer's
    /// encoder-decoder keys/values once per sentence, and empties the cache for
    /// `sources.count × rowsPerSentence` rows.
    public func start(sources: [[Int32]], rowsPerSentence k: Int) {
        let c = model.config, B = sources.count
        let S = sources.map(\.count).max() ?? 0
        precondition(B >= 1 && B <= model.maxBatch && B * k <= maxRows, "IncrementalDecoder: \(B) sentences × \(k) rows do not fit")
        precondition(sources.allSatisfy { !$0.isEmpty } && S <= c.maxLength, "IncrementalDecoder: source lengths must be 1…\(c.maxLength)")
        var padded = [Int32](repeating: 0, count: B * S), lengths = [Int32](repeating: 0, count: B)
        for (b, s) in sources.enumerated() {
            for (i, t) in s.enumerated() { padded[b * S + i] = t }
            lengths[b] = Int32(s.count)
            for r in 0..<k { rowLengths[b * k + r] = Int32(s.count) }
        }
        let memory = model.encode(source: padded, sourceLengths: lengths, batch: B, sourceLength: S)
        let p = Weights(base: model.parameters.pointer)
        for (block, cache) in zip(model.plan.decoder, crossKV) {
            block.crossAttention?.function.project(memory: memory, rows: B * S, into: cache, p, width: c.width)
        }
        sentences = B; rowsPerSentence = k; rows = B * k; sourceLength = S; position = 0
    }

    /// Feeds one token per row at the next position; returns the logits (rows, V) for the position
    /// after it (valid until the next call).
    public func step(_ input: [Int32]) -> UnsafePointer<Float> {
        let c = model.config, C = c.width, V = c.vocabularySize, N = rows, P = c.maxLength, plan = model.plan
        precondition(input.count == N, "IncrementalDecoder.step: \(input.count) tokens for \(N) rows")
        precondition(position < P, "IncrementalDecoder: all \(P) positions are used")
        let s = DecodeStep(p: Weights(base: model.parameters.pointer), a: Buffers(base: storage.pointer), scratch: scratch,
                           rows: N, position: position, positions: P, width: C, heads: c.heads, epsilon: c.layerNormEpsilon)
        tokens.update(from: input, count: N)
        SinusoidalEmbedding.forward(out: s.a[scratch.x], tokens: tokens, table: s.p[plan.embedding],
                                    signal: model.positionSignal.pointer, scale: model.embeddingScale, batch: N, time: 1,
                                    channels: C, firstPosition: position)
        for l in 0..<c.decoderLayers {
            let cross = CrossStep(keyValues: crossKV[l], sentences: sentences, rowsPerSentence: rowsPerSentence,
                                  memoryLength: sourceLength, lengths: rowLengths)
            plan.decoder[l].step(cache: selfCache[l], cross: cross, s)
        }
        let top = plan.decoderNorm.map { $0.step(s) } ?? UnsafePointer(s.a[scratch.x])
        Gemm.parallel(transB: true, m: N, n: V, k: C, a: top, lda: C, b: s.p[plan.embedding], ldb: C, beta: 0,
                      c: logitsBuffer, ldc: V)
        position += 1
        return UnsafePointer(logitsBuffer)
    }

    /// Row r continues the history of row `parents[r]` (a beam's parent), for every cached position.
    public func reorder(parents: [Int]) {
        let c = model.config, C = c.width, P = c.maxLength
        precondition(parents.count == rows)
        for l in 0..<c.decoderLayers {
            let from = selfCache[l], to = spareCache[l]
            for (r, parent) in parents.enumerated() {
                (to + r * P * 2 * C).update(from: from + parent * P * 2 * C, count: position * 2 * C)
            }
            selfCache[l] = to; spareCache[l] = from
        }
    }
}

/// How to search. Lengths count generated tokens including the end token.
public struct SearchOptions: Sendable {
    /// 1 = greedy.
    public var beamSize: Int
    /// GNMT length penalty lp(Y) = ((5 + |Y|)/6)^α; hypotheses compete on log P / lp.
    public var lengthPenalty: Float
    /// Output length limit: source length + this (and never past the model's maxLength).
    public var extraLength: Int
    public var begin: Int32, end: Int32
    public init(beamSize: Int = 4, lengthPenalty: Float = 0.6, extraLength: Int = 50, begin: Int32, end: Int32) {
        self.beamSize = beamSize; self.lengthPenalty = lengthPenalty; self.extraLength = extraLength
        self.begin = begin; self.end = end
    }
}

private struct Candidate { var score: Float; var beam: Int; var token: Int32 }

/// Greedy and beam search over an IncrementalDecoder, several sentences at a time.
public final class Translator {
    public let decoder: IncrementalDecoder
    public var model: EncoderDecoder { decoder.model }
    private var logProbs: [Float]

    /// Room for `maxSentences` sentences of `maxBeam` beams (the model needs maxBatch ≥ maxSentences).
    public init(model: EncoderDecoder, maxSentences: Int, maxBeam: Int) {
        precondition(model.maxBatch >= maxSentences, "Translator: the model's maxBatch \(model.maxBatch) < \(maxSentences) sentences")
        decoder = IncrementalDecoder(model: model, maxRows: maxSentences * maxBeam)
        logProbs = [Float](repeating: 0, count: model.config.vocabularySize)
    }

    /// GNMT's length penalty.
    public static func lengthPenalty(_ length: Int, alpha: Float) -> Float { pow((5 + Float(length)) / 6, alpha) }

    /// The most likely token at each step (no length penalty); the end token is not returned.
    public func greedy(_ sources: [[Int32]], options o: SearchOptions) -> [[Int32]] {
        decoder.start(sources: sources, rowsPerSentence: 1)
        let V = model.config.vocabularySize
        let limits = sources.map { min($0.count + o.extraLength, model.config.maxLength) }
        var out = [[Int32]](repeating: [], count: sources.count), done = [Bool](repeating: false, count: sources.count)
        var input = [Int32](repeating: o.begin, count: sources.count)
        for t in 0..<model.config.maxLength {
            let logits = decoder.step(input)
            for s in sources.indices where !done[s] {
                let row = logits + s * V
                var best = 0
                for v in 1..<V where row[v] > row[best] { best = v }
                // The last position allowed is the end token's, so a sentence at its limit stops.
                if Int32(best) == o.end || t + 1 >= limits[s] { done[s] = true } else { out[s].append(Int32(best)) }
                input[s] = Int32(best)
            }
            if !done.contains(false) { break }
        }
        return out
    }

    /// Beam search: each step extends every live beam, keeps the 2k best candidates per sentence;
    /// an end token among the k best finishes that hypothesis with score log P / lp(|Y|); the other
    /// candidates (best first) fill the k beams. A sentence stops when k hypotheses have finished
    /// (or at its length limit, where live beams are finished with the end token's probability).
    /// Returns each sentence's best finished hypothesis without the end token. With k = 1 this is
    /// greedy search.
    public func beam(_ sources: [[Int32]], options o: SearchOptions) -> [[Int32]] {
        let k = max(o.beamSize, 1), B = sources.count
        decoder.start(sources: sources, rowsPerSentence: k)
        let limits = sources.map { min($0.count + o.extraLength, model.config.maxLength) }
        var scores = [Float](repeating: -.infinity, count: B * k)
        for s in 0..<B { scores[s * k] = 0 }                   // one live hypothesis to start with
        var histories = [[Int32]](repeating: [], count: B * k)
        var finished = [[(tokens: [Int32], score: Float)]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        var input = [Int32](repeating: o.begin, count: B * k)
        var parents = Array(0..<(B * k))
        for t in 0..<model.config.maxLength {
            let logits = decoder.step(input)
            var nextScores = scores, nextHistories = histories
            for s in 0..<B where !done[s] {
                let atLimit = t + 1 >= limits[s]
                var candidates = extensions(of: s, beams: k, logits: logits, scores: scores, histories: histories,
                                            atLimit: atLimit, step: t, options: o, finished: &finished[s])
                if atLimit { done[s] = true; continue }
                candidates.sort { $0.score > $1.score || ($0.score == $1.score && ($0.beam, $0.token) < ($1.beam, $1.token)) }
                var filled = 0
                for (rank, cand) in candidates.prefix(2 * k).enumerated() {
                    let parent = s * k + cand.beam
                    if cand.token == o.end {
                        if rank < k {
                            finished[s].append((histories[parent], cand.score / Self.lengthPenalty(t + 1, alpha: o.lengthPenalty)))
                        }
                        continue
                    }
                    if filled < k {
                        let row = s * k + filled
                        parents[row] = parent
                        nextScores[row] = cand.score
                        nextHistories[row] = histories[parent] + [cand.token]
                        input[row] = cand.token
                        filled += 1
                    }
                }
                for b in filled..<k { nextScores[s * k + b] = -.infinity; parents[s * k + b] = s * k; input[s * k + b] = o.end }
                if finished[s].count >= k { done[s] = true }
            }
            for s in 0..<B where done[s] {
                for b in 0..<k { parents[s * k + b] = s * k + b; input[s * k + b] = o.end }
            }
            if !done.contains(false) { break }
            scores = nextScores; histories = nextHistories
            decoder.reorder(parents: parents)
        }
        return finished.map { hyps in
            var best = hyps.first
            for h in hyps.dropFirst() where h.score > best!.score { best = h }
            return best?.tokens ?? []
        }
    }

    /// The 2k best extensions of each live beam of sentence s (rows s·k ..< (s+1)·k); at the
    /// sentence's length limit, finishes every live beam with the end token's probability instead.
    private func extensions(of s: Int, beams k: Int, logits: UnsafePointer<Float>, scores: [Float],
                            histories: [[Int32]], atLimit: Bool, step t: Int, options o: SearchOptions,
                            finished: inout [(tokens: [Int32], score: Float)]) -> [Candidate] {
        let V = model.config.vocabularySize
        var candidates: [Candidate] = []
        candidates.reserveCapacity(2 * k * k)
        for b in 0..<k where scores[s * k + b] > -.infinity {
            let row = s * k + b
            logSoftmax(logits + row * V, count: V)
            if atLimit {
                finished.append((histories[row], (scores[row] + logProbs[Int(o.end)]) / Self.lengthPenalty(t + 1, alpha: o.lengthPenalty)))
                continue
            }
            top(2 * k, beam: b, base: scores[row], into: &candidates)
        }
        return candidates
    }

    /// logProbs ← log softmax of one logits row.
    private func logSoftmax(_ row: UnsafePointer<Float>, count V: Int) {
        let m = Softmax.maximum(row, count: V)
        var sum: Double = 0
        for v in 0..<V { sum += Double(exp(row[v] - m)) }
        let lse = m + Float(log(sum))
        for v in 0..<V { logProbs[v] = row[v] - lse }
    }

    /// Appends the n best (base + log p, token) of `logProbs` for beam b (ties: smaller id first).
    private func top(_ n: Int, beam b: Int, base: Float, into candidates: inout [Candidate]) {
        var best: [(Float, Int32)] = []
        best.reserveCapacity(n + 1)
        for v in 0..<logProbs.count {
            let lp = logProbs[v]
            if best.count == n, lp <= best[n - 1].0 { continue }
            var i = best.count
            while i > 0 && best[i - 1].0 < lp { i -= 1 }
            best.insert((lp, Int32(v)), at: i)
            if best.count > n { best.removeLast() }
        }
        for (lp, v) in best { candidates.append(Candidate(score: base + lp, beam: b, token: v)) }
    }
}

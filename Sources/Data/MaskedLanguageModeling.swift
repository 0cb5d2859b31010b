// MaskedLanguageModeling: BERT's pre-training inputs — `[CLS] window [SEP]` sequences packed from a
// token stream, with 15 % of their non-special tokens chosen for prediction (of which 80 % become
// [MASK], 10 % a random token, 10 % stay) — drawn by counter-based randomness keyed by (seed,
// purpose, step, example), so that 1, 2 or 4 ranks build identical sequences and masks and a
// resumed run continues exactly.
//
// Shape legend: B sequences, T positions (the model's context), V the tokenizer's vocabulary.
import Support

/// How many tokens are chosen and what becomes of them (BERT: 0.15, 0.8, 0.1).
public struct MaskingPolicy: Equatable, Sendable {
    /// Share of a sequence's non-special tokens chosen for prediction.
    public var probability = 0.15
    /// Share of the chosen tokens replaced by [MASK] in the input.
    public var replaceWithMask = 0.8
    /// Share of the chosen tokens replaced by a random token; the rest stay as they are.
    public var replaceWithRandom = 0.1

    public init(probability: Double = 0.15, replaceWithMask: Double = 0.8, replaceWithRandom: Double = 0.1) {
        self.probability = probability; self.replaceWithMask = replaceWithMask; self.replaceWithRandom = replaceWithRandom
    }

    /// Why the policy cannot work, or nil.
    public var problem: String? {
        if !(probability > 0 && probability <= 1) { return "probability must be in (0, 1], got \(probability)" }
        if !(replaceWithMask >= 0 && replaceWithRandom >= 0 && replaceWithMask + replaceWithRandom <= 1) {
            return "replace_with_mask and replace_with_random must be ≥ 0 and sum to at most 1, got \(replaceWithMask) and \(replaceWithRandom)"
        }
        return nil
    }

    /// Positions chosen among `n` candidates: max(1, round(p·n)), 0 when there are none (as
    /// BERT's create_pretraining_data.py).
    @inline(__always)
    public func chosenCount(candidates n: Int) -> Int {
        n == 0 ? 0 : max(1, min(n, Int((probability * Double(n)).rounded())))
    }

    /// Most positions a sequence of `time` positions can have chosen ([CLS] and [SEP] never are).
    public func maximumChosen(time: Int) -> Int { chosenCount(candidates: max(time - 2, 0)) }
}

/// The tokenizer lacks a token BERT's inputs need.
public struct MaskedLanguageModelError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The special tokens of BERT's inputs, by id, and which ids the masking must leave alone.
public struct MaskedLanguageModelTokens: Sendable {
    public let classification, separator, mask, padding: Int32   // [CLS] [SEP] [MASK] [PAD] (0 without one)
    /// The tokenizer's ids (random replacements are drawn below it).
    public let vocabularySize: Int
    /// (V) true for special tokens: never chosen, never drawn as a random replacement.
    private let special: [Bool]
    /// (V) true for tokens that end a document in a stream (`<|endoftext|>`, [SEP]): they become [SEP].
    private let documentEnd: [Bool]

    /// Names every special token a tokenizer may hold; the ones it has are excluded from masking.
    static let specialNames = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>", "<s>", "</s>", "<pad>",
                               "<unk>", "<mask>"]

    /// The ids of `tokenizer`'s [CLS], [SEP] and [MASK] (required) and [PAD] (optional).
    public init(tokenizer: Tokenizer) throws {
        let missing = ["[CLS]", "[SEP]", "[MASK]"].filter { tokenizer.specialTokenID($0) == nil }
        guard missing.isEmpty else {
            throw MaskedLanguageModelError(message: "the tokenizer has no \(missing.joined(separator: ", ")) token(s), which BERT's inputs need; train one with `loom tokenizer train --kind wordpiece`, or a byte-level BPE with --special '[CLS]' --special '[SEP]' --special '[MASK]' --special '[PAD]'")
        }
        classification = tokenizer.specialTokenID("[CLS]")!
        separator = tokenizer.specialTokenID("[SEP]")!
        mask = tokenizer.specialTokenID("[MASK]")!
        padding = tokenizer.specialTokenID("[PAD]") ?? 0
        vocabularySize = tokenizer.vocabularySize
        var special = [Bool](repeating: false, count: vocabularySize)
        var end = special
        for name in Self.specialNames {
            if let id = tokenizer.specialTokenID(name), Int(id) < vocabularySize { special[Int(id)] = true }
        }
        for name in ["[SEP]", "<|endoftext|>"] {
            if let id = tokenizer.specialTokenID(name), Int(id) < vocabularySize { end[Int(id)] = true }
        }
        self.special = special; documentEnd = end
    }

    @inline(__always) public func isSpecial(_ id: Int32) -> Bool { id < 0 || Int(id) >= special.count || special[Int(id)] }
    @inline(__always) func endsDocument(_ id: Int32) -> Bool { id >= 0 && Int(id) < documentEnd.count && documentEnd[Int(id)] }
    /// A stream token that may be chosen: neither special nor a document end (which becomes [SEP]).
    @inline(__always) func isCandidate(_ id: Int32) -> Bool { !isSpecial(id) && !endsDocument(id) }
}

/// Draws BERT's training sequences from a token stream: example e of step s is `[CLS] w [SEP]`
/// with w the T − 2 tokens at a random offset (document ends inside it become [SEP]), and its
/// chosen positions masked, all keyed by (seed, purpose, step, e) — the same sequence and mask
/// whichever rank or micro-step draws it.
public final class MaskedSequenceSampler {
    public let tokens: TokenStream
    public let time: Int
    public let seed: UInt64, purpose: UInt64
    public let policy: MaskingPolicy
    public let specials: MaskedLanguageModelTokens
    /// (T) scratch for choosing positions: a random key in the high bits, the position in the low 16.
    private let order: UnsafeMutablePointer<UInt64>

    public init(tokens: TokenStream, time: Int, seed: UInt64, purpose: UInt64, policy: MaskingPolicy,
                specials: MaskedLanguageModelTokens, path: String, split: String) throws {
        precondition(time >= 3 && time < 1 << 16, "MaskedSequenceSampler: context must be in 3..<65536")
        guard tokens.count >= time - 2 else {
            throw CorpusError.tooSmall(path: path, split: split, tokens: tokens.count, needed: time - 2)
        }
        self.tokens = tokens; self.time = time; self.seed = seed; self.purpose = purpose
        self.policy = policy; self.specials = specials
        order = .allocate(capacity: time)
    }

    deinit { order.deallocate() }

    @inline(__always) private func key(step: Int, example: Int) -> UInt64 {
        CounterRandom.key(seed, purpose, UInt64(step), UInt64(example))
    }

    /// Where example `example`'s window starts in the stream.
    @inline(__always) private func start(_ key: UInt64) -> Int {
        CounterRandom.below(tokens.count - (time - 2) + 1, key: key, counter: 0)
    }

    /// Writes example (step, example)'s unmasked sequence (T) into `sequence`; returns how many of its
    /// positions are candidates (non-special tokens).
    @discardableResult
    private func sequence(_ sequence: UnsafeMutablePointer<Int32>, key: UInt64) -> Int {
        let T = time, s = start(key)
        sequence[0] = specials.classification
        tokens.copy(from: s, count: T - 2, into: sequence + 1)
        sequence[T - 1] = specials.separator
        var candidates = 0
        for i in 1..<(T - 1) {
            if specials.isCandidate(sequence[i]) { candidates += 1 }
            if specials.endsDocument(sequence[i]) { sequence[i] = specials.separator }
        }
        return candidates
    }

    /// Positions example (step, example) predicts (the loss terms it adds), without building it.
    public func predictionCount(step: Int, example: Int) -> Int {
        let k = key(step: step, example: example), s = start(k)
        var candidates = 0
        for i in 0..<(time - 2) where specials.isCandidate(tokens[s + i]) { candidates += 1 }
        return policy.chosenCount(candidates: candidates)
    }

    /// Fills inputs (B,T) with examples firstExample ..< firstExample + B of `step`, masked;
    /// targets (B,T) with the original token at chosen positions and −1 elsewhere; lengths (B) with
    /// T. Returns the number of chosen positions.
    @discardableResult
    public func fill(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>,
                     lengths: UnsafeMutablePointer<Int32>, batch B: Int, step: Int, firstExample: Int) -> Int {
        let T = time
        var chosenTotal = 0
        for b in 0..<B {
            let k = key(step: step, example: firstExample + b)
            let x = inputs + b * T, y = targets + b * T
            let candidates = sequence(x, key: k)
            lengths[b] = Int32(T)
            y.update(repeating: -1, count: T)
            let chosen = policy.chosenCount(candidates: candidates)
            chosenTotal += chosen
            guard chosen > 0 else { continue }
            // The `chosen` candidates with the smallest random keys.
            var n = 0
            for i in 1..<(T - 1) where !specials.isSpecial(x[i]) {
                order[n] = (CounterRandom.bits(key: k, counter: UInt64(1 + i)) & ~0xFFFF) | UInt64(i); n += 1
            }
            Self.insertionSort(order, count: n)
            for j in 0..<chosen {
                let i = Int(order[j] & 0xFFFF)
                y[i] = x[i]
                let r = Double(CounterRandom.uniform(key: k, counter: UInt64(T + 1 + i)))
                if r < policy.replaceWithMask {
                    x[i] = specials.mask
                } else if r < policy.replaceWithMask + policy.replaceWithRandom {
                    x[i] = randomToken(key: k, position: i)
                }
            }
        }
        return chosenTotal
    }

    /// Sorts `count` keys in place, allocating nothing (the step loop runs it per sequence; T is small).
    static func insertionSort(_ keys: UnsafeMutablePointer<UInt64>, count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let key = keys[i]
            var j = i
            while j > 0 && keys[j - 1] > key { keys[j] = keys[j - 1]; j -= 1 }
            keys[j] = key
        }
    }

    /// A uniformly random non-special token for position `position` (redrawn while special).
    private func randomToken(key: UInt64, position: Int) -> Int32 {
        let V = specials.vocabularySize
        for attempt in 0..<64 {
            let id = Int32(CounterRandom.below(V, key: key, counter: UInt64((2 + attempt) * time + 1 + position)))
            if !specials.isSpecial(id) { return id }
        }
        return specials.mask
    }
}

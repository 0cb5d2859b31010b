// ParameterLayout: the ordered table of named tensors inside one flat parameter buffer (and the
// gradient and optimizer buffers that share it); the values live in a FlatBuffer.

/// One tensor: its name (Hugging Face GPT-2 names), shape, offset in the flat buffer, and whether
/// AdamW decays it (matrices that multiply activations; not biases, LayerNorm or positions).
public struct TensorSpec: Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public let decay: Bool
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// Tensors in order, each contiguous; `groups` are the contiguous ranges that belong together
/// (embeddings, each block, the final norm) and become gradient buckets for all-reduce.
public struct ParameterLayout: Sendable {
    public private(set) var tensors: [TensorSpec] = []
    public private(set) var groups: [(name: String, range: Range<Int>)] = []
    public private(set) var count = 0
    private var groupStart = 0

    public init() {}

    /// Appends a tensor; returns its offset.
    @discardableResult
    public mutating func add(_ name: String, _ shape: [Int], decay: Bool = false) -> Int {
        let spec = TensorSpec(name: name, shape: shape, offset: count, decay: decay)
        tensors.append(spec)
        count += spec.count
        return spec.offset
    }

    /// Closes the group of tensors added since the previous call.
    public mutating func endGroup(_ name: String) {
        groups.append((name, groupStart..<count))
        groupStart = count
    }

    public func spec(_ name: String) -> TensorSpec? { tensors.first { $0.name == name } }
}

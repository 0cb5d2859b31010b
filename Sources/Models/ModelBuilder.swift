// ModelBuilder: the one place a model declares what it holds — each tensor (name, shape, decay) in
// the flat parameter buffer and each activation or scratch buffer in one activation allocation —
// handing back named handles that the sublayers keep (the values live in FlatBuffers).
import Kernels

/// A tensor of the flat parameter buffer; the gradient buffer has the same layout, so one handle
/// reads both.
struct Tensor { let offset: Int }

/// A weight and its bias: a Linear's (in, out) and (out), or a LayerNorm's (C) and (C).
struct Affine { let weight, bias: Tensor }

/// A buffer inside a model's activation allocation.
struct Slot { let offset: Int }

/// A parameter-shaped buffer (the parameters or their gradients) read through handles.
struct Weights {
    let base: UnsafeMutablePointer<Float>
    @inline(__always) subscript(_ t: Tensor) -> UnsafeMutablePointer<Float> { base + t.offset }
}

/// An activation allocation read through handles.
struct Buffers {
    let base: UnsafeMutablePointer<Float>
    @inline(__always) subscript(_ s: Slot) -> UnsafeMutablePointer<Float> { base + s.offset }
    @inline(__always) subscript(optional s: Slot?) -> UnsafeMutablePointer<Float>? { s.map { base + $0.offset } }
    /// A slot that holds bf16 values (`ModelBuilder.bf16Buffer`), when the model has it.
    func bf16(_ s: Slot?) -> UnsafeMutablePointer<UInt16>? {
        s.map { UnsafeMutableRawPointer(base + $0.offset).assumingMemoryBound(to: UInt16.self) }
    }
    /// A slot that holds token ids (Int32 and Float have the same size).
    func ints(_ s: Slot, count: Int) -> UnsafeMutablePointer<Int32> {
        UnsafeMutableRawPointer(base + s.offset).bindMemory(to: Int32.self, capacity: count)
    }
}

/// Collects a model's parameter layout and activation plan in one pass: sublayers call it from
/// their initialisers, in the order their tensors sit in the flat buffer.
struct ModelBuilder {
    /// How the model's matrix products run: a bf16 model also keeps bf16 copies of the activations
    /// that several products read (`bf16Buffer`).
    let precision: Precision
    private(set) var layout = ParameterLayout()
    /// Floats the activation allocation needs so far.
    private(set) var activationCount = 0

    /// A parameter tensor; `decay` for matrices that multiply activations.
    mutating func tensor(_ name: String, _ shape: [Int], decay: Bool = false) -> Tensor {
        Tensor(offset: layout.add(name, shape, decay: decay))
    }
    /// `name.weight` (inputs, outputs), decayed, and `name.bias` (outputs).
    mutating func linear(_ name: String, inputs: Int, outputs: Int) -> Affine {
        Affine(weight: tensor(name + ".weight", [inputs, outputs], decay: true), bias: tensor(name + ".bias", [outputs]))
    }
    /// A LayerNorm's `name.weight` and `name.bias`, (width) each.
    mutating func norm(_ name: String, width: Int) -> Affine {
        Affine(weight: tensor(name + ".weight", [width]), bias: tensor(name + ".bias", [width]))
    }
    /// Closes the group of tensors declared since the previous group (an all-reduce bucket).
    mutating func endGroup(_ name: String) { layout.endGroup(name) }

    init(precision: Precision = .fp32) { self.precision = precision }

    /// A buffer of `count` bf16 values (half as many floats) in a bf16 model; nil in fp32.
    mutating func bf16Buffer(_ count: Int) -> Slot? { precision == .bf16 ? buffer((count + 1) / 2) : nil }

    /// An activation or scratch buffer of `count` floats, 64-byte aligned.
    mutating func buffer(_ count: Int) -> Slot {
        defer { activationCount += (count + 15) / 16 * 16 }
        return Slot(offset: activationCount)
    }
}

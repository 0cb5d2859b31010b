// TensorMapping: copies tensors from a buffer in Loom's layout into one in another library's layout
// (the Hugging Face exports): a tensor as it is, or a linear layer's (in, width) weight — a column
// block of a fused projection — transposed to PyTorch's [out, in], with its bias.
import Models

/// From `source` (Loom's `loom` layout) into `target` (the `layout` being written).
struct TensorMapping {
    let target: UnsafeMutablePointer<Float>, layout: ParameterLayout
    let source: UnsafePointer<Float>, loom: ParameterLayout
    /// Names the exporter in the messages of a broken mapping (a programming error).
    let who: String

    func spec(_ l: ParameterLayout, _ name: String) -> TensorSpec {
        guard let s = l.spec(name) else { preconditionFailure("\(who): no tensor \(name)") }
        return s
    }

    /// `to` ← `from` (the same name when nil), element for element.
    func copy(_ to: String, _ from: String? = nil) {
        let t = spec(layout, to), f = spec(loom, from ?? to)
        precondition(t.count == f.count, "\(who): \(to) and \(from ?? to) differ in size")
        (target + t.offset).update(from: source + f.offset, count: t.count)
    }

    /// The [out, in] weight `to.weight` ← columns first ..< first + out of Loom's (in, width)
    /// `from.weight`; `to.bias` ← the same block of `from.bias`.
    func linear(_ to: String, _ from: String? = nil, columns first: Int = 0) {
        let from = from ?? to
        let w = spec(layout, to + ".weight"), b = spec(layout, to + ".bias")
        let fw = spec(loom, from + ".weight"), fb = spec(loom, from + ".bias")
        let outputs = w.shape[0], inputs = w.shape[1], width = fw.shape[1]
        precondition(fw.shape[0] == inputs && first + outputs <= width, "\(who): \(from) does not fit \(to)")
        let dst = target + w.offset, src = source + fw.offset
        for o in 0..<outputs { for i in 0..<inputs { dst[o * inputs + i] = src[i * width + first + o] } }
        (target + b.offset).update(from: source + fb.offset + first, count: outputs)
    }
}

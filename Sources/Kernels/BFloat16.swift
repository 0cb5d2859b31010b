// BFloat16: the bf16 number format of mixed-precision training (fp32's sign, exponent and top 7
// mantissa bits), its conversions, the bf16 copy of a model's weights and the scratch that
// holds activations converted for one matrix product. The bf16 products themselves are
// Gemm.serialBF16 / parallelBF16.
import CVectorKernels
import Support

/// How a model's matrix products run. `bf16`: bf16 weights and activations in, fp32 accumulation
/// and output; the parameters, gradients, optimizer state, LayerNorm, softmax, GELU, residuals
/// and the loss stay fp32.
public enum Precision: String, Codable, Sendable, CaseIterable {
    case fp32, bf16

    /// Why `bf16` cannot run on `cpu`, or nil when it can: the products need AVX512_BF16 (or AMX).
    public static func bf16Unsupported(on cpu: CPUFeatures) -> String? {
        if cpu.has(.avx512_bf16) || cpu.has(.amx_bf16, .amx_tile) { return nil }
        let name = cpu.brand.isEmpty ? "this CPU" : "this CPU (\(cpu.brand), \(cpu.vectorLevel))"
        return "bf16 matrix products need AVX512_BF16 or AMX-BF16 and \(name) has neither; use fp32"
    }
}

/// Conversions between fp32 and bf16 (stored as its 16 bits, `UInt16`).
public enum BFloat16 {
    /// fp32 → bf16, rounding to nearest with ties to even (as AVX512_BF16's VCVTNEPS2BF16 and
    /// PyTorch do); NaN stays a (quiet) NaN, infinities stay infinite.
    @inline(__always)
    public static func round(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if bits & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
    }

    /// bf16 → fp32 (exact).
    @inline(__always)
    public static func widen(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Eight lanes of `round`, without branches.
    @inline(__always)
    static func round8(_ x: SIMD8<Float>) -> SIMD8<UInt16> {
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16
        let quiet = (bits &>> 16) | 0x0040
        let isNaN = (bits & 0x7FFF_FFFF) .> SIMD8<UInt32>(repeating: 0x7F80_0000)
        return SIMD8<UInt16>(truncatingIfNeeded: rounded.replacing(with: quiet, where: isNaN))
    }

    /// out[i] = round(inp[i]) for i in `range`, on the calling thread: by AVX512_BF16's conversion
    /// where the bf16 products run on it (16 lanes; denormal inputs become zero, as in the
    /// products), else eight lanes of `round`.
    @inline(__always)
    public static func round(_ inp: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, range: Range<Int>) {
        if BF16Gemm.available {
            loom_avx512_bf16_round(inp + range.lowerBound, out + range.lowerBound, range.count)
            return
        }
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            UnsafeMutableRawPointer(out + i).storeBytes(of: round8(inp.load8(i)), as: SIMD8<UInt16>.self)
            i += 8
        }
        while i < range.upperBound { out[i] = round(inp[i]); i += 1 }
    }

    /// One parallel loop's share of a conversion.
    struct RoundLoop: ParallelLoop {
        let inp: UnsafePointer<Float>, out: UnsafeMutablePointer<UInt16>
        func run(_ range: Range<Int>) { BFloat16.round(inp, into: out, range: range) }
    }

    /// out(count) = round(inp(count)), split over `ThreadPool.shared`.
    public static func round(_ inp: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt16>, count: Int) {
        ThreadPool.shared.parallelFor(count, grain: 4096, RoundLoop(inp: inp, out: out))
    }
}

/// A bf16 copy of a model's flat fp32 parameters, same offsets, so a weight's bf16 view is found
/// from its fp32 pointer. `refresh()` after every change of the parameters (each optimizer
/// update, initialisation, a loaded checkpoint): the products read only this copy.
public final class BF16Weights {
    public let source: UnsafePointer<Float>
    public let count: Int
    public let bits: UnsafeMutablePointer<UInt16>   // (count) bf16 of source

    public init(source: UnsafePointer<Float>, count: Int) {
        self.source = source; self.count = count
        bits = .allocate(capacity: max(count, 1))
        refresh()
    }
    deinit { bits.deallocate() }

    public var bytes: Int { 2 * count }

    /// Converts all parameters (one pass over them, split over the pool).
    public func refresh() { Profiler.measure(.conversion) { BFloat16.round(source, into: bits, count: count) } }

    /// The bf16 view of a tensor inside `source`.
    @inline(__always)
    public func of(_ weight: UnsafePointer<Float>) -> UnsafePointer<UInt16> {
        let offset = weight - source
        precondition(offset >= 0 && offset < count, "BF16Weights: the weight is not inside the model's parameters")
        return UnsafePointer(bits + offset)
    }
}

/// What a model replica's bf16 products need: the (shared) bf16 weights, and its own scratch for
/// the activations converted just before a product — the row operand (a layer's input) and the
/// gradient operand (a layer's output gradient). Backward converts again rather than keeping every
/// layer's bf16 input: a pass over the input costs 1/O of the product it feeds.
public final class BF16Operands {
    public let weights: BF16Weights
    public let inputCapacity: Int, gradientCapacity: Int
    public let input: UnsafeMutablePointer<UInt16>      // (inputCapacity) a product's input rows
    public let gradient: UnsafeMutablePointer<UInt16>   // (gradientCapacity) a product's output gradient

    public init(weights: BF16Weights, inputCapacity: Int, gradientCapacity: Int) {
        self.weights = weights
        self.inputCapacity = inputCapacity; self.gradientCapacity = gradientCapacity
        input = .allocate(capacity: max(inputCapacity, 1))
        gradient = .allocate(capacity: max(gradientCapacity, 1))
    }
    deinit { input.deallocate(); gradient.deallocate() }

    /// Bytes of scratch (the weights are counted by their owner).
    public var scratchBytes: Int { 2 * (inputCapacity + gradientCapacity) }
}

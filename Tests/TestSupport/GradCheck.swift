// GradCheck: finite-difference gradient checking and small helpers shared by the test targets.
// It is not used by Loom itself.
import Kernels
import Support

/// The outcome of comparing analytic gradients with central differences.
public struct GradCheckResult: CustomStringConvertible {
    public var worstRelativeError: Double
    public var worstIndex: Int
    public var checked: Int
    public var description: String {
        "worst relative error \(worstRelativeError) at index \(worstIndex) over \(checked) entries"
    }
}

/// Checks `analytic` (∂loss/∂values) against (loss(v + h) − loss(v − h)) / 2h at `indices`.
/// Relative error = |a − n| / max(|a|, |n|, floor) with floor = 1e-3 · max|a| (so entries whose
/// true gradient is ~0 are judged on an absolute scale). `loss` must recompute from `values`.
public func gradCheck(values: UnsafeMutablePointer<Float>, analytic: [Float], indices: [Int],
                      step h: Float = 1e-2, loss: () -> Double) -> GradCheckResult {
    let floor = errorFloor(analytic, indices)
    var worst = 0.0, worstIndex = -1
    for i in indices {
        let error = centralDifferenceError(values: values, index: i, analytic: analytic[i], step: h, floor: floor, loss: loss)
        if error > worst { worst = error; worstIndex = i }
    }
    return GradCheckResult(worstRelativeError: worst, worstIndex: worstIndex, checked: indices.count)
}

/// floor = 1e-3 · max |analytic| over the checked entries (at least 1e-7).
func errorFloor(_ analytic: [Float], _ indices: [Int]) -> Double {
    max(1e-3 * (indices.map { abs(Double(analytic[$0])) }.max() ?? 0), 1e-7)
}

/// |a − n| / max(|a|, |n|, floor) for one entry, n = (loss(v + h) − loss(v − h)) / 2h.
func centralDifferenceError(values: UnsafeMutablePointer<Float>, index i: Int, analytic: Float, step h: Float,
                            floor: Double, loss: () -> Double) -> Double {
    let saved = values[i]
    values[i] = saved + h
    let plus = loss()
    values[i] = saved - h
    let minus = loss()
    values[i] = saved
    let numeric = (plus - minus) / (2 * Double(h)), a = Double(analytic)
    return abs(a - numeric) / max(abs(a), abs(numeric), floor)
}

/// gradCheck at four step sizes, keeping each entry's best agreement: a ReLU kink crossed by one
/// step (a finite-difference artefact) rarely sits within the others, a strongly curved loss needs
/// the small steps and float32 rounding the large ones, while a wrong gradient fails them all.
/// Same relative-error definition and floor as `gradCheck`.
public func kinkTolerantGradCheck(values: UnsafeMutablePointer<Float>, analytic: [Float], indices: [Int],
                           loss: () -> Double) -> GradCheckResult {
    let floor = errorFloor(analytic, indices)
    var result = GradCheckResult(worstRelativeError: 0, worstIndex: -1, checked: indices.count)
    for i in indices {
        let best = [Float(1e-2), 3e-3, 1e-3, 3e-4].map {
            centralDifferenceError(values: values, index: i, analytic: analytic[i], step: $0, floor: floor, loss: loss)
        }.min()!
        if best > result.worstRelativeError { result.worstRelativeError = best; result.worstIndex = i }
    }
    return result
}

/// Deterministic pseudo-random floats in [-scale, scale).
public func randomFloats(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    let key = CounterRandom.key(seed)
    return (0..<count).map { (CounterRandom.uniform(key: key, counter: UInt64($0)) * 2 - 1) * scale }
}

/// Σ w[i]·x[i] in double precision: a scalar loss whose gradient w.r.t. x is w.
public func weightedSum(_ x: UnsafePointer<Float>, _ w: [Float]) -> Double {
    var s = 0.0
    for i in w.indices { s += Double(w[i]) * Double(x[i]) }
    return s
}

/// Up to `limit` indices spread over 0..<count (all of them when count ≤ limit).
public func sampleIndices(_ count: Int, limit: Int, seed: UInt64 = 1) -> [Int] {
    if count <= limit { return Array(0..<count) }
    let key = CounterRandom.key(seed, 99)
    return (0..<limit).map { CounterRandom.below(count, key: key, counter: UInt64($0)) }
}

/// A heap buffer of Floats for tests (stable pointer, freed on deinit).
public final class Buf {
    public let p: UnsafeMutablePointer<Float>
    public let count: Int
    public init(_ values: [Float]) {
        count = values.count
        p = .allocate(capacity: max(count, 1))
        p.initialize(from: values, count: count)
    }
    public convenience init(zeros count: Int) { self.init([Float](repeating: 0, count: count)) }
    deinit { p.deallocate() }
    public var array: [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }
    public func zero() { p.update(repeating: 0, count: count) }
}

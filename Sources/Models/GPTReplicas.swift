// GPTReplicas: data parallelism across the pool's threads inside one process — each thread runs
// the whole GPT forward and backward on its share of a micro-batch, then the replicas' gradients
// are summed into the primary's. It composes with the MPI data parallelism across processes
// (Distributed): the summed gradients are what a rank all-reduces.
import Kernels
import Support

/// Why: splitting every kernel across threads makes the threads meet at every layer of every
/// step, and each meeting waits for the slower thread (on a shared virtual machine, often a
/// descheduled one). Whole-model replicas meet twice per micro-batch (after backward, after the
/// gradient sum), like MPI ranks but without copying gradients through a library.
///
/// Replica r takes sequences r·b ..< (r+1)·b of the micro-batch (b = B / replicas). Kernels called
/// from inside a replica run on its thread alone (the pool is busy). Dropout masks follow the
/// global example index, so they match a run without replicas; sums over the batch are added in a
/// different order, so results match it to rounding, not bit for bit.
public final class GPTReplicas {
    /// Replica 0: owns the parameters, and its gradients are the model's.
    public let primary: GPT
    /// Replicas 1…: shared parameters, own gradients (zero between micro-batches) and activations.
    let others: [GPT]
    private let otherGradients: [UnsafeMutablePointer<Float>]
    /// (replicas, 2): Σ loss and counted tokens of each replica's forward.
    private let results: UnsafeMutablePointer<Double>

    public var count: Int { others.count + 1 }
    /// Sequences each replica holds.
    public var batchPerReplica: Int { primary.maxBatch }

    /// `primary` plus `count − 1` replicas of the same sequences per replica (`primary.maxBatch`).
    public init(primary: GPT, count: Int) {
        self.primary = primary
        others = (1..<max(count, 1)).map { _ in GPT(replicaOf: primary, maxBatch: primary.maxBatch) }
        otherGradients = others.map(\.gradients.pointer)
        results = .allocate(capacity: 2 * max(count, 1))
        results.initialize(repeating: 0, count: 2 * max(count, 1))
    }
    deinit { results.deallocate() }

    /// Bytes the replicas add to the primary model: their gradients and activations.
    public var extraBytes: Int { others.reduce(0) { $0 + $1.gradients.bytes + $1.activationBytes } }

    /// One replica's share of a micro-batch: forward, and backward when `scale` is given.
    struct Share: ParallelLoop {
        let replicas: GPTReplicas
        let tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, time: Int
        let dropout: DropoutStream?, scale: Float?

        func run(_ range: Range<Int>) {
            let b = replicas.batchPerReplica, T = time
            for r in range {
                let model = r == 0 ? replicas.primary : replicas.others[r - 1]
                let offset = r * b * T
                let stream = dropout.map { DropoutStream(key: $0.key, firstExample: $0.firstExample + r * b) }
                let result = model.forward(tokens: tokens + offset, targets: targets + offset, batch: b, time: T,
                                           dropout: stream)
                if let scale { model.backward(tokens: tokens + offset, targets: targets + offset, scale: scale) }
                replicas.results[2 * r] = result.sum
                replicas.results[2 * r + 1] = Double(result.count)
            }
        }
    }

    /// primary.gradients += Σ others' gradients, which are zeroed for the next micro-batch.
    struct GradientSum: ParallelLoop {
        let total: UnsafeMutablePointer<Float>, parts: [UnsafeMutablePointer<Float>]
        func run(_ range: Range<Int>) {
            for part in parts {
                var i = range.lowerBound
                while i + 8 <= range.upperBound {
                    total.store8(i, total.load8(i) + part.load8(i)); part.store8(i, Float8())
                    i += 8
                }
                while i < range.upperBound { total[i] += part[i]; part[i] = 0; i += 1 }
            }
        }
    }

    /// Forward and backward of tokens (replicas × batchPerReplica, T): gradients of (Σ loss ·
    /// scale) are added into the primary's, then its `onGroupReady` hook runs for every group (in
    /// backward's order), as if one model had run the whole micro-batch. Returns (Σ loss, tokens).
    public func trainMicroBatch(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, time T: Int,
                                dropout: DropoutStream, scale: Float) -> (sum: Double, count: Int) {
        // The hooks talk to the communicator, which only the calling thread may use, and only
        // once the replicas' gradients are in.
        let ready = primary.onGroupReady, progress = primary.onBackwardProgress
        primary.onGroupReady = nil; primary.onBackwardProgress = nil
        ThreadPool.shared.parallelFor(count, Share(replicas: self, tokens: tokens, targets: targets, time: T,
                                                   dropout: dropout, scale: scale))
        primary.onGroupReady = ready; primary.onBackwardProgress = progress
        Profiler.measure(.elementwise) {
            ThreadPool.shared.parallelFor(primary.gradients.count, grain: 1024,
                                          GradientSum(total: primary.gradients.pointer, parts: otherGradients))
        }
        if let ready { for group in stride(from: primary.layout.groups.count - 1, through: 0, by: -1) { ready(group) } }
        return total()
    }

    /// Forward only (evaluation, no dropout) of tokens (replicas × batchPerReplica, T): (Σ loss, tokens).
    public func evaluate(tokens: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, time T: Int) -> (sum: Double, count: Int) {
        ThreadPool.shared.parallelFor(count, Share(replicas: self, tokens: tokens, targets: targets, time: T,
                                                   dropout: nil, scale: nil))
        return total()
    }

    private func total() -> (sum: Double, count: Int) {
        var sum = 0.0, tokens = 0.0
        for r in 0..<count { sum += results[2 * r]; tokens += results[2 * r + 1] }
        return (sum, Int(tokens))
    }
}

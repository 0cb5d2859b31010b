// TiedProjection: the output layer that reuses the token embedding — logits = x · Eᵀ — forward and
// backward, in fp32 (sgemm) or with bf16 operands.

/// Shapes: N rows (B·T), C width, V vocabulary; E is the (V, C) embedding.
public enum TiedProjection {
    /// logits(N, V) = x(N, C) · embeddingᵀ.
    public static func forward(
        logits: UnsafeMutablePointer<Float>,   // (N, V)
        x: UnsafePointer<Float>,               // (N, C)
        embedding: UnsafePointer<Float>,       // (V, C)
        rows N: Int, width C: Int, vocabulary V: Int, bf16: BF16Operands? = nil
    ) {
        if let bf16 {
            precondition(N * C <= bf16.inputCapacity, "TiedProjection: bf16 scratch too small")
            Profiler.measure(.conversion) { BFloat16.round(x, into: bf16.input, count: N * C) }
        }
        Profiler.measure(.lmHead) {
            if let bf16 {
                Gemm.parallelBF16(transB: true, m: N, n: V, k: C, a: bf16.input, lda: C,
                                  b: bf16.weights.of(embedding), ldb: C, beta: 0, c: logits, ldc: V)
            } else {
                Gemm.parallel(transB: true, m: N, n: V, k: C, a: x, lda: C, b: embedding, ldb: C,
                              beta: 0, c: logits, ldc: V)
            }
        }
    }

    /// dx(N, C) = dlogits · embedding (overwritten); dembedding(V, C) += dlogitsᵀ · x.
    public static func backward(
        dx: UnsafeMutablePointer<Float>,         // (N, C)
        dembedding: UnsafeMutablePointer<Float>, // (V, C) accumulated
        dlogits: UnsafePointer<Float>,           // (N, V)
        x: UnsafePointer<Float>,                 // (N, C)
        embedding: UnsafePointer<Float>,         // (V, C)
        rows N: Int, width C: Int, vocabulary V: Int, bf16: BF16Operands? = nil
    ) {
        if let bf16 {
            precondition(N * V <= bf16.gradientCapacity && N * C <= bf16.inputCapacity, "TiedProjection: bf16 scratch too small")
            Profiler.measure(.conversion) {
                BFloat16.round(dlogits, into: bf16.gradient, count: N * V)
                BFloat16.round(x, into: bf16.input, count: N * C)
            }
        }
        Profiler.measure(.lmHead) {
            if let bf16 {
                Gemm.parallelBF16(m: N, n: C, k: V, a: bf16.gradient, lda: V, b: bf16.weights.of(embedding), ldb: C,
                                  beta: 0, c: dx, ldc: C)
                Gemm.parallelBF16(transA: true, m: V, n: C, k: N, a: bf16.gradient, lda: V, b: bf16.input, ldb: C,
                                  beta: 1, c: dembedding, ldc: C)
            } else {
                Gemm.parallel(m: N, n: C, k: V, a: dlogits, lda: V, b: embedding, ldb: C, beta: 0, c: dx, ldc: C)
                Gemm.parallel(transA: true, m: V, n: C, k: N, a: dlogits, lda: V, b: x, ldb: C,
                              beta: 1, c: dembedding, ldc: C)
            }
        }
    }
}

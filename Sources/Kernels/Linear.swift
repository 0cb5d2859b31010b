// Linear: fully connected layer out = inp · W + b with W stored (in, out) as Hugging Face GPT-2's
// Conv1D does, forward and backward on sgemm. It is not a batched or grouped matmul.

/// Shapes: N rows (B·T), I input features, O output features.
public enum Linear {
    /// out(N,O) = inp(N,I) · weight(I,O) + bias(O).
    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (N, O)
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        bias: UnsafePointer<Float>?,           // (O)
        rows N: Int, inputs I: Int, outputs O: Int
    ) {
        Profiler.measure(.linear) {
            if let bias { ThreadPool.shared.parallelFor(N, grain: 16, RowFill(out: out, row: bias, columns: O)) }
            Gemm.parallel(m: N, n: O, k: I, a: inp, lda: I, b: weight, ldb: O,
                          beta: bias == nil ? 0 : 1, c: out, ldc: O)
        }
    }

    /// dweight(I,O) += inpᵀ · dout; dbias(O) += Σ_rows dout; dinp(N,I) = dout · weightᵀ
    /// (overwritten, or added to when `accumulateInput`, e.g. an encoder output read by many layers).
    public static func backward(
        dinp: UnsafeMutablePointer<Float>?,    // (N, I)
        dweight: UnsafeMutablePointer<Float>,  // (I, O) accumulated
        dbias: UnsafeMutablePointer<Float>?,   // (O) accumulated
        dout: UnsafePointer<Float>,            // (N, O)
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        rows N: Int, inputs I: Int, outputs O: Int, accumulateInput: Bool = false
    ) {
        Profiler.measure(.linear) {
            if let dinp {
                Gemm.parallel(transB: true, m: N, n: I, k: O, a: dout, lda: O, b: weight, ldb: O,
                              beta: accumulateInput ? 1 : 0, c: dinp, ldc: I)
            }
            Gemm.parallel(transA: true, m: I, n: O, k: N, a: inp, lda: I, b: dout, ldb: O,
                          beta: 1, c: dweight, ldc: O)
            if let dbias {
                ColumnSum.accumulate(into: dbias, from: dout, rows: N, columns: O)
            }
        }
    }
}

/// Copies one row into every row of a matrix (bias initialisation before sgemm with beta = 1).
struct RowFill: ParallelLoop {
    let out: UnsafeMutablePointer<Float>, row: UnsafePointer<Float>, columns: Int
    func run(_ rows: Range<Int>) {
        for r in rows { (out + r * columns).update(from: row, count: columns) }
    }
}

/// into(C) += Σ_rows from(N, C), split over columns (fixed summation order).
public enum ColumnSum {
    struct Columns: ParallelLoop {
        let into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, N: Int, C: Int
        func run(_ cols: Range<Int>) {
            for row in 0..<N {
                let d = from + row * C
                for c in cols { into[c] += d[c] }
            }
        }
    }
    public static func accumulate(into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>,
                                  rows N: Int, columns C: Int) {
        ThreadPool.shared.parallelFor(C, grain: 16, Columns(into: into, from: from, N: N, C: C))
    }
}

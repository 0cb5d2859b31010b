// Linear: fully connected layer out = inp · W + b with W stored (in, out) as Hugging Face GPT-2's
// Conv1D does, forward and backward on sgemm (or, given bf16 operands, on bf16 products with fp32
// accumulation).
import Support

/// Where a bf16 layer's input (N, I) comes from: rounded by this forward into a buffer that
/// backward reads again (so it is not rounded twice), or already rounded there by the layer before
/// (`Linear.forward`'s `roundedOutput`).
public enum BF16Input {
    case round(into: UnsafeMutablePointer<UInt16>)
    case rounded(UnsafePointer<UInt16>)
}

/// Shapes: N rows (B·T), I input features, O output features.
public enum Linear {
    /// out(N,O) = inp(N,I) · weight(I,O) + bias(O); with `gelu`, also gelu(N,O) = GELU(out) in
    /// `geluForm` (tanh or erf), the MLP's activation, done by each thread on its rows right after its sgemm (one parallel job,
    /// the rows still in cache; `bench --profile` counts that GELU time as the layer's).
    /// With `bf16`, each thread first rounds its rows of `inp` to bf16 and multiplies them by the
    /// weight's bf16 copy; the output, bias and GELU stay fp32. `input16` keeps the rounded input
    /// for backward (or finds it rounded already) instead of rounding into the shared scratch.
    /// With `roundedOutput`, what the next products read — GELU(out) when `gelu` is given, else
    /// out — is also rounded to bf16 there, each thread its rows while they are in cache
    /// (attention's Q, K and V; the MLP's second layer).
    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (N, O)
        gelu: UnsafeMutablePointer<Float>? = nil, // (N, O) GELU(out), when given
        geluForm: GELU.Form = .tanh,
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        bias: UnsafePointer<Float>?,           // (O)
        rows N: Int, inputs I: Int, outputs O: Int,
        bf16: BF16Operands? = nil,
        input16: BF16Input? = nil,                      // (N, I) bf16 of inp, with bf16
        roundedOutput: UnsafeMutablePointer<UInt16>? = nil // (N, O) bf16 of out (or of gelu), with bf16
    ) {
        let low = bf16.map { LowPrecision(operands: $0, weight: weight, rows: N, inputs: I, outputs: O, input16: input16) }
        let rounded = roundedOutput.map { (into: $0, from: UnsafePointer(gelu ?? out)) }
        // The usual case, split over rows as Gemm.parallel would; also every call that runs on one
        // thread (one pool thread, or inside a GPT thread replica), where it is the whole layer.
        if N >= O || ThreadPool.shared.runsSerially {
            Profiler.measure(.linear) {
                ThreadPool.shared.parallelFor(N, grain: 16, ForwardRows(out: out, gelu: gelu, form: geluForm, inp: inp,
                                                                        weight: weight, bias: bias, I: I, O: O, low: low,
                                                                        rounded: rounded))
            }
            return
        }
        Profiler.measure(.linear) {
            if let low {
                if low.roundInput { BFloat16.round(inp, into: low.input, count: N * I) }
                Gemm.parallelBF16(m: N, n: O, k: I, a: low.input, lda: I, b: low.weight, ldb: O, beta: 0, bias: bias,
                                  c: out, ldc: O)
            } else {
                Gemm.parallel(m: N, n: O, k: I, a: inp, lda: I, b: weight, ldb: O, beta: 0, bias: bias, c: out, ldc: O)
            }
        }
        if let gelu { GELU.forward(out: gelu, inp: out, count: N * O, form: geluForm) }
        if let rounded { Profiler.measure(.conversion) { BFloat16.round(rounded.from, into: rounded.into, count: N * O) } }
    }

    /// The bf16 operands of one layer's products: its weight's bf16 copy, where its input (N, I)
    /// is (or is rounded into: the shared scratch, or the layer's own `input16` buffer) and the
    /// scratch its output gradient (N, O) is rounded into.
    struct LowPrecision {
        let weight: UnsafePointer<UInt16>        // (I, O)
        let input: UnsafeMutablePointer<UInt16>   // (N, I)
        let roundInput: Bool                      // false: `input` holds the rounded input already
        let gradient: UnsafeMutablePointer<UInt16> // (N, O)
        init(operands: BF16Operands, weight: UnsafePointer<Float>, rows N: Int, inputs I: Int, outputs O: Int,
             input16: BF16Input?) {
            precondition(N * I <= operands.inputCapacity && N * O <= operands.gradientCapacity,
                         "Linear: bf16 scratch too small for \(N)×\(I) → \(O)")
            self.weight = operands.weights.of(weight)
            gradient = operands.gradient
            switch input16 {
            case nil: input = operands.input; roundInput = true
            case .round(let into)?: input = into; roundInput = true
            case .rounded(let p)?: input = UnsafeMutablePointer(mutating: p); roundInput = false
            }
        }
    }

    /// One thread's rows of the forward: bias rows and sgemm (or rounding its rows to bf16 and a
    /// bf16 product that adds the bias), GELU, the output's bf16 rounding.
    struct ForwardRows: ParallelLoop {
        let out: UnsafeMutablePointer<Float>, gelu: UnsafeMutablePointer<Float>?, form: GELU.Form
        let inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, I: Int, O: Int
        let low: LowPrecision?, rounded: (into: UnsafeMutablePointer<UInt16>, from: UnsafePointer<Float>)?
        func run(_ rows: Range<Int>) {
            if let low {
                if low.roundInput { BFloat16.round(inp, into: low.input, range: rows.lowerBound * I..<rows.upperBound * I) }
                Gemm.serialBF16(m: rows.count, n: O, k: I, a: low.input + rows.lowerBound * I, lda: I, b: low.weight,
                                ldb: O, beta: 0, bias: bias, c: out + rows.lowerBound * O, ldc: O)
            } else {
                Gemm.serial(m: rows.count, n: O, k: I, a: inp + rows.lowerBound * I, lda: I, b: weight, ldb: O,
                            beta: 0, bias: bias, c: out + rows.lowerBound * O, ldc: O)
            }
            if let gelu {
                GELU.Forward(out: gelu, inp: UnsafePointer(out), form: form).run(rows.lowerBound * O..<rows.upperBound * O)
            }
            if let rounded { BFloat16.round(rounded.from, into: rounded.into, range: rows.lowerBound * O..<rows.upperBound * O) }
        }
    }

    /// dweight(I,O) += inpᵀ · dout; dbias(O) += Σ_rows dout; dinp(N,I) = dout · weightᵀ
    /// (overwritten, or added to when `accumulateInput`, e.g. an encoder output read by many layers).
    /// With `geluInput` (`inp` was GELU(geluInput)), dinp is the gradient with respect to geluInput:
    /// (dout · weightᵀ) ⊙ GELU′(geluInput) (GELU in `geluForm`), each thread's rows done right after
    /// its sgemm.
    /// With `bf16`, `dout` and `inp` are first rounded to bf16 (one parallel pass; `input16`: inp's
    /// bf16 as forward left it, not rounded again) and both products take them with the weight's
    /// bf16 copy; dweight, dbias and dinp stay fp32.
    public static func backward(
        dinp: UnsafeMutablePointer<Float>?,    // (N, I)
        dweight: UnsafeMutablePointer<Float>,  // (I, O) accumulated
        dbias: UnsafeMutablePointer<Float>?,   // (O) accumulated
        dout: UnsafePointer<Float>,            // (N, O)
        inp: UnsafePointer<Float>,             // (N, I)
        weight: UnsafePointer<Float>,          // (I, O)
        geluInput: UnsafePointer<Float>? = nil, // (N, I) pre-activation, when inp = GELU(it)
        geluForm: GELU.Form = .tanh,
        rows N: Int, inputs I: Int, outputs O: Int, accumulateInput: Bool = false,
        bf16: BF16Operands? = nil,
        input16: UnsafePointer<UInt16>? = nil   // (N, I) bf16 of inp, kept by forward
    ) {
        precondition(geluInput == nil || !accumulateInput, "Linear.backward: geluInput with accumulateInput")
        let low = bf16.map { LowPrecision(operands: $0, weight: weight, rows: N, inputs: I, outputs: O,
                                          input16: input16.map { .rounded($0) }) }
        let job = BackwardParts(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight,
                                geluInput: geluInput, geluForm: geluForm, N: N, I: I, O: O, beta: accumulateInput ? 1 : 0,
                                parts: ThreadPool.shared.runsSerially ? 1 : ThreadPool.shared.threads, low: low)
        if let low {
            Profiler.measure(.conversion) {
                ThreadPool.shared.parallelFor(N, grain: 16, RoundRows(inp: inp, dout: dout, low: low, I: I, O: O))
            }
        }
        Profiler.measure(.linear) { ThreadPool.shared.parallelFor(job.parts, job) }
    }

    /// Rows of `inp` and `dout` rounded into the bf16 scratch, before the backward products (which
    /// read all rows of both).
    struct RoundRows: ParallelLoop {
        let inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, low: LowPrecision, I: Int, O: Int
        func run(_ rows: Range<Int>) {
            if low.roundInput { BFloat16.round(inp, into: low.input, range: rows.lowerBound * I..<rows.upperBound * I) }
            BFloat16.round(dout, into: low.gradient, range: rows.lowerBound * O..<rows.upperBound * O)
        }
    }

    /// The whole backward as one parallel job: part p computes its share of each of the three
    /// independent outputs: rows of dinp (then GELU′ on them), a block of dweight (rows when
    /// I ≥ O, else columns, as `Gemm.parallel` splits) and columns of dbias. Each share is split as
    /// `parallelFor` would split that loop alone, so results do not change, but the threads meet
    /// once per layer instead of three times.
    struct BackwardParts: ParallelLoop {
        let dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>
        let dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>, inp: UnsafePointer<Float>
        let weight: UnsafePointer<Float>, geluInput: UnsafePointer<Float>?, geluForm: GELU.Form
        let N: Int, I: Int, O: Int, beta: Float, parts: Int
        let low: LowPrecision?

        func run(_ range: Range<Int>) {
            for p in range {
                if let dinp {
                    // Fewer rows than inputs (a tiny batch): part 0 does all of dinp.
                    let rows = N >= I ? ThreadPool.part(p, of: parts, count: N, grain: 16) : p == 0 ? 0..<N : 0..<0
                    InputGradientRows(dinp: dinp, dout: dout, weight: weight, geluInput: geluInput, geluForm: geluForm,
                                      I: I, O: O, beta: beta, low: low).run(rows)
                }
                if I >= O {
                    let rows = ThreadPool.part(p, of: parts, count: I, grain: 16)
                    if let low {
                        Gemm.serialBF16(transA: true, m: rows.count, n: O, k: N, a: low.input + rows.lowerBound, lda: I,
                                        b: low.gradient, ldb: O, beta: 1, c: dweight + rows.lowerBound * O, ldc: O)
                    } else {
                        Gemm.serial(transA: true, m: rows.count, n: O, k: N, a: inp + rows.lowerBound, lda: I,
                                    b: dout, ldb: O, beta: 1, c: dweight + rows.lowerBound * O, ldc: O)
                    }
                } else {
                    let columns = ThreadPool.part(p, of: parts, count: O, grain: 16)
                    if let low {
                        Gemm.serialBF16(transA: true, m: I, n: columns.count, k: N, a: low.input, lda: I,
                                        b: low.gradient + columns.lowerBound, ldb: O, beta: 1,
                                        c: dweight + columns.lowerBound, ldc: O)
                    } else {
                        Gemm.serial(transA: true, m: I, n: columns.count, k: N, a: inp, lda: I,
                                    b: dout + columns.lowerBound, ldb: O, beta: 1, c: dweight + columns.lowerBound,
                                    ldc: O)
                    }
                }
                if let dbias {
                    ColumnSum.Columns(into: dbias, from: dout, N: N, C: O)
                        .run(ThreadPool.part(p, of: parts, count: O, grain: 32))
                }
            }
        }
    }

    /// One thread's rows of dinp: sgemm (or the bf16 product), then the GELU derivative in place.
    struct InputGradientRows: ParallelLoop {
        let dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, weight: UnsafePointer<Float>
        let geluInput: UnsafePointer<Float>?, geluForm: GELU.Form, I: Int, O: Int, beta: Float
        let low: LowPrecision?
        func run(_ rows: Range<Int>) {
            if let low {
                Gemm.serialBF16(transB: true, m: rows.count, n: I, k: O, a: low.gradient + rows.lowerBound * O, lda: O,
                                b: low.weight, ldb: O, beta: beta, c: dinp + rows.lowerBound * I, ldc: I)
            } else {
                Gemm.serial(transB: true, m: rows.count, n: I, k: O, a: dout + rows.lowerBound * O, lda: O,
                            b: weight, ldb: O, beta: beta, c: dinp + rows.lowerBound * I, ldc: I)
            }
            if let geluInput {
                GELU.Backward(dinp: dinp, inp: geluInput, dout: UnsafePointer(dinp), form: geluForm)
                    .run(rows.lowerBound * I..<rows.upperBound * I)
            }
        }
    }
}

/// into(C) += Σ_rows from(N, C) for a range of columns (a bias gradient, split over columns);
/// each column adds its rows in order (so the result does not depend on the split), 32 columns at
/// a time in registers.
enum ColumnSum {
    struct Columns: ParallelLoop {
        let into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, N: Int, C: Int
        func run(_ cols: Range<Int>) {
            var c = cols.lowerBound
            while c + 32 <= cols.upperBound {
                var s0 = into.load8(c), s1 = into.load8(c + 8), s2 = into.load8(c + 16), s3 = into.load8(c + 24)
                var d = from + c
                for _ in 0..<N {
                    s0 += d.load8(0); s1 += d.load8(8); s2 += d.load8(16); s3 += d.load8(24)
                    d += C
                }
                into.store8(c, s0); into.store8(c + 8, s1); into.store8(c + 16, s2); into.store8(c + 24, s3)
                c += 32
            }
            while c + 8 <= cols.upperBound {
                var s = into.load8(c), d = from + c
                for _ in 0..<N { s += d.load8(0); d += C }
                into.store8(c, s)
                c += 8
            }
            for c in c..<cols.upperBound {
                var s = into[c]
                for row in 0..<N { s += from[row * C + c] }
                into[c] = s
            }
        }
    }
}

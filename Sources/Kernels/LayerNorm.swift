// LayerNorm: normalisation over the channel dimension with learned scale and shift, forward and
// backward (as llm.c). On an AVX-512 CPU (`KernelISA`) the row and column loops
// run 16 lanes in CVectorKernels.
import CVectorKernels
import Support

/// out = (x − mean) · rstd · weight + bias per row, rstd = 1/√(var + ε). Shapes: N rows, C channels.
public enum LayerNorm {
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Float8()
        var i = 0
        while i + 8 <= n { acc += x.load8(i); i += 8 }
        var total = acc.sum()
        while i < n { total += x[i]; i += 1 }
        return total
    }

    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (N, C)
        mean: UnsafeMutablePointer<Float>,     // (N) saved for backward
        rstd: UnsafeMutablePointer<Float>,     // (N) saved for backward
        inp: UnsafePointer<Float>,             // (N, C)
        weight: UnsafePointer<Float>,          // (C)
        bias: UnsafePointer<Float>,            // (C)
        rows N: Int, channels C: Int, epsilon: Float = 1e-5, isa: KernelISA = KernelISA.selected
    ) {
        struct Rows: ParallelLoop {
            let out, mean, rstd: UnsafeMutablePointer<Float>
            let inp, weight, bias: UnsafePointer<Float>
            let C: Int, epsilon: Float, isa: KernelISA
            func run(_ rows: Range<Int>) {
                if isa == .avx512 {
                    loom_avx512_layernorm_forward(out, mean, rstd, inp, weight, bias, rows.lowerBound, rows.upperBound, C, epsilon)
                    return
                }
                for row in rows {
                    let x = UnsafePointer(inp + row * C), o = out + row * C
                    let m = LayerNorm.sum(x, C) / Float(C)
                    var v8 = Float8()
                    var c = 0
                    while c + 8 <= C { let d = x.load8(c) - m; v8 += d * d; c += 8 }
                    var v = v8.sum()
                    while c < C { let d = x[c] - m; v += d * d; c += 1 }
                    let s = 1 / (v / Float(C) + epsilon).squareRoot()
                    for c in 0..<C { o[c] = (x[c] - m) * s * weight[c] + bias[c] }
                    mean[row] = m
                    rstd[row] = s
                }
            }
        }
        Profiler.measure(.layerNorm) {
            ThreadPool.shared.parallelFor(N, grain: 4, Rows(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight,
                                                            bias: bias, C: C, epsilon: epsilon, isa: isa))
        }
    }

    /// dinp += …; dweight += Σ norm·dout; dbias += Σ dout. Rows split for dinp, channels for the
    /// parameter gradients, so nothing races and sums run in a fixed order.
    public static func backward(
        dinp: UnsafeMutablePointer<Float>,     // (N, C) accumulated
        dweight: UnsafeMutablePointer<Float>,  // (C) accumulated
        dbias: UnsafeMutablePointer<Float>,    // (C) accumulated
        dout: UnsafePointer<Float>,            // (N, C)
        inp: UnsafePointer<Float>,             // (N, C)
        weight: UnsafePointer<Float>,          // (C)
        mean: UnsafePointer<Float>,            // (N)
        rstd: UnsafePointer<Float>,            // (N)
        rows N: Int, channels C: Int, isa: KernelISA = KernelISA.selected
    ) {
        struct InputRows: ParallelLoop {
            let dinp: UnsafeMutablePointer<Float>
            let dout, inp, weight, mean, rstd: UnsafePointer<Float>
            let C: Int, isa: KernelISA
            func run(_ rows: Range<Int>) {
                if isa == .avx512 {
                    loom_avx512_layernorm_backward_rows(dinp, dout, inp, weight, mean, rstd, rows.lowerBound, rows.upperBound, C)
                    return
                }
                for row in rows {
                    let x = inp + row * C, d = dout + row * C, di = dinp + row * C
                    let m = mean[row], s = rstd[row]
                    var a8 = Float8(), b8 = Float8()
                    var c = 0
                    while c + 8 <= C {
                        let dnorm = weight.load8(c) * d.load8(c)
                        a8 += dnorm
                        b8 += dnorm * ((x.load8(c) - m) * s)
                        c += 8
                    }
                    var dnormMean = a8.sum(), dnormNormMean = b8.sum()
                    while c < C {
                        let dnorm = weight[c] * d[c]
                        dnormMean += dnorm
                        dnormNormMean += dnorm * ((x[c] - m) * s)
                        c += 1
                    }
                    dnormMean /= Float(C)
                    dnormNormMean /= Float(C)
                    for c in 0..<C {
                        let norm = (x[c] - m) * s
                        let dnorm = weight[c] * d[c]
                        di[c] += (dnorm - dnormMean - norm * dnormNormMean) * s
                    }
                }
            }
        }
        struct ParameterColumns: ParallelLoop {
            let dweight, dbias: UnsafeMutablePointer<Float>
            let dout, inp, mean, rstd: UnsafePointer<Float>
            let N: Int, C: Int, isa: KernelISA
            func run(_ cols: Range<Int>) {
                if isa == .avx512 {
                    loom_avx512_layernorm_backward_columns(dweight, dbias, dout, inp, mean, rstd, N, C, cols.lowerBound, cols.upperBound)
                    return
                }
                for row in 0..<N {
                    let x = inp + row * C, d = dout + row * C
                    let m = mean[row], s = rstd[row]
                    for c in cols {
                        dbias[c] += d[c]
                        dweight[c] += (x[c] - m) * s * d[c]
                    }
                }
            }
        }
        Profiler.measure(.layerNorm) {
            let pool = ThreadPool.shared
            pool.parallelFor(N, grain: 4, InputRows(dinp: dinp, dout: dout, inp: inp, weight: weight, mean: mean,
                                                    rstd: rstd, C: C, isa: isa))
            pool.parallelFor(C, grain: 16, ParameterColumns(dweight: dweight, dbias: dbias, dout: dout, inp: inp,
                                                            mean: mean, rstd: rstd, N: N, C: C, isa: isa))
        }
    }
}

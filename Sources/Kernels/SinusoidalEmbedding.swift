// SinusoidalEmbedding: the encoder-decoder's input layer — a token embedding scaled by a constant
// (√d_model) plus a fixed sinusoidal position signal (tensor2tensor's layout) — forward and
// backward.
import Foundation
import Support

/// out[b,t,:] = scale · table[tokens[b,t],:] + signal[firstPosition + t,:].
/// Shapes: B batch, T time, C channels (even), V vocabulary.
public enum SinusoidalEmbedding {
    /// Fills `signal` (positions, C) with tensor2tensor's `get_timing_signal_1d` (min timescale 1,
    /// max 10⁴): with n = C/2, increment = ln(10⁴)/max(n − 1, 1) and inv_i = exp(−i·increment),
    /// channel i < n holds sin(pos·inv_i) and channel n + i holds cos(pos·inv_i). Computed in Double.
    public static func signal(into signal: UnsafeMutablePointer<Float>, positions: Int, channels C: Int) {
        precondition(C % 2 == 0, "SinusoidalEmbedding: channels must be even, got \(C)")
        let n = C / 2
        let increment = log(10_000.0) / Double(max(n - 1, 1))
        for pos in 0..<positions {
            for i in 0..<n {
                let angle = Double(pos) * exp(Double(i) * -increment)
                signal[pos * C + i] = Float(sin(angle))
                signal[pos * C + n + i] = Float(cos(angle))
            }
        }
    }

    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (B, T, C)
        tokens: UnsafePointer<Int32>,          // (B, T)
        table: UnsafePointer<Float>,           // (V, C)
        signal: UnsafePointer<Float>,          // (≥ firstPosition + T, C)
        scale: Float, batch B: Int, time T: Int, channels C: Int, firstPosition: Int = 0
    ) {
        struct Rows: ParallelLoop {
            let out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>
            let table: UnsafePointer<Float>, signal: UnsafePointer<Float>, scale: Float, T: Int, C: Int, first: Int
            func run(_ rows: Range<Int>) {
                for row in rows {
                    let o = out + row * C, e = table + Int(tokens[row]) * C, p = signal + (first + row % T) * C
                    for c in 0..<C { o[c] = scale * e[c] + p[c] }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(B * T, grain: 8, Rows(out: out, tokens: tokens, table: table, signal: signal,
                                                                scale: scale, T: T, C: C, first: firstPosition))
        }
    }

    /// dtable[tokens[n],:] += scale · dout[n,:] for N rows. Split over channels, so repeated tokens
    /// never race and the sum order is fixed.
    public static func backward(
        dtable: UnsafeMutablePointer<Float>,   // (V, C) accumulated
        dout: UnsafePointer<Float>,            // (N, C)
        tokens: UnsafePointer<Int32>,          // (N)
        scale: Float, rows N: Int, channels C: Int
    ) {
        struct Columns: ParallelLoop {
            let dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>
            let scale: Float, rows: Int, C: Int
            func run(_ cols: Range<Int>) {
                for row in 0..<rows {
                    let d = dout + row * C, e = dtable + Int(tokens[row]) * C
                    for c in cols { e[c] += scale * d[c] }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(C, grain: 16, Columns(dtable: dtable, dout: dout, tokens: tokens,
                                                                scale: scale, rows: N, C: C))
        }
    }
}

// Encoder: token embedding plus learned position embedding (GPT-2's input layer), forward and
// backward. The encoder-decoder's
// sinusoidal positions are SinusoidalEmbedding.
import Support

/// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]. Shapes: B batch, T time, C channels, V vocab.
public enum Encoder {
    public static func forward(
        out: UnsafeMutablePointer<Float>,      // (B, T, C)
        tokens: UnsafePointer<Int32>,          // (B, T)
        wte: UnsafePointer<Float>,             // (V, C)
        wpe: UnsafePointer<Float>,             // (maxT, C)
        batch B: Int, time T: Int, channels C: Int
    ) {
        struct Rows: ParallelLoop {
            let out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>
            let wte: UnsafePointer<Float>, wpe: UnsafePointer<Float>, T: Int, C: Int
            func run(_ rows: Range<Int>) {
                for row in rows {
                    let o = out + row * C, e = wte + Int(tokens[row]) * C, p = wpe + (row % T) * C
                    for c in 0..<C { o[c] = e[c] + p[c] }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(B * T, grain: 8, Rows(out: out, tokens: tokens, wte: wte, wpe: wpe, T: T, C: C))
        }
    }

    /// dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:]. Split over channels, so
    /// repeated tokens never race and the sum order is fixed.
    public static func backward(
        dwte: UnsafeMutablePointer<Float>,     // (V, C)
        dwpe: UnsafeMutablePointer<Float>,     // (maxT, C)
        dout: UnsafePointer<Float>,            // (B, T, C)
        tokens: UnsafePointer<Int32>,          // (B, T)
        batch B: Int, time T: Int, channels C: Int
    ) {
        struct Columns: ParallelLoop {
            let dwte: UnsafeMutablePointer<Float>, dwpe: UnsafeMutablePointer<Float>
            let dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>, rows: Int, T: Int, C: Int
            func run(_ cols: Range<Int>) {
                for row in 0..<rows {
                    let d = dout + row * C, e = dwte + Int(tokens[row]) * C, p = dwpe + (row % T) * C
                    for c in cols { e[c] += d[c]; p[c] += d[c] }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(C, grain: 16, Columns(dwte: dwte, dwpe: dwpe, dout: dout, tokens: tokens,
                                                                rows: B * T, T: T, C: C))
        }
    }
}

// Rows: rows of a matrix picked by index and their gradient added back (a table lookup such as
// BERT's token-type embedding; the MLM head's predicted positions), and a row added to every row
// with its gradient, the column sums (a bias outside a Linear, such as the MLM head's).
import Support

/// Shapes: M indexed rows, C columns; a table or source has any number of rows (≥ every index + 1).
public enum Rows {
    /// out[m,:] = table[indices[m],:], or with `accumulate` out[m,:] += table[indices[m],:].
    public static func gather(
        out: UnsafeMutablePointer<Float>,      // (M, C)
        table: UnsafePointer<Float>,           // (·, C)
        indices: UnsafePointer<Int32>,         // (M)
        rows M: Int, width C: Int, accumulate: Bool = false
    ) {
        struct Loop: ParallelLoop {
            let out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, indices: UnsafePointer<Int32>
            let C: Int, accumulate: Bool
            func run(_ rows: Range<Int>) {
                for m in rows {
                    let o = out + m * C, t = table + Int(indices[m]) * C
                    if accumulate { for c in 0..<C { o[c] += t[c] } } else { o.update(from: t, count: C) }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(M, grain: 8, Loop(out: out, table: table, indices: indices, C: C,
                                                            accumulate: accumulate))
        }
    }

    /// table[indices[m],:] += inp[m,:] (`gather`'s gradient). Split over columns, so repeated
    /// indices never race and each entry adds its rows in order.
    public static func scatterAdd(
        table: UnsafeMutablePointer<Float>,    // (·, C) accumulated
        inp: UnsafePointer<Float>,             // (M, C)
        indices: UnsafePointer<Int32>,         // (M)
        rows M: Int, width C: Int
    ) {
        struct Columns: ParallelLoop {
            let table: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, indices: UnsafePointer<Int32>
            let M: Int, C: Int
            func run(_ cols: Range<Int>) {
                for m in 0..<M {
                    let d = inp + m * C, t = table + Int(indices[m]) * C
                    for c in cols { t[c] += d[c] }
                }
            }
        }
        Profiler.measure(.embedding) {
            ThreadPool.shared.parallelFor(C, grain: 16, Columns(table: table, inp: inp, indices: indices, M: M, C: C))
        }
    }

    /// out[m,:] += row for every m.
    public static func addRow(
        _ out: UnsafeMutablePointer<Float>,    // (M, C)
        row: UnsafePointer<Float>,             // (C)
        rows M: Int, width C: Int
    ) {
        struct Loop: ParallelLoop {
            let out: UnsafeMutablePointer<Float>, row: UnsafePointer<Float>, C: Int
            func run(_ rows: Range<Int>) {
                for m in rows {
                    let o = out + m * C
                    var c = 0
                    while c + 8 <= C { o.store8(c, o.load8(c) + row.load8(c)); c += 8 }
                    while c < C { o[c] += row[c]; c += 1 }
                }
            }
        }
        Profiler.measure(.elementwise) { ThreadPool.shared.parallelFor(M, grain: 4, Loop(out: out, row: row, C: C)) }
    }

    /// sums(C) += Σ_m inp[m,:] (`addRow`'s gradient), each column in row order.
    public static func addColumnSums(
        into sums: UnsafeMutablePointer<Float>, // (C) accumulated
        from inp: UnsafePointer<Float>,         // (M, C)
        rows M: Int, width C: Int
    ) {
        Profiler.measure(.elementwise) {
            ThreadPool.shared.parallelFor(C, grain: 32, ColumnSum.Columns(into: sums, from: inp, N: M, C: C))
        }
    }
}

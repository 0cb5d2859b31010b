// kernel-microbench: one thread, each of Loom's own kernels on both kernel ISAs at the tiny and
// small GPT shapes, best of 15 batches (the machine may be shared). It is not part of the package:
// build it against a release build's objects (from the repository root, after swift build -c release):
//   B=.build/release; swiftc -O -target-cpu haswell tools/kernel-microbench.swift -o /tmp/kernel-microbench \
//     -I $B/Modules -Xcc -fmodule-map-file=$B/CKernelSupport.build/module.modulemap \
//     -Xcc -fmodule-map-file=$B/CVectorKernels.build/module.modulemap -Xcc -fmodule-map-file=Sources/CBLAS/module.modulemap \
//     -Xcc -ISources/CKernelSupport/include -Xcc -ISources/CVectorKernels/include \
//     $B/Kernels.build/*.o $B/CVectorKernels.build/*.o $B/CKernelSupport.build/*.o -lopenblas
import Kernels
import Foundation
func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
func rnd(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -1...1) } }
ThreadPool.configure(threads: 1)
/// Best of 15 batches of max(1, reps/10) calls, in µs per call (the machine is shared: the best batch is the one least disturbed).
func time(_ reps: Int, _ body: () -> Void) -> Double {
    body()
    let batch = max(1, reps / 10)
    var best = Double.infinity
    for _ in 0..<15 { let t = now(); for _ in 0..<batch { body() }; best = min(best, (now() - t) / Double(batch) * 1e6) }
    return best
}
for (name, N, C, T, D) in [("tiny", 768, 128, 64, 32), ("small", 2048, 384, 256, 64)] {
    let x = rnd(N * C), w = rnd(C), b = rnd(C), d = rnd(N * C)
    var out = [Float](repeating: 0, count: N * C), mean = [Float](repeating: 0, count: N), rstd = mean
    var dx = out, dw = w, db = b
    var big = rnd(N * 4 * C), bigOut = big
    let a = rnd(T * D), bt = rnd(D * T), v = rnd(T * D)
    var p = [Float](repeating: 0, count: T * T), o = [Float](repeating: 0, count: T * D)
    for round in 0..<2 {
        for isa in KernelISA.available {
            let ln = time(200) { LayerNorm.forward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, rows: N, channels: C, isa: isa) }
            let lnb = time(200) { LayerNorm.backward(dinp: &dx, dweight: &dw, dbias: &db, dout: d, inp: x, weight: w, mean: mean, rstd: rstd, rows: N, channels: C, isa: isa) }
            let g = time(50) { GELU.forward(out: &bigOut, inp: big, count: N * 4 * C, isa: isa) }
            let gb = time(50) { GELU.backward(dinp: &bigOut, inp: big, dout: big, count: N * 4 * C, isa: isa) }
            // one head's forward products and softmax: P = Q·Kᵀ (T×T, k = D), softmax rows, O = P·V
            let att = time(2000) {
                p.withUnsafeMutableBufferPointer { pp in
                    SmallGemm.multiply(m: T, n: T, k: D, alpha: 0.125, a: a, rowStride: D, columnStride: 1, b: bt, ldb: T, accumulate: false, c: pp.baseAddress!, ldc: T, isa: isa)
                    for i in 0..<T { Softmax.row(pp.baseAddress! + i * T, count: i + 1, isa: isa) }
                    SmallGemm.multiply(m: T, n: D, k: T, a: pp.baseAddress!, rowStride: T, columnStride: 1, b: v, ldb: D, accumulate: false, c: &o, ldc: D, isa: isa)
                }
            }
            let gemmOnly = time(2000) {
                SmallGemm.multiply(m: T, n: T, k: D, a: a, rowStride: D, columnStride: 1, b: bt, ldb: T, accumulate: false, c: &p, ldc: T, isa: isa)
            }
            print(String(format: "%@ round %d %@: layernorm fwd %.1f µs, bwd %.1f µs; GELU fwd %.1f µs, bwd %.1f µs (%d values); head fwd (gemm+softmax+gemm) %.2f µs; Q·Kᵀ %d×%d×%d %.2f µs = %.1f GFLOP/s",
                         name, round, isa.rawValue, ln, lnb, g, gb, N * 4 * C, att, T, T, D, gemmOnly, 2.0 * Double(T * T * D) / gemmOnly / 1e3))
        }
    }
    _ = big.count
}

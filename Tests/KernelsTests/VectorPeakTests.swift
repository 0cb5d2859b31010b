// VectorPeak: the multiply-add loops run (a loop that did nothing would report an impossible
// rate), each is measured exactly where the CPU has its instructions, and a precision's ceiling
// falls back to fp32's where bf16 was not measured.
import Testing
import Kernels
import Support

@Suite struct VectorPeakTests {
    /// No core retires more than four 512-bit multiply-adds a cycle at 7 GHz: 896 GFLOP/s fp32
    /// per thread, 1,792 for bf16 pair dot products (twice the FLOPs an instruction).
    @Test func ratesArePositiveAndPhysicallyPossible() throws {
        let cpu = CPUFeatures.current()
        let peak = VectorPeak.measure(cpu: cpu, pool: ThreadPool(threads: 2))
        #expect(peak.threads == 2)
        #expect((peak.fp32 != nil) == (cpu.has(.avx512f) || cpu.has(.avx2, .fma)))
        #expect((peak.bf16 != nil) == BF16Gemm.available)
        if let fp32 = peak.fp32 { #expect(fp32 > 0 && fp32 < 2 * 896, "fp32 \(fp32) GFLOP/s on 2 threads") }
        if let bf16 = peak.bf16 { #expect(bf16 > 0 && bf16 < 2 * 1792, "bf16 \(bf16) GFLOP/s on 2 threads") }
        #expect(peak.fp32Instruction == (cpu.has(.avx512f) ? "vfmadd231ps zmm" : "vfmadd231ps ymm"))
    }

    @Test func aPrecisionsCeilingIsBF16sWhereMeasuredElseFP32s() {
        let both = VectorPeak(fp32: 100, fp32Instruction: "vfmadd231ps zmm", bf16: 200, threads: 1)
        #expect(both.gflops(bf16: true) == 200 && both.gflops(bf16: false) == 100)
        let fp32Only = VectorPeak(fp32: 100, fp32Instruction: "vfmadd231ps ymm", bf16: nil, threads: 1)
        #expect(fp32Only.gflops(bf16: true) == 100)
    }
}

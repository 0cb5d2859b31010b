// The monotonic clock: it never goes backwards and measures a sleep.
import Testing
import Foundation
import Support

@Suite struct ClockTests {
    @Test func readingsNeverDecreaseAndMeasureASleep() {
        var last = monotonicNanoseconds()
        for _ in 0..<10_000 {
            let now = monotonicNanoseconds()
            #expect(now >= last)
            last = now
        }
        let t0 = monotonicSeconds()
        usleep(20_000)
        let slept = monotonicSeconds() - t0
        #expect(slept >= 0.019 && slept < 5, "slept \(slept) s")
    }
}

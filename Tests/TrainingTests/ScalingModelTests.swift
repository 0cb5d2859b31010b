// ScalingModel: the α-β fit recovers the latency and bandwidth that generated its timings, and
// the predictions keep the orderings the ring algorithm implies.
import Testing
import Training

@Suite struct ScalingModelTests {
    @Test func theFitRecoversLatencyAndBandwidth() throws {
        let alpha = 23e-6, beta = 1.7e9
        let timings = [1024, 16384, 262_144, 4_194_304].map { n in
            CollectiveTiming(bytes: n, seconds: LinkFit(latency: alpha, bandwidth: beta).allReduce(bytes: Double(n), hosts: 2))
        }
        let fit = try LinkFit(twoHostAllReduce: timings)
        #expect(abs(fit.latency - alpha) / alpha < 1e-6)
        #expect(abs(fit.bandwidth - beta) / beta < 1e-6)
        #expect(throws: ScalingModelError.self) { try LinkFit(twoHostAllReduce: [timings[0], timings[0]]) }
        #expect(fit.capped(gigabitsPerSecond: 10).bandwidth == 10e9 / 8)
        #expect(abs(fit.capped(gigabitsPerSecond: 100).bandwidth - beta) / beta < 1e-6, "a link faster than the host keeps the host's rate")
    }

    @Test func predictionsFollowTheRing() {
        let link = LinkFit(latency: 20e-6, bandwidth: 25e9 / 8)
        let inputs = ScalingInputs(computeSeconds: 0.2, backwardShare: 0.6, optimizerShare: 0.05,
                                   gradientBytes: 500_000_000, buckets: 12, fit: link)
        let alone = ScalingModel.predict(inputs, hosts: 1, mode: .overlapped, link: link)
        #expect(alone.stepSeconds == inputs.computeSeconds && alone.efficiency == 1)
        var previous = 1.0
        for hosts in [2, 8, 32, 128] {
            let blocking = ScalingModel.predict(inputs, hosts: hosts, mode: .blocking, link: link)
            let overlapped = ScalingModel.predict(inputs, hosts: hosts, mode: .overlapped, link: link)
            let zero = ScalingModel.predict(inputs, hosts: hosts, mode: .zero1, link: link)
            #expect(abs(blocking.stepSeconds - (0.2 + link.allReduce(bytes: 5e8, hosts: hosts))) < 1e-12)
            #expect(overlapped.stepSeconds <= blocking.stepSeconds && overlapped.stepSeconds > inputs.computeSeconds)
            // A reduce-scatter and an all-gather move what one all-reduce moves.
            #expect(abs(zero.communicationSeconds - blocking.communicationSeconds) < 1e-12)
            #expect(blocking.efficiency < previous)
            previous = blocking.efficiency
        }
        // The bandwidth term approaches 2n/β: doubling the hosts from 64 to 128 barely adds.
        let t64 = link.allReduce(bytes: 5e8, hosts: 64), t128 = link.allReduce(bytes: 5e8, hosts: 128)
        #expect(t128 > t64 && t128 < 1.02 * t64)
    }
}

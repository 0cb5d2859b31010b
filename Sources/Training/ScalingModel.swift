// ScalingModel: predicts data-parallel step time and efficiency on many hosts from what one run
// measured — the compute time of a step on one host, and collective times at several message
// sizes between two hosts — with the ring algorithm's latency-bandwidth (α-β) cost, at given
// link speeds, with and without overlap, and with ZeRO-1 (a reduce-scatter before the update and
// an all-gather after it). Pure arithmetic over its inputs, which it prints, so a reader can check.
import Foundation

/// One measured collective: `bytes` reduced across `hosts` hosts in `seconds` (best of several).
public struct CollectiveTiming: Codable, Equatable {
    public var bytes: Int
    public var seconds: Double
    public init(bytes: Int, seconds: Double) { self.bytes = bytes; self.seconds = seconds }
}

/// α (seconds per message step) and β (bytes per second) of a ring all-reduce, from timings on
/// two hosts, where T(n) = 2(P−1)α + 2(P−1)/P · n/β is 2α + n/β: a least-squares line.
public struct LinkFit: Equatable {
    public var latency: Double
    public var bandwidth: Double

    public init(latency: Double, bandwidth: Double) { self.latency = latency; self.bandwidth = bandwidth }

    /// Fits T = a + b·n to the timings (at least two distinct sizes), then α = a/2, β = 1/b. The
    /// fit weighs each timing by 1/T² (it minimises relative errors), so the small messages, which
    /// measure the latency, count as much as the large ones, which measure the bandwidth.
    public init(twoHostAllReduce timings: [CollectiveTiming]) throws {
        let xs = timings.map { Double($0.bytes) }, ys = timings.map(\.seconds)
        guard Set(xs).count >= 2 else { throw ScalingModelError("need all-reduce timings at two or more message sizes, got \(timings.count)") }
        let ws = ys.map { 1 / max($0 * $0, 1e-30) }, wsum = ws.reduce(0, +)
        let mx = zip(ws, xs).reduce(0) { $0 + $1.0 * $1.1 } / wsum, my = zip(ws, ys).reduce(0) { $0 + $1.0 * $1.1 } / wsum
        let sxy = zip(ws, zip(xs, ys)).reduce(0) { $0 + $1.0 * ($1.1.0 - mx) * ($1.1.1 - my) }
        let sxx = zip(ws, xs).reduce(0) { $0 + $1.0 * ($1.1 - mx) * ($1.1 - mx) }
        let slope = sxy / sxx
        guard slope > 0 else { throw ScalingModelError("the all-reduce timings do not grow with the message size (slope \(slope) s/byte)") }
        latency = max(0, (my - slope * mx) / 2)
        bandwidth = 1 / slope
    }

    /// The same fit with the bandwidth capped by a link of `gigabits` Gbit/s.
    public func capped(gigabitsPerSecond gigabits: Double?) -> LinkFit {
        guard let gigabits else { return self }
        return LinkFit(latency: latency, bandwidth: min(bandwidth, gigabits * 1e9 / 8))
    }

    /// Ring all-reduce of `bytes` over `hosts` hosts.
    public func allReduce(bytes: Double, hosts: Int) -> Double {
        guard hosts > 1 else { return 0 }
        let p = Double(hosts)
        return 2 * (p - 1) * latency + 2 * (p - 1) / p * bytes / bandwidth
    }

    /// Ring reduce-scatter (or all-gather) of `bytes` in total: half an all-reduce.
    public func reduceScatter(bytes: Double, hosts: Int) -> Double {
        guard hosts > 1 else { return 0 }
        let p = Double(hosts)
        return (p - 1) * latency + (p - 1) / p * bytes / bandwidth
    }
}

public struct ScalingModelError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// What the model is fed: one host's step, the gradient, and the two-host collectives.
public struct ScalingInputs {
    /// A step's compute on one host (forward, backward, update), seconds.
    public var computeSeconds: Double
    /// The share of the compute that is backward, under which reductions can hide.
    public var backwardShare: Double
    /// The share of the compute that is the optimizer update (divided by the hosts under ZeRO-1).
    public var optimizerShare: Double
    public var gradientBytes: Int
    public var buckets: Int
    public var fit: LinkFit

    public init(computeSeconds: Double, backwardShare: Double, optimizerShare: Double, gradientBytes: Int, buckets: Int, fit: LinkFit) {
        self.computeSeconds = computeSeconds; self.backwardShare = backwardShare; self.optimizerShare = optimizerShare
        self.gradientBytes = gradientBytes; self.buckets = max(1, buckets); self.fit = fit
    }
}

/// One prediction: the step time on `hosts` hosts and its efficiency (compute / step).
public struct ScalingPrediction: Equatable {
    public enum Mode: String, CaseIterable { case blocking, overlapped, zero1 = "zero-1" }
    public var hosts: Int
    public var mode: Mode
    public var communicationSeconds: Double
    public var stepSeconds: Double
    public var efficiency: Double
}

public enum ScalingModel {
    /// The step on `hosts` hosts (weak scaling: each host keeps its batch, so compute stays).
    /// Blocking: compute + the all-reduce. Overlapped: the all-reduce hides under backward but
    /// for the last bucket, which can only start when backward ends. ZeRO-1: the reduce-scatter
    /// overlaps as the all-reduce does, the update runs on 1/hosts of the parameters, and the
    /// all-gather of parameters waits in full before the next forward.
    public static func predict(_ inputs: ScalingInputs, hosts: Int, mode: ScalingPrediction.Mode, link: LinkFit) -> ScalingPrediction {
        let n = Double(inputs.gradientBytes), compute = inputs.computeSeconds
        let backward = inputs.backwardShare * compute
        let lastBucket = n / Double(inputs.buckets)
        var communication: Double, step: Double
        switch mode {
        case .blocking:
            communication = link.allReduce(bytes: n, hosts: hosts)
            step = compute + communication
        case .overlapped:
            communication = link.allReduce(bytes: n, hosts: hosts)
            step = compute + max(link.allReduce(bytes: lastBucket, hosts: hosts), communication - backward)
        case .zero1:
            let scatter = link.reduceScatter(bytes: n, hosts: hosts), gather = link.reduceScatter(bytes: n, hosts: hosts)
            communication = scatter + gather
            let update = inputs.optimizerShare * compute
            let shardedCompute = compute - update + update / Double(max(hosts, 1))
            step = shardedCompute + max(link.reduceScatter(bytes: lastBucket, hosts: hosts), scatter - backward) + gather
        }
        if hosts <= 1 { communication = 0; step = compute }
        return ScalingPrediction(hosts: hosts, mode: mode, communicationSeconds: communication, stepSeconds: step,
                                 efficiency: compute / step)
    }

    /// The report: inputs, the fit, and a table of predictions per link speed, host count and mode.
    public static func report(_ inputs: ScalingInputs, hosts: [Int], linksGigabits: [Double?]) -> String {
        var lines: [String] = []
        lines.append("inputs:")
        lines.append(String(format: "  compute per step on one host  %.2f ms (backward %.0f %%, optimizer update %.1f %%)",
                            inputs.computeSeconds * 1e3, 100 * inputs.backwardShare, 100 * inputs.optimizerShare))
        lines.append(String(format: "  gradient                      %.2f MiB in %d bucket(s)", Double(inputs.gradientBytes) / 1048576, inputs.buckets))
        lines.append(String(format: "  fit of the 2-host all-reduce  α = %.1f µs per ring step, β = %.2f GB/s (T = 2(P−1)α + 2(P−1)/P·n/β)",
                            inputs.fit.latency * 1e6, inputs.fit.bandwidth / 1e9))
        for link in linksGigabits {
            let fit = inputs.fit.capped(gigabitsPerSecond: link)
            lines.append("")
            lines.append(link.map { String(format: "link %.0f Gbit/s (β = min(measured, link) = %.2f GB/s):", $0, fit.bandwidth / 1e9) }
                         ?? String(format: "link as measured (β = %.2f GB/s):", fit.bandwidth / 1e9))
            lines.append("  hosts   blocking step  eff.   overlapped step  eff.   ZeRO-1 step  eff.")
            for p in hosts {
                let row = ScalingPrediction.Mode.allCases.map { predict(inputs, hosts: p, mode: $0, link: fit) }
                lines.append(String(format: "  %5d   %10.2f ms  %4.0f%%   %12.2f ms  %4.0f%%   %8.2f ms  %4.0f%%", p,
                                    row[0].stepSeconds * 1e3, 100 * row[0].efficiency, row[1].stepSeconds * 1e3, 100 * row[1].efficiency,
                                    row[2].stepSeconds * 1e3, 100 * row[2].efficiency))
            }
        }
        return lines.joined(separator: "\n")
    }
}

// ScalingCommand: `loom scaling --one-host A.json --two-hosts B.json` — feeds two `loom bench
// --json` results (one host; two hosts with --collectives) to Training's ScalingModel and prints
// its inputs, its fit, the two-host check and predicted step times for many hosts.
import ArgumentParser
import Foundation
import Training

struct ScalingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Predict data-parallel step time and efficiency on many hosts from two benchmarks (launch/scaling --predict runs them).")

    @Option(name: .customLong("one-host"), help: "`loom bench --json --profile` on one host (compute per step, optimizer share).")
    var oneHost: String
    @Option(name: .customLong("two-hosts"), help: "`loom bench --json --collectives` on two hosts, one rank each (all-reduce timings, measured step).")
    var twoHosts: String
    @Option(help: "Host counts to predict, comma-separated.") var hosts = "2,4,8,16,32,64,128,256"
    @Option(help: "Link speeds in Gbit/s, comma-separated ('measured' for the fit's own bandwidth).") var links = "measured,10,25,100"
    @Option(name: .customLong("backward-share"),
            help: "Share of the non-optimizer compute that is backward (2/3: backward's products are twice forward's).")
    var backwardShare = 2.0 / 3.0
    @Flag(help: "Print one JSON object instead of the report.") var json = false

    func run() throws {
        try reportingErrors {
            let one = try Self.read(oneHost), two = try Self.read(twoHosts)
            guard let compute = one["step_ms"] as? Double, let gradient = one["gradient_bytes"] as? Int else {
                throw ValidationError("\(oneHost): no step_ms or gradient_bytes (is it `loom bench --json` output?)")
            }
            guard (two["ranks"] as? Int) == 2, let raw = two["collectives"] as? [[String: Any]], let measured = two["step_ms"] as? Double else {
                throw ValidationError("\(twoHosts): needs `loom bench --json --collectives` on 2 ranks (one per host)")
            }
            let timings = raw.compactMap { t -> CollectiveTiming? in
                guard let b = t["bytes"] as? Int, let s = t["seconds"] as? Double else { return nil }
                return CollectiveTiming(bytes: b, seconds: s)
            }
            let optimizerMs = (one["profile_ms_per_step"] as? [String: Any])?["optimizer"] as? Double ?? 0
            let optimizerShare = optimizerMs / compute
            let inputs = ScalingInputs(computeSeconds: compute / 1e3, backwardShare: backwardShare * (1 - optimizerShare),
                                       optimizerShare: optimizerShare, gradientBytes: gradient,
                                       buckets: two["buckets"] as? Int ?? 1, fit: try LinkFit(twoHostAllReduce: timings))
            let hostCounts = try hosts.split(separator: ",").map { s -> Int in
                guard let n = Int(s), n >= 1 else { throw ValidationError("--hosts: '\(s)' is not a host count") }
                return n
            }
            let linkSpeeds = try links.split(separator: ",").map { s -> Double? in
                if s == "measured" { return nil }
                guard let g = Double(s), g > 0 else { throw ValidationError("--links: '\(s)' is not a speed in Gbit/s") }
                return g
            }
            let scatters = (two["reduce_scatter"] as? [[String: Any]] ?? []).compactMap { t -> CollectiveTiming? in
                guard let b = t["bytes"] as? Int, let s = t["seconds"] as? Double else { return nil }
                return CollectiveTiming(bytes: b, seconds: s)
            }
            let check = ScalingModel.predict(inputs, hosts: 2, mode: .overlapped, link: inputs.fit)
            let error = check.stepSeconds * 1e3 / measured - 1
            if json {
                let out: [String: Any] = [
                    "compute_ms": compute, "optimizer_share": optimizerShare, "backward_share": inputs.backwardShare,
                    "gradient_bytes": gradient, "latency_us": inputs.fit.latency * 1e6, "bandwidth_gbs": inputs.fit.bandwidth / 1e9,
                    "two_host_predicted_ms": check.stepSeconds * 1e3, "two_host_measured_ms": measured, "two_host_error": error,
                    "two_host_hidden_share": two["hidden_share"] as? Double ?? 0]
                    .merging(scatters.max(by: { $0.bytes < $1.bytes }).map { t in
                        ["reduce_scatter_ms": t.seconds * 1e3,
                         "reduce_scatter_bus_gbs": AllReduceCost.busBandwidth(bytes: t.bytes, seconds: t.seconds, ranks: 2, reduceScatter: true) / 1e9]
                    } ?? [:]) { a, _ in a }
                let data = try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("loom scaling: \(oneHost) (one host), \(twoHosts) (two hosts)")
            print("  all-reduce timings on two hosts: " + timings.map { String(format: "%d B %.3f ms", $0.bytes, $0.seconds * 1e3) }.joined(separator: ", "))
            func bus(_ t: CollectiveTiming, scatter: Bool) -> String {
                String(format: "%.2f GB/s bus", AllReduceCost.busBandwidth(bytes: t.bytes, seconds: t.seconds, ranks: 2, reduceScatter: scatter) / 1e9)
            }
            if let whole = timings.max(by: { $0.bytes < $1.bytes }) {
                print(String(format: "  all-reduce of the gradient (%d B): %.3f ms, %@", whole.bytes, whole.seconds * 1e3, bus(whole, scatter: false)))
            }
            if let whole = scatters.max(by: { $0.bytes < $1.bytes }) {
                let modelled = inputs.fit.reduceScatter(bytes: Double(whole.bytes), hosts: 2)
                print(String(format: "  reduce-scatter of the gradient (%d B): %.3f ms, %@ (the fit predicts %.3f ms: %+.1f %%)",
                             whole.bytes, whole.seconds * 1e3, bus(whole, scatter: true), modelled * 1e3,
                             100 * (modelled / whole.seconds - 1)))
            }
            print(ScalingModel.report(inputs, hosts: hostCounts, linksGigabits: linkSpeeds))
            print("")
            print(String(format: "check: two hosts, overlapped, as measured: predicted %.2f ms per step, measured %.2f ms (%+.1f %%)",
                         check.stepSeconds * 1e3, measured, 100 * error))
            if let exposed = two["exposed_allreduce_ms"] as? Double, let hidden = two["hidden_share"] as? Double {
                print(String(format: "  measured on two hosts: all-reduce exposed %.2f ms per step, %.0f %% of it hidden under backward; "
                             + "step %.2f ms against %.2f on one host", exposed, 100 * hidden, measured, compute))
            }
        }
    }

    static func read(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read") }
        // The last JSON line (mpirun may print other lines first).
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n").reversed() {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { return object }
        }
        throw ValidationError("\(path): no JSON object (expected `loom bench --json` output)")
    }
}

// The binary end to end: a tiny training with `logging.tensorboard=true`, paused and resumed,
// writes one events file per process whose scalars are its metrics.jsonl lines; `loom plot`
// draws the runs as an SVG, and bad input fails with the file named and no SVG written.
import Testing
import Foundation
import TestSupport

@Suite(.serialized) struct PlotCLITests {
    /// metrics.jsonl's records.
    func records(_ run: String) throws -> [[String: Any]] {
        try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func tensorboardEventsFollowTheMetricsThroughAResume() throws {
        let dir = try scratchDirectory()
        let corpus = String(repeating: "the cat sat on the mat. the dog sat on the log.\n", count: 60)
        try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
        try tinyConfig.write(toFile: dir + "/tiny.yaml", atomically: true, encoding: .utf8)
        let common = ["train", "tiny.yaml", "--run-dir", "run", "--set", "logging.tensorboard=true",
                      "--set", "evaluation.interval=20", "--set", "checkpoint.interval=20"]
        let first = try loom(common + ["--stop-after", "30"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try loom(common + ["--resume", "latest"], in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/tensorboard").sorted()
        #expect(files.count == 2 && files.allSatisfy { $0.hasPrefix("events.out.tfevents.") }, "\(files)")
        guard files.count == 2 else { return }
        let before = try readEvents(dir + "/run/tensorboard/" + files[0])
        let after = try readEvents(dir + "/run/tensorboard/" + files[1])
        #expect(before.first?.fileVersion == "brain.Event:2" && after.first?.fileVersion == "brain.Event:2")
        // The resumed process restarts at its checkpoint (step 30): TensorBoard drops the first
        // file's events from step 31 on, as metrics.jsonl dropped their lines.
        let start = try #require(after.dropFirst().first)
        #expect(start.sessionStatus == 1 && start.step == 31)
        var merged = before.dropFirst().filter { $0.step < start.step } + after.dropFirst(2)
        merged = merged.filter { !$0.values.isEmpty }
        let lines = try records(dir + "/run")
        #expect(merged.count == lines.count)
        for (event, line) in zip(merged, lines) {
            #expect(event.step == Int64(line["step"] as! Int))
            let values = Dictionary(event.values.map { ($0.tag, $0.value) }) { a, _ in a }
            if let validation = line["val_loss"] as? Double {
                #expect(values == ["val/loss": Float(validation)])
            } else {
                #expect(values["train/loss"] == Float(line["train_loss"] as! Double))
                #expect(values["train/lr"] == Float(line["lr"] as! Double))
                #expect(values["train/grad_norm"] == Float(line["grad_norm"] as! Double))
                #expect(values["train/tokens"] == Float(line["tokens"] as! Int))
                #expect(values.count == line.count - 1)
            }
        }
        // The default writes no events.
        let plain = try loom(["train", "tiny.yaml", "--run-dir", "plain", "--set", "training.steps=10"], in: dir)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/plain/tensorboard"))

        // Both runs on one plot; the resumed run is noted.
        let plot = try loom(["plot", "run", "plain", "--out", "curves.svg", "--x", "time", "--title", "two runs"], in: dir)
        #expect(plot.status == 0, "\(plot.stderr)")
        #expect(plot.stderr.contains("run: resumed 1 time(s)"), "\(plot.stderr)")
        let svg = try String(contentsOfFile: dir + "/curves.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<?xml") && svg.contains("viewBox") && svg.hasSuffix("</svg>\n"))
        for series in ["train", "val", "lr"] { #expect(svg.contains("data-run=\"run\" data-series=\"\(series)\"")) }
        #expect(svg.contains("data-run=\"plain\" data-series=\"train\"") && svg.contains("training time (s)"))
    }

    @Test func badInputFailsNamingTheFileAndWritesNothing() throws {
        let dir = try scratchDirectory()
        let missing = try loom(["plot", "nowhere", "--out", "a.svg"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("nowhere: no such run directory"), "\(missing.stderr)")
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let noMetrics = try loom(["plot", "empty", "--out", "a.svg"], in: dir)
        #expect(noMetrics.status != 0 && noMetrics.stderr.contains("empty/metrics.jsonl: no such file"), "\(noMetrics.stderr)")
        try "".write(toFile: dir + "/empty/metrics.jsonl", atomically: true, encoding: .utf8)
        let empty = try loom(["plot", "empty", "--out", "a.svg"], in: dir)
        #expect(empty.status != 0 && empty.stderr.contains("empty/metrics.jsonl: no metrics records"), "\(empty.stderr)")
        try "{\"step\": 1, \"train_loss\": 2.0, \"lr\": 0.1}\n{\"step\": 2, \"train_lo".write(
            toFile: dir + "/empty/metrics.jsonl", atomically: true, encoding: .utf8)
        let malformed = try loom(["plot", "empty", "--out", "a.svg"], in: dir)
        #expect(malformed.status != 0 && malformed.stderr.contains("empty/metrics.jsonl:2: not a JSON object"), "\(malformed.stderr)")
        let axis = try loom(["plot", "empty", "--out", "a.svg", "--x", "epochs"], in: dir)
        #expect(axis.status != 0 && axis.stderr.contains("--x must be one of step, tokens, time"), "\(axis.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.svg"))
        // A previous SVG stays as it was.
        try "old".write(toFile: dir + "/a.svg", atomically: true, encoding: .utf8)
        _ = try loom(["plot", "empty", "--out", "a.svg"], in: dir)
        #expect(try String(contentsOfFile: dir + "/a.svg", encoding: .utf8) == "old")
    }
}

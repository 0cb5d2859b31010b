// InspectCommand: `loom inspect CHECKPOINT|RUN` — a checkpoint's step, state, config, tensor table
// and manifest verification.
import ArgumentParser
import Foundation
import Training

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect",
                                                    abstract: "Show and verify a checkpoint (or a run's latest checkpoint).")

    @Argument(help: "A checkpoint directory (RUN/checkpoints/step-N) or a run directory.") var path: String
    @Flag(help: "Print the resolved config stored in the checkpoint.") var config = false

    func run() throws {
        try reportingErrors {
            guard FileManager.default.fileExists(atPath: path) else {
                throw RunNotFoundError(path: path, expected: "checkpoint or run directory")
            }
            var target = path
            let store = CheckpointStore(run: path, keep: 1)
            if !FileManager.default.fileExists(atPath: path + "/manifest.json"), let newest = store.list().last {
                target = newest
            }
            print("checkpoint \(target)")
            let state: [String: Any]
            do { state = try CheckpointStore.verify(target) } catch {
                print("  manifest: FAILED")
                throw error
            }
            print("  manifest: every file present, sizes and SHA-256 match")
            for key in ["step", "tokens_seen", "optimizer_updates", "skipped_steps", "world_size", "seed",
                        "validation_loss", "best_validation_loss", "loom_version"] {
                if let value = state[key], !(value is NSNull) { print("  " + key.padding(toLength: 20, withPad: " ", startingAt: 0) + "\(value)") }
            }
            if let schedule = state["schedule"] as? [String: Any] {
                print("  schedule            \(schedule["kind"] ?? "?"), plateau scale \(schedule["plateau_scale"] ?? 1)")
            }
            for file in ["model.safetensors", "optimizer.safetensors"] {
                let data = try Data(contentsOf: URL(fileURLWithPath: target + "/" + file), options: .mappedIfSafe)
                let header = try Safetensors.readHeader(data, path: target + "/" + file)
                let total = header.tensors.values.reduce(0) { $0 + $1.range.count / 4 }
                print("  \(file): \(header.tensors.count) tensors, \(total) values")
                if file == "model.safetensors" {
                    for (name, entry) in header.tensors.sorted(by: { $0.value.range.lowerBound < $1.value.range.lowerBound }) {
                        let shape = "(" + entry.shape.map(String.init).joined(separator: ", ") + ")"
                        print("    " + name.padding(toLength: 28, withPad: " ", startingAt: 0) + shape.padding(toLength: 14, withPad: " ", startingAt: 0)
                              + "\(entry.range.count / 4)")
                    }
                }
            }
            if config, let text = state["config"] as? String { print("  config:\n" + text.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")) }
        }
    }
}

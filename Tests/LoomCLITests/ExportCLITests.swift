// `loom export --format hf` and `loom train --init-from` through the binary: a trained GPT exported
// and imported again computes what it did (same validation loss, same greedy text, same weights),
// continues training the same from a run's or a checkpoint's export, and a failed or interrupted
// export leaves no directory behind.
import Testing
import Foundation
import Models
import Training
import Data
import Support
import TestSupport

let exportConfig = """
model: {layers: 2, heads: 2, width: 32, context_length: 16}
data: {corpus: corpus.txt}
training: {steps: 60, batch_size: 8, micro_batch_size: 8, seed: 5, threads: 1}
optimizer: {learning_rate: 1.0e-2}
schedule: {kind: cosine, warmup_steps: 5, minimum_learning_rate: 1.0e-3}
evaluation: {interval: 0, batches: 4}
logging: {interval: 10}
checkpoint: {interval: 30, keep: 2}
"""

/// Settings that make one training step leave the weights as they are (an update of ~1e-30
/// vanishes against weights of ~1e-2), so the run's model is the model it started from.
let frozenStep = ["--set", "training.steps=1", "--set", "optimizer.learning_rate=1e-30", "--set", "schedule.warmup_steps=0",
                  "--set", "schedule.minimum_learning_rate=0"]

let exportCorpus = String(repeating: "the cat sat on the mat. the dog sat on the log.\nwhere is the cat? on the mat!\n", count: 40)

func exportScratch() throws -> String {
    let dir = try scratchDirectory()
    let corpus = exportCorpus
    try corpus.write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    try exportConfig.write(toFile: dir + "/gpt.yaml", atomically: true, encoding: .utf8)
    return dir
}

/// Every tensor of a Loom model file, by name.
func tensors(_ path: String) throws -> [String: [Float]] {
    let file = try SafetensorsFile(path: path)
    var all: [String: [Float]] = [:]
    for name in file.entries.keys { all[name] = try file.floats(name) }
    return all
}

@Suite(.serialized) struct ExportCLITests {
    @Test func exportThenImportComputesTheSameModel() throws {
        let dir = try exportScratch()
        let a = try loom(["train", "gpt.yaml", "--run-dir", "a", "--json"], in: dir)
        #expect(a.status == 0, "\(a.stderr)")
        let resolved = try String(contentsOfFile: dir + "/a/config.yaml", encoding: .utf8)
        let characters = Set(exportCorpus.unicodeScalars).count
        #expect(resolved.contains("vocabulary_size: \(characters)"), "\(resolved)")
        let export = try loom(["export", "a", "--format", "hf", "--out", "a-hf", "--json"], in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        let fields = try #require(jsonEvents(export.stdout).first)
        #expect(fields["replaced"] as? Bool == false && fields["kind"] as? String == "gpt")
        let files = try #require(fields["files"] as? [String])
        #expect(Set(files) == ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", ModelExport.markerName])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/a-hf")) == Set(files))
        let config = try HuggingFaceGPT2.readConfig(dir + "/a-hf/config.json")
        #expect(config.shape.layers == 2 && config.shape.width == 32 && config.shape.vocabularySize == characters && config.bosTokenID == nil)
        // The exported character tokenizer reads back as the run's.
        let original = try TokenizerFile.load(dir + "/a/tokenizer.json"), exported = try TokenizerFile.load(dir + "/a-hf/tokenizer.json")
        let text = "where is the dog?\non the log.\n"
        #expect(try exported.encode(text) == original.encode(text) && exported.decode(try exported.encode(text)) == text)

        // Imported and not moved: the same weights, validation loss and greedy text as the original.
        let b = try loom(["train", "gpt.yaml", "--init-from", "a-hf", "--run-dir", "b", "--json"] + frozenStep, in: dir)
        #expect(b.status == 0, "\(b.stderr)")
        let lossA = try #require(trainSummary(a.stdout)["val_loss"] as? Double), lossB = try #require(trainSummary(b.stdout)["val_loss"] as? Double)
        #expect(lossA == lossB)
        #expect(try tensors(dir + "/a/model.safetensors") == tensors(dir + "/b/model.safetensors"))
        let sampleA = try loom(["sample", "a", "--prompt", "the ", "--max-tokens", "60", "--temperature", "0"], in: dir)
        let sampleB = try loom(["sample", "b", "--prompt", "the ", "--max-tokens", "60", "--temperature", "0"], in: dir)
        #expect(sampleA.status == 0 && sampleA.stdout == sampleB.stdout && sampleA.stdout.count > 60)
        // Its resolved config states the imported shape and tokenizer, and it exports again.
        let resolvedB = try String(contentsOfFile: dir + "/b/config.yaml", encoding: .utf8)
        #expect(resolvedB.contains("init_from: a-hf") && resolvedB.contains("tokenizer: a-hf/tokenizer.json"), "\(resolvedB)")
        let again = try loom(["export", "b", "--out", "b-hf"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try tensors(dir + "/a-hf/model.safetensors") == tensors(dir + "/b-hf/model.safetensors"))

        // Continued training: from the run's export and from its final checkpoint's export alike.
        let checkpoint = "a/checkpoints/" + CheckpointStore.name(step: 60)
        #expect(try loom(["export", checkpoint, "--out", "a-ck-hf"], in: dir).status == 0)
        let continued = ["--set", "training.steps=20", "--set", "optimizer.learning_rate=3e-3", "--set", "schedule.warmup_steps=0"]
        let c = try loom(["train", "gpt.yaml", "--init-from", "a-hf", "--run-dir", "c", "--json"] + continued, in: dir)
        let d = try loom(["train", "gpt.yaml", "--init-from", "a-ck-hf", "--run-dir", "d", "--json"] + continued, in: dir)
        #expect(c.status == 0 && d.status == 0, "\(c.stderr)\(d.stderr)")
        let lossesC = events(c.stdout, "log").compactMap { $0["train_loss"] as? Double }
        #expect(lossesC.count >= 2 && lossesC == events(d.stdout, "log").compactMap { $0["train_loss"] as? Double })
        #expect(try tensors(dir + "/c/model.safetensors") == tensors(dir + "/d/model.safetensors"))
        #expect(try tensors(dir + "/c/model.safetensors") != tensors(dir + "/a/model.safetensors"))
    }

    @Test func byteLevelBPEExportsWithItsSpecialTokenAndImportsFromVocabAndMerges() throws {
        let dir = try exportScratch()
        let tok = try loom(["tokenizer", "train", "--vocab-size", "280", "--special", "<|endoftext|>", "--out", "tok.json", "corpus.txt"], in: dir)
        #expect(tok.status == 0, "\(tok.stderr)")
        let a = try loom(["train", "gpt.yaml", "--set", "data.tokenizer=tok.json", "--set", "training.steps=10", "--run-dir", "a", "--json"], in: dir)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(try loom(["export", "a", "--out", "a-hf"], in: dir).status == 0)
        let trained = try TokenizerFile.load(dir + "/tok.json")
        let end = try #require(trained.specialTokenID("<|endoftext|>"))
        let config = try HuggingFaceGPT2.readConfig(dir + "/a-hf/config.json")
        #expect(config.bosTokenID == Int(end) && config.eosTokenID == Int(end) && config.shape.vocabularySize == trained.vocabularySize)
        let special = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/a-hf/tokenizer_config.json"))) as? [String: Any])
        #expect(special["eos_token"] as? String == "<|endoftext|>" && special["clean_up_tokenization_spaces"] as? Bool == false)
        // Without tokenizer.json the directory's vocab.json + merges.txt are the tokenizer.
        try FileManager.default.removeItem(atPath: dir + "/a-hf/tokenizer.json")
        let b = try loom(["train", "gpt.yaml", "--init-from", "a-hf", "--run-dir", "b", "--json"] + frozenStep, in: dir)
        #expect(b.status == 0, "\(b.stderr)")
        let text = "the cat sat<|endoftext|>where is the dog?"
        #expect(try TokenizerFile.load(dir + "/b/tokenizer.json").encode(text) == TokenizerFile.load(dir + "/tok.json").encode(text))
        #expect(trainSummary(a.stdout)["val_loss"] as? Double == trainSummary(b.stdout)["val_loss"] as? Double)
    }

    @Test func anExportReplacesOnlyAnExportAndAFailedOneLeavesNothing() throws {
        let dir = try exportScratch()
        #expect(try loom(["train", "gpt.yaml", "--set", "training.steps=5", "--run-dir", "a"], in: dir).status == 0)
        #expect(try loom(["export", "a", "--out", "out"], in: dir).status == 0)
        let replaced = try loom(["export", "a", "--out", "out", "--json"], in: dir)
        #expect(replaced.status == 0 && jsonEvents(replaced.stdout).first?["replaced"] as? Bool == true, "\(replaced.stderr)")
        // A directory of other files is refused and kept as it was.
        try FileManager.default.createDirectory(atPath: dir + "/mine", withIntermediateDirectories: false)
        try "keep".write(toFile: dir + "/mine/notes.txt", atomically: true, encoding: .utf8)
        let refused = try loom(["export", "a", "--out", "mine"], in: dir)
        #expect(refused.status == 1 && refused.stderr.contains("mine: is not empty and not a Loom export"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/mine") == ["notes.txt"])
        // A damaged model fails the export: no directory, no staging directory left.
        try FileManager.default.copyItem(atPath: dir + "/a", toPath: dir + "/damaged")
        let model = try Data(contentsOf: URL(fileURLWithPath: dir + "/damaged/model.safetensors"))
        try model.prefix(model.count / 2).write(to: URL(fileURLWithPath: dir + "/damaged/model.safetensors"))
        let failed = try loom(["export", "damaged", "--out", "broken"], in: dir)
        #expect(failed.status == 1 && failed.stderr.contains("damaged/model.safetensors"), "\(failed.stderr)")
        let entries = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!entries.contains { $0.contains("broken") }, "\(entries)")
        // The staging directory of an export that died (a process id no Loom runs) is removed by the next export there.
        let leftover = dir + "/.late.loomtmp-\(Temporaries.host)-999999"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: false)
        try "partial".write(toFile: leftover + "/config.json", atomically: true, encoding: .utf8)
        #expect(try loom(["export", "a", "--out", "late"], in: dir).status == 0)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(FileManager.default.fileExists(atPath: dir + "/late/model.safetensors"))
    }
}

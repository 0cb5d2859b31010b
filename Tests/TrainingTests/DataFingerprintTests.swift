// DataFingerprint: the files a config reads and their digests — a changed corpus, shard or
// tokenizer changes its own entry and no other; shards are named by their recorded checksums.
import Testing
import Foundation
import Training
import Data

@Suite struct DataFingerprintTests {
    @Test func aChangedCorpusChangesItsDigest() throws {
        let dir = try scratch()
        try DataConfigTests.text.write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        let config = try LoomConfig.parse(yaml: minimalYAML, file: "t.yaml", overrides: ["data.corpus=\(dir)/c.txt"])
        let before = DataFingerprint.files(config: config)
        #expect(before.map(\.path) == [dir + "/c.txt"])
        #expect(before[0].digest.hasPrefix("sha256:") && before[0].digest.count == 7 + 64)
        #expect(DataFingerprint.files(config: config) == before, "the same bytes give the same digest")
        try DataConfigTests.text.replacingOccurrences(of: "question", with: "questiom")
            .write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        #expect(DataFingerprint.files(config: config)[0].digest != before[0].digest)
        try FileManager.default.removeItem(atPath: dir + "/c.txt")
        #expect(DataFingerprint.files(config: config)[0].digest == "missing")
    }

    @Test func shardsAreNamedByTheirRecordedChecksumsAndOneChangedShardIsTheOnlyDifference() throws {
        let dir = try scratch(), bpe = try DataConfigTests.bpe()
        let text = DataConfigTests.text
        try text.write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try text.replacingOccurrences(of: "question.\n", with: "questions\n").write(toFile: dir + "/b.txt", atomically: true, encoding: .utf8)
        _ = try CorpusTokenizer.tokenize(files: [dir + "/a.txt"], tokenizer: bpe, out: dir + "/one", shardTokens: 50)
        _ = try CorpusTokenizer.tokenize(files: [dir + "/b.txt"], tokenizer: bpe, out: dir + "/two", shardTokens: 50)
        let config = try LoomConfig.parse(yaml: shardYAML, file: "t.yaml", overrides: ["data.shards=\(dir)/one"])
        let files = DataFingerprint.files(config: config)
        let index = try ShardIndex.read(directory: dir + "/one")
        #expect(files.map(\.path) == [dir + "/one/index.json", dir + "/one/tokenizer.json"] + index.shards.map { dir + "/one/" + $0.file })
        // A shard's digest is the payload checksum in its header, which loading verifies.
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/one/" + index.shards[0].file))
        let payload = first.dropFirst(ShardFormat.headerBytes)
        let checksum = payload.withUnsafeBytes { Checksum.fnv1a64($0) }
        #expect(files[2].digest == String(format: "fnv1a64:%016llx, %d bytes", checksum, first.count))
        // Shard 3 of the other corpus in place of this one's (same name, same token count).
        let changed = index.shards.indices.first { k in
            (try? Data(contentsOf: URL(fileURLWithPath: dir + "/one/" + index.shards[k].file)))
                != (try? Data(contentsOf: URL(fileURLWithPath: dir + "/two/" + index.shards[k].file)))
        }
        let k = try #require(changed, "the two corpora tokenized to identical shards")
        try FileManager.default.removeItem(atPath: dir + "/one/" + index.shards[k].file)
        try FileManager.default.copyItem(atPath: dir + "/two/" + index.shards[k].file, toPath: dir + "/one/" + index.shards[k].file)
        let after = DataFingerprint.files(config: config)
        let differing = after.indices.filter { after[$0] != files[$0] }
        #expect(differing == [2 + k], "only the replaced shard's entry changes: \(differing)")
    }
}

// DataFingerprint: the files a config's data is read from, each with a digest, so that ranks on
// different hosts can check at start-up that they read the same bytes (ReplicaCheck).
import Foundation
import Data
import Support

/// One file a run reads and a digest of its contents ("missing" when it cannot be read).
public struct DataFile: Equatable, Codable, CustomStringConvertible {
    public var path: String
    public var digest: String
    public init(path: String, digest: String) { self.path = path; self.digest = digest }
    public var description: String { "\(path) (\(digest.prefix(28)))" }
}

public enum DataFingerprint {
    /// The corpus or shard directories and the tokenizer the config names, in a fixed order.
    /// Text files (corpus, index.json, tokenizer.json) are hashed with SHA-256; a shard is named by
    /// the payload checksum its header records and its size (loading verifies the payload against
    /// that checksum), so shard directories are not read twice.
    public static func files(config: LoomConfig) -> [DataFile] {
        let d = config.data
        var files: [DataFile] = []
        if d.shards.isEmpty {
            files.append(hashed(d.corpus))
        } else {
            for directory in [d.shards, d.validationShards] where !directory.isEmpty {
                files += shardDirectory(directory)
            }
        }
        if let path = d.tokenizer.path { files.append(hashed(path)) }
        return files
    }

    static func hashed(_ path: String) -> DataFile {
        DataFile(path: path, digest: (try? SHA256.hash(file: path)).map { "sha256:" + $0.hex } ?? "missing")
    }

    static func shardDirectory(_ directory: String) -> [DataFile] {
        let indexFile = hashed(directory + "/" + ShardIndex.fileName)
        guard let index = try? ShardIndex.read(directory: directory) else { return [indexFile] }
        var files = [indexFile, hashed(directory + "/" + index.tokenizer)]
        for entry in index.shards + (index.sourceShards ?? []) + (index.targetShards ?? []) {
            let path = directory + "/" + entry.file
            let digest = ShardFormat.recordedChecksum(path: path)
                .map { String(format: "fnv1a64:%016llx, %d bytes", $0.checksum, $0.bytes) } ?? "missing"
            files.append(DataFile(path: path, digest: digest))
        }
        return files
    }
}

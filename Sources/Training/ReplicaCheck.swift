// ReplicaCheck: the checks that keep data-parallel replicas honest — at start-up every rank runs the
// same resolved config and binary; at the end every rank holds bit-identical parameters. It is not
// the communicator; the checks are collective calls every rank makes.
import Foundation
import Models
import Distributed

/// A replica disagreeing with rank 0, naming the ranks and what differs.
public struct ReplicaMismatch: Error, CustomStringConvertible {
    public let what: String
    public let ranks: [Int]
    public let detail: String
    public var description: String {
        "\(what) differs between ranks: rank(s) \(ranks.map(String.init).joined(separator: ", ")) disagree with rank 0 (\(detail))"
    }
}

public enum ReplicaCheck {
    /// All-gathers SHA-256 of the resolved config and of this executable; every rank throws the same
    /// error when any rank differs, so a job with mixed configs or builds never starts.
    public static func sameRun(config: LoomConfig, communicator: Communicator) throws {
        guard communicator.worldSize > 1 else { return }
        let configHash = SHA256.hash(Data(try config.yaml().utf8))
        let binaryHash = (try? SHA256.hash(file: "/proc/self/exe")) ?? [UInt8](repeating: 0, count: 32)
        let all = communicator.allGather(configHash + binaryHash)
        let configs = all.map { Array($0[0..<32]) }, binaries = all.map { Array($0[32..<64]) }
        let badConfig = configs.indices.filter { configs[$0] != configs[0] }
        if !badConfig.isEmpty {
            throw ReplicaMismatch(what: "the resolved config", ranks: badConfig,
                                  detail: "rank 0 sha256 \(configs[0].hex.prefix(12))…; give every rank the same file and --set overrides")
        }
        let badBinary = binaries.indices.filter { binaries[$0] != binaries[0] }
        if !badBinary.isEmpty {
            throw ReplicaMismatch(what: "the loom binary", ranks: badBinary,
                                  detail: "rank 0 sha256 \(binaries[0].hex.prefix(12))…; install the same build on every node")
        }
    }

    /// All-gathers SHA-256 of the parameters; throws on every rank if any replica drifted.
    /// Returns the hash (hex) all ranks agree on.
    @discardableResult
    public static func identicalParameters(_ parameters: FlatBuffer, communicator: Communicator) throws -> String {
        let hash = SHA256.hash(UnsafeRawBufferPointer(start: parameters.pointer, count: parameters.bytes))
        let all = communicator.allGather(hash)
        let bad = all.indices.filter { all[$0] != all[0] }
        if !bad.isEmpty {
            throw ReplicaMismatch(what: "the parameters", ranks: bad, detail: "replicas drifted apart during training")
        }
        return hash.hex
    }
}

// ReplicaCheck: the checks that keep data-parallel replicas honest — at start-up every rank runs
// the same resolved config, binary and data; at the end every rank holds bit-identical parameters.
// Each check is a collective call every rank makes.
import Foundation
import Models
import Distributed
import Support

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
    /// All-gathers SHA-256 of the resolved config, of this executable and of the data files each
    /// rank reads (`DataFingerprint`); every rank throws the same error when any rank differs, so
    /// a job with mixed configs, builds or copies of the data never starts. A data mismatch names
    /// each disagreeing rank with the first file whose contents differ from rank 0's.
    public static func sameRun(config: LoomConfig, data: [DataFile], communicator: Communicator) throws {
        guard communicator.worldSize > 1 else { return }
        let configHash = SHA256.hash(Data(try config.yaml().utf8))
        let binaryHash = (try? SHA256.hash(file: "/proc/self/exe")) ?? [UInt8](repeating: 0, count: 32)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys   // the same bytes on every rank for the same list
        let dataList = try encoder.encode(data)
        let all = communicator.allGather(configHash + binaryHash + SHA256.hash(dataList))
        func disagreeing(_ range: Range<Int>) -> [Int] { all.indices.filter { all[$0][range] != all[0][range] } }
        let badConfig = disagreeing(0..<32)
        if !badConfig.isEmpty {
            throw ReplicaMismatch(what: "the resolved config", ranks: badConfig,
                                  detail: "rank 0 sha256 \(Array(all[0][0..<32]).hex.prefix(12))…; give every rank the same file and --set overrides")
        }
        let badBinary = disagreeing(32..<64)
        if !badBinary.isEmpty {
            throw ReplicaMismatch(what: "the loom binary", ranks: badBinary,
                                  detail: "rank 0 sha256 \(Array(all[0][32..<64]).hex.prefix(12))…; install the same build on every node")
        }
        let badData = disagreeing(64..<96)
        guard !badData.isEmpty else { return }
        // Every rank learns rank 0's list and reports the first of its own files that differs.
        let reference = broadcastFromCoordinator(dataList, communicator: communicator) ?? Data()
        let rankZero = try JSONDecoder().decode([DataFile].self, from: reference)
        let own = rankZero.indices.first { $0 >= data.count || data[$0] != rankZero[$0] } ?? rankZero.count
        let firstDifference = communicator.allGather(withUnsafeBytes(of: Int64(own).littleEndian) { Array($0) })
            .map { Int($0.withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }.littleEndian) }
        let named = badData.map { rank -> String in
            let i = firstDifference[rank]
            guard i < rankZero.count else { return "rank \(rank) reads more files than rank 0" }
            return "rank \(rank) reads another \(rankZero[i].path) than rank 0 (rank 0: \(rankZero[i].digest))"
        }
        throw ReplicaMismatch(what: "the data", ranks: badData,
                              detail: named.joined(separator: "; ") + "; give every host the same copy of the data at the same path")
    }

    /// Rank 0's bytes on every rank (a length, then the bytes); nil on every rank when rank 0
    /// passes nil (it has nothing to send, e.g. it failed to read them).
    static func broadcastFromCoordinator(_ bytes: Data?, communicator: Communicator) -> Data? {
        var count = Int64(communicator.isCoordinator ? bytes?.count ?? -1 : 0)
        withUnsafeMutableBytes(of: &count) { communicator.broadcast($0.baseAddress!, bytes: 8, root: 0) }
        guard count >= 0 else { return nil }
        var buffer = communicator.isCoordinator ? [UInt8](bytes ?? Data()) : [UInt8](repeating: 0, count: Int(count))
        if count > 0 { buffer.withUnsafeMutableBytes { communicator.broadcast($0.baseAddress!, bytes: $0.count, root: 0) } }
        return Data(buffer)
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

// ShardedTokenization: `loom tokenize` across the ranks of a job, through its Communicator — file i
// goes to rank i mod W, every phase ends with every rank learning how every rank did (so a failure
// anywhere fails all, and none waits for a rank that gave up), and the shards are written into a
// staging directory that rank 0 moves into place only when all succeeded.
import Foundation
import Data
import Distributed
import Support

/// A phase of sharded tokenization failed on one or more ranks. Every rank throws it, after rank 0
/// removed the staging directory: nothing was written to the output directory.
public struct TokenizationFailure: Error, CustomStringConvertible {
    /// What the ranks were doing ("encoding their files").
    public let phase: String
    /// The ranks at fault and their errors, in rank order.
    public let failures: [(rank: Int, message: String)]
    public let worldSize: Int
    public let out: String

    public var description: String {
        let who = failures.map { "rank \($0.rank) of \(worldSize): \($0.message)" }.joined(separator: "; ")
        return "tokenizing into \(out) failed while \(phase) (\(who)); nothing was written to \(out): "
            + "fix the input and re-run the whole `mpirun … loom tokenize`"
    }
}

/// `CorpusTokenizer`'s pipeline run by every rank of `communicator` together.
public enum ShardedTokenization {
    /// Tokenizes `files` into `out`: rank r encodes files i with i mod W = r into its own shard
    /// series (one series `shard-NNNNN.bin` on one rank); rank 0 merges the index. Every rank
    /// returns its own report; rank 0 of several also the merged totals.
    public static func tokenize(files: [String], tokenizer: Tokenizer, out: String, shardTokens: Int, threads: Int,
                                communicator job: Communicator) throws -> CorpusTokenizer.Report {
        let t0 = monotonicSeconds()
        var inputs: [MappedFile] = []
        let stage = Stage(out: out, job: job)
        try stage.together("checking the input files") {
            inputs = try CorpusTokenizer.inputs(files)
            if job.isCoordinator { try stage.create() }
        }
        let parts = try stage.together("encoding their files") {
            try CorpusTokenizer.encode(files: files, inputs: inputs, rank: job.rank, of: job.worldSize, tokenizer: tokenizer,
                                       directory: stage.path, shardTokens: shardTokens, threads: threads)
        }
        let index = CorpusTokenizer.index(merging: parts, tokenizer: tokenizer)
        try stage.together("writing the index") {
            if job.isCoordinator {
                try CorpusTokenizer.write(index, tokenizer: tokenizer, directory: stage.path)
                try stage.publish()
            }
        }
        var report = CorpusTokenizer.report(parts[job.rank], seconds: monotonicSeconds() - t0)
        if job.worldSize > 1 && job.isCoordinator {
            report.merged = .init(tokens: index.shards.reduce(0) { $0 + $1.tokens }, documents: index.documents.count,
                                  shards: index.shards.count)
        }
        return report
    }

    /// Tokenizes a parallel corpus (`CorpusTokenizer.tokenizeParallel`) into `out`: rank 0 encodes
    /// it, the others wait for its outcome, and every rank returns rank 0's report.
    public static func tokenizeParallel(source: String, target: String, tokenizer: Tokenizer, out: String, shardTokens: Int,
                                        communicator job: Communicator) throws -> CorpusTokenizer.Report {
        let stage = Stage(out: out, job: job)
        let reports = try stage.together("encoding the parallel corpus on rank 0") { () -> CorpusTokenizer.Report? in
            guard job.isCoordinator else { return nil }
            try stage.create()
            let report = try CorpusTokenizer.tokenizeParallel(source: source, target: target, tokenizer: tokenizer,
                                                              out: stage.path, shardTokens: shardTokens)
            try stage.publish()
            return report
        }
        return reports[0] ?? CorpusTokenizer.Report()
    }
}

/// The directory the ranks write into before rank 0 moves its contents to `out`: a hidden sibling
/// named by rank 0's host and process (`.OUT.loomtmp-HOST-PID`, see Temporaries), so a crashed
/// run's is swept by the next and never mistaken for a shard directory.
final class Stage {
    let out: String
    let job: Communicator
    /// Rank 0's staging path; every rank learns it in the first phase.
    private(set) var path: String
    private var created = false

    init(out: String, job: Communicator) {
        self.out = out
        self.job = job
        path = PathName.beside(out, named: Temporaries.name(for: Stage.baseName(out)))
    }

    static func baseName(_ out: String) -> String { (out as NSString).lastPathComponent }

    /// Rank 0: makes the staging directory (and `out`'s parent), first removing stale ones.
    func create() throws {
        let parent = PathName.directory(of: out)
        if !parent.isEmpty { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        Temporaries.clearStale(in: parent, of: Stage.baseName(out))
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        created = true
    }

    /// Rank 0: moves the staged files into `out` — the directory itself when `out` does not exist,
    /// else file by file with index.json last (an index lists only shards already in place).
    func publish() throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            try move(path, out)
            created = false
            AtomicFile.syncDirectory(PathName.directory(of: out).isEmpty ? "." : PathName.directory(of: out))
            return
        }
        guard isDirectory.boolValue else {
            throw ShardError(path: out, offset: nil, "exists and is not a directory; remove it or choose another --out")
        }
        Temporaries.clearStale(in: out)   // shards a crashed run left half-written
        let entries = try FileManager.default.contentsOfDirectory(atPath: path)
        for entry in entries.sorted(by: { ($0 == ShardIndex.fileName ? 1 : 0, $0) < ($1 == ShardIndex.fileName ? 1 : 0, $1) }) {
            try move(path + "/" + entry, out + "/" + entry)
        }
        AtomicFile.syncDirectory(out)
        try FileManager.default.removeItem(atPath: path)
        created = false
    }

    private func move(_ from: String, _ to: String) throws {
        if rename(from, to) != 0 {
            throw FileWriteError(path: to, reason: "cannot move \(from) into place (\(String(cString: strerror(errno))))")
        }
    }

    /// Rank 0: removes what the ranks staged (after a failure, once no rank writes any more).
    func discard() {
        if created { try? FileManager.default.removeItem(atPath: path); created = false }
    }

    /// `together` for a phase that returns nothing.
    func together(_ phase: String, _ body: () throws -> Void) throws {
        _ = try together(phase) { () throws -> Bool in try body(); return true }
    }

    /// Runs `body` on this rank, then tells every rank how every rank did: the values in rank
    /// order, or — when any rank threw — `TokenizationFailure` on every rank, after rank 0 has
    /// discarded the staging directory. The first phase also gives every rank rank 0's `path`.
    /// With one rank the error is rethrown as it is.
    func together<T: Codable>(_ phase: String, _ body: () throws -> T) throws -> [T] {
        let outcome: Outcome<T>
        do { outcome = .done(try body(), stage: path) } catch {
            if job.worldSize == 1 { discard(); throw error }
            outcome = .failed("\(error)")
        }
        let all = job.allGatherVariable(Array(Outcome.encoded(outcome))).map { Outcome<T>.decoded($0) }
        var values: [T] = [], failures: [(rank: Int, message: String)] = []
        for (rank, outcome) in all.enumerated() {
            switch outcome {
            case let .done(value, stage): values.append(value); if rank == 0 { path = stage }
            case let .failed(message): failures.append((rank, message))
            }
        }
        guard failures.isEmpty else {
            if job.isCoordinator { discard() }
            throw TokenizationFailure(phase: phase, failures: failures, worldSize: job.worldSize, out: out)
        }
        return values
    }
}

/// How one rank's phase went, as it travels between ranks (JSON).
enum Outcome<T: Codable>: Codable {
    /// The phase's value and the rank's staging path (rank 0's is the one every rank uses).
    case done(T, stage: String)
    case failed(String)

    static func encoded(_ outcome: Outcome) -> Data {
        (try? JSONEncoder().encode(outcome))
            ?? (try? JSONEncoder().encode(Outcome.failed("cannot encode this rank's outcome"))) ?? Data()
    }

    /// Every rank decodes the same bytes, so every rank reaches the same verdict.
    static func decoded(_ bytes: [UInt8]) -> Outcome {
        (try? JSONDecoder().decode(Outcome.self, from: Data(bytes))) ?? .failed("sent an outcome that does not decode")
    }
}

// TokenShards: Loom's on-disk token corpus — binary shards (fixed 64-byte header, then u16/u32
// tokens), an index.json listing shards, documents and (for parallel corpora) pairs, written
// atomically, read back memory-mapped and fully validated.
//
// Shard header, little-endian:
// 0  8  magic "LOOMTOKS"        24 8  token count
// 8  4  format version (1)      32 8  FNV-1a 64 of the payload bytes
// 12 4  token width (2 or 4)    40 24 reserved, zero
// 16 8  vocabulary size         64 …  tokens (count × width bytes)
import Foundation
import Support
#if canImport(Glibc)
import Glibc
#endif

public enum ShardFormat {
    public static let magic: [UInt8] = Array("LOOMTOKS".utf8)
    public static let version: UInt32 = 1
    public static let headerBytes = 64
    /// 2 (u16) when every id fits, else 4 (u32).
    public static func width(vocabularySize: Int) -> Int { vocabularySize <= 65536 ? 2 : 4 }

    /// The payload checksum a shard's header records (bytes 32–39) and the file's size, reading
    /// only the header: opening a shard verifies the payload against it, so it names the
    /// shard's contents without hashing them again. Nil when the file cannot be read.
    public static func recordedChecksum(path: String) -> (checksum: UInt64, bytes: Int)? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: headerBytes)
        var st = stat()
        guard fstat(fd, &st) == 0, pread(fd, &header, headerBytes, 0) == headerBytes else { return nil }
        let checksum = header[32..<40].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (checksum, Int(st.st_size))
    }
}

/// A problem with a shard set, naming the file and byte offset at fault and how to fix it.
public struct ShardError: Error, CustomStringConvertible {
    public let path: String
    public let offset: Int?
    public let message: String
    public init(path: String, offset: Int?, _ message: String) { self.path = path; self.offset = offset; self.message = message }
    public var description: String {
        if let offset { return "\(path): byte offset \(offset): \(message)" }
        return "\(path): \(message)"
    }
}

/// FNV-1a 64, the shard payload checksum.
public enum Checksum {
    public static func fnv1a64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let p = bytes.baseAddress else { return 0xcbf29ce484222325 }
        return fnv1a(p.assumingMemoryBound(to: UInt8.self), bytes.count)
    }
}

// MARK: - Writing

/// Writes one stream of tokens as shards `PREFIX-00000.bin`, `PREFIX-00001.bin`… of at most
/// `shardTokens` tokens each.
public final class ShardWriter {
    public let directory: String
    public let prefix: String
    public let vocabularySize: Int
    public let shardTokens: Int
    public private(set) var shards: [(file: String, tokens: Int)] = []
    public private(set) var totalTokens = 0
    private var buffer: [Int32] = []

    public init(directory: String, prefix: String, vocabularySize: Int, shardTokens: Int) {
        self.directory = directory; self.prefix = prefix
        self.vocabularySize = vocabularySize; self.shardTokens = max(1, shardTokens)
    }

    public func append(_ tokens: [Int32]) throws {
        var rest = tokens[...]
        while !rest.isEmpty {
            let take = min(rest.count, shardTokens - buffer.count)
            buffer.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            totalTokens += take
            if buffer.count == shardTokens { try flush() }
        }
    }

    /// Writes the last partial shard.
    public func finish() throws { if !buffer.isEmpty { try flush() } }

    private func flush() throws {
        let name = String(format: "%@-%05d.bin", prefix, shards.count)
        try ShardWriter.writeShard(directory + "/" + name, tokens: buffer, vocabularySize: vocabularySize)
        shards.append((name, buffer.count))
        buffer.removeAll(keepingCapacity: true)
    }

    /// One shard file: header + tokens at the narrowest width for the vocabulary.
    public static func writeShard(_ path: String, tokens: [Int32], vocabularySize: Int) throws {
        let width = ShardFormat.width(vocabularySize: vocabularySize)
        var payload = [UInt8](repeating: 0, count: tokens.count * width)
        payload.withUnsafeMutableBytes { p in
            if width == 2 {
                let out = p.bindMemory(to: UInt16.self)
                for (i, t) in tokens.enumerated() { out[i] = UInt16(truncatingIfNeeded: t).littleEndian }
            } else {
                let out = p.bindMemory(to: UInt32.self)
                for (i, t) in tokens.enumerated() { out[i] = UInt32(bitPattern: t).littleEndian }
            }
        }
        var header = [UInt8](repeating: 0, count: ShardFormat.headerBytes)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (k, b) in $0.enumerated() { header[offset + k] = b } }
        }
        for (k, b) in ShardFormat.magic.enumerated() { header[k] = b }
        put(ShardFormat.version, at: 8)
        put(UInt32(width), at: 12)
        put(UInt64(vocabularySize), at: 16)
        put(UInt64(tokens.count), at: 24)
        put(payload.withUnsafeBytes { Checksum.fnv1a64($0) }, at: 32)
        try header.withUnsafeBytes { h in try payload.withUnsafeBytes { p in try AtomicFile.write(path, parts: [h, p]) } }
    }
}

// MARK: - Reading

/// A read-only memory map of a whole file, unmapped when released.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ShardError(path: path, offset: nil, errno == ENOENT ? "shard file not found (is the index from another directory?)"
                             : "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ShardError(path: path, offset: nil, "cannot stat (\(String(cString: strerror(errno))))") }
        let size = Int(st.st_size)
        if size == 0 { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ShardError(path: path, offset: nil, "cannot memory-map (\(String(cString: strerror(errno))))")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit { if let p = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: p), bytes.count) } }
}

/// One validated shard: its tokens, memory-mapped.
public struct Shard {
    public let file: MappedFile
    public let width: Int
    public let count: Int
    public let vocabularySize: Int
    /// First token.
    public var tokens: UnsafeRawPointer { file.bytes.baseAddress! + ShardFormat.headerBytes }

    /// Maps `path` and checks every header field, the size, the checksum and that every token is
    /// below the vocabulary size. `vocabularySize` (if given) must match the header's.
    public init(path: String, vocabularySize expected: Int?, tokens expectedCount: Int? = nil) throws {
        let file = try MappedFile(path: path)
        let b = file.bytes
        func fail(_ offset: Int, _ message: String) -> ShardError { ShardError(path: path, offset: offset, message) }
        guard b.count >= ShardFormat.headerBytes else {
            throw fail(b.count, "truncated: the file has \(b.count) bytes but a shard header needs \(ShardFormat.headerBytes); rewrite it with `loom tokenize`")
        }
        func read<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T { T(littleEndian: b.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        guard Array(b[0..<8]) == ShardFormat.magic else {
            throw fail(0, "bad magic \(String(reflecting: String(decoding: b[0..<8], as: UTF8.self))); not a Loom token shard (expected \"LOOMTOKS\")")
        }
        let version = read(8, UInt32.self)
        guard version == ShardFormat.version else {
            throw fail(8, "format version \(version) is not supported (this Loom reads version \(ShardFormat.version)); re-tokenize with this Loom")
        }
        let width = Int(read(12, UInt32.self))
        guard width == 2 || width == 4 else { throw fail(12, "token width \(width) bytes; expected 2 (u16) or 4 (u32)") }
        let vocabulary = Int(read(16, UInt64.self))
        if let expected, vocabulary != expected {
            throw fail(16, "vocabulary size \(vocabulary) does not match the tokenizer's \(expected); the shards were made with another tokenizer")
        }
        if width == 2 && vocabulary > 65536 { throw fail(12, "token width 2 cannot hold a vocabulary of \(vocabulary)") }
        let count64 = read(24, UInt64.self)
        let available = (b.count - ShardFormat.headerBytes) / width
        guard count64 <= UInt64(Int.max / 8), Int(count64) * width + ShardFormat.headerBytes <= b.count else {
            throw fail(b.count, "truncated: the header (offset 24) says \(count64) tokens but the file holds \(available); rewrite it with `loom tokenize`")
        }
        let count = Int(count64)
        guard count * width + ShardFormat.headerBytes == b.count else {
            throw fail(ShardFormat.headerBytes + count * width, "\(b.count - ShardFormat.headerBytes - count * width) bytes after the \(count) tokens the header (offset 24) announces")
        }
        if let expectedCount, expectedCount != count {
            throw fail(24, "the header says \(count) tokens but index.json says \(expectedCount)")
        }
        let payload = UnsafeRawBufferPointer(rebasing: b[ShardFormat.headerBytes...])
        let stored = read(32, UInt64.self), actual = Checksum.fnv1a64(payload)
        guard stored == actual else {
            throw fail(32, String(format: "checksum mismatch: the header says %016llx, the payload hashes to %016llx; the file is corrupt", stored, actual))
        }
        if let bad = Shard.firstTokenNotBelow(vocabulary, payload: payload, width: width) {
            let value = width == 2 ? Int(read(ShardFormat.headerBytes + bad * 2, UInt16.self)) : Int(read(ShardFormat.headerBytes + bad * 4, UInt32.self))
            throw fail(ShardFormat.headerBytes + bad * width, "token \(bad) is \(value), not below the vocabulary size \(vocabulary)")
        }
        self.file = file; self.width = width; self.count = count; self.vocabularySize = vocabulary
    }

    /// Index of the first token ≥ `limit` (a max over blocks, then a scan of the bad block).
    static func firstTokenNotBelow(_ limit: Int, payload: UnsafeRawBufferPointer, width: Int) -> Int? {
        let n = payload.count / width
        let block = 4096
        var start = 0
        while start < n {
            let end = min(n, start + block)
            var m = 0
            if width == 2 {
                let t = payload.bindMemory(to: UInt16.self)
                var x: UInt16 = 0
                for i in start..<end { x = max(x, UInt16(littleEndian: t[i])) }
                m = Int(x)
            } else {
                let t = payload.bindMemory(to: UInt32.self)
                var x: UInt32 = 0
                for i in start..<end { x = max(x, UInt32(littleEndian: t[i])) }
                m = Int(x)
            }
            if m >= limit {
                for i in start..<end {
                    let v = width == 2 ? Int(UInt16(littleEndian: payload.load(fromByteOffset: i * 2, as: UInt16.self)))
                                       : Int(UInt32(littleEndian: payload.load(fromByteOffset: i * 4, as: UInt32.self)))
                    if v >= limit { return i }
                }
            }
            start = end
        }
        return nil
    }

    /// Token `i` as an id.
    @inline(__always) public subscript(i: Int) -> Int32 {
        width == 2 ? Int32(UInt16(littleEndian: tokens.load(fromByteOffset: i * 2, as: UInt16.self)))
                   : Int32(bitPattern: UInt32(littleEndian: tokens.load(fromByteOffset: i * 4, as: UInt32.self)))
    }
}

// MARK: - Token streams

/// A sequence of token ids: an in-memory array or memory-mapped shards, seen as one
/// concatenation. Slicing shares storage.
public struct TokenStream: RandomAccessCollection {
    enum Storage { case array([Int32]); case shards([Shard], starts: [Int]) }
    let storage: Storage
    let offset: Int
    public let count: Int

    public init(_ tokens: [Int32]) { storage = .array(tokens); offset = 0; count = tokens.count }

    public init(shards: [Shard]) {
        var starts: [Int] = [], total = 0
        for s in shards { starts.append(total); total += s.count }
        storage = .shards(shards, starts: starts); offset = 0; count = total
    }

    init(storage: Storage, offset: Int, count: Int) { self.storage = storage; self.offset = offset; self.count = count }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// Tokens `range` of this stream (no copy).
    public func slice(_ range: Range<Int>) -> TokenStream {
        TokenStream(storage: storage, offset: offset + range.lowerBound, count: range.count)
    }

    public subscript(i: Int) -> Int32 {
        switch storage {
        case let .array(a): return a[offset + i]
        case let .shards(shards, starts):
            let k = TokenStream.shardIndex(starts, offset + i)
            return shards[k][offset + i - starts[k]]
        }
    }

    static func shardIndex(_ starts: [Int], _ position: Int) -> Int {
        var lo = 0, hi = starts.count - 1
        while lo < hi { let mid = (lo + hi + 1) / 2; if starts[mid] <= position { lo = mid } else { hi = mid - 1 } }
        return lo
    }

    /// Copies tokens `start ..< start + n` into `out`, across shard boundaries; allocates nothing.
    @inline(__always)
    public func copy(from start: Int, count n: Int, into out: UnsafeMutablePointer<Int32>) {
        switch storage {
        case let .array(a):
            a.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + offset + start, count: n) }
        case let .shards(shards, starts):
            var position = offset + start, done = 0
            var k = TokenStream.shardIndex(starts, position)
            while done < n {
                let s = shards[k], local = position - starts[k]
                let take = Swift.min(n - done, s.count - local)
                if s.width == 2 {
                    let t = s.tokens.assumingMemoryBound(to: UInt16.self) + local
                    for i in 0..<take { out[done + i] = Int32(UInt16(littleEndian: t[i])) }
                } else {
                    let t = s.tokens.assumingMemoryBound(to: UInt32.self) + local
                    for i in 0..<take { out[done + i] = Int32(bitPattern: UInt32(littleEndian: t[i])) }
                }
                done += take; position += take; k += 1
            }
        }
    }
}

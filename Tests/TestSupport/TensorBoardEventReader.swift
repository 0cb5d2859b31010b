// TensorBoardEventReader: a small reader of TensorBoard events files for tests — TFRecord framing
// with both masked CRC32Cs checked, and the Event / Summary / SessionLog fields Loom writes decoded
// from their protobuf wire format.
import Foundation
import Support

/// One decoded `Event`: the fields TensorBoardEvents writes.
public struct DecodedEvent {
    public var wallTime: Double?
    public var step: Int64 = 0
    public var fileVersion: String?
    public var sessionStatus: Int?
    public var values: [(tag: String, value: Float)] = []
}

public enum EventFileReadError: Error { case truncated(Int), badLengthCRC(Int), badDataCRC(Int), badProto(String) }

/// Reads a TFRecord file into events, checking both masked CRC32Cs of every record.
public func readEvents(_ path: String) throws -> [DecodedEvent] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v |= T(bytes[at + i]) << (8 * i) }
        return v
    }
    var events: [DecodedEvent] = [], at = 0
    while at < bytes.count {
        guard at + 12 <= bytes.count else { throw EventFileReadError.truncated(at) }
        let length = Int(le(at, UInt64.self))
        guard CRC32C.masked(CRC32C.checksum(bytes[at..<at + 8])) == le(at + 8, UInt32.self) else { throw EventFileReadError.badLengthCRC(at) }
        guard at + 16 + length <= bytes.count else { throw EventFileReadError.truncated(at) }
        let data = Array(bytes[at + 12..<at + 12 + length])
        guard CRC32C.masked(CRC32C.checksum(data)) == le(at + 12 + length, UInt32.self) else { throw EventFileReadError.badDataCRC(at) }
        events.append(try decodeEvent(data))
        at += 16 + length
    }
    return events
}

/// Protobuf fields of a message: (field number, wire type, varint or fixed value, bytes).
func protoFields(_ m: [UInt8]) throws -> [(field: Int, wire: Int, number: UInt64, bytes: [UInt8])] {
    var out: [(Int, Int, UInt64, [UInt8])] = [], i = 0
    func varint() throws -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard i < m.count else { throw EventFileReadError.badProto("varint past the end") }
            let b = m[i]; i += 1
            v |= UInt64(b & 0x7F) << shift; shift += 7
            if b < 0x80 { return v }
        }
    }
    while i < m.count {
        let key = try varint(), field = Int(key >> 3), wire = Int(key & 7)
        switch wire {
        case 0: out.append((field, wire, try varint(), []))
        case 1, 5:
            let n = wire == 1 ? 8 : 4
            guard i + n <= m.count else { throw EventFileReadError.badProto("fixed past the end") }
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(m[i + k]) << (8 * UInt64(k)) }
            i += n; out.append((field, wire, v, []))
        case 2:
            let n = Int(try varint())
            guard i + n <= m.count else { throw EventFileReadError.badProto("bytes past the end") }
            out.append((field, wire, 0, Array(m[i..<i + n]))); i += n
        default: throw EventFileReadError.badProto("wire type \(wire)")
        }
    }
    return out
}

public func decodeEvent(_ data: [UInt8]) throws -> DecodedEvent {
    var e = DecodedEvent()
    for f in try protoFields(data) {
        switch (f.field, f.wire) {
        case (1, 1): e.wallTime = Double(bitPattern: f.number)
        case (2, 0): e.step = Int64(bitPattern: f.number)
        case (3, 2): e.fileVersion = String(decoding: f.bytes, as: UTF8.self)
        case (5, 2):
            for v in try protoFields(f.bytes) where v.field == 1 && v.wire == 2 {
                var tag = "", value = Float.nan
                for g in try protoFields(v.bytes) {
                    if g.field == 1, g.wire == 2 { tag = String(decoding: g.bytes, as: UTF8.self) }
                    if g.field == 2, g.wire == 5 { value = Float(bitPattern: UInt32(g.number)) }
                }
                e.values.append((tag, value))
            }
        case (7, 2): e.sessionStatus = Int(try protoFields(f.bytes).first { $0.field == 1 }?.number ?? 0)
        default: throw EventFileReadError.badProto("unexpected field \(f.field) wire \(f.wire)")
        }
    }
    return e
}

// TensorBoardEvents: the run's metrics as a TensorBoard events file (`logging.tensorboard`):
// TFRecord-framed `Event` protocol buffers, encoded by hand, one record per metrics line, written
// by the coordinator as it logs.
//
// File format (what TensorBoard's `EventFileLoader` reads):
// - name `events.out.tfevents.<10-digit Unix seconds>.<host>.<pid>.<n>` in `RUN/tensorboard/`;
//   TensorBoard reads every file of the directory whose name holds "tfevents", in name order;
// - each record: UInt64 length (little-endian), masked CRC32C of those 8 bytes, the data, masked
//   CRC32C of the data;
// - the first record is `Event{wall_time, file_version: "brain.Event:2"}`; each metrics line is
//   `Event{wall_time, step, summary: Summary{value: [Value{tag, simple_value}, …]}}`.
//
// Tags: a training line's `train_loss` is `train/loss` and every other field but `step` is
// `train/<field>` (`train/lr`, `train/grad_norm`, `train/tokens_per_s`, `train/tokens`,
// `train/elapsed_s`); a validation line (one with `val_loss`) adds only `val/loss`, since its other
// fields describe the last step and the whole process rather than the logging window. Values are
// the float32 (`simple_value`) of the number the metrics line holds; a null (non-finite) metric is NaN.
//
// Resuming: a resumed run opens a new file whose first event after the version is
// `SessionLog{status: START}` at the first step it will log. TensorBoard then drops the events of
// earlier files at that step and later (those the interrupted run wrote after its checkpoint),
// just as metrics.jsonl drops their lines, so each step has one value per tag.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Support

public final class TensorBoardEvents {
    /// The events file.
    public let path: String
    private var fd: Int32
    /// One encoded event (protobuf), then one framed record; reused from log to log.
    private var event: [UInt8] = [], record: [UInt8] = []
    private static var filesOpened = 0
    private static let lock = NSLock()

    /// Creates `directory` (and parents) and a new events file in it. `resumingAt`: the first step
    /// this process will log after a resume (a `SessionLog.START` there), nil for a fresh run.
    public init(directory: String, resumingAt step: Int? = nil, wallTime: Double = Date().timeIntervalSince1970) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw FileWriteError(path: directory, reason: error.localizedDescription)
        }
        let n = Self.lock.withLock { () -> Int in Self.filesOpened += 1; return Self.filesOpened - 1 }
        path = directory + "/" + String(format: "events.out.tfevents.%010d.", Int(wallTime)) + Self.hostName() + ".\(getpid()).\(n)"
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
        beginEvent(wallTime: wallTime, step: nil)
        Self.appendBytes(field: 3, Array("brain.Event:2".utf8), to: &event)
        try writeEvent()
        if let step {
            beginEvent(wallTime: wallTime, step: step)
            // SessionLog{status: START (1)} as Event field 7 (`session_log`; 6 is the deprecated `log_message`).
            Self.appendBytes(field: 7, [0x08, 0x01], to: &event)
            try writeEvent()
        }
    }

    deinit { close() }

    /// The scalars of one metrics record (what `RunDirectory.log` writes as a line): its step and
    /// (tag, value) pairs, nil when it has no integer `step`.
    public static func scalars(of fields: KeyValuePairs<String, Any>) -> (step: Int, values: [(tag: String, value: Double)])? {
        guard let step = fields.first(where: { $0.key == "step" })?.value as? Int else { return nil }
        // A value as metrics.jsonl prints it (9 significant digits), so that its float32 is the
        // float32 of the line's number, not of the unrounded double (they can differ by an ulp).
        func printed(_ d: Double) -> Double { d.isFinite ? Double(String(format: "%.9g", d)) ?? d : .nan }
        func number(_ value: Any) -> Double? {
            switch value {
            case let d as Double: printed(d)
            case let f as Float: printed(Double(f))
            case let i as Int: Double(i)
            default: nil
            }
        }
        if let validation = fields.first(where: { $0.key == "val_loss" }), let loss = number(validation.value) {
            // BERT's validation also scores the masked-token accuracy.
            let accuracy = fields.first(where: { $0.key == "val_accuracy" }).flatMap { number($0.value) }
            return (step, [("val/loss", loss)] + (accuracy.map { [("val/accuracy", $0)] } ?? []))
        }
        let values = fields.compactMap { key, value -> (tag: String, value: Double)? in
            guard key != "step", let v = number(value) else { return nil }
            return (key == "train_loss" ? "train/loss" : "train/" + key, v)
        }
        return (step, values)
    }

    /// Appends one metrics record as an event (written at once: a crashed run keeps its events).
    public func log(_ fields: KeyValuePairs<String, Any>, wallTime: Double = Date().timeIntervalSince1970) throws {
        guard let (step, values) = Self.scalars(of: fields) else { return }
        try write(step: step, scalars: values, wallTime: wallTime)
    }

    /// Appends `Event{wall_time, step, summary}` with one `simple_value` per scalar.
    public func write(step: Int, scalars: [(tag: String, value: Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        beginEvent(wallTime: wallTime, step: step)
        var summary: [UInt8] = []
        for (tag, value) in scalars {
            var item: [UInt8] = []
            Self.appendBytes(field: 1, Array(tag.utf8), to: &item)                 // Value.tag
            item.append(0x15)                                                      // Value.simple_value (2, fixed32)
            Self.appendLittleEndian(Float(value).bitPattern, to: &item)
            Self.appendBytes(field: 1, item, to: &summary)                         // Summary.value
        }
        Self.appendBytes(field: 5, summary, to: &event)                            // Event.summary
        try writeEvent()
    }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    // MARK: Encoding

    /// Starts an event: wall_time (field 1, double) and step (field 2, varint) when given.
    private func beginEvent(wallTime: Double, step: Int?) {
        event.removeAll(keepingCapacity: true)
        event.append(0x09)
        Self.appendLittleEndian(wallTime.bitPattern, to: &event)
        if let step {
            event.append(0x10)
            Self.appendVarint(UInt64(bitPattern: Int64(step)), to: &event)
        }
    }

    /// Frames the event as a TFRecord and writes it with one write(2).
    private func writeEvent() throws {
        record.removeAll(keepingCapacity: true)
        Self.appendLittleEndian(UInt64(event.count), to: &record)
        let lengthCRC = record.withUnsafeBytes { CRC32C.masked(CRC32C.checksum($0)) }
        Self.appendLittleEndian(lengthCRC, to: &record)
        record += event
        Self.appendLittleEndian(event.withUnsafeBytes { CRC32C.masked(CRC32C.checksum($0)) }, to: &record)
        try record.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
                }
                offset += n
            }
        }
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A length-delimited field (wire type 2): key, length, bytes.
    static func appendBytes(field: Int, _ payload: [UInt8], to bytes: inout [UInt8]) {
        appendVarint(UInt64(field << 3 | 2), to: &bytes)
        appendVarint(UInt64(payload.count), to: &bytes)
        bytes += payload
    }

    /// This host's name as `gethostname` gives it ("localhost" when it fails).
    private static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        let host = String(cString: name)
        return host.isEmpty ? "localhost" : host.replacingOccurrences(of: "/", with: "_")
    }
}

// Safetensors: reads and writes the safetensors format (8-byte little-endian header length, JSON
// header of dtype/shape/data_offsets, raw little-endian data) for F32 parameter buffers laid out by
// a ParameterLayout (other dtypes are refused there), and reads any file's tensors by name
// (`SafetensorsFile`: F32, and F16/BF16 converted to F32) for imports.
import Foundation
import Data
import Models
import Support

public struct SafetensorsError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

public enum Safetensors {
    /// Writes every tensor of `layout` from `buffer` to `path` atomically. Because the flat buffer
    /// is already in layout order, the data section is the buffer itself.
    public static func write(_ path: String, layout: ParameterLayout, buffer: FlatBuffer,
                             metadata: [String: String] = [:]) throws {
        try write(path, layout: layout, buffers: [("", buffer)], metadata: metadata)
    }

    /// Writes several buffers of the same layout, each tensor named prefix + name (e.g. the AdamW
    /// moments as `exp_avg.…` and `exp_avg_sq.…`); the data section is the buffers one after another.
    public static func write(_ path: String, layout: ParameterLayout, buffers: [(prefix: String, buffer: FlatBuffer)],
                             metadata: [String: String] = [:]) throws {
        var header: [String: Any] = [:]
        for (i, (prefix, _)) in buffers.enumerated() {
            let base = i * layout.count
            for t in layout.tensors {
                header[prefix + t.name] = ["dtype": "F32", "shape": t.shape,
                                           "data_offsets": [(base + t.offset) * 4, (base + t.offset + t.count) * 4]] as [String: Any]
            }
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var length = UInt64(json.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        try lengthBytes.withUnsafeBytes { l in
            try json.withUnsafeBytes { h in
                try AtomicFile.write(path, parts: [l, h] + buffers.map {
                    UnsafeRawBufferPointer(start: $0.buffer.pointer, count: layout.count * 4)
                })
            }
        }
    }

    /// A parsed header: tensor name → (shape, byte range in the data section), and metadata.
    public struct Header {
        public var tensors: [String: (shape: [Int], range: Range<Int>)]
        public var metadata: [String: String]
        public var dataOffset: Int
    }

    public static func readHeader(_ data: Data, path: String) throws -> Header {
        guard data.count >= 8 else { throw SafetensorsError(path: path, message: "file is \(data.count) bytes, too short for a header") }
        let length = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 8), length < 100_000_000 else {
            throw SafetensorsError(path: path, message: "header length \(length) exceeds the file (\(data.count) bytes): truncated or not safetensors")
        }
        let json = data.subdata(in: 8..<(8 + Int(length)))
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw SafetensorsError(path: path, message: "header is not a JSON object")
        }
        var tensors: [String: (shape: [Int], range: Range<Int>)] = [:]
        var metadata: [String: String] = [:]
        let dataSize = data.count - 8 - Int(length)
        for (name, value) in object {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafetensorsError(path: path, message: "tensor '\(name)': malformed header entry")
            }
            guard dtype == "F32" else { throw SafetensorsError(path: path, message: "tensor '\(name)': dtype \(dtype), only F32 is supported") }
            let count = shape.reduce(1, *)
            guard offsets[0] >= 0, offsets[1] == offsets[0] + 4 * count, offsets[1] <= dataSize else {
                throw SafetensorsError(path: path, message: "tensor '\(name)': data_offsets \(offsets) do not fit shape \(shape) in \(dataSize) data bytes")
            }
            tensors[name] = (shape, offsets[0]..<offsets[1])
        }
        return Header(tensors: tensors, metadata: metadata, dataOffset: 8 + Int(length))
    }

    /// Reads `path` into `buffer` (layout `layout`); every tensor must be present with its shape.
    @discardableResult
    public static func read(_ path: String, layout: ParameterLayout, into buffer: FlatBuffer) throws -> [String: String] {
        try read(path, layout: layout, buffers: [("", buffer)])
    }

    /// Reads tensors named prefix + name into each buffer (see the multi-buffer `write`).
    @discardableResult
    public static func read(_ path: String, layout: ParameterLayout, buffers: [(prefix: String, buffer: FlatBuffer)]) throws -> [String: String] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw SafetensorsError(path: path, message: "cannot read (\(error.localizedDescription))")
        }
        let header = try readHeader(data, path: path)
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for (prefix, buffer) in buffers {
                for t in layout.tensors {
                    let name = prefix + t.name
                    guard let entry = header.tensors[name] else {
                        throw SafetensorsError(path: path, message: "tensor '\(name)' is missing")
                    }
                    guard entry.shape == t.shape else {
                        throw SafetensorsError(path: path, message: "tensor '\(name)' has shape \(entry.shape), the config needs \(t.shape)")
                    }
                    let source = raw.baseAddress! + header.dataOffset + entry.range.lowerBound
                    UnsafeMutableRawPointer(buffer.pointer + t.offset).copyMemory(from: source, byteCount: entry.range.count)
                }
            }
        }
        return header.metadata
    }
}

/// A safetensors file opened by name, as an import reads someone else's weights: each tensor's
/// dtype and shape from the header, its values converted to F32 on request. F32 is copied as it
/// is; F16 (IEEE half) and BF16 (the top 16 bits of an F32) are widened exactly, since every half
/// and bfloat16 value is an F32 value. Other dtypes (F64, integers, …) are an error naming the file
/// and the tensor, raised only when that tensor is read, so buffers an import skips may hold any dtype.
public struct SafetensorsFile {
    /// One header entry: dtype name as the file spells it, shape, byte range in the data section.
    public struct Entry {
        public let dtype: String
        public let shape: [Int]
        public let range: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data
    private let dataOffset: Int

    /// Bytes per element of the dtypes safetensors defines.
    static let elementBytes: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                                              "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
                                              "F8_E4M3": 1, "F8_E5M2": 1]
    /// The dtypes `floats` converts.
    public static let readableDTypes = ["F32", "F16", "BF16"]

    /// Opens `path` (memory-mapped) and checks every header entry against the data section.
    public init(path: String) throws {
        self.path = path
        do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
            throw SafetensorsError(path: path, message: "cannot read (\(error.localizedDescription))")
        }
        guard data.count >= 8 else { throw SafetensorsError(path: path, message: "file is \(data.count) bytes, too short for a header") }
        let length = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(data.count - 8), length < 100_000_000 else {
            throw SafetensorsError(path: path, message: "header length \(length) exceeds the file (\(data.count) bytes): truncated or not safetensors")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + Int(length)))) as? [String: Any] else {
            throw SafetensorsError(path: path, message: "header is not a JSON object")
        }
        dataOffset = 8 + Int(length)
        let dataSize = data.count - dataOffset
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataSize else {
                throw SafetensorsError(path: path, message: "tensor '\(name)': malformed header entry (dtype, shape, data_offsets within \(dataSize) data bytes)")
            }
            if let size = Self.elementBytes[dtype], offsets[1] - offsets[0] != size * shape.reduce(1, *) {
                throw SafetensorsError(path: path, message: "tensor '\(name)': data_offsets \(offsets) do not fit \(dtype) of shape \(shape)")
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offsets[0]..<offsets[1])
        }
        self.entries = entries
        self.metadata = metadata
    }

    /// Writes tensor `name`'s values as F32 into `out` (room for its element count); `rows`
    /// keeps only the first rows of the outermost dimension (a cropped position table).
    public func read(_ name: String, into out: UnsafeMutablePointer<Float>, rows: Int? = nil) throws {
        guard let e = entries[name] else { throw SafetensorsError(path: path, message: "tensor '\(name)' is missing") }
        let rowSize = e.shape.dropFirst().reduce(1, *)
        let count = rows.map { $0 * rowSize } ?? e.count
        precondition(count <= e.count, "SafetensorsFile.read: more rows than the tensor has")
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let source = raw.baseAddress! + dataOffset + e.range.lowerBound
            switch e.dtype {
            case "F32":
                UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: count * 4)
            case "BF16":
                for i in 0..<count {
                    let bits = UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    out[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            case "F16":
                for i in 0..<count {
                    out[i] = Self.float(half: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            default: break
            }
        }
        guard Self.readableDTypes.contains(e.dtype) else {
            throw SafetensorsError(path: path, message: "tensor '\(name)': dtype \(e.dtype) is not supported (F32, F16 and BF16 are; convert the model with torch_dtype=torch.float32)")
        }
    }

    /// Tensor `name` as F32 values.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entries[name] else { throw SafetensorsError(path: path, message: "tensor '\(name)' is missing") }
        var values = [Float](repeating: 0, count: max(e.count, 1))
        try values.withUnsafeMutableBufferPointer { try read(name, into: $0.baseAddress!) }
        return Array(values.prefix(e.count))
    }

    /// An IEEE half as F32 (exact: subnormals, infinities and NaN included).
    static func float(half h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16, exponent = Int(h >> 10) & 0x1F, mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

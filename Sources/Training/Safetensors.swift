// Safetensors: reads and writes the safetensors format (8-byte little-endian header length, JSON
// header of dtype/shape/data_offsets, raw little-endian data) for F32 parameter buffers laid out by
// a ParameterLayout; other dtypes are refused.
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

// CheckpointAverage: the element-wise mean of the tensors of several safetensors files (the last
// checkpoints of a run, as the paper averages its last 5 or 20; F32 tensors), written atomically.
import Foundation
import Models

public enum CheckpointAverage {
    /// `input` itself if it is a file, else `input/model.safetensors` (a checkpoint directory).
    public static func modelFile(_ input: String) -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
            return input + "/model.safetensors"
        }
        return input
    }

    /// Averages every tensor over `inputs` (files or checkpoint directories) into `out`. All inputs
    /// must hold the same tensor names with the same shapes; an error names the tensor and file.
    /// The output keeps the first file's tensor order and metadata, plus `averaged_from`.
    @discardableResult
    public static func average(_ inputs: [String], out: String) throws -> (tensors: Int, parameters: Int) {
        guard !inputs.isEmpty else { throw SafetensorsError(path: out, message: "no inputs to average") }
        let files = inputs.map(modelFile)
        func load(_ path: String) throws -> (Data, Safetensors.Header) {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) } catch {
                throw SafetensorsError(path: path, message: "cannot read (\(error.localizedDescription))")
            }
            return (data, try Safetensors.readHeader(data, path: path))
        }
        let (firstData, first) = try load(files[0])
        var layout = ParameterLayout()
        let ordered = first.tensors.sorted { $0.value.range.lowerBound < $1.value.range.lowerBound }
        for (name, entry) in ordered { layout.add(name, entry.shape) }
        let sum = FlatBuffer(count: layout.count)
        func accumulate(_ data: Data, _ header: Safetensors.Header, path: String) throws {
            for name in header.tensors.keys where layout.spec(name) == nil {
                throw SafetensorsError(path: path, message: "tensor '\(name)' is not in \(files[0])")
            }
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                for t in layout.tensors {
                    guard let entry = header.tensors[t.name] else {
                        throw SafetensorsError(path: path, message: "tensor '\(t.name)' (in \(files[0])) is missing")
                    }
                    guard entry.shape == t.shape else {
                        throw SafetensorsError(path: path, message: "tensor '\(t.name)' has shape \(entry.shape), \(files[0]) has \(t.shape)")
                    }
                    let source = raw.baseAddress! + header.dataOffset + entry.range.lowerBound
                    let p = sum.pointer + t.offset
                    for i in 0..<t.count { p[i] += source.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
                }
            }
        }
        try accumulate(firstData, first, path: files[0])
        for path in files.dropFirst() {
            let (data, header) = try load(path)
            try accumulate(data, header, path: path)
        }
        let scale = 1 / Float(files.count)
        for i in 0..<sum.count { sum.pointer[i] *= scale }
        var metadata = first.metadata
        metadata["averaged_from"] = files.joined(separator: ",")
        try Safetensors.write(out, layout: layout, buffer: sum, metadata: metadata)
        return (layout.tensors.count, layout.count)
    }
}

// AtomicFile: a write replaces the whole file and leaves no temporary; a failed write leaves the
// previous file as it was and says so.
import Testing
import Foundation
import Support
import TestSupport

@Suite struct AtomicFileTests {
    @Test func writesReplaceTheFileAndLeaveNoTemporary() throws {
        let dir = scratchPath("loom-atomic-")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/state.json"
        try AtomicFile.write(path, text: "first, longer version")
        try AtomicFile.write(path, text: "second")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second")
        let parts: [[UInt8]] = [Array("ab".utf8), [], Array("cd".utf8)]
        try parts[0].withUnsafeBytes { a in try parts[1].withUnsafeBytes { b in try parts[2].withUnsafeBytes { c in
            try AtomicFile.write(path, parts: [a, b, c])
        } } }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "abcd")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["state.json"])
    }

    @Test func aFailedWriteKeepsThePreviousFile() throws {
        let dir = scratchPath("loom-atomic-")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The target is a non-empty directory: the rename onto it fails after the data was written.
        try FileManager.default.createDirectory(atPath: dir + "/taken/inner", withIntermediateDirectories: true)
        #expect { try AtomicFile.write(dir + "/taken", text: "new") } throws: {
            "\($0)".contains("taken") && "\($0)".contains("the previous file, if any, is unchanged")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["taken"], "the temporary is removed")
        #expect(FileManager.default.fileExists(atPath: dir + "/taken/inner"))
    }
}

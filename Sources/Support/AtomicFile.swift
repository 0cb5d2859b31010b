// AtomicFile: writes a file so that readers see either the old version or the complete new one
// (temporary file in the same directory, fsync, rename, fsync of the directory).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct FileWriteError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): cannot write (\(reason)); the previous file, if any, is unchanged" }
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

public enum AtomicFile {
    /// Writes the concatenation of `parts` to `path` atomically.
    public static func write(_ path: String, parts: [UnsafeRawBufferPointer]) throws {
        let directory = PathName.directory(of: path)
        let temporary = PathName.beside(path, named: Temporaries.name(for: (path as NSString).lastPathComponent))
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
        var failure: String?
        outer: for part in parts {
            var offset = 0
            while offset < part.count {
                let n = Glibc.write(fd, part.baseAddress! + offset, part.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno)); break outer
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
        if failure == nil, rename(temporary, path) != 0 { failure = String(cString: strerror(errno)) }
        if let failure {
            unlink(temporary)
            throw FileWriteError(path: path, reason: failure)
        }
        syncDirectory(directory.isEmpty ? "." : directory)
    }

    /// fsyncs a directory so a rename inside it survives a crash.
    public static func syncDirectory(_ directory: String) {
        let dfd = open(directory, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    public static func write(_ path: String, data: Data) throws {
        try data.withUnsafeBytes { try write(path, parts: [$0]) }
    }

    public static func write(_ path: String, text: String) throws {
        try write(path, data: Data(text.utf8))
    }
}

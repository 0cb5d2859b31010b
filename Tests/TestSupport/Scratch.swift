// Scratch: where tests put their files — one directory per test process under the system's
// temporary directory, removed when the process exits, so test runs leave nothing behind. Roots
// left by test processes that died are removed by the next run.
import Foundation

/// `loom-tests-PID/` in the temporary directory, created (and registered for removal) on first use.
public let scratchRoot: String = {
    let temporary = temporaryDirectory()
    let manager = FileManager.default
    for name in (try? manager.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix("loom-tests-") {
        if let pid = Int32(name.dropFirst("loom-tests-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH {
            try? manager.removeItem(atPath: temporary + name)
        }
    }
    let root = temporary + "loom-tests-\(getpid())"
    try? manager.createDirectory(atPath: root, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: temporaryDirectory() + "loom-tests-\(getpid())") }
    return root
}()

/// The system's temporary directory, ending in "/".
private func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory()
    return path.hasSuffix("/") ? path : path + "/"
}

/// A path for a new file or directory inside `scratchRoot`: `prefix` followed by a unique name.
public func scratchPath(_ prefix: String, suffix: String = "") -> String {
    scratchRoot + "/" + prefix + UUID().uuidString + suffix
}

/// A new, empty directory inside `scratchRoot`.
public func makeScratchDirectory(_ prefix: String) throws -> String {
    let dir = scratchPath(prefix)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

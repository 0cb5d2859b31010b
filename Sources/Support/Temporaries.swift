// Temporaries: the names of the files and directories Loom writes before renaming them into place
// (`NAME.loomtmp-HOST-PID`), and the start-up sweep that removes those a crashed Loom process left
// behind.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Temporaries {
    /// This host's name as temporaries record it.
    public static let host: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        let name = String(cString: buffer)
        return name.isEmpty ? "localhost" : name
    }()

    /// The temporary beside `name` that this process writes (a hidden name: `.NAME.loomtmp-HOST-PID`).
    public static func name(for name: String) -> String { ".\(name).loomtmp-\(host)-\(getpid())" }

    /// Who left a temporary: the host and process id in its name, or nil when `entry` is not a Loom
    /// temporary. Names of older Loom builds (`.NAME.tmp-PID`, `.tmp-step-N-PID`) count as this host's.
    public static func owner(of entry: String) -> (host: String, pid: Int32)? {
        guard entry.hasPrefix(".") else { return nil }
        if let marker = entry.range(of: ".loomtmp-", options: .backwards) {
            let tail = entry[marker.upperBound...]
            guard let dash = tail.lastIndex(of: "-"), let pid = Int32(tail[tail.index(after: dash)...]), pid > 0 else { return nil }
            return (String(tail[..<dash]), pid)
        }
        if entry.contains(".tmp-"), let dash = entry.lastIndex(of: "-"),
           let pid = Int32(entry[entry.index(after: dash)...]), pid > 0 {
            return (host, pid)
        }
        return nil
    }

    /// True while process `pid` of this host runs Loom (a recycled id of another program is not).
    public static func isRunningLoom(_ pid: Int32) -> Bool {
        if pid == getpid() { return true }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe") else { return true }
        return (exe as NSString).lastPathComponent.hasPrefix("loom")
    }

    /// Removes the temporaries in `directory` (not below it) that a Loom process of this host left
    /// when it died: partial checkpoints, shards, exports; with `name`, only the temporaries of
    /// that name (a staged shard directory beside others' files). Those of a running Loom process
    /// and of other hosts stay. Returns the paths removed.
    @discardableResult
    public static func clearStale(in directory: String, of name: String? = nil) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        var removed: [String] = []
        for entry in entries.sorted() {
            if let name, !entry.hasPrefix(".\(name).loomtmp-") { continue }
            guard let owner = owner(of: entry), owner.host == host, !isRunningLoom(owner.pid) else { continue }
            let path = directory.isEmpty ? entry : directory + "/" + entry
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }
}

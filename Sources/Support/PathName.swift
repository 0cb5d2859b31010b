// PathName: the directory part of a path and absolute paths, safe for bare file names; nothing
// here touches the disk.
import Foundation

public enum PathName {
    /// The directory part of `path`: "" for a bare name ("model.json"), "/" for "/x", "a" for "a/b/".
    /// Why not `NSString.deletingLastPathComponent`: swift-corelibs-foundation (Swift 6.3.1) traps
    /// on a one-character path without a slash ("a", "."), so `loom translate .` crashed.
    public static func directory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        return String(p[..<slash])
    }

    /// The file `name` in the same directory as `path` ("merges.txt" beside "gpt2/vocab.json").
    public static func beside(_ path: String, named name: String) -> String {
        let directory = directory(of: path)
        return directory.isEmpty ? name : (directory == "/" ? "/" : directory + "/") + name
    }

    /// `path` made absolute against the current directory, with "." and ".." resolved.
    public static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path.isEmpty ? "." : path).standardizedFileURL.path
    }
}

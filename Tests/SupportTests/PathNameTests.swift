// PathName: directory parts and absolute paths, including the bare one-character names that
// Foundation's deletingLastPathComponent traps on.
import Testing
import Foundation
import Support

struct PathNameTests {
    @Test(arguments: [("a", ""), (".", ""), ("tok.json", ""), ("a/b", "a"), ("a/b/", "a"), ("./x", "."),
                      ("/x", "/"), ("/", "/"), ("/tmp/run/checkpoints/step-1", "/tmp/run/checkpoints"), ("", "")])
    func directoryPart(path: String, directory: String) {
        #expect(PathName.directory(of: path) == directory, "\(path)")
    }

    @Test func besideNamesASibling() {
        #expect(PathName.beside("vocab.json", named: "merges.txt") == "merges.txt")
        #expect(PathName.beside("gpt2/vocab.json", named: "merges.txt") == "gpt2/merges.txt")
        #expect(PathName.beside("/vocab.json", named: "merges.txt") == "/merges.txt")
    }

    @Test func absoluteResolvesAgainstTheCurrentDirectory() {
        let cwd = FileManager.default.currentDirectoryPath
        #expect(PathName.absolute(".") == URL(fileURLWithPath: cwd).standardizedFileURL.path)
        #expect(PathName.absolute("/tmp/a/../b/./c") == "/tmp/b/c")
        #expect(PathName.absolute("x").hasSuffix("/x") && PathName.absolute("x").hasPrefix("/"))
    }
}

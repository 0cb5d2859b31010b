// `loom tokenize` under `mpirun -n 2`: a file that only one rank encodes and cannot encode makes
// both ranks exit non-zero, soon, and leaves neither the output directory nor a staging one.
import Testing
import Foundation

@Suite struct TokenizeMPITests {
    @Test func aBadFileOnOneRankFailsBothRanksAndLeavesNoOutput() throws {
        let dir = try scratchDirectory()
        // A character tokenizer of "abc": file 1 (rank 1's) holds an unknown character.
        try #"{"characters": ["a", "b", "c"], "loom_tokenizer": "character"}"#
            .write(toFile: dir + "/chars.json", atomically: true, encoding: .utf8)
        for (name, text) in [("f0.txt", "abcabc"), ("f1.txt", "abz"), ("f2.txt", "cab")] {
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        let process = Process()
        // mpirun itself: launch/mpirun passes training options that `loom tokenize` does not take.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mpirun"] + (getuid() == 0 ? ["--allow-run-as-root"] : []) + ["--oversubscribe", "-n", "2",
                             loomBinary(), "tokenize", "--tokenizer", "chars.json", "--out", "shards", "f0.txt", "f1.txt", "f2.txt"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let start = Date()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        while process.isRunning && Date().timeIntervalSince(start) < 60 { Thread.sleep(forTimeInterval: 0.05) }
        let seconds = Date().timeIntervalSince(start)
        if process.isRunning { process.terminate() }
        #expect(seconds < 60, "the job did not end within 60 s")
        #expect(process.terminationStatus != 0)
        for rank in 0..<2 {
            #expect(stderr.contains("error (rank \(rank) of 2)") && stderr.contains("f1.txt"), "rank \(rank) must fail too: \(stderr)")
        }
        #expect(stderr.contains("rank 1 of 2: f1.txt"), "the message names the rank and file at fault: \(stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!left.contains("shards") && !left.contains { $0.hasPrefix(".") }, "no output left: \(left)")
    }
}

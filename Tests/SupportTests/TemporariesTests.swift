// Temporaries: names carry the writer's host and process id; the start-up sweep removes what dead
// Loom processes of this host left, and nothing of a running process or of another host.
import Testing
import Foundation
import Support
import TestSupport

@Suite struct TemporariesTests {
    @Test func namesRecordHostAndProcess() throws {
        let name = Temporaries.name(for: "step-00000200")
        #expect(name == ".step-00000200.loomtmp-\(Temporaries.host)-\(getpid())")
        let owner = try #require(Temporaries.owner(of: name))
        #expect(owner.host == Temporaries.host && owner.pid == getpid())
        let other = try #require(Temporaries.owner(of: ".model.safetensors.loomtmp-node-7.cluster-31337"))
        #expect(other.host == "node-7.cluster" && other.pid == 31337)
        // Older builds' names belong to this host.
        #expect(Temporaries.owner(of: ".tmp-step-00000200-4242")?.pid == 4242)
        #expect(Temporaries.owner(of: ".state.json.tmp-99")?.pid == 99)
        for plain in ["step-00000200", "latest", ".hidden", ".x.loomtmp-host-notanumber", "model.safetensors"] {
            #expect(Temporaries.owner(of: plain) == nil, "\(plain) is not a temporary")
        }
    }

    @Test func theSweepRemovesOnlyWhatDeadProcessesOfThisHostLeft() throws {
        let dir = scratchPath("loom-temporaries-")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // A process id that has certainly exited: a child we started and waited for.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = child.processIdentifier
        let host = Temporaries.host
        let stale = [".step-00000010.loomtmp-\(host)-\(dead)", ".shard-00003.bin.loomtmp-\(host)-\(dead)", ".tmp-step-00000020-\(dead)"]
        let kept = [".step-00000030.loomtmp-\(host)-\(getpid())",          // a running process (this one)
                    ".step-00000040.loomtmp-another-host-\(dead)",         // another host's
                    "step-00000050", "latest"]                              // not temporaries
        for name in stale + kept {
            if name.hasPrefix(".step") || name.hasPrefix(".tmp-step") || name.hasPrefix("step") {
                try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: false)
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/" + name + "/model.safetensors"))
            } else {
                try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/" + name))
            }
        }
        let removed = Temporaries.clearStale(in: dir)
        #expect(Set(removed) == Set(stale.map { dir + "/" + $0 }))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir)) == Set(kept))
        #expect(Temporaries.clearStale(in: dir + "/missing").isEmpty)
    }
}

// launch/common.sh's ensure_packages against fake dpkg-query and apt-get on PATH: a package that is
// there is left alone, a failed apt-get is tried again, and one that keeps failing ends in an error
// naming the packages and a non-zero status.
import Testing
import Foundation

@Suite struct LaunchPackagesTests {
    /// Runs `ensure_packages pkg-a pkg-b` with apt-get failing its first `failures` installs.
    /// Returns the run and how many installs apt-get was asked for.
    func ensure(failures: Int, installed: [String] = []) throws -> (run: Run, installs: Int) {
        let dir = try scratchDirectory()
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let fakes = [
            "dpkg-query": """
            #!/bin/sh
            # the last argument is the package
            for p; do :; done
            case " \(installed.joined(separator: " ")) " in *" $p "*) printf 'install ok installed';; esac
            """,
            "apt-get": """
            #!/bin/sh
            case "$*" in *install*)
                n=$(cat "\(dir)/installs" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "\(dir)/installs"
                echo "install $*" >> "\(dir)/asked"
                [ $n -gt \(failures) ] || { echo "E: Temporary failure resolving 'deb.debian.org'" >&2; exit 100; };;
            esac
            exit 0
            """,
        ]
        for (name, text) in fakes {
            try text.write(toFile: bin + "/" + name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/" + name)
        }
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let run = try runProcess("/bin/bash", ["-c", "source \(repositoryRoot)/launch/common.sh && ensure_packages pkg-a pkg-b"],
                                 in: dir, environment: ["PATH": path, "LOOM_APT_RETRY_SECONDS": "0"])
        let installs = Int((try? String(contentsOfFile: dir + "/installs", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0") ?? 0
        if installs > 0 {
            let asked = try String(contentsOfFile: dir + "/asked", encoding: .utf8)
            for package in installed { #expect(!asked.contains(package), "asked apt-get for \(package), installed: \(asked)") }
        }
        return (run, installs)
    }

    @Test func installsWhatIsMissingOnly() throws {
        let (run, installs) = try ensure(failures: 0, installed: ["pkg-a"])
        #expect(run.status == 0 && installs == 1, "\(run.stderr)")
        #expect(run.stderr.contains("installing pkg-b") && !run.stderr.contains("pkg-a"), "\(run.stderr)")
        let (none, noInstalls) = try ensure(failures: 0, installed: ["pkg-a", "pkg-b"])
        #expect(none.status == 0 && noInstalls == 0 && none.stderr.isEmpty, "\(none.stderr)")
    }

    @Test func aFailedInstallIsTriedAgain() throws {
        let (run, installs) = try ensure(failures: 2)
        #expect(run.status == 0 && installs == 3, "\(run.stderr)")
        #expect(run.stderr.contains("attempt 2 of 3"), "\(run.stderr)")
    }

    @Test func anInstallThatKeepsFailingSaysWhatIsMissing() throws {
        let (run, installs) = try ensure(failures: 5)
        #expect(run.status == 1 && installs == 3, "\(run.stderr)")
        #expect(run.stderr.contains("could not install pkg-a pkg-b"), "\(run.stderr)")
    }
}

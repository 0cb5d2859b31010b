// Package.swift declares every import: each target's `dependencies` are exactly the modules its
// Swift files import and the other targets whose headers its C files include (system modules
// aside; a test target may also name the executable it runs).
import Testing
import Foundation

@Suite struct PackageManifestTests {
    /// Modules of the toolchain and the OS, which no target declares.
    static let system: Set<String> = ["Foundation", "FoundationXML", "Glibc", "Darwin", "Dispatch", "Synchronization", "Testing", "XCTest"]

    /// (name, directory, declared dependencies) of every Swift-bearing target in Package.swift.
    static func targets() throws -> [(name: String, directory: String, dependencies: Set<String>)] {
        let manifest = try String(contentsOfFile: repositoryRoot + "/Package.swift", encoding: .utf8)
        let start = try Regex(#"\.(target|executableTarget|testTarget)\(name: "(\w+)""#)
        let matches = manifest.matches(of: start)
        return try matches.enumerated().map { k, match in
            let kind = String(match.output[1].substring ?? ""), name = String(match.output[2].substring ?? "")
            let end = k + 1 < matches.count ? matches[k + 1].range.lowerBound : manifest.endIndex
            let entry = manifest[match.range.upperBound ..< end]
            var dependencies: Set<String> = []
            if let list = entry.firstMatch(of: try Regex(#"dependencies: \[([^\]]*)\]"#)), let inner = list.output[1].substring {
                for quoted in inner.matches(of: try Regex(#""(\w+)""#)) { dependencies.insert(String(quoted.output[1].substring ?? "")) }
            }
            let path = entry.firstMatch(of: try Regex(#"path: "([^"]+)""#)).flatMap { $0.output[1].substring }.map(String.init)
            return (name, path ?? (kind == "testTarget" ? "Tests/" : "Sources/") + name, dependencies)
        }
    }

    /// The modules the Swift files under `directory` import, and those of `targets` (other than
    /// `own`) whose header (`#include "Name.h"`) its C files include.
    static func imports(_ directory: String, targets: Set<String> = [], own: String = "") throws -> Set<String> {
        let root = repositoryRoot + "/" + directory
        var modules: Set<String> = []
        for file in try FileManager.default.subpathsOfDirectory(atPath: root) {
            let swift = file.hasSuffix(".swift"), c = file.hasSuffix(".c")
            guard swift || c else { continue }
            for line in try String(contentsOfFile: root + "/" + file, encoding: .utf8).split(separator: "\n") {
                if swift, let match = line.wholeMatch(of: try Regex(#"(?:@testable )?import (\w+)"#)) {
                    modules.insert(String(match.output[1].substring ?? ""))
                } else if c, let match = line.wholeMatch(of: try Regex(#"#include "(\w+)\.h""#)),
                          let name = match.output[1].substring.map(String.init), name != own, targets.contains(name) {
                    modules.insert(name)
                }
            }
        }
        return modules.subtracting(system)
    }

    @Test func everyTargetDeclaresExactlyWhatItImports() throws {
        let targets = try Self.targets()
        #expect(targets.count >= 10, "found \(targets.map(\.name))")
        let executables: Set<String> = ["loom"]
        let names = Set(targets.map(\.name))
        for target in targets {
            let imported = try Self.imports(target.directory, targets: names, own: target.name)
            #expect(imported == target.dependencies.subtracting(executables),
                    "\(target.name): imports \(imported.sorted()) but declares \(target.dependencies.sorted())")
        }
    }
}

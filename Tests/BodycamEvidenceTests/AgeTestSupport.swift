import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

/// Helpers shared by the age tests: a scratch directory, the real `age` tools, file I/O.
struct AgeScratch: ~Copyable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "/bodycam-age-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

struct ToolResult {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
}

/// Runs a tool from PATH, with stdout and stderr captured through files (no pipe can fill up).
func runTool(_ arguments: [String], stdin: [UInt8]? = nil) throws -> ToolResult {
    let scratch = try AgeScratch()
    let outPath = scratch.file("stdout")
    let errPath = scratch.file("stderr")
    let inPath = scratch.file("stdin")
    _ = FileManager.default.createPlainFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createPlainFile(atPath: errPath, contents: nil)
    _ = FileManager.default.createPlainFile(atPath: inPath, contents: Data(stdin ?? []))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
    try process.run()
    process.waitUntilExit()
    return ToolResult(
        status: process.terminationStatus,
        stdout: Array(try Data(contentsOf: URL(fileURLWithPath: outPath))),
        stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// `age -d -i identityFile file`: the plaintext, or nil with age's complaint recorded in `failure`.
func ageDecrypt(_ path: String, identityFile: String, failure: inout String) throws -> [UInt8]? {
    let result = try runTool(["age", "-d", "-i", identityFile, path])
    failure = result.stderr
    return result.status == 0 ? result.stdout : nil
}

func readFile(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Deterministic pseudo-random bytes (SplitMix64), so a failure can be reproduced from its seed.
struct SeededBytes {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count { withUnsafeBytes(of: next()) { out += $0 } }
        return Array(out.prefix(count))
    }

    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

/// A file written with pwrite, as the recorder writes a sealed clip.
final class PositionalFile {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw AgeError.io(operation: "open", path: path, errno: errno) }
    }

    deinit { close(fd) }

    func write(_ w: AgeWrite) throws {
        let n = w.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(w.offset)) }
        if n != w.bytes.count { throw AgeError.io(operation: "pwrite", path: path, errno: errno) }
    }

    func size() throws -> Int { Int(try AgePOSIX.size(fd)) }
}

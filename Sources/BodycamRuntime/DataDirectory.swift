import BodycamAdapters
import BodycamCore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The data directory (`--data`, default /var/lib/bodycam) and what lives in it.
struct DataDirectory: Sendable {
    let root: String

    var clips: String { root + "/clips" }
    var journal: String { root + "/journal" }
    var state: String { root + "/state" }
    var socket: String { root + "/control.sock" }
    var lockFile: String { root + "/.lock" }
    var sequenceFile: String { state + "/clip-sequence" }

    static let defaultRoot = "/var/lib/bodycam"

    init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// Creates the folders.
    func prepare() throws(SystemError) {
        for d in [root, clips, journal, state] { try FileSystem.makeDirectory(d) }
    }

    /// Takes the directory's lock so two recorders never write the same clips. The descriptor
    /// stays open (and the lock held) for the life of the process.
    func lock() throws(SystemError) -> Int32 {
        let fd = try Syscall.retrying("open", path: lockFile) { open(lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o640) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Syscall.close(fd)
            throw SystemError(op: "flock (another bodycam uses this data directory)", errno: e, path: lockFile)
        }
        return fd
    }

    /// The next clip sequence number: persisted, so ids never repeat even after clips are offloaded.
    func nextClipSequence() -> Int {
        var next = 1
        if let text = try? String(contentsOfFile: sequenceFile, encoding: .utf8), let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            next = n
        }
        // Never reuse a number a clip on disk already has (the file may be older than the clips).
        for name in FileSystem.list(clips) where name.hasSuffix(".json") {
            if let seq = Int(name.dropLast(5).split(separator: "-").last ?? ""), seq >= next { next = seq + 1 }
        }
        return next
    }

    /// The device id from /etc/machine-id when none is configured.
    static func defaultDeviceID() -> String {
        if let id = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8) {
            let hex = id.trimmingCharacters(in: .whitespacesAndNewlines)
            if hex.count >= 8 { return "bodycam-" + hex.prefix(8) }
        }
        return "bodycam"
    }
}


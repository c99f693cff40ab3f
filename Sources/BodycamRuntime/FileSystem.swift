import BodycamAdapters
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Durable file operations: what is written here survives a power cut once the call returns.
package enum FileSystem {
    /// Creates `path` and its parents (mode 0750), like `mkdir -p`.
    static func makeDirectory(_ path: String) throws(SystemError) {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o750) != 0 && errno != EEXIST {
                throw SystemError(op: "mkdir", errno: errno, path: built)
            }
        }
    }

    /// fsync of the directory holding `path`, so a new or renamed entry in it is durable. False
    /// when that is not known: whatever relies on the entry (removing what it replaces) must wait.
    @discardableResult
    static func syncDirectory(containing path: String) -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { Syscall.close(fd) }
        do {
            _ = try Syscall.retrying("fsync", path: dir) { fsync(fd) }
            return true
        } catch {
            // A filesystem that cannot sync a folder says EINVAL: nothing more can be done there.
            return error.errno == EINVAL
        }
    }

    /// Cuts `path` back to `size` bytes and syncs it, so the cut is on storage before anything
    /// that relies on it (a manifest naming the new size, a journal removed).
    static func truncate(_ path: String, to size: Int) throws(SystemError) {
        let fd = try Syscall.retrying("open", path: path) { open(path, O_WRONLY | O_CLOEXEC) }
        defer { Syscall.close(fd) }
        _ = try Syscall.retrying("ftruncate", path: path) { ftruncate(fd, off_t(size)) }
        _ = try Syscall.retrying("fsync", path: path) { fsync(fd) }
    }

    /// Writes `data` to `path` through a temporary file: written, synced, renamed, directory
    /// synced. Readers see the old file or the new one, never a mix.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o640) throws(SystemError) {
        do {
            try writeAtomically(to: path, mode: mode) { emit in try emit(data) }
        } catch let error as SystemError {
            throw error
        } catch {
            throw SystemError(op: "write (\(error))", errno: EIO, path: path)
        }
    }

    /// `writeAtomically` for bytes made a piece at a time: `produce` is given a function that
    /// takes the next piece (small pieces are gathered into 64 KiB writes). Nothing replaces
    /// `path` unless `produce` returns and the bytes are synced.
    static func writeAtomically(
        to path: String, mode: mode_t = 0o640, _ produce: (_ emit: (Data) throws -> Void) throws -> Void
    ) throws {
        let tmp = path + ".tmp"
        let fd = try Syscall.retrying("open", path: tmp) {
            open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        }
        do {
            var pending = [UInt8]()
            func write<B: ContiguousBytes>(_ bytes: B) throws(SystemError) {
                try withBytes(bytes) { (b: UnsafeRawBufferPointer) throws(SystemError) in
                    try Syscall.writeAll(fd, b, path: tmp)
                }
            }
            try produce { piece in
                if pending.count + piece.count < 65536 {
                    pending += piece
                    return
                }
                try write(pending)
                pending.removeAll(keepingCapacity: true)
                if piece.count >= 65536 { try write(piece) } else { pending += piece }
            }
            try write(pending)
            try Syscall.retrying("fsync", path: tmp) { fsync(fd) }
        } catch {
            Syscall.close(fd)
            unlink(tmp)
            throw error
        }
        Syscall.close(fd)
        try Syscall.retrying("rename", path: path) { rename(tmp, path) }
        // Not a failure when the folder sync fails: the file is in place, and failing here would
        // stop a recording (a sealed tail is written this way) over an entry that will most
        // likely reach storage anyway. Callers that remove something on the strength of a
        // rename check `syncDirectory` themselves.
        syncDirectory(containing: path)
    }

    /// Calls `line` with each newline-terminated line of `path` (without its newline), reading
    /// 64 KiB at a time; a last line without a newline is not given.
    static func forEachLine(of path: String, _ line: (Data) throws -> Void) throws {
        let fd = try Syscall.retrying("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { Syscall.close(fd) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var carry = [UInt8]()
        while true {
            let n = try buffer.withUnsafeMutableBytes { (b: UnsafeMutableRawBufferPointer) throws(SystemError) in
                try Syscall.retrying("read", path: path) { read(fd, b.baseAddress!, b.count) }
            }
            if n == 0 { return }
            var start = 0
            for i in 0..<n where buffer[i] == 0x0a {
                if carry.isEmpty {
                    try line(Data(buffer[start..<i]))
                } else {
                    carry += buffer[start..<i]
                    try line(Data(carry))
                    carry.removeAll(keepingCapacity: true)
                }
                start = i + 1
            }
            carry += buffer[start..<n]
        }
    }

    /// Bytes available to an unprivileged writer on the filesystem holding `path`.
    static func freeBytes(at path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Names in `directory` (not `.` or `..`), sorted.
    package static func list(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// The whole of `path` when it is a regular file of at most `limit` bytes. Anything else is
    /// not read (a device or FIFO could block or never end; a runaway file would fill RAM): the
    /// error says which.
    static func readRegularFile(_ path: String, limit: Int) throws(SystemError) -> Data {
        let fd = try Syscall.retrying("open", path: path) {
            open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        }
        defer { Syscall.close(fd) }
        var st = stat()
        try Syscall.retrying("fstat", path: path) { fstat(fd, &st) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw SystemError(op: "read (not a regular file)", errno: EINVAL, path: path) }
        guard st.st_size <= limit else { throw SystemError(op: "read (over \(limit) bytes)", errno: EFBIG, path: path) }
        // Read in place (no second copy: a journal can be large on a small board).
        var data = Data(count: Int(st.st_size))
        let read: Result<Int, SystemError> = data.withUnsafeMutableBytes { b in
            Result { () throws(SystemError) -> Int in
                var done = 0
                while done < b.count {
                    let n = try Syscall.retrying("read", path: path) { Glibc.read(fd, b.baseAddress! + done, b.count - done) }
                    if n == 0 { break }
                    done += n
                }
                return done
            }
        }
        data.count = try read.get()
        return data
    }

    static func size(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_size)
    }
}

/// `withUnsafeBytes` keeps a typed error: the standard one is `rethrows` and widens it to `any Error`.
func withBytes<B: ContiguousBytes, T>(
    _ bytes: B, _ body: (UnsafeRawBufferPointer) throws(SystemError) -> T
) throws(SystemError) -> T {
    let result: Result<T, SystemError> = bytes.withUnsafeBytes { p in Result { () throws(SystemError) in try body(p) } }
    return try result.get()
}

#if canImport(Glibc)
import Glibc
#endif

/// The few system calls this module makes, each retrying EINTR and throwing the call's name and errno.
enum AgePOSIX {
    /// Retries `body` while it fails with EINTR; any other failure becomes `AgeError.io`.
    private static func retrying(
        _ operation: String, path: String?, _ body: () -> Int
    ) throws(AgeError) -> Int {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            // EFAULT means we passed a bad buffer: our bug, not the caller's input.
            precondition(code != EFAULT, "\(operation) was handed a bad buffer")
            throw .io(operation: operation, path: path, errno: code)
        }
    }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(AgeError) -> Int32 {
        Int32(try retrying("open", path: path) { Int(Glibc.open(path, flags | O_CLOEXEC, mode)) })
    }

    static func close(_ fd: Int32) {
        // Linux closes the descriptor even when close reports EINTR, so it is never retried.
        _ = Glibc.close(fd)
    }

    static func size(_ fd: Int32, path: String? = nil) throws(AgeError) -> Int {
        var info = stat()
        _ = try retrying("fstat", path: path) { Int(fstat(fd, &info)) }
        return Int(info.st_size)
    }

    /// Reads up to `buffer.count` bytes at `offset`, stopping early only at end of file.
    static func read(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String? = nil
    ) throws(AgeError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try retrying("pread", path: path) {
                pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at the descriptor's position (a pipe or a file).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String? = nil) throws(AgeError) {
        var done = 0
        while done < bytes.count {
            done += try retrying("write", path: path) {
                Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            }
        }
    }

    static func sync(_ fd: Int32, path: String? = nil) throws(AgeError) {
        _ = try retrying("fsync", path: path) { Int(fsync(fd)) }
    }

    static func chmod(_ fd: Int32, _ mode: mode_t, path: String? = nil) throws(AgeError) {
        _ = try retrying("fchmod", path: path) { Int(fchmod(fd, mode)) }
    }

    /// The wall clock, for the `# created:` line of an identity file.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// The standard library's `withUnsafeBytes` rethrows untyped errors; these keep `AgeError` typed.
extension Array where Element == UInt8 {
    func withAgeBytes<R>(_ body: (UnsafeRawBufferPointer) throws(AgeError) -> R) throws(AgeError) -> R {
        try withUnsafeBytes { buffer in Result { () throws(AgeError) in try body(buffer) } }.get()
    }

    mutating func withAgeMutableBytes<R>(
        _ body: (UnsafeMutableRawBufferPointer) throws(AgeError) -> R
    ) throws(AgeError) -> R {
        try withUnsafeMutableBytes { buffer in Result { () throws(AgeError) in try body(buffer) } }.get()
    }
}

extension ArraySlice where Element == UInt8 {
    func withAgeBytes<R>(_ body: (UnsafeRawBufferPointer) throws(AgeError) -> R) throws(AgeError) -> R {
        try withUnsafeBytes { buffer in Result { () throws(AgeError) in try body(buffer) } }.get()
    }
}

/// A small public file (a `.pub` key) written durably: temporary file, fsync, rename, folder
/// fsync. (Foundation's atomic write on Linux leaves an empty folder in /tmp behind each time.)
public enum PublicFile {
    public static func write(_ text: String, to path: String, mode: UInt32 = 0o644) throws(AgeError) {
        let tmp = path + ".tmp"
        let fd = try AgePOSIX.open(tmp, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode_t(mode))
        do {
            try Array(text.utf8).withAgeBytes { (bytes) throws(AgeError) in try AgePOSIX.writeAll(fd, bytes, path: tmp) }
            try AgePOSIX.sync(fd, path: tmp)
        } catch {
            AgePOSIX.close(fd)
            unlink(tmp)
            throw error
        }
        AgePOSIX.close(fd)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw AgeError.io(operation: "rename", path: path, errno: e)
        }
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let dfd = Glibc.open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            Glibc.close(dfd)
        }
    }
}

internal import CBodycamShim

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what, and errno.
///
/// Every read, write, ioctl and open goes through `Syscall`, so an error always names the
/// operation (`SystemError(op: "fdatasync", errno: EIO, path: "…/clip.mp4")`), never just "failed".
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public var op: String
    public var errno: Int32
    public var path: String?

    public init(op: String, errno: Int32, path: String? = nil) {
        self.op = op
        self.errno = errno
        self.path = path
    }

    public var description: String {
        let reason = String(cString: strerror(errno))
        if let path { return "\(op) \(path): \(reason) (errno \(errno))" }
        return "\(op): \(reason) (errno \(errno))"
    }

    /// The storage is full (ENOSPC or EDQUOT).
    public var isNoSpace: Bool { errno == ENOSPC || errno == EDQUOT }
}

/// One wrapper for every system call: EINTR is retried, anything else is thrown with the
/// operation's name. EBADF and EFAULT mean we passed a bad descriptor or pointer: our bug.
public enum Syscall {
    @discardableResult
    @inline(__always)
    public static func retrying<T: BinaryInteger>(
        _ op: String, path: String? = nil, _ call: () -> T
    ) throws(SystemError) -> T {
        while true {
            let r = call()
            if r >= 0 { return r }
            let e = Glibc.errno
            if e == EINTR { continue }
            precondition(e != EBADF && e != EFAULT, "\(op): bad descriptor or address (errno \(e)), a bodycam bug")
            throw SystemError(op: op, errno: e, path: path)
        }
    }

    /// Writes all of `buffer`, resuming after short writes.
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String?) throws(SystemError) {
        var done = 0
        while done < buffer.count {
            let n = try retrying("write", path: path) {
                Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
            }
            done += n
        }
    }

    /// Reads exactly `count` bytes at `offset`, or fewer at end of file.
    public static func pread(
        _ fd: Int32, _ buffer: UnsafeMutableRawPointer, count: Int, offset: Int, path: String?
    ) throws(SystemError) -> Int {
        var done = 0
        while done < count {
            let n = try retrying("pread", path: path) {
                Glibc.pread(fd, buffer + done, count - done, off_t(offset + done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public static func close(_ fd: Int32) {
        // close(2) must not be retried on Linux: the descriptor is released even on EINTR.
        _ = Glibc.close(fd)
    }
}

/// CLOCK_MONOTONIC and CLOCK_REALTIME readings.
public enum SystemClock {
    public static func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func realtime() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Whether the kernel considers the wall clock synchronised: adjtimex's maximum error under
    /// 16 s, which systemd-timesyncd, chrony and ntpd keep small once they have a fix (the rule
    /// systemd uses; see the shim).
    public static func isSynchronized() -> Bool { bodycam_clock_synchronized() == 1 }

    /// Sleeps until the monotonic instant `ns` (absolute, so jitter does not accumulate).
    public static func sleep(untilMonotonic ns: Int64) {
        var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }
}

internal import CBodycamShim

#if canImport(Glibc)
import Glibc
#endif

/// Linux calls that Swift's Glibc module does not import (GNU extensions), and console output
/// that does not go through the C stdio globals (which strict concurrency rejects).
public enum Posix {
    /// eventfd(2) with EFD_CLOEXEC (and EFD_NONBLOCK when asked).
    public static func eventfd(nonblocking: Bool) throws(SystemError) -> Int32 {
        try Syscall.retrying("eventfd") { bodycam_eventfd(0, nonblocking ? 1 : 0) }
    }

    /// accept4(2) with SOCK_CLOEXEC | SOCK_NONBLOCK; nil when no connection is waiting.
    public static func acceptNonblocking(_ fd: Int32) -> Int32? {
        let r = bodycam_accept4_nonblocking(fd)
        return r >= 0 ? r : nil
    }

    /// Reserves `length` bytes of blocks from `offset` in an open file without changing its size
    /// (fallocate with FALLOC_FL_KEEP_SIZE). False where the file system cannot.
    @Sendable
    public static func reserveSpace(fd: Int32, offset: Int, length: Int) -> Bool {
        bodycam_reserve_space(fd, Int64(offset), Int64(length)) == 0
    }

    /// No transparent huge pages for this process, from now on (inherited by children; a kernel
    /// without THP has nothing to switch off). x264 asks for huge pages for its frames, and a
    /// huge page is resident whole: 2.1 MB more RSS for the same encode, and khugepaged may fill
    /// partly used regions later. Measured on x264's own CLI at 720p superfast, 16 runs each,
    /// alternating: user+sys 5.75 s with THP and 5.75 s without, so the memory buys nothing.
    public static func disableTransparentHugePages() {
        _ = bodycam_disable_thp()
    }

    /// Names the calling thread (15 bytes show in `top -H`).
    public static func setThreadName(_ name: String) {
        _ = bodycam_set_thread_name(String(name.prefix(15)))
    }

    /// Writes `text` to standard error, whole.
    public static func printError(_ text: String) { write(STDERR_FILENO, text) }

    /// Writes `text` to standard output, whole.
    public static func printOut(_ text: String) { write(STDOUT_FILENO, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var s = text
        s.withUTF8 { b in
            guard let base = b.baseAddress else { return }
            try? Syscall.writeAll(fd, UnsafeRawBufferPointer(start: base, count: b.count), path: nil)
        }
    }
}

/// Number formatting for log lines without Foundation.
public enum Decimals {
    /// `x` with two decimals ("1.50", "-0.07").
    public static func two(_ x: Double) -> String {
        let hundredths = Int64((abs(x) * 100).rounded())
        let frac = hundredths % 100
        return (x < 0 && hundredths > 0 ? "-" : "") + "\(hundredths / 100)." + (frac < 10 ? "0" : "") + "\(frac)"
    }
}

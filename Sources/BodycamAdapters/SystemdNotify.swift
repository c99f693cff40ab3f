#if canImport(Glibc)
import Glibc
#endif

/// The service manager's notification socket (sd_notify(3)), spoken directly: one datagram per
/// message to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
///
/// Without `NOTIFY_SOCKET` (not started by systemd, or `Type=simple`) every call does nothing.
/// The variables stay in the environment: unsetenv is not safe while other threads may read it,
/// and the recorder starts no child processes that could talk to systemd in its name.
public final class SystemdNotifier: @unchecked Sendable {
    private let fd: Int32
    private let address: sockaddr_un
    private let addressLength: socklen_t
    /// `WATCHDOG_USEC` when the watchdog is armed for this process, in nanoseconds.
    public let watchdogInterval: Int64?

    public var isActive: Bool { fd >= 0 }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    public convenience init() {
        func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        self.init(socket: env("NOTIFY_SOCKET"), watchdogUsec: env("WATCHDOG_USEC"), watchdogPID: env("WATCHDOG_PID"))
    }

    public init(socket path: String?, watchdogUsec: String?, watchdogPID: String?) {
        // The watchdog is ours only when no other pid is named (systemd names the main pid).
        let forUs = watchdogPID.map { Int32($0) == getpid() } ?? true
        if forUs, let usec = watchdogUsec.flatMap({ Int64($0) }), usec > 0 {
            watchdogInterval = usec * 1000
        } else {
            watchdogInterval = nil
        }
        var addr = sockaddr_un()
        guard let path, path.first == "/" || path.first == "@" else {
            fd = -1
            address = addr
            addressLength = 0
            return
        }
        var bytes = Array(path.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        // A path needs room for its terminating NUL; an abstract name is exactly its bytes.
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes[0] == 0 ? bytes.count <= capacity : bytes.count < capacity else {
            fd = -1
            address = addr
            addressLength = 0
            return
        }
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes)
        }
        address = addr
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit {
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// Sends `message` ("READY=1", "STATUS=…", "WATCHDOG=1", "STOPPING=1", several joined by
    /// newlines). Returns false when there is no socket or the datagram was not accepted.
    @discardableResult
    public func notify(_ message: String) -> Bool {
        guard fd >= 0 else { return false }
        var bytes = Array(message.utf8)
        let length = addressLength
        // A copy: notify is called from more than one thread.
        var target = address
        let sent = withUnsafePointer(to: &target) { addr in
            addr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeMutableBytes { b in
                    // Never block the control thread on a busy service manager.
                    Glibc.sendto(fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT), sa, length)
                }
            }
        }
        return sent == bytes.count
    }
}

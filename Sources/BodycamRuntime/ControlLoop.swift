import BodycamAdapters
import BodycamCore
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control thread: the control socket, the terminal's keys, and every timer.
///
/// One `poll` over the listening socket, its clients, an eventfd for wake-ups and (in a terminal)
/// stdin, with the timeout set to the next deadline: button timing, scheduled simulated edges,
/// the status line, `--for`. Nothing here blocks for long; presses that take time (a 3 s hold)
/// are scheduled edges, and their answer is sent when the release has happened.
final class ControlLoop: @unchecked Sendable {
    typealias StatusProvider = @Sendable () -> [String: Any]

    /// Hardware the control thread also serves: descriptors to watch (GPIO line events) and a
    /// timer (indicator patterns) that returns when it next needs to run.
    struct Hooks: Sendable {
        var sources: [(fd: Int32, onReadable: @Sendable () -> Void)] = []
        var tick: (@Sendable (MonotonicTime) -> MonotonicTime?)?
    }

    private let socketPath: String
    private let recorder: Recorder
    private let logger: Logger
    private let status: StatusProvider
    private let onStop: @Sendable (String) -> Void
    private let onDock: @Sendable (Bool) -> Void
    private var listenFD: Int32 = -1
    private let wakeFD: Int32
    private var clients: [Int32: [UInt8]] = [:]
    private var scheduled: [(at: MonotonicTime, event: Scheduled)] = []
    private let stopping = Mutex(false)
    private var thread: DedicatedThread?
    private var statusLine: StatusLine?
    private let runUntil: MonotonicTime?
    private var stopAnnounced = false
    private let hooks: Hooks

    private enum Scheduled {
        case edge(Button, pressed: Bool)
        case reply(Int32, [String: Any])
    }

    init(
        socketPath: String, recorder: Recorder, logger: Logger, runFor: Double?, terminal: StatusLine?,
        status: @escaping StatusProvider, onStop: @escaping @Sendable (String) -> Void,
        onDock: @escaping @Sendable (Bool) -> Void, hooks: Hooks = Hooks()
    ) {
        self.hooks = hooks
        self.socketPath = socketPath
        self.recorder = recorder
        self.logger = logger
        self.status = status
        self.onStop = onStop
        self.onDock = onDock
        statusLine = terminal
        wakeFD = (try? Posix.eventfd(nonblocking: true)) ?? -1
        runUntil = runFor.map { MonotonicTime(nanoseconds: SystemClock.monotonic()) + Nanos.seconds($0) }
    }

    /// Binds the control socket (replacing a stale one left by a crash) and starts the thread.
    func start() throws(SystemError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SystemError(op: "socket", errno: errno) }
        // A socket file left by a killed run would make bind fail; only one run uses a data
        // directory at a time (the caller holds its lock), so it is stale.
        unlink(socketPath)
        var addr = sockaddr_un()
        guard UnixSocket.fill(&addr, path: socketPath) else {
            Syscall.close(fd)
            throw SystemError(op: "bind (path too long)", errno: ENAMETOOLONG, path: socketPath)
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError(op: "bind", errno: e, path: socketPath)
        }
        chmod(socketPath, 0o660)
        guard listen(fd, 16) == 0 else {
            let e = errno
            Syscall.close(fd)
            throw SystemError(op: "listen", errno: e, path: socketPath)
        }
        listenFD = fd
        statusLine?.begin()
        thread = DedicatedThread(name: "bc-control") { [self] in loop() }
    }

    /// Ends the loop and removes the socket.
    func stop() {
        stopping.withLock { $0 = true }
        wake()
        thread?.join()
        statusLine?.end()
        for fd in clients.keys { Syscall.close(fd) }
        clients.removeAll()
        if listenFD >= 0 {
            Syscall.close(listenFD)
            unlink(socketPath)
        }
        Syscall.close(wakeFD)
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    private func now() -> MonotonicTime { MonotonicTime(nanoseconds: SystemClock.monotonic()) }

    private func loop() {
        var nextStatus = now()
        while !stopping.withLock({ $0 }) {
            let t = now()
            // Due scheduled events, in time order.
            scheduled.sort { $0.at < $1.at }
            while let first = scheduled.first, first.at <= t {
                scheduled.removeFirst()
                switch first.event {
                case .edge(let b, let pressed): recorder.edge(b, pressed: pressed, at: first.at)
                case .reply(let fd, let obj): send(fd, obj)
                }
            }
            recorder.tick(now: t)
            let hookDeadline = hooks.tick?(t)
            if let until = runUntil, t >= until, !stopAnnounced {
                stopAnnounced = true
                onStop("--for elapsed")
            }
            if statusLine != nil && t >= nextStatus {
                statusLine?.draw(status())
                nextStatus = t + Nanos.milliseconds(500)
            }
            // Sleep until the next deadline, at most 250 ms (status and stall checks).
            var deadline = t + Nanos.milliseconds(250)
            for d in [scheduled.map(\.at).min(), recorder.nextDeadline(), runUntil, hookDeadline].compactMap({ $0 })
            where d < deadline {
                deadline = d
            }
            let timeoutMs = Int32(max(0, min(250, (deadline - now() + 999_999) / 1_000_000)))
            var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)]
            if statusLine != nil { fds.append(pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)) }
            for fd in clients.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            for source in hooks.sources { fds.append(pollfd(fd: source.fd, events: Int16(POLLIN), revents: 0)) }
            let n = poll(&fds, nfds_t(fds.count), timeoutMs)
            if n <= 0 { continue }
            for p in fds where p.revents != 0 {
                if p.fd == wakeFD {
                    var v: UInt64 = 0
                    _ = read(wakeFD, &v, 8)
                } else if p.fd == listenFD {
                    acceptClients()
                } else if p.fd == STDIN_FILENO && statusLine != nil {
                    readKeys()
                } else if let source = hooks.sources.first(where: { $0.fd == p.fd }) {
                    source.onReadable()
                } else {
                    readClient(p.fd)
                }
            }
        }
    }

    private func acceptClients() {
        while true {
            guard let fd = Posix.acceptNonblocking(listenFD) else { return }
            if clients.count >= 32 {
                Syscall.close(fd)
                continue
            }
            clients[fd] = []
        }
    }

    private func readClient(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 1024)
        let n = read(fd, &chunk, chunk.count)
        if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
        guard n > 0 else {
            drop(fd)
            return
        }
        var buffer = (clients[fd] ?? []) + chunk[0..<n]
        while let nl = buffer.firstIndex(of: 0x0a) {
            let line = Array(buffer[..<nl])
            buffer.removeSubrange(...nl)
            handle(line, from: fd)
        }
        if buffer.count > ControlRequest.maxLineBytes {
            send(fd, ["ok": false, "error": "request too long"])
            drop(fd)
            return
        }
        if clients[fd] != nil { clients[fd] = buffer }
    }

    private func drop(_ fd: Int32) {
        clients.removeValue(forKey: fd)
        scheduled.removeAll { if case .reply(let f, _) = $0.event { return f == fd } else { return false } }
        Syscall.close(fd)
    }

    private func handle(_ line: [UInt8], from fd: Int32) {
        guard let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line)) else {
            send(fd, ["ok": false, "error": "not a JSON request"])
            return
        }
        switch request.command() {
        case .failure(let e):
            send(fd, ["ok": false, "error": e.description])
        case .success(let command):
            let done = perform(command, at: now())
            if let reply = done.reply {
                scheduled.append((done.at, .reply(fd, reply)))
            }
        }
    }

    /// Performs a command; returns the answer and when to send it (after a simulated release).
    private func perform(_ command: ControlRequest.Command, at t: MonotonicTime) -> (at: MonotonicTime, reply: [String: Any]?) {
        switch command {
        case .press(let b, let double, let hold):
            logger.info("control: press \(b.rawValue)\(double ? " double" : "")\(hold.map { " hold \($0)s" } ?? "")")
            var edges: [(Int64, Bool)]
            if double {
                edges = [(0, true), (Nanos.milliseconds(80), false), (Nanos.milliseconds(200), true),
                         (Nanos.milliseconds(280), false)]
            } else if let hold {
                edges = [(0, true), (Nanos.seconds(hold), false)]
            } else {
                edges = [(0, true), (Nanos.milliseconds(100), false)]
            }
            for (offset, pressed) in edges { scheduled.append((t + offset, .edge(b, pressed: pressed))) }
            let last = edges.last!.0
            // Answer once the release has been processed (and a single press had its window).
            return (t + last + Nanos.milliseconds(20), ["ok": true])
        case .status:
            var s = status()
            s["ok"] = true
            return (t, s)
        case .dock(let on):
            onDock(on)
            return (t, ["ok": true])
        case .stop:
            logger.notice("control: stop requested")
            onStop("ctl stop")
            return (t, ["ok": true])
        }
    }

    private func send(_ fd: Int32, _ obj: [String: Any]) {
        guard clients[fd] != nil else { return }
        var data = ReplyJSON.encode(obj)
        data.append(0x0a)
        // Replies are small; a client that does not read them is dropped rather than waited for.
        let ok = data.withUnsafeBytes { b -> Bool in
            var off = 0
            while off < b.count {
                let n = Glibc.send(fd, b.baseAddress! + off, b.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        if !ok { drop(fd) }
    }

    private func readKeys() {
        var c: UInt8 = 0
        guard read(STDIN_FILENO, &c, 1) == 1 else { return }
        let t = now()
        switch c {
        case UInt8(ascii: "r"): _ = perform(.press(.record, double: true, hold: nil), at: t)
        case UInt8(ascii: "s"): recorder.request(start: false, at: t)
        case UInt8(ascii: "m"): _ = perform(.press(.marker, double: false, hold: nil), at: t)
        case UInt8(ascii: "u"): _ = perform(.press(.mute, double: false, hold: nil), at: t)
        case UInt8(ascii: "d"): onDock(true)
        case UInt8(ascii: "D"): onDock(false)
        case UInt8(ascii: "q"), 3: onStop("key q")
        default: break
        }
    }
}

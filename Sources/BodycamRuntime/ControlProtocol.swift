import BodycamAdapters
package import BodycamCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A request on `DATA/control.sock`: one JSON object per line.
///
/// `{"cmd":"press","button":"record","double":true}`, `{"cmd":"press","button":"record","hold":3}`,
/// `{"cmd":"status"}`, `{"cmd":"dock"}`, `{"cmd":"undock"}`, `{"cmd":"stop"}`.
/// The answer is one JSON object per line with `"ok"` and either the result or `"error"`.
package struct ControlRequest: Codable, Sendable, Equatable {
    package var cmd: String
    package var button: String?
    package var double: Bool?
    package var hold: Double?

    /// Longest accepted request line; anything longer is refused (and the connection closed).
    package static let maxLineBytes = 4096
    /// Longest accepted hold.
    static let maxHoldSeconds = 60.0

    package enum Command: Equatable {
        case press(Button, double: Bool, hold: Double?)
        case status
        case dock(Bool)
        case stop
    }

    /// Validates the request; the error text goes back to the client as is.
    package func command() -> Result<Command, ControlError> {
        switch cmd {
        case "press":
            guard let name = button, let b = Button(rawValue: name) else {
                return .failure(ControlError("press needs a button: record, marker or mute"))
            }
            if let hold, !(hold > 0 && hold <= Self.maxHoldSeconds) {
                return .failure(ControlError("hold must be between 0 and \(Int(Self.maxHoldSeconds)) seconds"))
            }
            if double == true && hold != nil { return .failure(ControlError("--double and --hold cannot be combined")) }
            return .success(.press(b, double: double ?? false, hold: hold))
        case "status": return .success(.status)
        case "dock": return .success(.dock(true))
        case "undock": return .success(.dock(false))
        case "stop": return .success(.stop)
        default: return .failure(ControlError("unknown command \"\(cmd)\""))
        }
    }
}

package struct ControlError: Error, CustomStringConvertible, Equatable {
    package var description: String
    init(_ d: String) { description = d }
}

/// The `ctl` side: connects, sends one request, returns the answer.
enum ControlClient {
    enum Failure: Error, CustomStringConvertible {
        case notRunning(String)
        case io(String)
        case refused(String)

        var description: String {
            switch self {
            case .notRunning(let p): return "bodycam is not running (cannot connect to \(p))"
            case .io(let s): return s
            case .refused(let s): return s
            }
        }
    }

    static func send(_ request: ControlRequest, socketPath: String, timeout: Double) throws(Failure) -> [String: Any] {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("socket: \(String(cString: strerror(errno)))") }
        defer { Syscall.close(fd) }
        var addr = sockaddr_un()
        guard UnixSocket.fill(&addr, path: socketPath) else { throw .io("socket path too long: \(socketPath)") }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw .notRunning(socketPath) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard var line = try? JSONEncoder().encode(request) else { throw .io("cannot encode request") }
        line.append(0x0a)
        do throws(SystemError) {
            try withBytes(line) { (b: UnsafeRawBufferPointer) throws(SystemError) in
                try Syscall.writeAll(fd, b, path: socketPath)
            }
        } catch {
            throw .io(error.description)
        }
        var reply = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(0x0a) {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw .io("no answer from bodycam within \(Int(timeout)) s") }
            guard n > 0 else { break }
            reply += chunk[0..<n]
            if reply.count > 1 << 20 { throw .io("answer too long") }
        }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(reply)) as? [String: Any] else {
            throw .io("unreadable answer from bodycam")
        }
        if obj["ok"] as? Bool != true { throw .refused(obj["error"] as? String ?? "refused") }
        return obj
    }
}

enum UnixSocket {
    /// Copies `path` into `sun_path`; false if it does not fit (108 bytes on Linux).
    static func fill(_ addr: inout sockaddr_un, path: String) -> Bool {
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: bytes)
        }
        return true
    }
}

/// The `ctl` subcommands' side of the control socket, for the executable.
public enum ControlCommands {
    public struct Request: Sendable {
        var wire: ControlRequest

        public init(cmd: String, button: String? = nil, double: Bool? = nil, hold: Double? = nil) {
            wire = ControlRequest(cmd: cmd, button: button, double: double, hold: hold)
        }
    }

    public enum Outcome: Sendable {
        case success(String)
        case failure(String)
    }

    /// Sends `request` to the recorder using `data`; the answer is returned as its JSON text
    /// (without the `ok` field).
    public static func send(_ request: Request, data: String, timeout: Double) -> Outcome {
        let path = DataDirectory(data).socket
        do {
            var obj = try ControlClient.send(request.wire, socketPath: path, timeout: timeout)
            obj.removeValue(forKey: "ok")
            let d = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
            return .success(String(decoding: d, as: UTF8.self))
        } catch let e as ControlClient.Failure {
            return .failure(e.description)
        } catch {
            return .failure("\(error)")
        }
    }

    /// A short human-readable summary of a status answer.
    public static func humanStatus(json: String) -> String {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return json }
        var lines: [String] = []
        lines.append("state:      \(obj["state"] ?? "?")")
        lines.append("device:     \(obj["device_id"] ?? "?") on \(obj["board"] ?? "?")")
        lines.append("pre-event:  \(obj["pre_event_seconds"] ?? 0) s of \(obj["pre_event_target"] ?? 0) s")
        if let clip = obj["clip"] as? [String: Any] {
            lines.append("recording:  \(clip["id"] ?? "?") (\(clip["seconds"] ?? 0) s, \(clip["markers"] ?? 0) markers)")
        }
        lines.append("clips:      \(obj["clips"] ?? 0) this run, last \(obj["last_clip"] ?? "none")")
        if let leds = obj["leds"] as? [String: String] {
            lines.append("leds:       " + leds.keys.sorted().map { "\($0)=\(leds[$0]!)" }.joined(separator: " "))
        }
        if let warnings = obj["warnings"] as? [String], !warnings.isEmpty {
            lines.append("warnings:   " + warnings.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", "))
        }
        if let clock = obj["clock"] as? [String: Any] {
            let trusted = clock["trusted"] as? Bool ?? false
            lines.append("clock:      \(clock["utc"] ?? "?") (\(trusted ? "synchronised" : "NOT synchronised: times flagged untrusted"))")
        }
        lines.append("muted:      \(obj["muted"] as? Bool ?? false)")
        lines.append("docked:     \(obj["docked"] as? Bool ?? false)")
        if let o = obj["offload"] as? [String: Any] {
            if o["configured"] as? Bool == false {
                lines.append("offload:    not configured, \(o["pending"] ?? 0) clip(s) on the device")
            } else {
                var line = "offload:    \(o["state"] ?? "?"), \(o["pending"] ?? 0) pending, \(o["uploaded"] ?? 0) uploaded"
                if let c = o["current"] as? [String: Any] { line += ", sending \(c["object"] ?? "?")" }
                lines.append(line)
                if let e = o["last_error"] as? String { lines.append("last error: \(e)") }
                if let n = o["blocked"] as? Int, n > 0 {
                    lines.append("blocked:    \(n) clip(s) cannot be offloaded (kept on the device):")
                    for b in o["blocked_clips"] as? [[String: Any]] ?? [] {
                        lines.append("            \(b["clip"] ?? "?"): \(b["reason"] ?? "?")")
                    }
                }
            }
        }
        if let s = obj["storage"] as? [String: Any], let free = s["free_bytes"] as? Double {
            lines.append(String(format: "storage:    %.1f GiB free", free / 1_073_741_824))
        }
        return lines.joined(separator: "\n")
    }
}

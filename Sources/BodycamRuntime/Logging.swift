import BodycamAdapters
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Log lines on stderr that journald understands and people can read.
///
/// Under systemd (`JOURNAL_STREAM` set) each line starts with the syslog priority in angle
/// brackets (`<6>`), which journald turns into the entry's priority; the timestamp is left to
/// journald. In a terminal, lines carry a time and level, and clear the status line first.
struct JournalLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String
    let toJournal: Bool

    static let terminalLock = Mutex(false)

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
        toJournal = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let meta = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let line: String
        if toJournal {
            line = "<\(Self.priority(event.level))>\(event.message)\(meta)\n"
        } else {
            let t = SystemClockFormat.localTime()
            line = "\(t) \(event.level.rawValue.uppercased()) \(event.message)\(meta)\n"
        }
        Self.terminalLock.withLock { statusShown in
            if statusShown { Posix.printOut("\r\u{1b}[K") }
            Posix.printError(line)
        }
    }

    /// syslog(3) priorities.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

extension JournalLogHandler {
    init(label: String, metadataProvider: Logger.MetadataProvider?, level: Logger.Level) {
        self.init(label: label, level: level)
    }
}

enum SystemClockFormat {
    static func localTime() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var tm = tm()
        var secs = tv.tv_sec
        localtime_r(&secs, &tm)
        return String(format: "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, Int(tv.tv_usec / 1000))
    }
}

/// The live status line `run` shows in a terminal, and the keys it takes.
///
/// Keys: r = record (double press), s = stop recording, m = marker, u = mute, d / D = dock /
/// undock, q = quit.
final class StatusLine: @unchecked Sendable {
    private var saved = termios()
    private var raw = false

    /// True when stdin and stdout are both terminals.
    static var available: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    func begin() {
        if tcgetattr(STDIN_FILENO, &saved) == 0 {
            var t = saved
            t.c_lflag &= ~tcflag_t(ICANON | ECHO)
            t.c_cc.6 = 1  // VMIN
            t.c_cc.5 = 0  // VTIME
            raw = tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0
        }
        Posix.printOut("keys: r record  s stop  m marker  u mute  d/D dock/undock  q quit\n")
        JournalLogHandler.terminalLock.withLock { $0 = true }
    }

    func end() {
        JournalLogHandler.terminalLock.withLock { shown in
            if shown { Posix.printOut("\r\u{1b}[K") }
            shown = false
        }
        if raw { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
    }

    func draw(_ status: [String: Any]) {
        let state = status["state"] as? String ?? "?"
        let pre = (status["pre_event_seconds"] as? Double).map { String(format: "%4.1fs", $0) } ?? "-"
        var clip = "-"
        if let c = status["clip"] as? [String: Any], let secs = c["seconds"] as? Double {
            clip = String(format: "%6.1fs", secs)
        }
        let clips = status["clips"] as? Int ?? 0
        var free = "?"
        if let s = status["storage"] as? [String: Any], let b = s["free_bytes"] as? Int64 {
            free = String(format: "%.1f GiB", Double(b) / 1_073_741_824)
        }
        var flags = (status["muted"] as? Bool ?? false) ? " MUTED" : ""
        if let warnings = status["warnings"] as? [String], !warnings.isEmpty {
            flags += "  warning: " + warnings.map { $0.replacingOccurrences(of: "_", with: " ") }.joined(separator: ", ")
        }
        let leds = (status["leds"] as? [String: String] ?? [:]).filter { $0.value != "off" }.keys.sorted().joined(separator: ",")
        let line = "[\(state)] pre-event \(pre)  clip \(clip)  clips \(clips)  free \(free)  leds \(leds.isEmpty ? "-" : leds)\(flags)"
        JournalLogHandler.terminalLock.withLock { _ in
            Posix.printOut("\r\u{1b}[K" + line)
            }
    }
}

import BodycamAdapters
import BodycamCore
import Logging

/// The recorder's periodic self-checks, run on the control thread: the wall clock (steps and
/// trust), free storage against the reserve, and the service manager (readiness, status line,
/// watchdog).
///
/// The watchdog is fed only while the media path makes progress: frames captured, frames
/// encoded, and storage keeping up (the writer finished work, or has none). A wedged camera
/// driver, a stuck encoder or a hung card therefore stops the pings, and systemd restarts the
/// service; the clip open at that moment is repaired at the next start like after a power cut.
final class Housekeeper: @unchecked Sendable {
    struct Probes: Sendable {
        /// Frames the camera has delivered, and passes of its capture loop (which go on through
        /// an outage while the camera is reopened: that is not a wedge).
        var captured: @Sendable () -> (frames: Int, heartbeats: Int)
        /// Frames the encoder has produced.
        var encoded: @Sendable () -> Int
        /// Writer commands completed, and commands waiting.
        var written: @Sendable () -> (completed: Int, backlog: Int)
        /// Free bytes where clips are stored.
        var freeBytes: @Sendable () -> Int64?
        /// One line for `systemctl status`.
        var statusLine: @Sendable () -> String
        /// Whether capture has started (the first frame reached the pre-event buffer).
        var ready: @Sendable () -> Bool
    }

    private let recorder: Recorder
    private let notifier: SystemdNotifier
    private let probes: Probes
    private let logger: Logger
    private let reserveBytes: Int64
    /// Free space needed above the reserve before recording is allowed again, so a clip that
    /// just fits does not flap the state.
    private let hysteresisBytes: Int64
    private let onClock: @Sendable (ClockPair) -> Void

    private var clock: ClockWatch
    private var nextCheck: MonotonicTime
    private var readySent = false
    private var lastStatus = ""
    private var nextPing: MonotonicTime
    private var pingWindow: Int64
    private var last: (frames: Int, heartbeats: Int, encoded: Int, written: Int)
    private var stalledSince: MonotonicTime?

    init(
        recorder: Recorder, notifier: SystemdNotifier, probes: Probes, reserveBytes: Int64, startBurstBytes: Int64,
        logger: Logger, onClock: @escaping @Sendable (ClockPair) -> Void
    ) {
        self.recorder = recorder
        self.notifier = notifier
        self.probes = probes
        self.logger = logger
        self.reserveBytes = reserveBytes
        // A start writes the whole pre-event buffer at once: room for that above the reserve, or
        // the first clip after space returns would push it straight back below.
        hysteresisBytes = max(8 * 1_048_576, reserveBytes / 8, startBurstBytes)
        self.onClock = onClock
        let now = MonotonicTime(nanoseconds: SystemClock.monotonic())
        clock = ClockWatch(recorder.clockPair)
        nextCheck = now
        // Ping four times per watchdog interval: one missed window is not yet a restart.
        pingWindow = (notifier.watchdogInterval ?? Nanos.seconds(10)) / 4
        nextPing = now + pingWindow
        let c = probes.captured()
        last = (c.frames, c.heartbeats, probes.encoded(), probes.written().completed)
        if let w = notifier.watchdogInterval {
            logger.notice("systemd watchdog armed: \(Double(w) / 1e9) s, fed while capture, encoding and storage make progress")
        }
    }

    /// Runs whatever is due; returns when it next needs to run.
    func tick(_ now: MonotonicTime) -> MonotonicTime {
        if now >= nextCheck {
            nextCheck = now + Nanos.seconds(1)
            checkClock()
            checkStorage(now)
            announce()
        }
        if notifier.watchdogInterval != nil && now >= nextPing {
            nextPing = now + pingWindow
            feedWatchdog(now)
        }
        return min(nextCheck, notifier.watchdogInterval != nil ? nextPing : nextCheck)
    }

    /// Tells systemd the service is stopping (the clip in progress is being finalised).
    func stopping(_ reason: String) {
        notifier.notify("STOPPING=1\nSTATUS=stopping (\(reason)): finalising the clip in progress")
    }

    private func checkClock() {
        // The two clocks are read as a pair: monotonic, wall, monotonic again, and the pair is
        // only used when nothing (preemption, a page fault) came between them.
        var pair: (mono: Int64, wall: Double)?
        for _ in 0..<5 {
            let before = SystemClock.monotonic()
            let wall = SystemClock.realtime()
            let after = SystemClock.monotonic()
            if after - before < 1_000_000 {
                pair = (before + (after - before) / 2, wall)
                break
            }
        }
        guard let pair else { return }
        let reading = ClockPair(
            monotonic: MonotonicTime(nanoseconds: pair.mono),
            wall: WallClockReading(unixSeconds: pair.wall, trusted: SystemClock.isSynchronized()))
        let changes = clock.observe(reading)
        guard !changes.isEmpty else { return }
        for change in changes {
            switch change {
            case .stepped(let seconds, let before, let after):
                let from = UTCFormat.iso8601(before.unixSeconds(at: after.monotonic))
                let to = UTCFormat.iso8601(after.wall.unixSeconds)
                logger.warning("wall clock stepped by \(String(format: "%+.3f", seconds)) s (\(from) → \(to)); media times are unaffected")
                recorder.audit("clock_jump", [
                    "step_seconds": String(format: "%.3f", seconds), "from_utc": from, "to_utc": to,
                    "trusted": after.wall.trusted ? "true" : "false",
                ])
            case .trust(let trusted):
                logger.notice(trusted ? "wall clock synchronised" : "wall clock no longer synchronised")
                recorder.audit("clock_trust", ["trusted": trusted ? "true" : "false"])
            }
        }
        recorder.updateClock(clock.pair)
        onClock(clock.pair)
    }

    private func checkStorage(_ now: MonotonicTime) {
        guard let free = probes.freeBytes() else { return }
        guard recorder.storageLow else {
            if free < reserveBytes {
                recorder.storage(low: true, freeBytes: free, reserveBytes: reserveBytes, now: now)
            }
            return
        }
        // Low because a write hit ENOSPC while statvfs still showed room (quota, inodes, a
        // reserve of 0): the space has to grow past what it was then, not just past the reserve.
        let needed = max(reserveBytes, recorder.storageLowAtFree ?? 0) + hysteresisBytes
        if free >= needed {
            recorder.storage(low: false, freeBytes: free, reserveBytes: reserveBytes, now: now)
        }
    }

    private func announce() {
        if !readySent && probes.ready() {
            readySent = true
            notifier.notify("READY=1")
        }
        let line = probes.statusLine()
        if line != lastStatus {
            lastStatus = line
            notifier.notify("STATUS=" + line)
        }
    }

    private func feedWatchdog(_ now: MonotonicTime) {
        let captured = probes.captured()
        let encoded = probes.encoded()
        let written = probes.written()
        var stuck: [String] = []
        // Capture: no frame and no pass of its loop (a camera being reopened still loops).
        if captured.frames == last.frames && captured.heartbeats == last.heartbeats { stuck.append("capture") }
        // Encoding: frames came in but none came out (frames the encoder cannot take are handed
        // back, so capture goes on delivering while a wedged encoder produces nothing).
        if captured.frames != last.frames && encoded == last.encoded { stuck.append("encoding") }
        if written.completed == last.written && written.backlog > 0 { stuck.append("storage") }
        last = (captured.frames, captured.heartbeats, encoded, written.completed)
        if stuck.isEmpty {
            if let since = stalledSince {
                logger.notice("media path moving again after \(String(format: "%.1f", Nanos.toSeconds(now - since))) s")
                stalledSince = nil
            }
            notifier.notify("WATCHDOG=1")
        } else if stalledSince == nil {
            stalledSince = now
            logger.error("no progress in \(stuck.joined(separator: ", ")): not feeding the watchdog")
        }
    }
}

public import Crypto
public import Foundation

/// One line of the audit log: what happened, when (UTC and CLOCK_MONOTONIC), chained to the line
/// before it by hash and signed with the device key.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var seq: Int
    /// UTC, ISO 8601 with milliseconds.
    public var time: String
    /// CLOCK_MONOTONIC nanoseconds: orders events even across wall-clock steps.
    public var mono: Int64
    /// Whether the wall clock was synchronised.
    public var clockTrusted: Bool
    public var device: String
    /// "boot", "config", "button", "record_start", "record_stop", "marker", "mute", "dock",
    /// "undock", "upload", "delete", "clock_jump", "fault", "recovered", "shutdown", …
    public var event: String
    public var details: [String: String]
    public var prev: String
    public var sig: String?
}

/// The append-only, hash-chained, signed audit log in `DATA/audit/audit-<UTC>-<n>.jsonl`.
///
/// Each line is written and synced before `append` returns. A new segment starts at every start
/// and after 4 MiB; its first line continues the chain of the newest earlier segment (so the
/// segments of a device form one chain). Not thread-safe: one owner (the writer thread).
public final class AuditLog {
    public let directory: String
    public let deviceID: String
    private let identity: DeviceIdentity
    private var fd: Int32 = -1
    public private(set) var path: String = ""
    private var size = 0
    private var seq = 0
    private var lastHash = ""
    private var segment = 0
    public static let segmentLimit = 4 * 1_048_576

    public struct WriteError: Error, CustomStringConvertible {
        public var description: String
        /// The line is in the file (only syncing it failed): do not write it again.
        public var lineWritten = false
    }
    /// The segment's first line (naming the key) is written; until it is, appends write it first.
    private var announced = false
    private var previousSegment: String?
    /// Bytes of the segment backed by preallocated blocks (`fallocate`, size unchanged), so the
    /// lines recording a full disk (storage low, faults, deletions that free space) still fit.
    private var allocated = 0
    static let preallocation = 256 * 1024

    /// Reserves blocks past a file's end without changing its size (fallocate with
    /// FALLOC_FL_KEEP_SIZE), given by the platform layer; nil: no preallocation.
    public typealias Reserve = @Sendable (_ fd: Int32, _ offset: Int, _ length: Int) -> Bool
    private let reserve: Reserve?

    public init(
        directory: String, deviceID: String, identity: DeviceIdentity, unixSeconds: Double, reserve: Reserve? = nil
    ) throws(WriteError) {
        self.reserve = reserve
        self.directory = directory
        self.deviceID = deviceID
        self.identity = identity
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WriteError(description: "\(directory): \(error.localizedDescription)")
        }
        // Continue the chain from the last whole line of the newest segment that has one (a power
        // cut can leave the newest one empty or with only a torn first line).
        segments: for file in Self.segments(in: directory).reversed() {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            let lines = data.split(separator: 0x0a, omittingEmptySubsequences: true)
            for line in lines.reversed() {
                guard var e = try? Canonical.decoder().decode(AuditEntry.self, from: Data(line)) else { continue }
                e.sig = nil
                if let bytes = try? Canonical.bytes(e) {
                    seq = e.seq &+ 1
                    lastHash = Hex.string(SHA256.hash(data: bytes))
                }
                break segments
            }
        }
        // Blocks preallocated past the end of an earlier segment stay with it when the process
        // was killed (no deinit ran); cutting each file at its own size gives them back.
        for file in Self.segments(in: directory) {
            var st = stat()
            if stat(file, &st) == 0 { _ = truncate(file, st.st_size) }
        }
        do {
            try openSegment(unixSeconds: unixSeconds)
        } catch {
            // A full disk at start: not a reason to stop recording. The first append tries again
            // (and the writer keeps unwritten lines in order until one succeeds).
        }
    }

    /// Every segment starts by naming the key its lines are signed with, so a segment on its
    /// own can be checked (an agency compares the key with the one it registered for the device).
    private func announceSegment(unixSeconds: Double) throws(WriteError) {
        var details = ["public_key": identity.publicKey.string]
        if let previousSegment { details["previous_segment"] = previousSegment }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        do {
            _ = try appendLine(
                event: "segment", details: details, monotonic: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec),
                unixSeconds: unixSeconds, clockTrusted: false)
        } catch {
            // In the file but not synced: it is the segment's first line all the same.
            if error.lineWritten { announced = true }
            throw error
        }
        announced = true
    }

    /// Keeps at least 64 KiB (a few hundred lines) preallocated past the end of the segment.
    private func reserveAhead() {
        guard fd >= 0, size + 64 * 1024 > allocated else { return }
        if reserve?(fd, size, Self.preallocation) == true { allocated = size + Self.preallocation }
    }

    deinit {
        if fd >= 0 {
            _ = ftruncate(fd, off_t(size))
            close(fd)
        }
    }

    /// Segment files in `directory`, oldest first (their names sort by time, then by number:
    /// `…Z-9` before `…Z-10`, as several starts within one second give).
    public static func segments(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }
            .sorted { sortKey($0) < sortKey($1) }.map { directory + "/" + $0 }
    }

    /// `audit-<UTC>-<n>.jsonl` → (`audit-<UTC>`, n, name).
    /// Segments are named `audit-<counter>-<UTC>.jsonl`; the counter only ever grows, so their
    /// order does not depend on the wall clock (which may be unset or stepped back at boot).
    static func sortKey(_ name: String) -> (Int, String) {
        let parts = name.dropFirst("audit-".count).split(separator: "-")
        return (parts.first.flatMap { Int($0) } ?? -1, name)
    }

    private func openSegment(unixSeconds: Double) throws(WriteError) {
        let previous = path.isEmpty ? Self.segments(in: directory).last.map { ($0 as NSString).lastPathComponent }
            : (path as NSString).lastPathComponent
        if fd >= 0 {
            // Give back the preallocated blocks past the last line.
            _ = ftruncate(fd, off_t(size))
            close(fd)
        }
        fd = -1
        let highest = Self.segments(in: directory).map { Self.sortKey(($0 as NSString).lastPathComponent).0 }.max() ?? 0
        segment = max(segment, highest) + 1
        let counter = String(segment)
        let name = "audit-" + String(repeating: "0", count: max(0, 6 - counter.count)) + counter
            + "-\(compactUTC(unixSeconds)).jsonl"
        let newPath = directory + "/" + name
        fd = open(newPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        // Not created (a full disk): the next append tries again; `path` still names the last segment.
        guard fd >= 0 else { throw WriteError(description: "\(newPath): \(String(cString: strerror(errno)))") }
        path = newPath
        size = 0
        allocated = 0
        reserveAhead()
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
        previousSegment = previous
        announced = false
        try announceSegment(unixSeconds: unixSeconds)
    }

    private func compactUTC(_ t: Double) -> String {
        var tt = time_t(t)
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec)
    }

    /// Appends one event, synced to storage. Returns the line's sequence number.
    ///
    /// A failed write (a full disk) leaves the log as it was: a partial line is cut off again and
    /// the chain continues from the last line written, so the caller can simply retry later.
    @discardableResult
    public func append(
        event: String, details: [String: String], monotonic: Int64, unixSeconds: Double, clockTrusted: Bool
    ) throws(WriteError) -> Int {
        do {
            if size >= Self.segmentLimit || fd < 0 { try openSegment(unixSeconds: unixSeconds) }
            if !announced { try announceSegment(unixSeconds: unixSeconds) }
        } catch {
            // Whatever happened to the segment's first line, this event was not written.
            throw WriteError(description: error.description, lineWritten: false)
        }
        return try appendLine(
            event: event, details: details, monotonic: monotonic, unixSeconds: unixSeconds, clockTrusted: clockTrusted)
    }

    private func appendLine(
        event: String, details: [String: String], monotonic: Int64, unixSeconds: Double, clockTrusted: Bool
    ) throws(WriteError) -> Int {
        var e = AuditEntry(
            seq: seq, time: iso8601(unixSeconds), mono: monotonic, clockTrusted: clockTrusted, device: deviceID,
            event: event, details: details, prev: lastHash, sig: nil)
        let line: Data
        let hash: SHA256.Digest
        do {
            let unsigned = try Canonical.bytes(e)
            hash = SHA256.hash(data: unsigned)
            e.sig = identity.sign(Data(hash))
            line = try Canonical.bytes(e) + Data([0x0a])
        } catch {
            throw WriteError(description: "audit entry cannot be encoded: \(error)")
        }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let e = errno
            // Cut a partial line off again, so the next line starts on a line of its own.
            if written > 0 {
                if ftruncate(fd, off_t(size)) == 0 {
                    allocated = size  // the cut gave back the preallocated blocks too
                } else {
                    // The torn bytes stay: continue in a new segment rather than after them.
                    close(fd)
                    fd = -1
                }
            }
            throw WriteError(description: "\(path): \(written < 0 ? String(cString: strerror(e)) : "short write")")
        }
        let synced = fdatasync(fd) == 0
        let syncErrno = errno
        size += line.count
        seq += 1
        lastHash = Hex.string(hash)
        reserveAhead()
        // The line is in the file (and chained); whether it is on storage is not known.
        guard synced else {
            throw WriteError(description: "\(path): fdatasync: \(String(cString: strerror(syncErrno)))", lineWritten: true)
        }
        return seq - 1
    }

    private func iso8601(_ t: Double) -> String {
        var tt = time_t(t.rounded(.down))
        var tmv = tm()
        gmtime_r(&tt, &tmv)
        let ms = Int((t - t.rounded(.down)) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, ms)
    }
}

/// What checking audit-log segments found.
public struct AuditReport: Sendable {
    public var lines = 0
    public var problems: [EvidenceProblem] = []
    public var warnings: [String] = []
    public var devices: Set<String> = []
}

public enum AuditCheck {
    /// The key a segment's first line announces.
    public static func announcedKey(in file: String) -> DevicePublicKey? {
        guard let data = FileManager.default.contents(atPath: file),
            let first = data.split(separator: 0x0a).first,
            let e = try? Canonical.decoder().decode(AuditEntry.self, from: Data(first)), e.event == "segment",
            let k = e.details["public_key"]
        else { return nil }
        return DevicePublicKey(string: k)
    }

    /// Checks segments in order: every line canonical, numbered in sequence, chained and signed
    /// by `key`. A last line without its newline is a write cut short by a power cut: a warning,
    /// not tampering (its own content is not trusted either way).
    public static func verify(files: [String], key: DevicePublicKey) -> AuditReport {
        var report = AuditReport()
        var prev: String?
        var expected: Int?
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                report.problems.append(EvidenceProblem("\(file): cannot be read"))
                continue
            }
            let name = (file as NSString).lastPathComponent
            var lines = data.split(separator: 0x0a, omittingEmptySubsequences: false)
            if let last = lines.last, last.isEmpty { lines.removeLast() }
            let torn = !data.isEmpty && data.last != 0x0a
            for (i, raw) in lines.enumerated() {
                let where_ = "\(name) line \(i + 1)"
                if torn && i == lines.count - 1 {
                    // A power cut only ever removes bytes from the end. A whole, valid line whose
                    // newline became another byte was altered, not torn.
                    if raw.count > 1, let whole = try? Canonical.decoder().decode(AuditEntry.self, from: Data(raw.dropLast())),
                        (try? Canonical.bytes(whole)) == Data(raw.dropLast())
                    {
                        report.problems.append(EvidenceProblem("\(where_): its end-of-line byte was altered"))
                        return report
                    }
                    report.warnings.append("\(where_): torn (written when the power went; not counted)")
                    break
                }
                guard let e = try? Canonical.decoder().decode(AuditEntry.self, from: Data(raw)) else {
                    report.problems.append(EvidenceProblem("\(where_): not an audit entry (altered)"))
                    return report
                }
                report.lines += 1
                report.devices.insert(e.device)
                if (try? Canonical.bytes(e)) != Data(raw) {
                    report.problems.append(EvidenceProblem("\(where_) (\(e.event) at \(e.time)): altered"))
                    return report
                }
                if let x = expected, e.seq != x {
                    report.problems.append(EvidenceProblem("\(where_): numbered \(e.seq), expected \(x) (lines removed or reordered)"))
                    return report
                }
                if let p = prev, e.prev != p {
                    report.problems.append(EvidenceProblem("\(where_) (\(e.event) at \(e.time)): chain broken"))
                    return report
                }
                var unsigned = e
                unsigned.sig = nil
                guard let sig = e.sig, let bytes = try? Canonical.bytes(unsigned) else {
                    report.problems.append(EvidenceProblem("\(where_): not signed"))
                    return report
                }
                let hash = SHA256.hash(data: bytes)
                if !key.verify(signature: sig, of: Data(hash)) {
                    report.problems.append(EvidenceProblem("\(where_) (\(e.event) at \(e.time)): signature does not verify"))
                    return report
                }
                prev = Hex.string(hash)
                expected = e.seq &+ 1  // wraps rather than traps on a made-up Int.max
            }
        }
        return report
    }
}

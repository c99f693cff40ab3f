import BodycamAdapters
import BodycamCore
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The data directory (`--data`, default /var/lib/bodycam) and what lives in it.
struct DataDirectory: Sendable {
    let root: String

    var clips: String { root + "/clips" }
    var journal: String { root + "/journal" }
    var state: String { root + "/state" }
    var socket: String { root + "/control.sock" }
    var lockFile: String { root + "/.lock" }
    var sequenceFile: String { state + "/clip-sequence" }

    static let defaultRoot = "/var/lib/bodycam"

    init(_ root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// Creates the folders.
    func prepare() throws(SystemError) {
        for d in [root, clips, journal, state] { try FileSystem.makeDirectory(d) }
    }

    /// Takes the directory's lock so two recorders never write the same clips. The descriptor
    /// stays open (and the lock held) for the life of the process.
    func lock() throws(SystemError) -> Int32 {
        let fd = try Syscall.retrying("open", path: lockFile) { open(lockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o640) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            Syscall.close(fd)
            throw SystemError(op: "flock (another bodycam uses this data directory)", errno: e, path: lockFile)
        }
        return fd
    }

    /// The next clip sequence number: persisted, so ids never repeat even after clips are offloaded.
    func nextClipSequence() -> Int {
        var next = 1
        if let text = try? String(contentsOfFile: sequenceFile, encoding: .utf8), let n = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            next = n
        }
        // Never reuse a number a clip on disk already has (the file may be older than the clips).
        for name in FileSystem.list(clips) where name.hasSuffix(".json") {
            if let seq = Int(name.dropLast(5).split(separator: "-").last ?? ""), seq >= next { next = seq + 1 }
        }
        return next
    }

    /// The device id from /etc/machine-id when none is configured.
    static func defaultDeviceID() -> String {
        if let id = try? String(contentsOfFile: "/etc/machine-id", encoding: .utf8) {
            let hex = id.trimmingCharacters(in: .whitespacesAndNewlines)
            if hex.count >= 8 { return "bodycam-" + hex.prefix(8) }
        }
        return "bodycam"
    }
}

/// Start-up repair of clips that were open when the power went (or the process was killed).
enum Recovery {
    /// For each journal left behind: rebuild the manifest from it, cut the media file back to the
    /// last journaled fragment (anything after it may be torn), mark the clip interrupted.
    static func recoverInterrupted(_ data: DataDirectory, logger: Logger) -> [String] {
        var recovered: [String] = []
        for name in FileSystem.list(data.journal) where name.hasSuffix(".jsonl") {
            let journalPath = data.journal + "/" + name
            let id = String(name.dropLast(6))
            let manifestPath = data.clips + "/" + id + ".json"
            if FileSystem.exists(manifestPath) {
                // Closed properly; only the journal's removal was cut short.
                unlink(journalPath)
                continue
            }
            guard let text = try? String(contentsOfFile: journalPath, encoding: .utf8) else { continue }
            var manifest: ClipManifest?
            let decoder = ManifestCoding.decoder()
            var tornLine = false
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
            for (i, line) in lines.enumerated() {
                guard let r = try? decoder.decode(JournalRecord.self, from: Data(line.utf8)) else {
                    // Only the last line can be torn by a power cut; anything else is damage.
                    tornLine = true
                    if i != lines.count - 1 { logger.error("journal \(name): line \(i + 1) unreadable") }
                    continue
                }
                switch r.type {
                case "clip": manifest = r.header
                case "fragment": if let f = r.fragment { manifest?.fragments.append(f) }
                case "marker": if let m = r.marker { manifest?.markers.append(m) }
                case "mute":
                    if let span = r.mute {
                        if var m = manifest {
                            if let last = m.muteSpans.last, last.end == nil, span.end != nil {
                                m.muteSpans[m.muteSpans.count - 1].end = span.end
                            } else {
                                m.muteSpans.append(span)
                            }
                            manifest = m
                        }
                    }
                default: break
                }
            }
            guard var m = manifest else {
                logger.error("journal \(name) has no clip header; left in place for inspection")
                continue
            }
            let mediaPath = data.clips + "/" + m.file
            let onDisk = FileSystem.size(mediaPath) ?? 0
            // Keep the journaled fragments that are wholly on disk.
            while let last = m.fragments.last, last.offset + last.size > onDisk { m.fragments.removeLast() }
            let end = m.fragments.last.map { $0.offset + $0.size } ?? m.initSegment.size
            if onDisk > end { truncate(mediaPath, off_t(end)) }
            m.sizeBytes = min(end, onDisk)
            m.duration = m.fragments.last.map { $0.mediaTime + $0.duration } ?? 0
            m.interrupted = true
            m.endReason = "power-loss"
            m.video?.frames = m.fragments.reduce(0) { $0 + $1.videoFrames }
            if var a = m.audio {
                a.packets = m.fragments.reduce(0) { $0 + $1.audioPackets }
                m.audio = a
            }
            for i in m.muteSpans.indices where m.muteSpans[i].end == nil { m.muteSpans[i].end = m.duration }
            do {
                try FileSystem.writeAtomically(ManifestCoding.encode(m), to: manifestPath)
                unlink(journalPath)
                FileSystem.syncDirectory(containing: journalPath)
                recovered.append(m.clipId)
                logger.warning(
                    "recovered interrupted clip \(m.clipId)",
                    metadata: ["duration": "\(String(format: "%.2f", m.duration))s", "cut_bytes": "\(max(0, onDisk - end))",
                               "torn_journal_line": "\(tornLine)"])
            } catch {
                logger.error("cannot write recovered manifest for \(m.clipId): \(error)")
            }
        }
        return recovered
    }
}

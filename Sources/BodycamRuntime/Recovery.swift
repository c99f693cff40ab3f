import BodycamAdapters
import BodycamCore
package import BodycamEvidence
import Foundation
package import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Start-up repair of clips that were open when the power went (or the process was killed).
///
/// For each journal left behind: the entries are read up to the last whole one, the media file
/// is cut back to what that entry committed (anything after it may be torn), a sealed clip's
/// sealed tail is moved beside it, and the manifest is rebuilt from the entries, marked
/// interrupted and signed. No key that opens a sealed clip is needed: nothing is decrypted.
package enum Recovery {
    package struct Recovered {
        var clipID: String
        var duration: Double
        var cutBytes: Int
        /// Nothing worth keeping: a file without footage was removed.
        var discarded = false
        /// The journal did not verify or read to its end; it was kept under this name.
        var damagedJournal: String?
        /// The clip was already finalised (its manifest exists): nothing was recovered, only a
        /// journal left beside it that is not the manifest's own was kept (`damagedJournal`).
        var leftoverOnly = false

        /// The audit log's event for it.
        var auditEvent: String { leftoverOnly ? "journal_kept" : "recovered" }

        /// What the audit log's entry says about it.
        var auditDetails: [String: String] {
            if leftoverOnly {
                return ["clip": clipID, "journal": "left beside its manifest and not the manifest's own (\(reason ?? "damaged")); kept as \(damagedJournal ?? "?")"]
            }
            var d = ["clip": clipID, "duration": String(format: "%.3f", duration), "cut_bytes": "\(cutBytes)"]
            if discarded { d["discarded"] = "no footage: created before its journal" }
            if let damagedJournal { d["journal"] = "damaged, kept as \(damagedJournal)" }
            if let cause { d["cause"] = cause }
            return d
        }
        /// Why a leftover journal was kept.
        var reason: String?
        /// Why the clip was finalised from its journal while the recorder ran (nil: at start-up,
        /// after a power cut).
        var cause: String?
    }

    static func recoverInterrupted(_ data: DataDirectory, identity: DeviceIdentity?, logger: Logger) -> [Recovered] {
        let recovered = FileSystem.list(data.journal).filter { $0.hasSuffix(".jsonl") }.compactMap { name in
            recover(journal: data.journal + "/" + name, clips: data.clips, identity: identity, reason: "power-loss",
                    logger: logger)
        }
        return recovered + removeOrphans(in: data, logger: logger)
    }

    /// A media file with neither a manifest nor a journal: the power went between creating the
    /// clip's file and its journal. The journal is created before anything but the file's header
    /// is written (the init segment and every fragment are journaled), so such a file holds no
    /// footage; it is removed (and audited by the caller) rather than left to block the queue.
    static func removeOrphans(in data: DataDirectory, logger: Logger) -> [Recovered] {
        FileSystem.list(data.clips).compactMap { name -> Recovered? in
            guard let id = ClipID.of(mediaFile: name), !FileSystem.exists(data.clips + "/" + id + ".json"),
                !FileSystem.exists(data.journal + "/" + id + ".jsonl")
            else { return nil }
            let path = data.clips + "/" + name
            // Only what an unjournaled start can leave: an age header (a few hundred bytes).
            guard let size = FileSystem.size(path), size <= 4096 else {
                logger.error("\(name): no manifest and no journal, \(FileSystem.size(path).map { "\($0) bytes" } ?? "size unknown"); left in place for inspection")
                return nil
            }
            guard unlink(path) == 0 else {
                logger.error("\(name): no manifest and no journal; cannot remove it: \(String(cString: strerror(errno)))")
                return nil
            }
            FileSystem.syncDirectory(containing: path)
            logger.warning("removed \(name): created just before a power cut, before its journal; it held no footage (\(size) bytes)")
            return Recovered(clipID: id, duration: 0, cutBytes: size, discarded: true)
        }
    }

    /// Builds the manifest of the clip `journal` describes (see the type's comment).
    package static func recover(journal journalPath: String, clips: String, identity: DeviceIdentity?, reason: String,
                        logger: Logger) -> Recovered?
    {
        recover(journal: journalPath, clips: clips, identity: identity, reason: reason, closing: nil, logger: logger)
    }

    /// `recover`, also used when writing a clip failed mid-way (`reason` "storage" or "error"): the
    /// clip is finalised exactly as a power cut at that point would leave it, plus what only the
    /// recorder knows at its close (`closing`: gaps within what was kept, the next clip, and the
    /// writer's markers and mute spans).
    static func recover(journal journalPath: String, clips: String, identity: DeviceIdentity?, reason: String,
                        closing: ClipClosing?, logger: Logger) -> Recovered?
    {
        let journalDir = (journalPath as NSString).deletingLastPathComponent
        let name = (journalPath as NSString).lastPathComponent
        let id = String(name.dropLast(6))
        let manifestPath = clips + "/" + id + ".json"
        if FileSystem.exists(manifestPath) {
            // Closed properly, or repaired, and only the journal's removal was cut short. A
            // damaged journal (its rename was what did not happen) is still kept, and audited.
            guard let text = readJournal(journalPath, logger: logger) else { return nil }
            let leftover = read(text, name: name, identity: identity, clipID: id, logger: logger)
            if let damage = leftover.damage, !isOwnJournal(leftover, manifestPath: manifestPath) {
                let kept = name + ".damaged"
                guard rename(journalPath, journalPath + ".damaged") == 0 else {
                    logger.error("clip \(id): leftover journal damaged (\(damage)); cannot keep it as \(kept): \(String(cString: strerror(errno))); left in place")
                    return nil
                }
                FileSystem.syncDirectory(containing: journalPath)
                logger.error("clip \(id): leftover journal damaged (\(damage)); kept as \(kept)")
                return Recovered(clipID: id, duration: 0, cutBytes: 0, damagedJournal: kept, leftoverOnly: true, reason: damage)
            }
            unlink(journalPath)
            removeTails(of: id, in: journalDir, keeping: nil)
            FileSystem.syncDirectory(containing: journalPath)
            return nil
        }
        guard let text = readJournal(journalPath, logger: logger) else { return nil }
        let journal = read(text, name: name, identity: identity, clipID: id, logger: logger)
        let damage = journal.damage
        guard let header = journal.entries.first, header.type == "clip", var m = header.header else {
            logger.error("journal \(name) has no clip header; left in place for inspection")
            return nil
        }
        guard isFileName(m.file) else {
            logger.error("journal \(name) names clip file \"\(m.file)\", not a file in the clips folder; left in place for inspection")
            return nil
        }
        // Keep what verifies up to the first problem: a torn or damaged tail.
        let entries = Array(journal.entries.prefix(journal.verified))
        m.journal = entries
        m.fragments = entries.compactMap(\.fragment)
        // Markers and mute spans as journaled, or at a failed close as the writer holds them
        // (the journal may have refused a line).
        m.markers = closing?.markers ?? entries.compactMap(\.marker)
        if let spans = closing?.muteSpans {
            m.muteSpans = spans
        } else {
            // A clip that opened muted has its span in the header; mute lines end it or add others.
            for span in entries.compactMap(\.mute) { ClipManifest.Span.toggle(&m.muteSpans, with: span) }
        }
        if let range = entries.first(where: { $0.type == "init" })?.range { m.initSegment = range }
        let commits = entries.compactMap(\.seal)
        guard let totals = totals(of: m, commits: commits) else {
            logger.error("journal \(name): impossible offsets, sizes or counts; left in place for inspection")
            return nil
        }
        let mediaPath = clips + "/" + m.file
        let onDisk = FileSystem.size(mediaPath) ?? 0
        let plaintextEnd = totals.plaintextEnd
        var keep = plaintextEnd
        if var sealed = m.sealed, let last = commits.last {
            keep = last.size
            sealed.chunks = commits.flatMap { $0.chunks }.sorted { $0.index < $1.index }.map(\.sha256)
            sealed.size = last.size
            sealed.finalChunk = false
            if var tail = last.tail {
                let target = id + ".tail.age"
                let source = journalDir + "/" + tail.file
                let moved = isFileName(tail.file) && rename(source, clips + "/" + target) == 0
                let moveError = errno
                if moved || (isFileName(tail.file) && FileSystem.exists(clips + "/" + target)) {
                    tail.file = target
                    sealed.tail = tail
                    // Not durable: the journal (which names the old place) stays for the next start.
                    guard FileSystem.syncDirectory(containing: clips + "/" + target) else {
                        logger.error("clip \(id): the moved sealed tail is not on storage yet (folder sync failed); left for the next start")
                        return nil
                    }
                } else if isFileName(tail.file), FileSystem.exists(source) {
                    // It is there but cannot be moved (a full disk can refuse the new folder
                    // entry): nothing is cut or removed, and the next start tries again.
                    logger.error("clip \(id): cannot move sealed tail \(tail.file) beside the clip: \(String(cString: strerror(moveError))); left in place for the next start")
                    return nil
                } else {
                    logger.error("clip \(id): sealed tail \(tail.file) missing; the last \(tail.plaintextSize) bytes are lost")
                }
            }
            m.sealed = sealed
        }
        if damage == nil {
            removeTails(of: id, in: journalDir, keeping: nil)
            if onDisk > keep {
                do {
                    try FileSystem.truncate(mediaPath, to: keep)
                } catch {
                    logger.error("clip \(id): cannot cut back the torn end: \(error); left in place for the next start")
                    return nil
                }
            }
        }
        m.sizeBytes = plaintextEnd
        m.duration = m.fragments.last.map { $0.mediaTime + $0.duration } ?? 0
        m.interrupted = true
        m.endReason = reason
        m.video?.frames = totals.frames
        // Gaps that began in what was kept (one running past the end is cut there): as journaled,
        // or at a failed close as the recorder has them (the journal may have refused the last).
        // Drop counts and the audio start as journaled with the fragments that were kept.
        m.videoGaps = ClipManifest.Span.within(closing?.videoGaps ?? entries.filter { $0.type == "video_gap" }.compactMap(\.gap), duration: m.duration)
        m.audioGaps = ClipManifest.Span.within(closing?.audioGaps ?? entries.filter { $0.type == "audio_gap" }.compactMap(\.gap), duration: m.duration)
        // Counts from a file: impossible ones (negative, or too large to add up) are not taken,
        // and the header's (zero when the clip opened) are not counts at all.
        m.droppedFrames = ClipManifest.DroppedFrames()
        if let d = entries.last(where: { $0.dropped != nil })?.dropped, (0...Int(Int32.max)).contains(d.capture),
            (0...Int(Int32.max)).contains(d.pipeline)
        {
            m.droppedFrames = d
        }
        if let closing { m.nextClip = closing.nextClip }
        if var a = m.audio {
            a.packets = totals.packets
            a.startsAt = entries.first(where: { $0.audioStartsAt != nil })?.audioStartsAt ?? a.startsAt
            m.audio = a
        }
        // Mute spans over what was kept (one begun after it covers nothing). Markers stay as
        // pressed, even after the last fragment kept: a press just before a power cut says
        // where something happened.
        m.muteSpans = ClipManifest.Span.closed(m.muteSpans, duration: m.duration)
        do {
            if let identity { try ManifestSeal.sign(&m, identity: identity) }
            try FileSystem.writeAtomically(Canonical.prettyBytes(m), to: manifestPath)
            if let damage {
                // Renamed, not removed: the next start must not take it for a closed clip's
                // leftover journal, and whoever inspects the clip needs it.
                let kept = journalPath + ".damaged"
                rename(journalPath, kept)
                logger.error(
                    "clip \(m.clipId): journal damaged (\(damage)); its manifest covers the \(m.fragments.count) fragments that verify, the media file is left whole (\(onDisk) bytes) and the journal is kept as \((kept as NSString).lastPathComponent)")
            } else {
                unlink(journalPath)
            }
            FileSystem.syncDirectory(containing: journalPath)
            logger.warning(
                "recovered interrupted clip \(m.clipId)",
                metadata: ["duration": "\(String(format: "%.2f", m.duration))s", "cut_bytes": "\(damage == nil ? max(0, onDisk - keep) : 0)",
                           "reason": "\(reason)"])
            return Recovered(
                clipID: m.clipId, duration: m.duration, cutBytes: damage == nil ? max(0, onDisk - keep) : 0,
                damagedJournal: damage == nil ? nil : name + ".damaged")
        } catch {
            logger.error("cannot write recovered manifest for \(m.clipId): \(error)")
            return nil
        }
    }

    /// A journal's entries up to its first unreadable line, how many of them verify against the
    /// device key (all, without one), and what is damaged: an unreadable line before the last, or
    /// an entry that does not verify (altered, or signed by a key the device no longer has). Only a
    /// torn last line is what a power cut leaves. With damage, the manifest covers what verifies,
    /// but nothing is cut from the media, no tail is removed, and the journal is kept for
    /// inspection: bytes the journal cannot vouch for are still footage.
    static func read(_ text: Data, name: String, identity: DeviceIdentity?, clipID: String, logger: Logger)
        -> (entries: [JournalEntry], verified: Int, damage: String?, lines: Int)
    {
        var entries: [JournalEntry] = []
        var damage: String?
        let lines = text.split(separator: 0x0a, omittingEmptySubsequences: true)
        for (i, line) in lines.enumerated() {
            guard let e = try? Canonical.decoder().decode(JournalEntry.self, from: Data(line)) else {
                if i != lines.count - 1 {
                    logger.error("journal \(name): line \(i + 1) unreadable; stopping there")
                    damage = "line \(i + 1) unreadable"
                }
                break
            }
            entries.append(e)
        }
        var verified = entries.count
        if let key = identity?.publicKey, let first = JournalCheck.verify(entries, key: key, clipID: clipID).first {
            logger.error("journal \(name): \(first.message)")
            verified = first.index ?? entries.count
            damage = first.message
        }
        return (entries, verified, damage, lines.count)
    }

    /// A journal's bytes, or nil (logged; the journal is left in place for inspection) when it
    /// cannot be read or is no journal: not a regular file, or larger than any journal gets.
    static func readJournal(_ path: String, logger: Logger) -> Data? {
        do {
            return try FileSystem.readRegularFile(path, limit: journalLimit)
        } catch {
            logger.error("journal \((path as NSString).lastPathComponent) not read (\(error)); left in place for inspection")
            return nil
        }
    }

    /// Above any real journal (or manifest, which carries the journal's entries): a signed line
    /// of about 600 bytes per fragment (one a second) and, sealed, about 92 bytes per 64 KiB
    /// chunk; at the highest bitrate allowed (100 Mbit/s) and the longest rollover (240 min),
    /// about 250 MB.
    static let journalLimit = 1 << 30

    /// Whether a journal read whole is, line for line, the journal signed into the manifest at
    /// `manifestPath`: then it is intact even when it no longer verifies (the device key changed
    /// since the clip was closed).
    static func isOwnJournal(
        _ journal: (entries: [JournalEntry], verified: Int, damage: String?, lines: Int), manifestPath: String
    ) -> Bool {
        guard journal.entries.count == journal.lines,
            let data = try? FileSystem.readRegularFile(manifestPath, limit: journalLimit),
            let manifest = try? Canonical.decoder().decode(ClipManifest.self, from: data)
        else { return false }
        return manifest.journal == journal.entries
    }

    /// What recovery computes from the journal's numbers: where the plaintext ends (the last
    /// fragment's end, else the init segment's size), frames and packets. Nil when a number is
    /// negative or a sum overflows: the journal is damaged, and must not make recovery trap.
    static func totals(of m: ClipManifest, commits: [SealCommit]) -> (plaintextEnd: Int, frames: Int, packets: Int)? {
        guard m.initSegment.offset >= 0, m.initSegment.size >= 0, commits.allSatisfy({ $0.size >= 0 }) else { return nil }
        var end = m.initSegment.size
        var frames = 0
        var packets = 0
        for f in m.fragments {
            guard f.offset >= 0, f.size >= 0, f.videoFrames >= 0, f.audioPackets >= 0 else { return nil }
            let (e, o1) = f.offset.addingReportingOverflow(f.size)
            let (v, o2) = frames.addingReportingOverflow(f.videoFrames)
            let (p, o3) = packets.addingReportingOverflow(f.audioPackets)
            guard !o1, !o2, !o3 else { return nil }
            (end, frames, packets) = (e, v, p)
        }
        return (end, frames, packets)
    }

    /// Names read from a journal must name a file in its own folder, not a path: recovery
    /// truncates and moves the files they name.
    static func isFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0)
    }

    /// Sealed tails of `id` left in the journal directory (older commits, or uncommitted).
    static func removeTails(of id: String, in directory: String, keeping: String?) {
        for name in FileSystem.list(directory) where name.hasPrefix(id + ".tail-") && name != keeping {
            unlink(directory + "/" + name)
        }
    }
}

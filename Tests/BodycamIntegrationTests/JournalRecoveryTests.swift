import BodycamAdapters
import BodycamCore
import BodycamEvidence
import Foundation
import Logging
import Testing

@testable import BodycamRuntime

/// What the journal carries beyond the fragments, through the real clip writer and recovery: a
/// clip cut short must not lose the record of what went wrong while it was recorded.
@Suite("journal recovery")
struct JournalRecoveryTests {
    static let id = "cam-7-20261127T120001Z-0001"

    /// Writes a clip the recorder's way: open, fragments, gaps; `close` if given. Returns the data
    /// directory and the identity that signed it.
    func write(close: ClipClosing?, openedMuted: Bool = false, unmuted: Bool = true) throws -> (TemporaryDirectory, DataDirectory, DeviceIdentity) {
        let dir = TemporaryDirectory("bodycam-journal")
        let data = DataDirectory(dir.path + "/data")
        try data.prepare()
        let identity = DeviceIdentity.generate()
        let writer = ClipWriter(logger: Logger(label: "test"), identity: identity)
        writer.start()
        var m = ClipManifest(
            clipId: Self.id, file: Self.id + ".mp4", deviceId: "cam-7", board: "sim", startUtc: "2026-11-27T12:00:01.000Z",
            startUnix: 1_795_780_801, clockTrusted: true, trigger: "button", triggeredAt: 3,
            initSegment: .init(offset: 0, size: 0, sha256: ""))
        m.video = .init(width: 64, height: 48, frameRate: "30/1", timescale: 90_000, profile: 100, level: 31, frames: 0, encoder: "x264")
        m.audio = .init(sampleRate: 48_000, channels: 1, bitrate: 32_000, packets: 0, preEvent: false, startsAt: nil)
        // As the recorder opens a clip while muted: the span starts the clip, the unmute ends it.
        if openedMuted { m.muteSpans = [.init(start: 0, end: nil)] }
        writer.submit(.open(ClipOpening(
            manifest: m, initSegment: Array(repeating: 1, count: 100), mediaPath: data.clips + "/" + Self.id + ".mp4",
            manifestPath: data.clips + "/" + Self.id + ".json", journalPath: data.journal + "/" + Self.id + ".jsonl",
            sequenceFile: nil, nextSequence: 2)))
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { payload.deallocate() }
        payload.initializeMemory(as: UInt8.self, repeating: 7)
        for k in 0..<4 {
            var job = FragmentJob(
                clipID: Self.id, sequenceNumber: k + 1, header: Array(repeating: 2, count: 64),
                slices: [UnsafeRawBufferPointer(payload)], mediaTime: Double(k), duration: 1, videoFrames: 30,
                audioPackets: k == 0 ? 0 : 50, videoEnd: 0, audioEnd: 0)
            // Drops change at the second and third fragment only; audio starts in the second.
            job.dropped = .init(capture: k >= 1 ? 2 : 0, pipeline: k >= 2 ? 5 : 0)
            if k == 1 { job.audioStartsAt = 1.25 }
            writer.submit(.fragment(job))
            if k == 1 { writer.submit(.gap(clipID: Self.id, video: true, .init(start: 1.5, end: 1.9, reason: "camera lost"))) }
            if k == 2 { writer.submit(.gap(clipID: Self.id, video: false, .init(start: 2.5, end: 2.8, reason: "capture gap"))) }
        }
        // A gap that began after the last fragment the file holds.
        writer.submit(.gap(clipID: Self.id, video: true, .init(start: 5.5, end: 6, reason: "camera lost")))
        if openedMuted && unmuted {
            // Unmuted within the kept footage, muted again after it.
            writer.submit(.mute(clipID: Self.id, .init(start: 0, end: 2.5)))
            writer.submit(.mute(clipID: Self.id, .init(start: 5.2, end: nil)))
        }
        // A marker after the kept footage.
        if openedMuted { writer.submit(.marker(clipID: Self.id, .init(mediaTime: 5.3, kind: "button", utc: nil, score: nil))) }
        if let close { writer.submit(.close(close)) }
        writer.finish()
        return (dir, data, identity)
    }

    @Test("a power cut: the recovered manifest has the journaled gaps, drop counts and audio start, and verifies")
    func powerCut() throws {
        let (dir, data, identity) = try write(close: nil)
        let journal = data.journal + "/" + Self.id + ".jsonl"
        let lines = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n")
        // Drop counts only where they changed: fragments 2 and 3 of 4.
        #expect(lines.filter { $0.contains("\"dropped\"") }.count == 2)
        #expect(lines.filter { $0.contains("\"type\":\"video_gap\"") }.count == 2)

        let r = try #require(Recovery.recover(
            journal: journal, clips: data.clips, identity: identity, reason: "power-loss", logger: Logger(label: "test")))
        #expect(r.damagedJournal == nil)
        let raw = try #require(FileManager.default.contents(atPath: data.clips + "/" + Self.id + ".json"))
        let (manifest, _, problems) = ManifestSeal.verify(raw, pinned: identity.publicKey)
        #expect(problems.isEmpty, "\(problems)")
        let m = try #require(manifest)
        #expect(m.interrupted && m.duration == 4)
        #expect(m.droppedFrames == .init(capture: 2, pipeline: 5))
        #expect(m.videoGaps == [.init(start: 1.5, end: 1.9, reason: "camera lost")])
        #expect(m.audioGaps == [.init(start: 2.5, end: 2.8, reason: "capture gap")])
        #expect(m.audio?.startsAt == 1.25)
        #expect(m.audio?.packets == 150 && m.video?.frames == 120)

        // The same journal left over beside that manifest, the device since given another key: it
        // is the manifest's own, so it is tidied away, not kept as damaged.
        let text = try #require(FileManager.default.contents(atPath: data.clips + "/" + Self.id + ".json")).count > 0
            ? m.journal.map { String(decoding: try! Canonical.bytes($0), as: UTF8.self) + "\n" }.joined() : ""
        try text.write(toFile: journal, atomically: false, encoding: .utf8)
        #expect(Recovery.recover(
            journal: journal, clips: data.clips, identity: DeviceIdentity.generate(), reason: "power-loss",
            logger: Logger(label: "test")) == nil)
        #expect(!FileManager.default.fileExists(atPath: journal))
        #expect(!FileManager.default.fileExists(atPath: journal + ".damaged"))
        // One that differs from it is kept.
        try (text + "{\"garbage\": 1}\n" + text).write(toFile: journal, atomically: false, encoding: .utf8)
        let kept = Recovery.recover(
            journal: journal, clips: data.clips, identity: identity, reason: "power-loss", logger: Logger(label: "test"))
        #expect(FileManager.default.fileExists(atPath: journal + ".damaged"))
        #expect(!FileManager.default.fileExists(atPath: journal))
        // ... and audited as kept, not as a recovered clip.
        #expect(kept?.leftoverOnly == true && kept?.auditEvent == "journal_kept")
        #expect(kept?.damagedJournal == Self.id + ".jsonl.damaged")
        #expect(kept?.auditDetails["journal"]?.contains("unreadable") == true, "\(kept?.auditDetails ?? [:])")
        withExtendedLifetime(dir) {}
    }

    @Test(
        "a power cut in a clip that opened muted: its mute span is kept (to the end if never unmuted); a mute begun after the kept footage is not; a later marker is",
        arguments: [true, false])
    func powerCutMuted(unmuted: Bool) throws {
        let (dir, data, identity) = try write(close: nil, openedMuted: true, unmuted: unmuted)
        let r = try #require(Recovery.recover(
            journal: data.journal + "/" + Self.id + ".jsonl", clips: data.clips, identity: identity, reason: "power-loss",
            logger: Logger(label: "test")))
        #expect(r.duration == 4)
        let raw = try #require(FileManager.default.contents(atPath: data.clips + "/" + Self.id + ".json"))
        let (manifest, _, problems) = ManifestSeal.verify(raw, pinned: identity.publicKey)
        #expect(problems.isEmpty, "\(problems)")
        let m = try #require(manifest)
        #expect(m.muteSpans == [.init(start: 0, end: unmuted ? 2.5 : 4)], "\(m.muteSpans)")
        #expect(m.markers.map(\.mediaTime) == [5.3], "a press just before the power cut says where something happened")
        withExtendedLifetime(dir) {}
    }

    @Test("a closed clip's manifest still comes from the recorder's close, and its journal lists the gaps")
    func closedClip() throws {
        let close = ClipClosing(
            clipID: Self.id, endReason: "button", nextClip: nil, duration: 4, droppedFrames: .init(capture: 2, pipeline: 6),
            videoFrames: 120, audio: .init(sampleRate: 48_000, channels: 1, bitrate: 32_000, packets: 150, preEvent: false, startsAt: 1.25),
            audioGaps: [.init(start: 2.5, end: 2.8, reason: "capture gap")],
            videoGaps: [.init(start: 1.5, end: 1.9, reason: "camera lost")])
        let (dir, data, identity) = try write(close: close)
        #expect(!FileManager.default.fileExists(atPath: data.journal + "/" + Self.id + ".jsonl"))
        let raw = try #require(FileManager.default.contents(atPath: data.clips + "/" + Self.id + ".json"))
        let (manifest, _, problems) = ManifestSeal.verify(raw, pinned: identity.publicKey)
        #expect(problems.isEmpty, "\(problems)")
        let m = try #require(manifest)
        #expect(!m.interrupted && m.endReason == "button")
        #expect(m.droppedFrames == .init(capture: 2, pipeline: 6))
        #expect(m.videoGaps.count == 1 && m.audioGaps.count == 1)
        #expect(m.journal.filter { $0.type == "video_gap" }.compactMap(\.gap?.start) == [1.5, 5.5])
        withExtendedLifetime(dir) {}

        // Muted at the open, unmuted, muted again after the last fragment (between the stop and
        // the close): the manifest lists the mute span within the clip, as recovery would.
        let (mutedDir, mutedData, _) = try write(close: close, openedMuted: true)
        let muted = try ClipFiles.manifest(mutedData.clips + "/" + Self.id + ".json")
        let spans = (muted["mute_spans"] as? [[String: Any]] ?? []).map { [double($0["start"]), double($0["end"])] }
        #expect(spans == [[0, 2.5]], "\(muted)")
        withExtendedLifetime(mutedDir) {}
    }

    @Test("a journal that is a FIFO, a link to a device, or too large is not read; it is left in place")
    func journalNotAFile() throws {
        let dir = TemporaryDirectory("bodycam-journal")
        let data = DataDirectory(dir.path + "/data")
        try data.prepare()
        let fifo = data.journal + "/cam-7-20261127T120001Z-0001.jsonl"
        #expect(mkfifo(fifo, 0o600) == 0)
        let link = data.journal + "/cam-7-20261127T120002Z-0002.jsonl"
        #expect(symlink("/dev/zero", link) == 0)
        let big = data.journal + "/cam-7-20261127T120003Z-0003.jsonl"
        #expect(FileManager.default.createFile(atPath: big, contents: nil))
        #expect(truncate(big, off_t(Recovery.journalLimit + 1)) == 0)
        // Returns (reading the FIFO would block, /dev/zero never ends) and touches nothing.
        let recovered = Recovery.recoverInterrupted(data, identity: nil, logger: Logger(label: "test"))
        #expect(recovered.isEmpty)
        for path in [fifo, link, big] {
            var st = stat()
            #expect(lstat(path, &st) == 0, "\(path) removed")
        }
        // The limit itself, on a small file: at it the whole file, one byte under it an error.
        let small = dir.path + "/small"
        #expect(FileManager.default.createFile(atPath: small, contents: Data("0123456789".utf8)))
        #expect(try FileSystem.readRegularFile(small, limit: 10) == Data("0123456789".utf8))
        #expect(throws: SystemError.self) { try FileSystem.readRegularFile(small, limit: 9) }
        let empty = dir.path + "/empty"
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        #expect(try FileSystem.readRegularFile(empty, limit: 10).isEmpty)
        withExtendedLifetime(dir) {}
    }
}

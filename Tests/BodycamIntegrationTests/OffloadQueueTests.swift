import Foundation
import Logging
import Testing

@testable import BodycamRuntime

/// The offload queue's logic on a data directory of its own, sending to a directory target.
@Suite("offload queue")
struct OffloadQueueTests {
    final class Events: @unchecked Sendable {
        let lock = NSLock()
        var lines: [(String, [String: String])] = []
        func add(_ e: String, _ d: [String: String]) { lock.withLock { lines.append((e, d)) } }
    }

    func makeClip(_ data: DataDirectory, seq: Int, start: Double, markers: Int, trigger: String = "button", size: Int = 1000) {
        let id = "cam-7-20261127T1200\(String(format: "%02d", seq))Z-\(String(format: "%04d", seq))"
        FileManager.default.createPlainFile(atPath: data.clips + "/" + id + ".mp4.age", contents: Data(repeating: UInt8(seq), count: size))
        let markerList = (0..<markers).map { _ in ["media_time": 1.0, "kind": "button"] }
        let manifest: [String: Any] = ["clip_id": id, "file": id + ".mp4.age", "device_id": "cam-7", "start_unix": start,
                                       "markers": markerList, "trigger": trigger]
        FileManager.default.createPlainFile(atPath: data.clips + "/" + id + ".json", contents: try! JSONSerialization.data(withJSONObject: manifest))
    }

    func setUp(_ settings: OffloadSettings, auditWorks: Bool = true, isOpen: @escaping @Sendable (String) -> Bool = { _ in false })
        throws -> (TemporaryDirectory, DataDirectory, Offloader, Events)
    {
        let dir = TemporaryDirectory("bodycam-queue")
        let data = DataDirectory(dir.path + "/data")
        try data.prepare()
        try FileManager.default.createDirectory(atPath: dir.path + "/share", withIntermediateDirectories: true)
        FileManager.default.createPlainFile(atPath: dir.path + "/share/.bodycam-base-station", contents: Data())
        var s = settings
        s.target = .directory
        s.path = dir.path + "/share"
        s.prefix = "ev"
        s.retryBaseSeconds = 0.05
        s.retryMaxSeconds = 0.1
        let events = Events()
        let o = Offloader(
            settings: s, target: try Offloader.makeTarget(s, data: data), data: data, deviceID: "cam-7",
            logger: Logger(label: "test"), audit: { e, d, _ in
                events.add(e, d)
                return auditWorks || e != "offload_verified"
            }, indicate: { _ in }, isOpen: isOpen)
        return (dir, data, o, events)
    }

    @Test("clips with markers or detector triggers go first, then oldest first; order = oldest ignores markers")
    func order() throws {
        let (dir, data, o, _) = try setUp(OffloadSettings())
        makeClip(data, seq: 1, start: 100, markers: 0)
        makeClip(data, seq: 2, start: 200, markers: 2)
        makeClip(data, seq: 3, start: 300, markers: 0, trigger: "detector:video")
        makeClip(data, seq: 4, start: 50, markers: 0)
        // A clip still being written (journal present) is not offered.
        makeClip(data, seq: 5, start: 10, markers: 1)
        FileManager.default.createPlainFile(atPath: data.journal + "/cam-7-20261127T120005Z-0005.jsonl", contents: Data())
        #expect(o.scan().map { String($0.name.suffix(4)) } == ["0002", "0003", "0004", "0001"])
        var oldest = OffloadSettings()
        oldest.order = .oldest
        let (dir2, data2, o2, _) = try setUp(oldest)
        for (seq, start, markers) in [(1, 100.0, 0), (2, 200.0, 2), (4, 50.0, 0)] { makeClip(data2, seq: seq, start: start, markers: markers) }
        #expect(o2.scan().map { String($0.name.suffix(4)) } == ["0004", "0001", "0002"])
        withExtendedLifetime((dir, dir2)) {}
    }

    @Test("delete retention: verified, audited, then deleted; keep_days: kept and never sent again")
    func retention() throws {
        let (dir, data, o, events) = try setUp(OffloadSettings())
        makeClip(data, seq: 1, start: 100, markers: 0, size: 3 << 20)
        #expect(o.drain(attempts: 2).isEmpty)
        let names = events.lines.map(\.0)
        let verified = try #require(names.firstIndex(of: "offload_verified"))
        let deleted = try #require(names.firstIndex(of: "deleted"))
        #expect(verified < deleted)
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.clips).isEmpty)
        let copy = dir.path + "/share/ev/cam-7/2026/11/27/cam-7-20261127T120001Z-0001.mp4.age"
        #expect(FileManager.default.contents(atPath: copy) == Data(repeating: 1, count: 3 << 20))

        var keep = OffloadSettings()
        keep.retention = .keepDays
        keep.keepDays = 7
        let (dir2, data2, o2, events2) = try setUp(keep)
        makeClip(data2, seq: 2, start: 100, markers: 0)
        #expect(o2.drain(attempts: 2).isEmpty)
        #expect(FileManager.default.fileExists(atPath: data2.clips + "/cam-7-20261127T120002Z-0002.mp4.age"))
        #expect(!events2.lines.contains { $0.0 == "deleted" })
        #expect(o2.scan().isEmpty)
        let uploads = events2.lines.filter { $0.0 == "uploaded" }.count
        #expect(o2.drain(attempts: 2).isEmpty)
        #expect(events2.lines.filter { $0.0 == "uploaded" }.count == uploads)
        withExtendedLifetime(dir2) {}
    }

    @Test("a share that is not there: nothing deleted, the error says so, the command gives up after its attempts")
    func unreachableShare() throws {
        let (dir, data, o, events) = try setUp(OffloadSettings())
        makeClip(data, seq: 1, start: 100, markers: 0)
        try FileManager.default.removeItem(atPath: dir.path + "/share")
        let left = o.drain(attempts: 2)
        #expect(left.count == 1)
        #expect(FileManager.default.fileExists(atPath: data.clips + "/cam-7-20261127T120001Z-0001.mp4.age"))
        #expect((o.statusObject()["last_error"] as? String)?.contains("not a directory") == true)
        #expect(!events.lines.contains { $0.0 == "deleted" })
    }

    @Test("a verified copy whose audit line cannot be written: the clip stays on the device")
    func auditRefuses() throws {
        let (dir, data, o, events) = try setUp(OffloadSettings(), auditWorks: false)
        makeClip(data, seq: 1, start: 100, markers: 0)
        #expect(o.drain(attempts: 2).count == 1)
        #expect(FileManager.default.fileExists(atPath: data.clips + "/cam-7-20261127T120001Z-0001.mp4.age"))
        #expect(!events.lines.contains { $0.0 == "deleted" })
        // The copy is on the share; the next attempt verified it again without sending.
        let sent = events.lines.filter { $0.0 == "uploaded" }.map { $0.1["sent_bytes"] ?? "" }
        // (Two objects per attempt: the media file and the manifest.)
        #expect(sent.count == 4 && sent.prefix(2).allSatisfy { $0 != "0" } && sent.dropFirst(2).allSatisfy { $0 == "0" }, "\(sent)")
        withExtendedLifetime(dir) {}
    }

    @Test("clips the queue cannot take are named in status and audited once, their files kept; the rest go")
    func blockedClips() throws {
        let open = "cam-7-20261127T120008Z-0008"
        let (dir, data, o, events) = try setUp(OffloadSettings(), isOpen: { $0 == open })
        func id(_ seq: Int) -> String { "cam-7-20261127T1200\(String(format: "%02d", seq))Z-\(String(format: "%04d", seq))" }
        let fm = FileManager.default
        for seq in [1, 2, 3, 4, 7] { makeClip(data, seq: seq, start: Double(seq) * 100, markers: 0) }
        // 2: its media file is gone.
        try fm.removeItem(atPath: data.clips + "/" + id(2) + ".mp4.age")
        // 3: the manifest does not parse.
        fm.createPlainFile(atPath: data.clips + "/" + id(3) + ".json", contents: Data("{\"clip_id\": ".utf8))
        // 4: the manifest describes another clip.
        let other = try JSONSerialization.data(withJSONObject: ["clip_id": id(1), "file": id(4) + ".mp4.age"])
        fm.createPlainFile(atPath: data.clips + "/" + id(4) + ".json", contents: other)
        // 5: interrupted, and recovery could not make a manifest of its journal.
        fm.createPlainFile(atPath: data.clips + "/" + id(5) + ".mp4.age", contents: Data(repeating: 5, count: 9000))
        fm.createPlainFile(atPath: data.journal + "/" + id(5) + ".jsonl", contents: Data("not a journal\n".utf8))
        // 6: footage with neither manifest nor journal.
        fm.createPlainFile(atPath: data.clips + "/" + id(6) + ".mp4", contents: Data(repeating: 6, count: 9000))
        // 7: closed, but its journal was not removed (and it is not open).
        fm.createPlainFile(atPath: data.journal + "/" + id(7) + ".jsonl", contents: Data())
        // 8: being written: journal and media, no manifest yet. Not blocked.
        // (And an export's manifest beside the clips is not a clip.)
        fm.createPlainFile(atPath: data.clips + "/" + id(1) + ".export.json", contents: Data("{}".utf8))
        fm.createPlainFile(atPath: data.clips + "/" + open + ".mp4.age", contents: Data(repeating: 8, count: 9000))
        fm.createPlainFile(atPath: data.journal + "/" + open + ".jsonl", contents: Data())

        #expect(o.drain(attempts: 2).isEmpty)
        #expect(events.lines.filter { $0.0 == "offload_verified" }.map { $0.1["item"] } == [id(1)])
        let blocked = o.blockedClips()
        #expect(blocked.keys.sorted() == [2, 3, 4, 5, 6, 7].map(id))
        #expect(blocked[id(2)]?.contains("\(id(2)).mp4.age, which is not there") == true, "\(blocked)")
        #expect(blocked[id(3)]?.contains("not a readable manifest") == true)
        #expect(blocked[id(4)]?.contains("describes clip \"\(id(1))\"") == true)
        #expect(blocked[id(5)]?.contains("no manifest: its journal") == true)
        #expect(blocked[id(6)]?.contains("neither a manifest nor a journal") == true)
        #expect(blocked[id(7)]?.contains("journal") == true)
        // Nothing of theirs was touched.
        for name in [id(2) + ".json", id(3) + ".json", id(4) + ".json", id(4) + ".mp4.age", id(5) + ".mp4.age",
                     id(6) + ".mp4", id(7) + ".json", id(7) + ".mp4.age", open + ".mp4.age"] {
            #expect(fm.fileExists(atPath: data.clips + "/" + name), "\(name)")
        }
        #expect(fm.fileExists(atPath: data.journal + "/" + id(5) + ".jsonl"))
        // Status counts and names them; each is audited once, however often the queue is scanned.
        _ = o.scan()
        let status = o.statusObject()
        #expect(status["blocked"] as? Int == 6)
        #expect((status["blocked_clips"] as? [[String: String]])?.compactMap { $0["clip"] } == [2, 3, 4, 5, 6, 7].map(id))
        let audited = events.lines.filter { $0.0 == "offload_blocked" }.compactMap { $0.1["clip"] }
        #expect(audited.sorted() == [2, 3, 4, 5, 6, 7].map(id))
        // Once its media file is back, 2 goes.
        makeClip(data, seq: 2, start: 200, markers: 0)
        #expect(o.drain(attempts: 2).isEmpty)
        #expect(o.blockedClips()[id(2)] == nil)
        withExtendedLifetime(dir) {}
    }

    @Test("a journal recovery kept as damaged goes to the base station with its clip, then leaves the device with it")
    func damagedJournalTravels() throws {
        let (dir, data, o, _) = try setUp(OffloadSettings())
        makeClip(data, seq: 1, start: 100, markers: 0)
        let id = "cam-7-20261127T120001Z-0001"
        FileManager.default.createPlainFile(atPath: data.journal + "/" + id + ".jsonl.damaged", contents: Data("line\n".utf8))
        // A sealed tail recovery kept beside it (past what the journal vouches for).
        FileManager.default.createPlainFile(atPath: data.journal + "/" + id + ".tail-7.age", contents: Data("tail".utf8))
        #expect(o.drain(attempts: 2).isEmpty)
        let base = dir.path + "/share/ev/cam-7/2026/11/27/"
        #expect(FileManager.default.contents(atPath: base + id + ".journal-damaged.jsonl") == Data("line\n".utf8))
        #expect(FileManager.default.contents(atPath: base + id + ".journal-tail-7.age") == Data("tail".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.journal).isEmpty)
        #expect(FileManager.default.fileExists(atPath: base + id + ".json"))
        #expect(!FileManager.default.fileExists(atPath: data.journal + "/" + id + ".jsonl.damaged"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.clips).isEmpty)
    }

    @Test("kept clips: a retention delete takes the damaged journal that was sent with the clip, and only that")
    func damagedJournalRetention() throws {
        var keep = OffloadSettings()
        keep.retention = .untilSpaceNeeded
        keep.keepFreeMiB = 10_000_000  // more than any test disk: every kept clip is due
        let (dir, data, o, events) = try setUp(keep)
        makeClip(data, seq: 1, start: 100, markers: 0)
        let sent = "cam-7-20261127T120001Z-0001"
        FileManager.default.createPlainFile(atPath: data.journal + "/" + sent + ".jsonl.damaged", contents: Data("a\n".utf8))
        FileManager.default.createPlainFile(atPath: data.journal + "/" + sent + ".tail-3.age", contents: Data("t".utf8))
        #expect(o.drain(attempts: 2).isEmpty)
        #expect(FileManager.default.fileExists(atPath: data.journal + "/" + sent + ".tail-3.age"))
        // Sent and kept, its damaged journal too.
        #expect(FileManager.default.fileExists(atPath: data.clips + "/" + sent + ".json"))
        #expect(FileManager.default.fileExists(atPath: data.journal + "/" + sent + ".jsonl.damaged"))
        // A clip sent without one; a damaged journal of its name turns up only afterwards.
        makeClip(data, seq: 2, start: 200, markers: 0)
        let later = "cam-7-20261127T120002Z-0002"
        #expect(o.drain(attempts: 2).isEmpty)
        FileManager.default.createPlainFile(atPath: data.journal + "/" + later + ".jsonl.damaged", contents: Data("b\n".utf8))
        // The retention sweep: both clips are due.
        _ = o.step()
        #expect(events.lines.filter { $0.0 == "deleted" }.count == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.clips).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: data.journal + "/" + sent + ".jsonl.damaged"))
        #expect(!FileManager.default.fileExists(atPath: data.journal + "/" + sent + ".tail-3.age"))
        #expect(FileManager.default.contents(atPath: data.journal + "/" + later + ".jsonl.damaged") == Data("b\n".utf8))
        let deletedFiles = events.lines.filter { $0.0 == "deleted" }.map { $0.1["files"] ?? "" }
        #expect(deletedFiles.contains { $0.contains(sent + ".jsonl.damaged") })
        withExtendedLifetime(dir) {}
    }
}

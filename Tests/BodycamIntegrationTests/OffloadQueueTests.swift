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

    func setUp(_ settings: OffloadSettings, auditWorks: Bool = true) throws -> (TemporaryDirectory, DataDirectory, Offloader, Events) {
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
            }, indicate: { _ in })
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
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Sealed, signed clips and the audit log from a real recording, checked with the stock `age`
/// tool and `bodycam verify` / `export`, then tampered with byte by byte.
@Suite(.serialized)
struct EvidenceTests {
    /// One recording shared by the tests: the sim board, a marker, stopped by a hold.
    final class Recording: @unchecked Sendable {
        let dir = TemporaryDirectory("bodycam-evidence")
        var data: String { dir.path + "/data" }
        let sealed: String
        let manifest: String

        init() throws {
            let rec = try RunningRecorder(data: dir.path + "/data", config: dir.file("c.toml", "[recording]\npre_event_seconds = 2\n"))
            try rec.waitForState("buffering")
            sleep(3)
            _ = try rec.ctl("press", "record", "--double")
            sleep(4)
            _ = try rec.ctl("press", "marker")
            sleep(1)
            _ = try rec.ctl("press", "record", "--hold", "3")
            _ = try rec.ctl("stop")
            guard try rec.waitForExit() == 0 else { throw TestFailure("recorder failed:\n\(rec.log)") }
            let files = ClipFiles(dir.path + "/data")
            guard let s = files.media.first, let m = files.manifests.first else { throw TestFailure("no clip") }
            sealed = s
            manifest = m
        }
    }

    nonisolated(unsafe) static var shared: Recording?

    func recording() throws -> Recording {
        if let r = Self.shared { return r }
        let r = try Recording()
        Self.shared = r
        // A static is never released by itself: drop it as the test process exits, which removes
        // its directory.
        atexit { EvidenceTests.shared = nil }
        return r
    }

    func bodycam(_ args: [String]) throws -> CommandResult { try Shell.run(BodycamBinary.path, args) }

    func copy(_ from: String, to: String) throws {
        _ = try? FileManager.default.removeItem(atPath: to)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    func flip(_ path: String, at offset: Int) throws {
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw TestFailure("cannot open \(path)") }
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(offset))
        let b = try h.read(upToCount: 1) ?? Data([0])
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: Data([b[0] ^ 0x01]))
    }

    /// Offsets spread over a file of `size` bytes: both ends and evenly between.
    func positions(_ size: Int, count: Int = 24) -> [Int] {
        var p = Set([0, 1, size / 2, size - 2, size - 1])
        for i in 0..<count { p.insert(i * (size - 1) / max(1, count - 1)) }
        return p.filter { $0 >= 0 && $0 < size }.sorted()
    }

    @Test("the stock age tool opens the sealed clip; export writes the same bytes; verify passes on clip, export, audit log")
    func sealedRoundTrip() throws {
        let r = try recording()
        #expect(r.sealed.hasSuffix(".mp4.age"))
        let plain = r.dir.path + "/age-d.mp4"
        let age = try Shell.run("/bin/sh", ["-c", "age -d -i '\(r.data)/keys/demo-agency.key' '\(r.sealed)' > '\(plain)'"])
        #expect(age.status == 0, "\(age.stderr)")
        #expect(try Media.fullDecodeErrors(plain) == "")
        let probe = try Probe(plain)
        #expect(probe.stream("video")?["codec_name"] as? String == "h264")
        #expect(probe.stream("audio")?["codec_name"] as? String == "opus")
        let export = r.dir.path + "/export.mp4"
        let e = try bodycam(["export", "--identity", r.data + "/keys/demo-agency.key", r.sealed, "--output", export])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(FileManager.default.contentsEqual(atPath: export, andPath: plain), "export differs from age -d")
        #expect(FileManager.default.fileExists(atPath: r.dir.path + "/export.json"))
        let v = try bodycam(["verify", r.sealed, export, r.manifest, r.data + "/audit"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect(v.stdout.components(separatedBy: "VERIFIED").count == 5, "\(v.stdout)")
        let json = try bodycam(["verify", "--json", r.sealed])
        let reports = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(reports?.first?["verified"] as? Bool == true)
        #expect(reports?.first?["kind"] as? String == "sealed clip")
    }

    @Test("the audit log records the run: boot, config, buttons, record start and stop, marker, shutdown")
    func auditEvents() throws {
        let r = try recording()
        let segments = try FileManager.default.contentsOfDirectory(atPath: r.data + "/audit").filter { $0.hasSuffix(".jsonl") }
        #expect(!segments.isEmpty)
        var events: [String] = []
        for s in segments.sorted() {
            let text = try String(contentsOfFile: r.data + "/audit/" + s, encoding: .utf8)
            for line in text.split(separator: "\n") {
                let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                events.append(obj?["event"] as? String ?? "?")
            }
        }
        for e in ["segment", "boot", "config", "button", "record_start", "marker", "record_stop", "shutdown"] {
            #expect(events.contains(e), "no \(e) in \(events)")
        }
        // Order: the clip stops before the recorder does.
        #expect((events.firstIndex(of: "record_stop") ?? 99) < (events.lastIndex(of: "shutdown") ?? 0))
    }

    @Test("nothing on the device opens the clip: no agency identity but the sim's demo key")
    func noKeyOnDevice() throws {
        let r = try recording()
        let found = try Shell.run("/bin/sh", ["-c", "grep -rl AGE-SECRET-KEY '\(r.data)' || true"])
        let files = found.stdout.split(separator: "\n").map(String.init)
        #expect(files == [r.data + "/keys/demo-agency.key"], "\(files)")
        // And the device key file is private.
        var st = stat()
        #expect(stat(r.data + "/keys/device.key", &st) == 0 && (Int(st.st_mode) & 0o077) == 0)
    }

    @Test("flipping any byte of the sealed clip fails verify and names the chunk or header")
    func tamperSealed() throws {
        let r = try recording()
        let copy = r.dir.path + "/t/clip.mp4.age"
        try FileManager.default.createDirectory(atPath: r.dir.path + "/t", withIntermediateDirectories: true)
        try self.copy(r.manifest, to: r.dir.path + "/t/clip.json")
        let size = try #require(FileManager.default.attributesOfItem(atPath: r.sealed)[.size] as? Int)
        for offset in positions(size) {
            try self.copy(r.sealed, to: copy)
            try flip(copy, at: offset)
            let v = try bodycam(["verify", copy])
            #expect(v.status == 1, "byte \(offset) flipped, verify passed")
            #expect(v.stdout.contains("chunk") || v.stdout.contains("age header"), "byte \(offset): \(v.stdout)")
        }
    }

    @Test("flipping any byte of the manifest fails verify")
    func tamperManifest() throws {
        let r = try recording()
        try FileManager.default.createDirectory(atPath: r.dir.path + "/m", withIntermediateDirectories: true)
        let copy = r.dir.path + "/m/clip.json"
        let size = try #require(FileManager.default.attributesOfItem(atPath: r.manifest)[.size] as? Int)
        for offset in positions(size, count: 60) {
            try self.copy(r.manifest, to: copy)
            try flip(copy, at: offset)
            let v = try bodycam(["verify", copy])
            #expect(v.status == 1, "byte \(offset) flipped, verify passed")
        }
    }

    @Test("flipping a byte of the export names the fragment and its media time; dropped, swapped and spliced fragments fail")
    func tamperExport() throws {
        let r = try recording()
        let export = try Sealed.export(r.sealed, data: r.data)
        let m = try ClipFiles.manifest(r.manifest)
        let fragments = try #require(m["fragments"] as? [[String: Any]])
        #expect(fragments.count >= 5)
        let dir = r.dir.path + "/x"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let copy = dir + "/clip.mp4"
        try self.copy(export.replacingOccurrences(of: ".mp4", with: ".json"), to: dir + "/clip.json")
        let original = try Data(contentsOf: URL(fileURLWithPath: export))
        for f in [fragments[0], fragments[fragments.count / 2], fragments[fragments.count - 1]] {
            let offset = (f["offset"] as? Int ?? 0) + (f["size"] as? Int ?? 0) / 2
            try self.copy(export, to: copy)
            try flip(copy, at: offset)
            let v = try bodycam(["verify", copy])
            #expect(v.status == 1)
            #expect(v.stdout.contains("fragment \(f["index"] as? Int ?? -1) at"), "\(v.stdout)")
            #expect(v.stdout.contains("media time"), "\(v.stdout)")
        }
        func range(_ i: Int) -> Range<Int> {
            let o = fragments[i]["offset"] as? Int ?? 0
            return o..<(o + (fragments[i]["size"] as? Int ?? 0))
        }
        // Dropped fragment 2.
        var dropped = original
        dropped.removeSubrange(range(2))
        try dropped.write(to: URL(fileURLWithPath: copy))
        #expect(try bodycam(["verify", copy]).status == 1)
        // Fragments 2 and 3 swapped.
        var swapped = original[..<range(2).lowerBound]
        swapped += original[range(3)] + original[range(2)] + original[range(3).upperBound...]
        try Data(swapped).write(to: URL(fileURLWithPath: copy))
        #expect(try bodycam(["verify", copy]).status == 1)
        // A fragment of the same size from elsewhere spliced in: fragment 1's bytes where fragment 2 was, padded.
        var spliced = original
        let donor = original[range(1)]
        spliced.replaceSubrange(range(2).lowerBound..<(range(2).lowerBound + min(donor.count, range(2).count)),
                                with: donor.prefix(range(2).count))
        try spliced.write(to: URL(fileURLWithPath: copy))
        #expect(try bodycam(["verify", copy]).status == 1)
        // Bytes appended.
        try (original + Data(repeating: 0, count: 100)).write(to: URL(fileURLWithPath: copy))
        #expect(try bodycam(["verify", copy]).status == 1)
    }

    @Test("flipping any byte of the audit log fails verify naming the line; a torn last line is only a warning")
    func tamperAudit() throws {
        let r = try recording()
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: r.data + "/audit").sorted().first)
        let original = try Data(contentsOf: URL(fileURLWithPath: r.data + "/audit/" + segment))
        let dir = r.dir.path + "/a"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let copy = dir + "/" + segment
        for offset in positions(original.count, count: 40) {
            var d = original
            d[offset] ^= 0x01
            try d.write(to: URL(fileURLWithPath: copy))
            let v = try bodycam(["verify", copy])
            #expect(v.status == 1, "audit byte \(offset) flipped, verify passed: \(v.stdout)")
            #expect(v.stdout.contains("line"), "\(v.stdout)")
        }
        // A power cut in the middle of the last line: reported as torn, not as tampering.
        let lastLineStart = (original.dropLast().lastIndex(of: 0x0a) ?? 0) + 1
        try original.prefix(lastLineStart + 20).write(to: URL(fileURLWithPath: copy))
        let torn = try bodycam(["verify", copy])
        #expect(torn.status == 0, "\(torn.stdout)")
        #expect(torn.stdout.contains("torn"), "\(torn.stdout)")
    }

    @Test("keygen: a device identity (0600) and an agency identity the age tools accept")
    func keygen() throws {
        let dir = TemporaryDirectory("bodycam-keys")
        let d = try bodycam(["keygen", "--device", dir.path + "/dev"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(d.stdout.hasPrefix("ed25519:"))
        var st = stat()
        #expect(stat(dir.path + "/dev/device.key", &st) == 0 && (Int(st.st_mode) & 0o777) == 0o600)
        #expect(try bodycam(["keygen", "--device", dir.path + "/dev"]).status == 1, "an identity is never replaced")
        let a = try bodycam(["keygen", "--agency", dir.path + "/agency.key"])
        #expect(a.status == 0)
        let recipient = try String(contentsOfFile: dir.path + "/agency.key.pub", encoding: .utf8)
        let y = try Shell.run("age-keygen", ["-y", dir.path + "/agency.key"])
        #expect(y.stdout == recipient, "age-keygen -y disagrees with agency.key.pub")
        // A file sealed by age to that recipient opens with the identity, and the other way round.
        let plain = dir.path + "/p.txt"
        _ = try Shell.run("/bin/sh", ["-c", "echo evidence > '\(plain)'; age -r \(recipient.trimmingCharacters(in: .whitespacesAndNewlines)) -o '\(plain).age' '\(plain)'"])
        let back = try Shell.run("age", ["-d", "-i", dir.path + "/agency.key", plain + ".age"])
        #expect(back.stdout == "evidence\n")
    }
}

// Two builds of one program (Tests/Fuzz/README.md):
//
// - the fuzz build (`-sanitize=fuzzer -DFUZZING`, made by Tests/Fuzz/run-fuzz): `main` hands
//   the command line to libFuzzer's driver with `fuzz` as the target; libFuzzer's own `main`
//   cannot be used because SwiftPM links executables with `main` renamed to the module's;
// - the normal build: a regression runner, `BODYCAM_FUZZ_TARGET=T bodycam-fuzz FILE|DIR...`
//   runs every file through the same target and prints one line per file.
//
// Both take `--make-seeds DIR` first, which writes the generated seed inputs (signed manifests,
// journals, audit logs, a small clip) to DIR/<target>/.

import BodycamCore
import BodycamEvidence
import BodycamMedia
import Foundation

#if FUZZING
import CLibFuzzer
#endif

#if canImport(Glibc)
import Glibc
#endif

@main struct FuzzMain {
    static func main() {
        let args = CommandLine.arguments
        if args.count == 3 && args[1] == "--make-seeds" {
            Seeds.write(to: args[2])
            return
        }
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) })
        #else
        exit(regressions(Array(args.dropFirst())))
        #endif
    }

    /// Runs every file (directories: every file in them) through the selected target.
    static func regressions(_ paths: [String]) -> Int32 {
        guard let target = FuzzTarget.selected, !paths.isEmpty else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
            FileHandle.standardError.write(
                Data("usage: BODYCAM_FUZZ_TARGET=\(names) bodycam-fuzz FILE|DIR...\n       bodycam-fuzz --make-seeds DIR\n".utf8))
            return 64
        }
        var files: [String] = []
        for path in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                FileHandle.standardError.write(Data("\(path): not found\n".utf8))
                return 1
            }
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            let start = Date()
            target.run(Array(data))
            print("ok \(target.rawValue) \(file) (\(data.count) bytes, \(Int(Date().timeIntervalSince(start) * 1000)) ms)")
        }
        return 0
    }
}

/// Seed inputs made with the project's own writers, so the corpus starts from real files.
enum Seeds {
    static func write(to root: String) {
        func put(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) {
            let dir = root + "/" + target.rawValue
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            precondition(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes)))
        }
        let identity = FuzzTargets.identity
        let clip = smallClip()
        let sha = { (b: ArraySlice<UInt8>) in Hex.string(SHA256Hash.of(Array(b))) }

        // A plain clip: manifest and journal with its init segment and two fragments.
        let id = FuzzTargets.clipID
        var chain = JournalChain(identity: identity)
        var journalLines: [UInt8] = []
        var entries: [JournalEntry] = []
        func add(_ e: JournalEntry) {
            var e = e
            journalLines += Array(try! chain.sign(&e)) + [0x0a]
            entries.append(e)
        }
        var header = JournalEntry(seq: 0, type: "clip", clipId: id, prev: "")
        var m = ClipManifest(
            clipId: id, file: "clip.mp4", deviceId: "CAM-1", board: "sim", startUtc: "2026-01-01T00:00:00.000Z",
            startUnix: 1_767_225_600.5, clockTrusted: true, trigger: "button", triggeredAt: 0.25,
            initSegment: .init(offset: 0, size: 0, sha256: ""))
        m.video = .init(width: 64, height: 48, frameRate: "30/1", timescale: 90_000, profile: 100, level: 31, frames: 0, encoder: "x264")
        m.audio = .init(sampleRate: 16_000, channels: 1, bitrate: 32_000, packets: 0, preEvent: false, startsAt: 0)
        header.header = m
        add(header)
        var initEntry = JournalEntry(seq: 0, type: "init", clipId: id, prev: "")
        initEntry.range = .init(offset: 0, size: clip.initSize, sha256: sha(clip.bytes[0..<clip.initSize]))
        add(initEntry)
        for (k, range) in clip.fragments.enumerated() {
            var f = JournalEntry(seq: 0, type: "fragment", clipId: id, prev: "")
            f.fragment = .init(
                index: k, offset: range.lowerBound, size: range.count, sha256: sha(clip.bytes[range]), mediaTime: Double(k),
                duration: 1, videoFrames: 30, audioPackets: 50)
            add(f)
            if k == 0 {
                var marker = JournalEntry(seq: 0, type: "marker", clipId: id, prev: "")
                marker.marker = .init(mediaTime: 0.5, kind: "button", utc: "2026-01-01T00:00:01.000Z", score: nil)
                add(marker)
                var mute = JournalEntry(seq: 0, type: "mute", clipId: id, prev: "")
                mute.mute = .init(start: 0.75, end: nil, reason: "button")
                add(mute)
            }
        }
        put(.journal, "plain.jsonl", journalLines)
        put(.recovery, "plain", journalLines + [0] + clip.bytes)
        put(.recovery, "torn", Array(journalLines.dropLast(40)) + [0] + clip.bytes + [0, 0, 0, 0x40] + Array("moof".utf8))

        var manifest = m
        manifest.journal = entries
        manifest.fragments = entries.compactMap(\.fragment)
        manifest.markers = entries.compactMap(\.marker)
        manifest.muteSpans = [.init(start: 0.75, end: 2, reason: "button")]
        manifest.initSegment = initEntry.range!
        manifest.duration = 2
        manifest.sizeBytes = clip.bytes.count
        manifest.interrupted = false
        manifest.endReason = "button"
        try! ManifestSeal.sign(&manifest, identity: identity)
        put(.manifest, "plain", Array(try! Canonical.prettyBytes(manifest)) + [0] + clip.bytes)

        // A sealed clip (what is hashed is only checked, never decrypted): the age header, no
        // whole chunk yet and a sealed tail (the harness writes `clip.tail-1.age` = 01 02 03).
        let sealedFile = [UInt8](repeating: 0x41, count: 100)
        var seal = SealInfo(recipient: "age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", headerSize: 100,
                            headerSha256: sha(sealedFile[0..<100]))
        var sealedChain = JournalChain(identity: identity)
        var sealedLines: [UInt8] = []
        var sealedEntries: [JournalEntry] = []
        var sealedHeader = header
        sealedHeader.header?.file = "clip.mp4.age"
        sealedHeader.header?.sealed = seal
        for var e in [sealedHeader, initEntry] {
            if e.type == "init" {
                e.seal = SealCommit(
                    size: sealedFile.count, chunks: [],
                    tail: SealedTail(file: "clip.tail-1.age", sha256: sha([1, 2, 3]), size: 3, plaintextSize: 1))
            }
            sealedLines += Array(try! sealedChain.sign(&e)) + [0x0a]
            sealedEntries.append(e)
        }
        put(.journal, "sealed.jsonl", sealedLines)
        put(.recovery, "sealed", sealedLines + [0] + sealedFile + [9, 9, 9])
        var sealedManifest = sealedHeader.header!
        sealedManifest.journal = sealedEntries
        sealedManifest.initSegment = initEntry.range!
        seal.size = sealedFile.count
        seal.tail = SealedTail(file: "clip.tail-1.age", sha256: sha([1, 2, 3]), size: 3, plaintextSize: 1)
        sealedManifest.sealed = seal
        try! ManifestSeal.sign(&sealedManifest, identity: identity)
        put(.manifest, "sealed", Array(try! Canonical.prettyBytes(sealedManifest)) + [0] + sealedFile)

        // The clip itself, its init segment alone, and the clip cut inside its last fragment.
        put(.mp4, "clip.mp4", clip.bytes)
        put(.mp4, "init.mp4", Array(clip.bytes[0..<clip.initSize]))
        put(.mp4, "torn.mp4", Array(clip.bytes.dropLast(7)))

        // An audit log as the recorder writes it.
        let auditDir = Scratch.directory + "/seed-audit"
        Scratch.empty(auditDir)
        let log = try! AuditLog(directory: auditDir, deviceID: "CAM-1", identity: identity, unixSeconds: 1_767_225_600)
        try! log.append(event: "start", details: ["version": "1.0", "board": "sim"], monotonic: 1_000, unixSeconds: 1_767_225_600.25, clockTrusted: true)
        try! log.append(event: "clip", details: ["clip": id, "reason": "button"], monotonic: 2_000_000, unixSeconds: 1_767_225_601, clockTrusted: false)
        let auditBytes = Array(FileManager.default.contents(atPath: log.path)!)
        put(.audit, "segment.jsonl", auditBytes)
        put(.audit, "torn.jsonl", Array(auditBytes.dropLast(30)))
        Scratch.empty(auditDir)

        put(.control, "requests", Array("""
            {"cmd":"press","button":"record","double":true}
            {"cmd":"press","button":"marker","hold":3}
            {"cmd":"status"}
            {"cmd":"dock"}
            {"cmd":"undock"}
            {"cmd":"stop"}

            """.utf8))
        put(.control, "status", Array("""
            {"board":"sim","clip":{"id":"x","markers":1,"seconds":3.5},"clips":1,"device_id":"CAM-1","docked":false,\
            "last_clip":"y","leds":{"red":"on","green":"off"},"muted":false,"offload":{"configured":true,"state":"idle",\
            "pending":0,"uploaded":2,"current":{"object":"o"},"last_error":"e"},"pre_event_seconds":30,\
            "pre_event_target":30,"state":"buffering","storage":{"free_bytes":1.5e10}}
            """.utf8))
    }

    /// A two-fragment clip with the fixture's H.264 parameter sets and Opus audio, written by
    /// the project's InitSegment and FragmentBuilder as the recorder does.
    static func smallClip() -> (bytes: [UInt8], initSize: Int, fragments: [Range<Int>]) {
        let sps: [UInt8] = [
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xb4, 0x02, 0x80, 0x2d, 0xd0, 0x80, 0x00,
            0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x50,
        ]
        let pps: [UInt8] = [0x68, 0xef, 0x04, 0x72, 0xc0]
        let video = VideoTrack(width: 1280, height: 720, timescale: 90_000, sps: sps, pps: pps)
        let audio = AudioTrack(sampleRate: 16_000, channels: 1, preSkip: 312)
        var bytes = try! InitSegment.build(video: video, audio: audio)
        let initSize = bytes.count
        let vring = MediaRing(capacity: 1 << 16, maxEntries: 64)
        let aring = MediaRing(capacity: 1 << 16, maxEntries: 64)
        var vseqs: [Int] = []
        var aseqs: [Int] = []
        for i in 0..<6 {
            // A length-prefixed NAL unit (IDR for the first of each fragment, else a P slice).
            let nal: [UInt8] = [0, 0, 0, 4, i % 3 == 0 ? 0x65 : 0x41, 0x88, 0x84, UInt8(i)]
            let e = MediaEntry(
                length: nal.count, time: .zero + Int64(i) * 33_333_333, pts: Int64(i) * 3000, dts: Int64(i) * 3000,
                duration: 3000, isSync: i % 3 == 0)
            vseqs.append(vring.append(e) { $0.copyBytes(from: nal) }!)
        }
        for i in 0..<10 {
            let packet: [UInt8] = [0xf8, UInt8(i)]
            let e = MediaEntry(
                length: packet.count, time: .zero + Int64(i) * 20_000_000, pts: Int64(i) * 960, dts: Int64(i) * 960,
                duration: 960, isSync: true)
            aseqs.append(aring.append(e) { $0.copyBytes(from: packet) }!)
        }
        // FragmentPlan has no public initializer: one is cut from a throwaway one-frame ring
        // and its fields set (as the media tests do).
        let one = MediaRing(capacity: 64, maxEntries: 16)
        _ = one.append(MediaEntry(length: 1, time: .zero, pts: 0, dts: 0, duration: 0, isSync: true)) { $0[0] = 0 }
        var cursor = ClipCursor(
            video: one, originSeq: one.firstSeq, audioFromSeq: 0, audioFrom: .zero, videoTicksPerSecond: 90_000,
            audioTicksPerSecond: 48_000, videoFrameTicks: 3000)
        let template = cursor.cut(video: one, audio: MediaRing(capacity: 64, maxEntries: 16), videoEnd: one.endSeq, until: .zero + 1)!
        var builder = FragmentBuilder(video: video, audio: audio)
        var fragments: [Range<Int>] = []
        for k in 0..<2 {
            var p = template
            p.sequenceNumber = k + 1
            p.video = vseqs[k * 3]..<(vseqs[k * 3 + 2] + 1)
            p.audio = aseqs[k * 5]..<(aseqs[k * 5 + 4] + 1)
            p.videoDecodeTime = Int64(k) * 9000
            p.audioDecodeTime = Int64(k) * 4800
            _ = builder.build(plan: p, videoRing: vring, audioRing: aring)
            let start = bytes.count
            bytes += builder.header
            for s in p.video { bytes += vring.bytes(s) }
            for s in p.audio { bytes += aring.bytes(s) }
            fragments.append(start..<bytes.count)
        }
        return (bytes, initSize, fragments)
    }
}

enum SHA256Hash {
    static func of(_ bytes: [UInt8]) -> [UInt8] { FuzzTargets.sha256(Data(bytes)) }
}

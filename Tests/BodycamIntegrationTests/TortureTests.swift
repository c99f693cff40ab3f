import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Power cuts at random moments: the real binary on the sim board, offloading to a real SeaweedFS,
/// killed with SIGKILL while buffering, recording, rolling over, finalising and uploading, and
/// restarted each time. Afterwards every clip must be there, play, verify, have lost at most a
/// second before its kill, and be in the store exactly once.
///
/// `BODYCAM_TORTURE_KILLS` (default 30) and `BODYCAM_TORTURE_SEED` (default: random, printed)
/// reproduce a run.
@Suite(.serialized)
struct TortureTests {
    enum Phase: String, CaseIterable {
        case buffering, recording, rollover, finalizing, uploading
    }

    /// SplitMix64: a seeded generator, so a failing run can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("30 kill -9s at random moments: every clip present, plays, verifies, lost ≤ 1 s; the offload queue loses nothing")
    func killNineThirtyTimes() throws {
        let env = ProcessInfo.processInfo.environment
        let kills = env["BODYCAM_TORTURE_KILLS"].flatMap(Int.init) ?? 30
        let seed = env["BODYCAM_TORTURE_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...1_000_000)
        print("torture: \(kills) kills, seed \(seed) (BODYCAM_TORTURE_SEED=\(seed) replays it)")
        var rng = Seeded(state: seed)

        let dir = TemporaryDirectory("bodycam-torture")
        let station = try BaseStation()
        let data = dir.path + "/data"
        let offload = OffloadTests()
        // Rollover every 6 s so that kills land around rollovers too; clips are kept after their
        // verified offload so that the device's copy can be compared with the store's.
        let cfg = offload.config(
            dir, endpoint: station.endpoint, credentials: station.credentialsFile(in: dir.path),
            offloadExtra: "retention = \"keep_days\"\nkeep_days = 30")
        let text = try String(contentsOfFile: cfg, encoding: .utf8)
            .replacingOccurrences(of: "pre_event_seconds = 1\n", with: "pre_event_seconds = 1\nrollover_minutes = 0.1\n")
            .replacingOccurrences(of: "crf = 12\nmax_bitrate_kbps = 24000\n", with: "crf = 23\nmax_bitrate_kbps = 8000\n")
        try text.write(toFile: cfg, atomically: true, encoding: .utf8)

        var killTimes: [Double] = []
        var phases: [Phase: Int] = [:]
        var openAtKill = 0
        for _ in 0..<kills {
            let rec = try RunningRecorder(data: data, config: cfg)
            try rec.waitForState("buffering", timeout: 30)
            let phase = Phase.allCases.randomElement(using: &rng)!
            phases[phase, default: 0] += 1
            func pause(_ range: ClosedRange<Double>) { usleep(useconds_t(Double.random(in: range, using: &rng) * 1e6)) }
            switch phase {
            case .buffering:
                pause(0.0...2.0)
            case .recording:
                try rec.ctl("press", "record", "--double")
                pause(0.3...5.5)
            case .rollover:
                try rec.ctl("press", "record", "--double")
                let first = (try rec.status()["clip"] as? [String: Any])?["id"] as? String
                let deadline = Date().addingTimeInterval(15)
                while Date() < deadline {
                    let id = (try rec.status()["clip"] as? [String: Any])?["id"] as? String
                    if id != nil && id != first { break }
                    usleep(20_000)
                }
                pause(0.0...0.6)
            case .finalizing:
                try rec.ctl("press", "record", "--double")
                pause(0.5...3.0)
                // The hold ends the clip; the kill lands while it is being closed.
                try rec.ctl("press", "record", "--hold", "0.6")
                pause(0.0...0.15)
            case .uploading:
                try rec.ctl("dock")
                pause(0.05...2.0)
            }
            if (try? rec.status()["clip"] as? [String: Any]) != nil, phase == .recording || phase == .rollover {
                openAtKill += 1
            }
            killTimes.append(Date().timeIntervalSince1970)
            rec.kill9()
        }

        // A last start repairs the last kill's clip; docked, everything is offloaded.
        let rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering", timeout: 30)
        try rec.ctl("dock")
        try offload.waitDrained(rec, timeout: 300)
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0, "\(rec.log.suffix(3000))")

        let files = ClipFiles(data)
        #expect(files.media.count == files.manifests.count, "media \(files.media.count), manifests \(files.manifests.count)")
        var interrupted = 0
        var emptyClips = 0
        var worstLoss = 0.0
        for manifestPath in files.manifests {
            let m = try ClipFiles.manifest(manifestPath)
            let id = m["clip_id"] as? String ?? "?"
            guard let name = m["file"] as? String else {
                Issue.record("\(id): manifest names no file")
                continue
            }
            let media = data + "/clips/" + name
            let verify = try Shell.run(BodycamBinary.path, ["verify", media])
            #expect(verify.status == 0, "\(id): verify: \(verify.stdout) \(verify.stderr)")
            let plain = try Sealed.export(media, data: data)
            let duration = double(m["duration"]) ?? 0
            if (m["fragments"] as? [Any])?.isEmpty ?? true {
                // Cut before its first fragment (a kill within a second of a start or rollover):
                // the file is the init segment alone, which verifies and has nothing to play.
                emptyClips += 1
                #expect(m["interrupted"] as? Bool == true && duration == 0, "\(id): no fragments but \(m)")
            } else {
                #expect(try Media.fullDecodeErrors(plain) == "", "\(id) does not decode cleanly")
                let plays = try Probe(plain).duration
                #expect(abs(plays - duration) < 0.15, "\(id): plays \(plays) s of \(duration)")
            }
            try? FileManager.default.removeItem(atPath: plain)
            guard m["interrupted"] as? Bool == true else { continue }
            interrupted += 1
            // The kill that cut it: the first one after its last fragment.
            let end = (double(m["start_unix"]) ?? 0) + duration
            guard let kill = killTimes.first(where: { $0 >= end - 0.3 }) else {
                Issue.record("\(id): interrupted, but no kill after its end")
                continue
            }
            let lost = kill - end
            worstLoss = max(worstLoss, lost)
            #expect(lost <= 1.15, "\(id): lost \(lost) s before the kill")
        }
        #expect(interrupted >= openAtKill, "\(interrupted) interrupted clips for \(openAtKill) kills during a recording")

        // The store holds every clip file exactly once, byte-identical (one version each: the
        // bucket has Object Lock, so a second upload would show as a second version).
        let versions = try station.versions(prefix: "evidence/cam-7/")
        let names = try FileManager.default.contentsOfDirectory(atPath: data + "/clips").filter { !$0.contains(".export.") }
        for name in names {
            let keys = versions.keys.filter { $0.hasSuffix("/" + name) }
            #expect(keys.count == 1 && versions[keys.first ?? ""] == 1, "\(name): \(keys.map { "\($0) ×\(versions[$0] ?? 0)" })")
            if let key = keys.first {
                _ = try station.download(key, to: dir.path + "/dl")
                #expect(try sha256Hex(dir.path + "/dl") == sha256Hex(data + "/clips/" + name), "\(key) differs")
            }
        }
        let audit = try Shell.run(BodycamBinary.path, ["verify", data + "/audit"])
        #expect(audit.status == 0, "audit log: \(audit.stdout.suffix(2000)) \(audit.stderr)")
        print("torture: phases \(phases.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", ")); \(files.manifests.count) clips, \(interrupted) interrupted (\(emptyClips) before their first fragment), worst loss \(String(format: "%.2f", worstLoss)) s; \(names.count) files in the store once each")
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Offload to a real SeaweedFS (Object Lock bucket) through our fault-injecting proxy, checked
/// with the aws CLI: every clip and manifest exactly once (one version each), byte-identical,
/// deleted on the device only after the audit log shows its verification.
@Suite(.serialized)
struct OffloadTests {
    func bodycam(_ args: [String]) throws -> CommandResult { try Shell.run(BodycamBinary.path, args) }

    /// The sim board at a high bitrate (CRF 12, up to 24 Mbit/s, about 3 MB a second) so clips of
    /// a few seconds span several 5 MiB parts.
    func config(_ dir: TemporaryDirectory, endpoint: String, credentials: String, bucket: String = "cam1",
                retry: (base: Double, max: Double) = (0.2, 1.5), offloadExtra: String = "") -> String {
        dir.file("config.toml", """
            [device]
            id = "cam-7"
            [recording]
            pre_event_seconds = 1
            [buttons]
            hold_seconds = 0.5
            [video]
            crf = 12
            max_bitrate_kbps = 24000
            [offload]
            target = "s3"
            endpoint = "\(endpoint)"
            bucket = "\(bucket)"
            prefix = "evidence"
            credentials_file = "\(credentials)"
            part_size_mib = 5
            retry_base_seconds = \(retry.base)
            retry_max_seconds = \(retry.max)
            request_timeout_seconds = 3
            \(offloadExtra)
            """)
    }

    /// Records `lengths.count` clips (seconds after the press), a marker in every third.
    func record(_ rec: RunningRecorder, lengths: [Double]) throws {
        for (i, length) in lengths.enumerated() {
            try rec.ctl("press", "record", "--double")
            if i % 3 == 0 {
                usleep(useconds_t(length * 0.5e6))
                try rec.ctl("press", "marker")
                usleep(useconds_t(length * 0.5e6))
            } else {
                usleep(useconds_t(length * 1e6))
            }
            try rec.ctl("press", "record", "--hold", "0.7")
        }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let s = try rec.status()
            if s["clips"] as? Int == lengths.count && s["state"] as? String == "buffering" { return }
            usleep(100_000)
        }
        throw TestFailure("\(lengths.count) clips not closed:\n\(rec.log.suffix(3000))")
    }

    func offload(_ rec: RunningRecorder) throws -> [String: Any] {
        (try rec.status()["offload"] as? [String: Any]) ?? [:]
    }

    /// Waits until nothing is pending and nothing is in flight.
    func waitDrained(_ rec: RunningRecorder, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try offload(rec)
            if last["pending"] as? Int == 0, last["pending_audit_segments"] as? Int == 0, last["current"] is NSNull { return }
            usleep(200_000)
        }
        throw TestFailure("offload not done in \(timeout) s: \(last)\n\(rec.log.suffix(4000))")
    }

    /// Copies of the device's clip files, taken before docking (the device deletes its own).
    func snapshot(_ data: String, into dir: String) throws -> [String: String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var out: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: data + "/clips") {
            try FileManager.default.copyItem(atPath: data + "/clips/" + name, toPath: dir + "/" + name)
            out[name] = try sha256Hex(dir + "/" + name)
        }
        return out
    }

    /// The store's copy of every snapshot file: exactly one version, same bytes.
    func checkBucket(_ station: BaseStation, snapshot: [String: String], work: String) throws {
        let versions = try station.versions(prefix: "evidence/cam-7/")
        for (name, sha) in snapshot {
            let keys = versions.keys.filter { $0.hasSuffix("/" + name) && !$0.contains("/audit/") }
            #expect(keys.count == 1, "\(name): keys \(keys)")
            guard let key = keys.first else { continue }
            #expect(versions[key] == 1, "\(key) has \(versions[key] ?? 0) versions")
            let parts = key.split(separator: "/")
            #expect(parts.count == 6 && parts[0] == "evidence" && parts[1] == "cam-7" && parts[2].count == 4, "\(key)")
            _ = try station.download(key, to: work + "/dl-" + name)
            #expect(try sha256Hex(work + "/dl-" + name) == sha, "\(key) differs from the device's copy")
        }
    }

    /// Every deletion in the audit log comes after that clip's verified offload.
    func checkAuditOrder(_ data: String, clips: [String]) throws -> Int {
        let lines = try auditLines(data)
        var verifiedAt: [String: Int] = [:]
        var deleted = 0
        for (i, l) in lines.enumerated() {
            let d = l["details"] as? [String: String] ?? [:]
            switch l["event"] as? String {
            case "offload_verified": if let item = d["item"] { verifiedAt[item] = verifiedAt[item] ?? i }
            case "deleted":
                let clip = d["clip"] ?? ""
                #expect(verifiedAt[clip] != nil, "\(clip) deleted at audit line \(i) before any verified offload")
                deleted += 1
            default: break
            }
        }
        for c in clips { #expect(verifiedAt[c] != nil, "no offload_verified for \(c)") }
        return deleted
    }

    func clipIDs(_ snapshot: [String: String]) -> [String] {
        snapshot.keys.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// UploadPart requests, per part of an upload: the store took a part again only after a
    /// request for that same part was interrupted (cut, stalled, refused, or cancelled by an
    /// undock), i.e. an interruption re-sends only the part in flight, never the stored ones.
    /// (A request the client gave up on or cancelled may still be acted on by the store after the
    /// client has listed the stored parts: then the part is stored twice, the same bytes, and the
    /// proxy logs that interruption as an error, e.g. "client closed before the response".)
    func checkNoPartStoredTwice(_ proxy: FaultProxy) throws -> (parts: Int, interrupted: Int) {
        var stored: [String: Int] = [:]
        var troubled: [String: Int] = [:]
        var requests: [String: [String]] = [:]
        for r in try proxy.log() {
            guard r["method"] as? String == "PUT", let q = r["query"] as? String, q.contains("partNumber=") else { continue }
            let k = (r["path"] as? String ?? "") + "?" + q
            // What the store itself answered (a cut or corrupted answer still means it stored the
            // part; an injected error or garbage answer means it never saw it).
            let tookIt = r["upstream_status"] as? Int == 200
            if tookIt { stored[k, default: 0] += 1 }
            if !tookIt || r["fault"] is String || r["error"] is String { troubled[k, default: 0] += 1 }
            let facts = ["id", "t", "duration", "upstream_status", "fault", "error"].map { "\($0)=\(r[$0] ?? "-")" }
            requests[k, default: []].append(facts.joined(separator: " "))
        }
        for (k, n) in stored where n > 1 + troubled[k, default: 0] {
            let seen = (requests[k] ?? []).joined(separator: "\n  ")
            Issue.record("part stored \(n) times after \(troubled[k, default: 0]) interruptions: \(k)\n  \(seen)")
        }
        return (stored.count, troubled.values.reduce(0, +))
    }

    @Test("20 clips offload through faults and 50 random dock/undock cycles: each exactly once, identical, deleted only after verification")
    func offloadThroughFaultsAndDockCycles() throws {
        let dir = TemporaryDirectory("bodycam-offload")
        let station = try BaseStation()
        let proxy = try FaultProxy(upstreamPort: station.port, log: dir.path + "/proxy.log", seed: 7)
        let data = dir.path + "/data"
        let cfg = config(dir, endpoint: proxy.endpoint, credentials: station.credentialsFile(in: dir.path),
                         offloadExtra: "max_kbps = 80000")
        let rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        var rng = SystemRandomNumberGenerator()
        let lengths = (0..<20).map { i in [0.3, 1.2, 2.0, 3.5][i % 4] + Double.random(in: 0...0.5, using: &rng) }
        try record(rec, lengths: lengths)
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        let clips = clipIDs(snap)
        #expect(clips.count == 20)

        try proxy.random(
            probability: 0.12,
            kinds: [["kind": "cut_request", "after_bytes": 300_000], ["kind": "cut_response"], ["kind": "status", "status": 503],
                    ["kind": "status", "status": 500], ["kind": "stall", "seconds": 4], ["kind": "corrupt_checksum"],
                    ["kind": "garbage"]],
            seed: 11)
        for _ in 0..<50 {
            try rec.ctl("dock")
            usleep(useconds_t(Double.random(in: 0.05...0.6, using: &rng) * 1e6))
            try rec.ctl("undock")
            usleep(useconds_t(Double.random(in: 0.02...0.2, using: &rng) * 1e6))
        }
        let during = try offload(rec)
        try proxy.reset()
        try rec.ctl("dock")
        try waitDrained(rec, timeout: 180)
        let status = try rec.status()
        #expect(status["docked"] as? Bool == true)
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)

        try checkBucket(station, snapshot: snap, work: dir.path)
        let remaining = try FileManager.default.contentsOfDirectory(atPath: data + "/clips")
        #expect(remaining.isEmpty, "left on the device: \(remaining)")
        #expect(try checkAuditOrder(data, clips: clips) == 20)
        let parts = try checkNoPartStoredTwice(proxy)
        let faults = try proxy.log().filter { $0["fault"] is String }.count
        #expect(faults > 10, "the proxy injected only \(faults) faults")
        let undocks = try auditLines(data).filter { $0["event"] as? String == "undock" }.count
        #expect(undocks >= 50)
        print("offload: \(parts.parts) parts, \(parts.interrupted) part requests interrupted, \(faults) faults injected; pending during the dock cycles: \(during["pending"] ?? "?")")
    }

    @Test("kill -9 during an upload, restart: the upload resumes from the stored parts; nothing lost or duplicated")
    func killDuringUploadResumes() throws {
        let dir = TemporaryDirectory("bodycam-offload-kill")
        let station = try BaseStation()
        let proxy = try FaultProxy(upstreamPort: station.port, log: dir.path + "/proxy.log")
        let data = dir.path + "/data"
        let cfg = config(dir, endpoint: proxy.endpoint, credentials: station.credentialsFile(in: dir.path),
                         offloadExtra: "max_kbps = 16000")
        var rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        try record(rec, lengths: [7])
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        let media = snap.keys.first { $0.hasSuffix(".mp4.age") }!
        let size = (try FileManager.default.attributesOfItem(atPath: dir.path + "/snapshot/" + media)[.size] as? Int) ?? 0
        #expect(size > 15 << 20, "clip of \(size) bytes is too small to need several parts")
        try rec.ctl("dock")
        // Wait until at least two parts are stored, then pull the plug.
        let deadline = Date().addingTimeInterval(60)
        func storedParts() throws -> Int {
            try proxy.log().filter { ($0["query"] as? String ?? "").contains("partNumber=") && $0["status"] as? Int == 200 }.count
        }
        while try storedParts() < 2 && Date() < deadline { usleep(50_000) }
        rec.kill9()
        let before = try storedParts()
        #expect(before >= 2)
        rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        try rec.ctl("dock")
        try waitDrained(rec, timeout: 120)
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)
        try checkBucket(station, snapshot: snap, work: dir.path)
        _ = try checkNoPartStoredTwice(proxy)
        let uploads = try auditLines(data).filter { $0["event"] as? String == "uploaded" }
            .compactMap { $0["details"] as? [String: String] }.filter { ($0["key"] ?? "").hasSuffix(".mp4.age") }
        #expect(uploads.count == 1)
        #expect(Int(uploads.first?["resumed_parts"] ?? "0")! >= before, "\(uploads)")
        // Only one multipart upload was ever started for the clip.
        let creates = try proxy.log().filter { $0["method"] as? String == "POST" && ($0["query"] as? String ?? "").hasPrefix("uploads") }
        #expect(creates.count == 1)
    }

    @Test("wrong credentials, a missing bucket: clear errors in status and log, nothing deleted, retried")
    func refusedByTheStore() throws {
        let station = try BaseStation()
        // SeaweedFS answers a bucket outside the key's rights with AccessDenied, not NoSuchBucket.
        for (label, secret, bucket, expected) in [("wrong secret", "not-the-secret", "cam1", ["SignatureDoesNotMatch"]),
                                                  ("missing bucket", nil, "no-such-bucket", ["NoSuchBucket", "AccessDenied"])] {
            let dir = TemporaryDirectory("bodycam-offload-refused")
            let data = dir.path + "/data"
            let cfg = config(dir, endpoint: station.endpoint, credentials: station.credentialsFile(in: dir.path, secret: secret),
                             bucket: bucket)
            let rec = try RunningRecorder(data: data, config: cfg)
            try rec.waitForState("buffering")
            try record(rec, lengths: [1])
            try rec.ctl("dock")
            var seen: [String: Any] = [:]
            let deadline = Date().addingTimeInterval(20)
            var errors = Set<String>()
            while Date() < deadline {
                seen = try offload(rec)
                if let e = seen["last_error"] as? String { errors.insert(e) }
                if errors.count >= 1 && (seen["state"] as? String) == "unreachable" { break }
                usleep(100_000)
            }
            #expect(errors.contains { e in expected.contains { e.contains($0) } && e.contains(bucket) }, "\(label): \(seen)")
            #expect(seen["pending"] as? Int == 1, "\(label): \(seen)")
            #expect(seen["reachable"] as? Bool == false)
            sleep(2)
            // Still retrying: several attempts in the log, and the clip is still on the device.
            let attempts = rec.log.components(separatedBy: "offload: base station").count - 1
            #expect(attempts >= 2, "\(label): \(attempts) attempts")
            #expect(ClipFiles(data).media.count == 1)
            try rec.ctl("stop")
            #expect(try rec.waitForExit() == 0)
        }
        // A credentials file others can read is refused at start (78), naming the file and mode.
        let dir = TemporaryDirectory("bodycam-offload-creds")
        let cfg = config(dir, endpoint: station.endpoint, credentials: station.credentialsFile(in: dir.path, mode: 0o644))
        let r = try bodycam(["run", "--board", "sim", "--data", dir.path + "/data", "--config", cfg, "--for", "1"])
        #expect(r.status == 78)
        #expect(r.stderr.contains("s3.toml") && r.stderr.contains("644") && r.stderr.contains("0600"), "\(r.stderr)")
    }

    @Test("garbage answers and a wrong checksum from the store: errors named, nothing deleted until a real verification")
    func hostileAnswers() throws {
        let dir = TemporaryDirectory("bodycam-offload-hostile")
        let station = try BaseStation()
        let proxy = try FaultProxy(upstreamPort: station.port, log: dir.path + "/proxy.log")
        let data = dir.path + "/data"
        let cfg = config(dir, endpoint: proxy.endpoint, credentials: station.credentialsFile(in: dir.path),
                         retry: (1, 1.2))
        let rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        try record(rec, lengths: [2.5])
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        try proxy.rules([
            ["match": ["method": "POST", "query_contains": "uploads"], "fault": ["kind": "garbage"], "count": 1],
            // HEADs of the clip: the existence checks (404, nothing to corrupt) and the verifications.
            ["match": ["method": "HEAD", "path_contains": ".mp4.age"], "fault": ["kind": "corrupt_checksum"], "count": 4],
        ])
        try rec.ctl("dock")
        var errors = Set<String>()
        var deletedEarly = false
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let o = try offload(rec)
            if let e = o["last_error"] as? String { errors.insert(e) }
            let headFaults = try proxy.log().filter { $0["method"] as? String == "HEAD" && $0["fault"] as? String == "corrupt_checksum" }
            if headFaults.count < 4 && ClipFiles(data).media.isEmpty { deletedEarly = true }
            if o["pending"] as? Int == 0 && o["current"] is NSNull { break }
            usleep(100_000)
        }
        #expect(!deletedEarly, "clip deleted while the store's checksum was wrong")
        #expect(errors.contains { $0.contains("unreadable answer") || $0.contains("GarbageAnswer") }, "\(errors)")
        #expect(errors.contains { $0.contains("does not match") }, "\(errors)")
        try waitDrained(rec, timeout: 30)
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)
        try checkBucket(station, snapshot: snap, work: dir.path)
        _ = try checkAuditOrder(data, clips: clipIDs(snap))
        let failed = try auditLines(data).filter { $0["event"] as? String == "offload_failed" }
        #expect(failed.count >= 2)
    }

    @Test("multipart uploads of a clip whose answers were lost: the newest is resumed, the others aborted, none left open")
    func staleUploadsAborted() throws {
        let dir = TemporaryDirectory("bodycam-offload-stale")
        let station = try BaseStation()
        let data = dir.path + "/data"
        let cfg = config(dir, endpoint: station.endpoint, credentials: station.credentialsFile(in: dir.path))
        let rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        try record(rec, lengths: [4])
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        let media = try #require(snap.keys.first { $0.hasSuffix(".mp4.age") })
        let size = (try FileManager.default.attributesOfItem(atPath: dir.path + "/snapshot/" + media)[.size] as? Int) ?? 0
        #expect(size > 5 << 20, "clip of \(size) bytes is too small to need several parts")
        // Its key, as the offloader names it: evidence/<device>/<yyyy>/<mm>/<dd>/<file>.
        let id = try #require(media.components(separatedBy: ".mp4").first)
        let stamp = Array(try #require(id.split(separator: "-").dropLast().last))
        #expect(stamp.count == 16)
        let key = "evidence/cam-7/\(String(stamp[0..<4]))/\(String(stamp[4..<6]))/\(String(stamp[6..<8]))/\(media)"
        // Two uploads of it the device never heard back about (the answers to CreateMultipartUpload lost).
        func openUploads() throws -> [String] {
            let r = try station.aws(["s3api", "list-multipart-uploads", "--bucket", "cam1", "--prefix", "evidence/", "--output", "json"])
            guard r.status == 0 else { throw TestFailure("list-multipart-uploads: \(r.stderr)") }
            let text = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty, let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return [] }
            return (obj["Uploads"] as? [[String: Any]] ?? []).compactMap { $0["UploadId"] as? String }
        }
        for _ in 0..<2 {
            let r = try station.aws(["s3api", "create-multipart-upload", "--bucket", "cam1", "--key", key, "--output", "json"])
            #expect(r.status == 0, "\(r.stderr)")
            usleep(1_100_000)  // distinct Initiated times
        }
        #expect(try openUploads().count == 2)
        let r = try bodycam(["offload", "--config", cfg, "--data", data])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        try checkBucket(station, snapshot: snap, work: dir.path)
        #expect(try openUploads() == [], "uploads left open on the store")
    }

    @Test("bodycam offload sends clips and closed audit segments without a recorder; a second run sends nothing")
    func offloadCommand() throws {
        let dir = TemporaryDirectory("bodycam-offload-cmd")
        let station = try BaseStation()
        let data = dir.path + "/data"
        let plain = dir.file("plain.toml", "[recording]\npre_event_seconds = 1\n[buttons]\nhold_seconds = 0.5\n[device]\nid = \"cam-7\"\n")
        let rec = try RunningRecorder(data: data, config: plain)
        try rec.waitForState("buffering")
        try record(rec, lengths: [1.5, 1])
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        let cfg = config(dir, endpoint: station.endpoint, credentials: station.credentialsFile(in: dir.path),
                         offloadExtra: "retention = \"keep_days\"\nkeep_days = 7")
        let r = try bodycam(["offload", "--config", cfg, "--data", data])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("offloaded 2 clip(s) and 1 audit segment(s)"), "\(r.stdout)")
        try checkBucket(station, snapshot: snap, work: dir.path)
        // keep_days: verified but kept on the device, and marked so nothing is sent again.
        #expect(ClipFiles(data).media.count == 2)
        let audit = try station.versions(prefix: "evidence/cam-7/audit/")
        #expect(audit.count == 1 && audit.values.allSatisfy { $0 == 1 }, "\(audit)")
        let again = try bodycam(["offload", "--config", cfg, "--data", data])
        #expect(again.status == 0)
        #expect(again.stdout.contains("offloaded 0 clip(s) and 1 audit segment(s), 0 bytes") || again.stdout.contains("offloaded 0 clip(s)"), "\(again.stdout)")
        // The offloaded audit segment verifies on its own.
        let key = audit.keys.first!
        _ = try station.download(key, to: dir.path + "/segment.jsonl")
        #expect(try bodycam(["verify", dir.path + "/segment.jsonl"]).status == 0)
        // Wrong configuration: no [offload] table is a configuration error.
        #expect(try bodycam(["offload", "--config", plain, "--data", data]).status == 78)
    }

    @Test("bodycam offload after a power cut: the interrupted clip is recovered first, then sent and verified; no marker, no copy")
    func offloadCommandRecoversFirst() throws {
        let dir = TemporaryDirectory("bodycam-offload-cut")
        let share = dir.path + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        let cfg = dir.file("config.toml", """
            [device]
            id = "cam-7"
            [recording]
            pre_event_seconds = 1
            [offload]
            target = "directory"
            path = "\(share)"
            prefix = "evidence"
            """)
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data, config: cfg)
        try rec.waitForState("buffering")
        try rec.ctl("press", "record", "--double")
        usleep(3_300_000)
        rec.kill9()
        #expect(ClipFiles(data).manifests.isEmpty)
        // The share's folder without its marker (not mounted): nothing is taken, nothing deleted.
        let unmounted = try bodycam(["offload", "--config", cfg, "--data", data, "--attempts", "1"])
        #expect(unmounted.status == 1)
        #expect(unmounted.stderr.contains(".bodycam-base-station"), "\(unmounted.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: share).isEmpty)
        #expect(ClipFiles(data).media.count == 1 && ClipFiles(data).manifests.count == 1)
        FileManager.default.createPlainFile(atPath: share + "/.bodycam-base-station", contents: Data())
        let r = try bodycam(["offload", "--config", cfg, "--data", data])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ClipFiles(data).media.isEmpty && ClipFiles(data).manifests.isEmpty)
        let files = try Shell.run("find", [share, "-type", "f"]).stdout.split(separator: "\n").map(String.init)
        let clip = try #require(files.first { $0.hasSuffix(".mp4.age") }, "\(files)")
        let manifest = try ClipFiles.manifest(try #require(files.first { $0.hasSuffix(".json") && !$0.contains("/audit/") }))
        #expect(manifest["interrupted"] as? Bool == true)
        #expect(try bodycam(["verify", clip]).status == 0)
        let audit = try FileManager.default.contentsOfDirectory(atPath: data + "/audit").compactMap {
            try? String(contentsOfFile: data + "/audit/" + $0, encoding: .utf8)
        }.joined()
        #expect(audit.contains("\"recovered\""))
    }

    @Test("a delete cut short after verification (media gone, manifest left) is finished by the next offload")
    func interruptedDeleteFinished() throws {
        let dir = TemporaryDirectory("bodycam-offload-del")
        let share = dir.path + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        FileManager.default.createPlainFile(atPath: share + "/.bodycam-base-station", contents: Data())
        let cfg = dir.file("config.toml", """
            [device]
            id = "cam-7"
            [offload]
            target = "directory"
            path = "\(share)"
            """)
        let data = dir.path + "/data"
        for d in ["clips", "journal", "state", "offload"] {
            try FileManager.default.createDirectory(atPath: data + "/" + d, withIntermediateDirectories: true)
        }
        #expect(try bodycam(["keygen", "--device", data + "/keys"]).status == 0)
        // As a power cut leaves it: verified and marked, the media unlinked, the manifest not yet.
        let id = "cam-7-20261128T101500Z-0001"
        FileManager.default.createPlainFile(atPath: data + "/clips/" + id + ".json", contents: Data("{}".utf8))
        FileManager.default.createPlainFile(atPath: data + "/offload/" + id + ".verified", contents: Data("{\"unix\":1800000000}\n".utf8))
        // A clip that was never verified stays whatever happens.
        let other = "cam-7-20261128T101600Z-0002"
        FileManager.default.createPlainFile(atPath: data + "/clips/" + other + ".json", contents: Data("{}".utf8))
        let r = try bodycam(["offload", "--config", cfg, "--data", data])
        #expect(!FileManager.default.fileExists(atPath: data + "/clips/" + id + ".json"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data + "/offload/" + id + ".verified"))
        #expect(FileManager.default.fileExists(atPath: data + "/clips/" + other + ".json"))
        let audit = try FileManager.default.contentsOfDirectory(atPath: data + "/audit").compactMap {
            try? String(contentsOfFile: data + "/audit/" + $0, encoding: .utf8)
        }.joined()
        #expect(audit.contains("delete finished"))
    }

    @Test("a directory target gets verified copies under the key layout; a power-supply dock file docks the sim board")
    func directoryTargetAndPowerSupplyDock() throws {
        let dir = TemporaryDirectory("bodycam-offload-dir")
        let share = dir.path + "/share"
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        FileManager.default.createPlainFile(atPath: share + "/.bodycam-base-station", contents: Data())
        let online = dir.file("online", "0\n")
        let sim = try String(contentsOfFile: BodycamBinary.boardDirectory + "/sim.toml", encoding: .utf8)
        let board = dir.file("sim-dock.toml", sim + "\n[dock]\nkind = \"power_supply\"\npath = \"\(online)\"\n")
        let cfg = dir.file("config.toml", """
            [device]
            id = "cam-7"
            [recording]
            pre_event_seconds = 1
            [buttons]
            hold_seconds = 0.5
            [offload]
            target = "directory"
            path = "\(share)"
            prefix = "evidence"
            """)
        let data = dir.path + "/data"
        let rec = try RunningRecorder(data: data, board: board, config: cfg)
        try rec.waitForState("buffering")
        try record(rec, lengths: [1.5])
        let snap = try snapshot(data, into: dir.path + "/snapshot")
        #expect(try rec.status()["docked"] as? Bool == false)
        _ = FileManager.default.createPlainFile(atPath: online, contents: Data("1\n".utf8))
        try waitDrained(rec, timeout: 20)
        #expect(try rec.status()["docked"] as? Bool == true)
        let leds = try rec.status()["leds"] as? [String: String]
        #expect(leds?["dock"] == "on")
        let found = Shell.run.self
        _ = found
        let files = try Shell.run("find", [share, "-type", "f"]).stdout.split(separator: "\n").map(String.init)
        for (name, sha) in snap {
            let copy = files.first { $0.hasSuffix("/" + name) }
            #expect(copy?.contains("/evidence/cam-7/") == true, "\(name) not on the share: \(files)")
            if let copy { #expect(try sha256Hex(copy) == sha) }
        }
        #expect(!files.contains { $0.contains(".partial") })
        // The copy on the share verifies on its own (sealed clip against its manifest).
        if let clip = files.first(where: { $0.hasSuffix(".mp4.age") }) {
            #expect(try bodycam(["verify", clip]).status == 0)
        }
        #expect(ClipFiles(data).media.isEmpty)
        _ = FileManager.default.createPlainFile(atPath: online, contents: Data("0\n".utf8))
        let deadline = Date().addingTimeInterval(5)
        while try rec.status()["docked"] as? Bool != false && Date() < deadline { usleep(100_000) }
        #expect(try rec.status()["docked"] as? Bool == false)
        try rec.ctl("stop")
        #expect(try rec.waitForExit() == 0)
    }
}

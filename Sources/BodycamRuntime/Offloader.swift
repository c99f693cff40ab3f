import BodycamAdapters
import BodycamCore
import BodycamOffload
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes an audit line; with `sync`, returns only once the line is on storage (a deletion must
/// never be logged after the fact), and returns whether it got there.
typealias AuditSink = @Sendable (_ event: String, _ details: [String: String], _ sync: Bool) -> Bool

/// The offload queue: while docked, every finished clip (media, sealed tail if any, manifest) and
/// every closed audit-log segment goes to the base station, and a clip's local copy is deleted
/// only after the base station's copy is verified (and only then, per the retention policy).
///
/// The queue is the data directory itself: a clip is pending while its manifest is in
/// `DATA/clips` and no verified mark is in `DATA/offload`, so nothing is lost across crashes and
/// nothing is sent twice (objects are written with If-None-Match and verified when found). The
/// S3 target keeps its multipart upload ids there too, so an upload resumes where it stopped.
///
/// It runs on its own thread; undocking cancels the request in flight at once.
final class Offloader: @unchecked Sendable {
    let settings: OffloadSettings
    let target: any OffloadTarget
    let data: DataDirectory
    let deviceID: String
    private let logger: Logger
    private let audit: AuditSink
    private let indicate: @Sendable (LEDPattern) -> Void
    /// Whether the recorder is writing this clip (its journal is expected to be there).
    private let isOpen: @Sendable (String) -> Bool
    private let cond = Condition()
    private var thread: DedicatedThread?

    // Guarded by `cond`.
    private var docked = false
    private var stopping = false
    private var wakeups = 0
    private var state = "undocked"
    private var reachable = false
    private var failures: [String: (count: Int, next: Double, error: String)] = [:]
    /// When a verified clip whose delete did not finish may be tried again.
    private var deleteRetryAt: [String: Double] = [:]
    private var probeFailures = 0
    private var probeNext = 0.0
    private var lastError: String?
    private var lastErrorAt: Double?
    private var current: (item: String, object: String, sent: Int64, size: Int64)?
    private var pendingClips = 0
    private var pendingBytes: Int64 = 0
    private var pendingAudit = 0
    private var uploadedClips = 0
    private var uploadedAudit = 0
    private var deletedClips = 0
    private var sentBytes: Int64 = 0
    private var rate = 0.0
    private var paceStart = 0.0
    private var paceBytes: Int64 = 0
    private var led: LEDPattern = .off
    private var countsDirty = true
    /// Clips the queue cannot take, with the reason, as of the last scan: their files stay on the
    /// device, and status, the dock LED, the audit log and `bodycam offload` say so.
    private var blocked: [String: String] = [:]
    /// Blocked clips already logged and audited (each said once, not at every scan).
    private var warned = Set<String>()

    static let stateFolder = "offload"

    init(settings: OffloadSettings, target: any OffloadTarget, data: DataDirectory, deviceID: String, logger: Logger,
         audit: @escaping AuditSink, indicate: @escaping @Sendable (LEDPattern) -> Void,
         isOpen: @escaping @Sendable (String) -> Bool = { _ in false }) {
        self.settings = settings
        self.isOpen = isOpen
        self.target = target
        self.data = data
        self.deviceID = deviceID
        self.logger = logger
        self.audit = audit
        self.indicate = indicate
    }

    /// Builds the target the settings describe. Configuration problems (credentials) throw.
    static func makeTarget(_ s: OffloadSettings, data: DataDirectory) throws(ConfigurationFailure) -> any OffloadTarget {
        switch s.target {
        case .directory:
            return DirectoryTarget(root: s.path)
        case .s3:
            let creds = try S3Credentials.load(s.credentialsFile ?? "")
            if let ca = s.caFile, access(ca, R_OK) != 0 {
                throw ConfigurationFailure(description: "[offload] ca_file = \"\(ca)\": cannot read it")
            }
            let transport = HTTPTransport(stallTimeout: s.requestTimeoutSeconds, caFile: s.caFile)
            let signer = SigV4Signer(accessKeyID: creds.accessKeyID, secretAccessKey: creds.secretAccessKey, region: s.region)
            do {
                let client = try S3Client(endpoint: s.endpoint, bucket: s.bucket, signer: signer, transport: transport)
                return S3Target(client: client, partSize: s.partSizeMiB << 20, stateDirectory: data.root + "/" + stateFolder)
            } catch {
                throw ConfigurationFailure(description: "[offload] endpoint: \(error)")
            }
        }
    }

    var stateDirectory: String { data.root + "/" + Self.stateFolder }

    // MARK: - Control

    func start() {
        try? FileSystem.makeDirectory(stateDirectory)
        refreshCounts()
        thread = DedicatedThread(name: "bc-offload") { [self] in loop() }
    }

    func stop() {
        cond.withLock {
            stopping = true
            cond.broadcast()
        }
        target.cancelAll()
        thread?.join()
    }

    /// The dock sensor changed. Undocking stops the request in flight now.
    func setDocked(_ on: Bool) {
        let changed = cond.withLock { () -> Bool in
            guard docked != on else { return false }
            docked = on
            if on {
                // A new dock: try everything again at once.
                target.resume()
                failures.removeAll()
                probeFailures = 0
                probeNext = 0
            } else {
                // Under the lock, so a quick undock-dock cannot leave the target closed.
                target.cancelAll()
                reachable = false
                state = "undocked"
            }
            wakeups += 1
            cond.broadcast()
            return true
        }
        if changed { updateLED() }
    }

    /// Something new to send (a clip closed).
    func wake() {
        cond.withLock {
            wakeups += 1
            countsDirty = true
            cond.broadcast()
        }
    }

    func statusObject() -> [String: Any] {
        if cond.withLock({ countsDirty && !docked }) { refreshCounts() }
        return cond.withLock {
            var o: [String: Any] = [
                "target": target.name, "state": state, "reachable": reachable, "pending": pendingClips,
                "pending_bytes": pendingBytes, "pending_audit_segments": pendingAudit, "uploaded": uploadedClips,
                "uploaded_audit_segments": uploadedAudit, "deleted": deletedClips, "bytes": sentBytes,
                "rate_bytes_per_second": rate.rounded(), "retrying": failures.count, "blocked": blocked.count,
                "blocked_clips": blocked.keys.sorted().prefix(Self.blockedListed).map { ["clip": $0, "reason": blocked[$0]!] },
            ]
            o["last_error"] = lastError ?? NSNull()
            o["last_error_utc"] = lastErrorAt.map { UTCFormat.iso8601($0) } ?? NSNull()
            if let c = current {
                o["current"] = ["item": c.item, "object": c.object, "bytes_sent": c.sent, "size": c.size] as [String: Any]
            } else {
                o["current"] = NSNull()
            }
            let now = Self.now()
            if let next = failures.values.map(\.next).min(), next > now { o["retry_in"] = ((next - now) * 10).rounded() / 10 }
            return o
        }
    }

    // MARK: - The worker

    private static func now() -> Double { Double(SystemClock.monotonic()) / 1e9 }

    private var isCancelled: Bool { cond.withLock { stopping || !docked } }

    private func loop() {
        while true {
            let (go, seen) = cond.withLock { () -> (Bool, Int) in
                while !stopping && !docked { cond.wait() }
                return (!stopping, wakeups)
            }
            guard go else { return }
            let outcome = step()
            switch outcome {
            case .worked: continue
            case .wait(let seconds):
                cond.withLock {
                    let deadline = SystemClock.monotonic() + Int64(seconds * 1e9)
                    while !stopping && docked && wakeups == seen {
                        if !cond.wait(untilMonotonic: deadline) { break }
                    }
                }
            }
        }
    }

    enum Outcome { case worked, wait(Double) }

    /// One step: confirm the base station, then send the most urgent item that is not backing off.
    func step() -> Outcome {
        let now = Self.now()
        let needProbe = cond.withLock { !reachable }
        if needProbe {
            let wait = cond.withLock { probeNext - now }
            if wait > 0 { return .wait(wait) }
            setState("probing")
            do {
                try target.probe()
                // Undocked while probing: that answer confirms nothing about the next dock.
                guard cond.withLock({ () -> Bool in
                    if docked { reachable = true; probeFailures = 0 }
                    return docked
                }) else { return .worked }
                logger.notice("base station reachable: \(target.name)")
                _ = audit("base_station", ["target": target.name, "reachable": "true"], false)
            } catch {
                if error.kind == .cancelled { return .worked }
                let delay = cond.withLock { () -> Double in
                    probeFailures += 1
                    let d = backoff(probeFailures)
                    probeNext = Self.now() + d
                    return d
                }
                noteFailure("base station \(target.name): \(error)", item: nil)
                setState("unreachable")
                return .wait(delay)
            }
        }
        let items = refreshCounts()
        sweepRetention()
        let ready = cond.withLock { () -> OffloadItem? in
            items.first { failures[$0.name].map { $0.next <= now } ?? true }
        }
        guard let item = ready else {
            if items.isEmpty {
                setState(cond.withLock { blocked.isEmpty } ? "idle" : "blocked")
                return .wait(2)
            }
            setState("waiting")
            // Only the items still queued count: a failure noted for a clip that has gone since
            // (deleted after all, or removed by hand) must not make this a 20-per-second rescan.
            let next = cond.withLock {
                failures = failures.filter { name, _ in items.contains { $0.name == name } }
                return items.compactMap { failures[$0.name]?.next }.min() ?? now + 1
            }
            return .wait(max(0.05, next - now))
        }
        send(item)
        return .worked
    }

    private func setState(_ s: String) {
        let changed = cond.withLock { () -> Bool in
            defer { state = s }
            return state != s
        }
        if changed { updateLED() }
    }

    private func updateLED() {
        let pattern: LEDPattern = cond.withLock {
            if !docked { return .off }
            switch state {
            case "uploading": return .blink(onMilliseconds: 250, offMilliseconds: 250)
            case "unreachable", "waiting", "blocked": return .blink(onMilliseconds: 100, offMilliseconds: 900)
            default: return .on
            }
        }
        let changed = cond.withLock { () -> Bool in
            defer { led = pattern }
            return led != pattern
        }
        if changed { indicate(pattern) }
    }

    /// Exponential backoff with jitter: base·2^(n-1), capped, times a random 0.5–1.
    private func backoff(_ n: Int) -> Double {
        let raw = settings.retryBaseSeconds * pow(2, Double(min(n - 1, 30)))
        return min(settings.retryMaxSeconds, raw) * Double.random(in: 0.5...1)
    }

    private func noteFailure(_ message: String, item: String?) {
        logger.error("offload: \(message)")
        cond.withLock {
            lastError = message
            lastErrorAt = SystemClock.realtime()
        }
    }

    // MARK: - Items

    enum ItemKind { case clip, audit }

    struct OffloadItem {
        var kind: ItemKind
        var name: String
        var objects: [LocalObject]
        var bytes: Int64
        var priority: Bool
        var sortKey: String
    }

    /// Everything not yet offloaded, most urgent first: clips (with markers or detector triggers
    /// first, by `order`), then closed audit-log segments. Clips that cannot go (see
    /// `blockedClips`) are noted as it goes.
    func scan() -> [OffloadItem] {
        var clips: [OffloadItem] = []
        var stuck = Set<String>()
        let marks = Set(FileSystem.list(stateDirectory).filter { $0.hasSuffix(".verified") }.map { String($0.dropLast(9)) })
        // Clip ids have no dots: other files (an export's manifest, a temporary file) are not clips.
        let journals = Set(FileSystem.list(data.journal).compactMap { ClipID.of(fileName: $0, suffix: ".jsonl") })
        let clipNames = FileSystem.list(data.clips)
        let manifests = Set(clipNames.compactMap { ClipID.of(fileName: $0, suffix: ".json") })
        for id in manifests where !marks.contains(id) {
            // With its journal it is being closed, or it closed while the journal's removal was cut
            // short, which the next start tidies up (sending it before then could leave a journal
            // that a later start would take for an interrupted clip).
            if journals.contains(id) {
                stuck.insert(id)
                continue
            }
            switch clipItem(id) {
            case .ready(let item): clips.append(item)
            case .blocked: stuck.insert(id)
            }
        }
        stuck.formUnion(journals.subtracting(manifests))
        stuck.formUnion(Set(clipNames.compactMap(ClipID.of(mediaFile:))).subtracting(manifests).subtracting(journals).subtracting(marks))
        // Looked at again one by one, open state first: a clip that was being written, or closed
        // while the folders were listed, is not blocked.
        var reasons: [String: String] = [:]
        for id in stuck { reasons[id] = blockedReason(id) }
        noteBlocked(reasons)
        clips.sort { a, b in
            if settings.order == .priority && a.priority != b.priority { return a.priority }
            return a.sortKey < b.sortKey
        }
        var audits: [OffloadItem] = []
        let auditDir = data.root + "/audit"
        let segments = FileSystem.list(auditDir).filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }.sorted()
        // The newest segment is the one being written.
        for name in segments.dropLast() where !marks.contains("audit." + name) {
            let path = auditDir + "/" + name
            audits.append(OffloadItem(
                kind: .audit, name: "audit." + name,
                objects: [LocalObject(path: path, key: keyPrefix(deviceID) + "audit/" + name, contentType: "application/x-ndjson")],
                bytes: Int64(FileSystem.size(path) ?? 0), priority: false, sortKey: name))
        }
        return clips + audits
    }

    /// Why clip `id` cannot be offloaded, looked at afresh; nil when it can, or is being written.
    private func blockedReason(_ id: String) -> String? {
        // Open first: a clip opens (id, then media, then journal) and closes (manifest, journal
        // removed, then id) in an order that makes what follows true once this is false.
        if isOpen(id) { return nil }
        let hasJournal = FileSystem.exists(data.journal + "/" + id + ".jsonl")
        if FileSystem.exists(data.clips + "/" + id + ".json") {
            if hasJournal { return "its journal (journal/\(id).jsonl) was not removed when it closed; the next start of the recorder tidies it up" }
            if case .blocked(let reason) = clipItem(id) { return reason }
            return nil
        }
        if hasJournal {
            return "no manifest: its journal (journal/\(id).jsonl) waits for the repair at the next start, or that repair could not use it (see its log); footage and journal are kept"
        }
        if let media = [id + ".mp4.age", id + ".mp4"].first(where: { FileSystem.exists(data.clips + "/" + $0) }) {
            return "\(media) has neither a manifest nor a journal; it is kept on the device"
        }
        return nil
    }

    /// How many blocked clips `ctl status` lists by name (all are counted).
    static let blockedListed = 20

    /// Clips on the device that the queue cannot take, by id, with the reason, as of the last scan.
    func blockedClips() -> [String: String] { cond.withLock { blocked } }

    /// Records the blocked clips; each newly blocked one is logged and audited once per process.
    private func noteBlocked(_ stuck: [String: String]) {
        let fresh = cond.withLock { () -> [(String, String)] in
            blocked = stuck
            return stuck.filter { warned.insert($0.key).inserted }.sorted { $0.key < $1.key }
        }
        for (id, reason) in fresh {
            logger.error("offload: clip \(id) cannot be offloaded: \(reason)")
            _ = audit("offload_blocked", ["clip": id, "reason": reason], false)
        }
    }

    private func keyPrefix(_ device: String) -> String {
        (settings.prefix.isEmpty ? "" : settings.prefix + "/") + device + "/"
    }

    enum ClipScan {
        case ready(OffloadItem)
        case blocked(String)
    }

    /// The clip `id` as a queue item, or why it cannot be one. Its manifest must read, name this
    /// clip, and name a media file in the clips folder that is there.
    private func clipItem(_ id: String) -> ClipScan {
        let manifestPath = data.clips + "/" + id + ".json"
        guard let raw = try? FileSystem.readRegularFile(manifestPath, limit: Recovery.journalLimit),
            let m = try? JSONSerialization.jsonObject(with: raw) as? [String: Any]
        else {
            return .blocked("\(id).json is not a readable manifest; the clip's files are kept on the device")
        }
        guard m["clip_id"] as? String == id else {
            return .blocked("\(id).json describes clip \((m["clip_id"] as? String).map { "\"\($0)\"" } ?? "(none)"), not \(id); kept on the device")
        }
        guard let media = m["file"] as? String, Recovery.isFileName(media) else {
            return .blocked("\(id).json names no media file in the clips folder; kept on the device")
        }
        let mediaPath = data.clips + "/" + media
        guard FileSystem.exists(mediaPath) else {
            return .blocked("\(id).json names \(media), which is not there; the manifest is kept on the device")
        }
        let device = (m["device_id"] as? String).flatMap { ClipID.isValidDeviceID($0) ? $0 : nil } ?? deviceID
        let parts = id.split(separator: "-")
        var day = "unknown-date/"
        if parts.count >= 3 {
            let stamp = parts[parts.count - 2]
            if stamp.count == 16, stamp.hasSuffix("Z") {
                let s = Array(stamp)
                day = "\(String(s[0..<4]))/\(String(s[4..<6]))/\(String(s[6..<8]))/"
            }
        }
        let base = keyPrefix(device) + day
        var objects = [LocalObject(path: mediaPath, key: base + media, contentType: media.hasSuffix(".age") ? "application/octet-stream" : "video/mp4")]
        let tail = data.clips + "/" + id + ".tail.age"
        if FileSystem.exists(tail) {
            objects.append(LocalObject(path: tail, key: base + id + ".tail.age", contentType: "application/octet-stream"))
        }
        // A journal recovery found damaged (kept for inspection): it goes with the clip, so
        // whoever examines the clip has it without the camera.
        let damaged = data.journal + "/" + id + ".jsonl.damaged"
        if FileSystem.exists(damaged) {
            // The sealed tails recovery left beside it (sound and picture past what the journal
            // vouches for) go too, so nothing of the clip stays only on the camera.
            for name in journalTails(id) {
                objects.append(LocalObject(
                    path: data.journal + "/" + name, key: base + id + ".journal-" + name.dropFirst(id.count + 1),
                    contentType: "application/octet-stream"))
            }
            objects.append(LocalObject(path: damaged, key: base + id + ".journal-damaged.jsonl", contentType: "application/x-ndjson"))
        }
        // The manifest last: its presence on the store says the clip is complete there.
        objects.append(LocalObject(path: manifestPath, key: base + id + ".json", contentType: "application/json"))
        let markers = (m["markers"] as? [Any])?.count ?? 0
        let trigger = m["trigger"] as? String ?? ""
        let start = (m["start_unix"] as? Double) ?? 0
        let bytes = objects.reduce(Int64(0)) { $0 + Int64(FileSystem.size($1.path) ?? 0) }
        return .ready(OffloadItem(
            kind: .clip, name: id, objects: objects, bytes: bytes, priority: markers > 0 || trigger.hasPrefix("detector"),
            sortKey: String(format: "%017.3f", start) + id))
    }

    // MARK: - Sending

    private func send(_ item: OffloadItem) {
        setState("uploading")
        var receipts: [OffloadReceipt] = []
        let started = Self.now()
        cond.withLock {
            paceStart = started
            paceBytes = 0
        }
        for object in item.objects {
            let size = Int64(FileSystem.size(object.path) ?? 0)
            cond.withLock { current = (item.name, (object.path as NSString).lastPathComponent, 0, size) }
            let t0 = Self.now()
            do {
                let r = try target.send(object, progress: { [self] n in progressed(n) }, isCancelled: { [self] in isCancelled })
                receipts.append(r)
                let dt = max(Self.now() - t0, 1e-6)
                if r.sentBytes > 0 {
                    cond.withLock { rate = Double(r.sentBytes) / dt }
                }
                var details = ["item": item.name, "key": r.key, "size": "\(r.size)", "sha256": r.sha256,
                               "verified_by": r.verifiedBy, "sent_bytes": "\(r.sentBytes)"]
                if r.resumedParts > 0 { details["resumed_parts"] = "\(r.resumedParts)" }
                if r.alreadyPresent { details["already_present"] = "true" }
                _ = audit("uploaded", details, false)
            } catch {
                cond.withLock { current = nil }
                if error.kind == .cancelled {
                    logger.notice("offload of \(item.name) interrupted (undocked or stopping); it resumes at the next dock")
                    return
                }
                let (n, delay) = cond.withLock { () -> (Int, Double) in
                    let n = (failures[item.name]?.count ?? 0) + 1
                    let d = backoff(n)
                    failures[item.name] = (n, Self.now() + d, error.description)
                    if error.kind == .unavailable { reachable = false; probeNext = Self.now() + d; probeFailures += 1 }
                    return (n, d)
                }
                noteFailure("\(item.name): \(error) (attempt \(n); retrying in \(String(format: "%.1f", delay)) s)", item: item.name)
                _ = audit("offload_failed", ["item": item.name, "object": object.key, "error": error.description,
                                         "kind": "\(error.kind)", "attempt": "\(n)"], false)
                return
            }
        }
        cond.withLock { current = nil }
        let elapsed = Self.now() - started
        let total = receipts.reduce(Int64(0)) { $0 + $1.size }
        let sent = receipts.reduce(Int64(0)) { $0 + $1.sentBytes }
        logger.notice(
            "offloaded \(item.name): \(total) bytes verified (\(sent) sent in \(String(format: "%.3f", elapsed)) s, \(String(format: "%.1f", Double(sent) / max(elapsed, 1e-6) / 1e6)) MB/s) to \(target.name)")
        // On storage before anything is deleted or marked; if the audit log cannot take it, the
        // clip stays (verified again at the next attempt, nothing re-sent).
        let logged = audit("offload_verified", [
            "item": item.name, "objects": receipts.map(\.key).joined(separator: " "),
            "sha256": receipts.map(\.sha256).joined(separator: " "),
            "verified_by": receipts.map(\.verifiedBy).joined(separator: " "), "target": target.name,
        ], true)
        var done = logged
        if !logged {
            logger.error("offload: \(item.name) verified, but the audit log did not take it: kept on the device")
        } else {
            switch item.kind {
            case .audit:
                done = mark(item.name)
            case .clip:
                // Marked first, also when deleting at once: a delete cut short by a power cut is
                // then finished later (`finishMarkedDeletes`) instead of leaving a manifest
                // without media in the queue.
                // The mark also says whether a damaged journal went with it, so a later
                // retention delete takes that too (and only when it was sent).
                let sentDamaged = item.objects.contains { $0.path.hasSuffix(".jsonl.damaged") }
                done = mark(item.name, damagedJournalSent: sentDamaged)
                    && (settings.retention != .delete || delete(item, reason: "offloaded"))
            }
        }
        cond.withLock {
            if done {
                failures[item.name] = nil
                if item.kind == .audit { uploadedAudit += 1 } else { uploadedClips += 1 }
            } else {
                // Back off as after any failure, instead of verifying again in a tight loop.
                let n = (failures[item.name]?.count ?? 0) + 1
                failures[item.name] = (n, Self.now() + backoff(n), "local bookkeeping failed")
                lastError = "\(item.name): verified on \(target.name) but not recorded or deleted on the device"
                lastErrorAt = SystemClock.realtime()
            }
        }
        refreshCounts()
    }

    /// Called by the target after each piece; paces to `max_kbps` (interrupted by an undock).
    private func progressed(_ n: Int64) {
        cond.withLock {
            sentBytes += n
            if var c = current {
                c.sent += n
                current = c
            }
            paceBytes += n
        }
        guard settings.maxKbps > 0 else { return }
        let (start, bytes) = cond.withLock { (paceStart, paceBytes) }
        let due = start + Double(bytes) / (Double(settings.maxKbps) * 125)
        cond.withLock {
            let deadline = Int64(due * 1e9)
            while !stopping && docked && SystemClock.monotonic() < deadline {
                if !cond.wait(untilMonotonic: deadline) { break }
            }
        }
    }

    @discardableResult
    private func mark(_ name: String, damagedJournalSent: Bool = false) -> Bool {
        let extra = damagedJournalSent ? ",\"\(Self.damagedJournalSentKey)\":true" : ""
        let body = "{\"verified_utc\":\"\(UTCFormat.iso8601(SystemClock.realtime()))\",\"unix\":\(SystemClock.realtime())\(extra)}\n"
        do {
            try StateFile.write(Data(body.utf8), to: stateDirectory + "/" + name + ".verified")
            return true
        } catch {
            logger.error("offload: cannot record \(name) as offloaded: \(error); it will be verified again")
            return false
        }
    }

    /// The `.verified` mark's key saying the clip's damaged journal was sent with it.
    static let damagedJournalSentKey = "damaged_journal_sent"

    /// Deletes a verified clip's files in order (media, tail, manifest last: while the manifest is
    /// there the clip is still queued). Stops at the first file that will not go.
    private func delete(_ item: OffloadItem, reason: String) -> Bool {
        var removed: [String] = []
        var ok = true
        for object in item.objects {
            if unlink(object.path) == 0 {
                removed.append((object.path as NSString).lastPathComponent)
            } else if errno != ENOENT {
                logger.error("offload: cannot delete \(object.path): \(String(cString: strerror(errno)))")
                ok = false
                break
            }
        }
        FileSystem.syncDirectory(containing: data.clips + "/x")
        if removed.contains(where: { $0.hasSuffix(".jsonl.damaged") }) { FileSystem.syncDirectory(containing: data.journal + "/x") }
        if ok { StateFile.remove(stateDirectory + "/" + item.name + ".verified") }
        if ok { cond.withLock { deletedClips += 1 } }
        _ = audit(ok ? "deleted" : "delete_failed", ["clip": item.name, "files": removed.joined(separator: " "), "reason": reason], false)
        logger.info("\(ok ? "deleted" : "could not fully delete") \(item.name) from the device (\(reason))")
        return ok
    }

    /// Sealed tails of clip `id` still in the journal folder (`<id>.tail-<n>.age`), which recovery
    /// keeps there when the journal was damaged.
    private func journalTails(_ id: String) -> [String] {
        FileSystem.list(data.journal).filter { name in
            name.hasPrefix(id + ".tail-") && name.hasSuffix(".age")
        }
    }

    /// The files a verified clip still has on the device, in delete order (media, tail,
    /// manifest last), for deleting after its mark.
    private func verifiedLeftovers(_ id: String) -> OffloadItem? {
        // A damaged journal only when the mark says it went with the clip: one from before the
        // clip was sent (or before journals were sent with clips) is not known to be on the base
        // station.
        var paths = [id + ".mp4.age", id + ".mp4", id + ".tail.age"].map { data.clips + "/" + $0 }
        let markText = (try? String(contentsOfFile: stateDirectory + "/" + id + ".verified", encoding: .utf8)) ?? ""
        if markText.contains("\"\(Self.damagedJournalSentKey)\":true") {
            // Its tails were sent with it: they are older than the damaged journal (a finished
            // clip gets no new tail), so the scan that sent it listed them.
            paths += journalTails(id).map { data.journal + "/" + $0 }
            paths.append(data.journal + "/" + id + ".jsonl.damaged")
        }
        paths.append(data.clips + "/" + id + ".json")
        let objects = paths.filter { FileSystem.exists($0) }.map { LocalObject(path: $0, key: "", contentType: "") }
        guard !objects.isEmpty else { return nil }
        return OffloadItem(kind: .clip, name: id, objects: objects, bytes: 0, priority: false, sortKey: id)
    }

    /// Under `retention = "delete"`: clips marked verified whose files are still (partly) there.
    /// A delete was cut short (a power cut, a failed unlink), or they were kept under an earlier
    /// retention setting. Needs no base station: each was verified before it was marked.
    func finishMarkedDeletes() {
        guard settings.retention == .delete else { return }
        let now = Self.now()
        for name in FileSystem.list(stateDirectory) where name.hasSuffix(".verified") && !name.hasPrefix("audit.") {
            let id = String(name.dropLast(9))
            guard let item = verifiedLeftovers(id) else {
                StateFile.remove(stateDirectory + "/" + name)
                continue
            }
            // A file that will not go is tried again every ten minutes, not at every step (each
            // try is audited).
            let due = cond.withLock { () -> Bool in
                guard (deleteRetryAt[id] ?? 0) <= now else { return false }
                deleteRetryAt[id] = now + 600
                return true
            }
            if due, delete(item, reason: "verified earlier; delete finished") { cond.withLock { deleteRetryAt[id] = nil } }
        }
    }

    /// Retention for clips kept after their verified offload.
    private func sweepRetention() {
        guard settings.retention != .delete else {
            finishMarkedDeletes()
            return
        }
        var kept: [(id: String, unix: Double)] = []
        for name in FileSystem.list(stateDirectory) where name.hasSuffix(".verified") && !name.hasPrefix("audit.") {
            let id = String(name.dropLast(9))
            guard FileSystem.exists(data.clips + "/" + id + ".json") else {
                StateFile.remove(stateDirectory + "/" + name)
                continue
            }
            let text = (try? String(contentsOfFile: stateDirectory + "/" + name, encoding: .utf8)) ?? ""
            // No readable time, or one from an unset clock: keep (never delete on a guess).
            guard let unix = text.range(of: "\"unix\":").flatMap({ Double(text[$0.upperBound...].prefix { "0123456789.".contains($0) }) }),
                unix > 1_600_000_000
            else { continue }
            kept.append((id, unix))
        }
        kept.sort { $0.unix < $1.unix }
        for k in kept {
            let expired: Bool
            switch settings.retention {
            case .keepDays: expired = SystemClock.realtime() - k.unix >= settings.keepDays * 86_400
            case .untilSpaceNeeded: expired = (FileSystem.freeBytes(at: data.clips) ?? .max) < Int64(settings.keepFreeMiB) << 20
            case .delete: expired = true
            }
            guard expired, let item = verifiedLeftovers(k.id) else { continue }
            _ = delete(item, reason: settings.retention == .keepDays ? "retention: kept \(settings.keepDays) days" : "retention: space needed")
        }
    }

    /// Scans the queue and updates the pending counts; returns what it found.
    @discardableResult
    private func refreshCounts() -> [OffloadItem] {
        let items = scan()
        cond.withLock {
            countsDirty = false
            pendingClips = items.filter { $0.kind == .clip }.count
            pendingBytes = items.filter { $0.kind == .clip }.reduce(0) { $0 + $1.bytes }
            pendingAudit = items.filter { $0.kind == .audit }.count
        }
        return items
    }

    // MARK: - `bodycam offload`

    /// Sends everything pending now, on the calling thread. Returns the items left (each failed
    /// `attempts` times in a row).
    func drain(attempts: Int) -> [String] {
        cond.withLock { docked = true }
        target.resume()
        try? FileSystem.makeDirectory(stateDirectory)
        finishMarkedDeletes()
        while true {
            let items = scan()
            let left = cond.withLock { items.filter { (failures[$0.name]?.count ?? 0) < attempts } }
            if left.isEmpty || cond.withLock({ probeFailures >= attempts }) {
                return items.map(\.name)
            }
            switch step() {
            case .worked: continue
            case .wait(let s): usleep(useconds_t(min(s, 60) * 1e6))
            }
        }
    }
}

import BodycamAdapters
import BodycamCore
import BodycamEvidence
import Crypto
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Instructions for the writer thread, in the order they must happen on storage.
enum WriterCommand: @unchecked Sendable {
    case open(ClipOpening)
    case fragment(FragmentJob)
    case marker(clipID: String, ClipManifest.Marker)
    case mute(clipID: String, ClipManifest.Span)
    /// A stretch without picture (`video`) or without the sound captured (silence in its place, or
    /// none at the clip's end).
    case gap(clipID: String, video: Bool, ClipManifest.Span)
    case close(ClipClosing)
    case audit(AuditEvent)
    /// Runs once everything before it is done, told whether the last audit line is on storage.
    case barrier(@Sendable (Bool) -> Void)
}

/// Something for the audit log, stamped when it happened.
struct AuditEvent: Sendable {
    var event: String
    var details: [String: String]
    var monotonic: Int64
    var unixSeconds: Double
    var clockTrusted: Bool
}

struct ClipOpening: Sendable {
    var manifest: ClipManifest
    var initSegment: [UInt8]
    /// Where the media file goes (`.mp4`, or `.mp4.age` when sealed); the manifest goes beside
    /// it, the journal into the journal directory.
    var mediaPath: String
    var manifestPath: String
    var journalPath: String?
    /// Where to persist the next clip sequence number, so ids never repeat.
    var sequenceFile: String?
    var nextSequence: Int
}

/// One fragment to write: its header and the ring slices that follow it, in order.
struct FragmentJob: @unchecked Sendable {
    var clipID: String
    var sequenceNumber: Int
    var header: [UInt8]
    /// Bytes in the pre-event ring, pinned until `released` is called with this job.
    var slices: [UnsafeRawBufferPointer]
    var mediaTime: Double
    var duration: Double
    var videoFrames: Int
    var audioPackets: Int
    var videoEnd: Int
    var audioEnd: Int
    /// The clip's dropped frames up to the end of this fragment.
    var dropped = ClipManifest.DroppedFrames()
    /// Set on the clip's first fragment with audio: where the audio track starts.
    var audioStartsAt: Double?
}

struct ClipClosing: Sendable {
    var clipID: String
    var endReason: String
    var nextClip: String?
    var duration: Double
    var droppedFrames: ClipManifest.DroppedFrames
    var videoFrames: Int
    var audio: ClipManifest.AudioInfo?
    var audioGaps: [ClipManifest.Span]
    var videoGaps: [ClipManifest.Span]
    /// Markers and mute spans as the writer holds them, set by the writer when it finalises the
    /// clip from its journal: they include any whose journal line was refused.
    var markers: [ClipManifest.Marker]? = nil
    var muteSpans: [ClipManifest.Span]? = nil
}

/// Events the writer reports back to the recorder.
protocol ClipWriterDelegate: AnyObject, Sendable {
    /// A fragment is on storage (or failed); its ring entries may be released.
    func fragmentDone(_ job: FragmentJob, error: SystemError?)
    /// A clip's manifest is final.
    func clipClosed(_ manifest: ClipManifest, path: String)
    /// A clip whose writing failed has ended: finalised as recovery would after a power cut
    /// (`recovered`), or left for the next start (nil; the writer logs which). Either way the
    /// offload queue has news.
    func clipEndedEarly(_ clipID: String, recovered: Recovery.Recovered?)
    /// Closing a clip failed (finishing its media or writing its manifest) after every fragment
    /// was written, or its writing failed: told again at its close, if the recorder already
    /// heard from its fragment. `clipEndedEarly` follows.
    func clipNotFinalised(_ clipID: String, error: SystemError)
}

/// Writes clips on its own thread: media file (plain or sealed), signed journal, signed
/// manifest, and the audit log, each step synced, in the order the commands came.
///
/// Per fragment: its bytes go to the media file and are synced, then its journal entry
/// (chained, signed) is appended and synced. A power cut at any point leaves a media file whose
/// journaled fragments are whole; start-up recovery rolls anything after the last one back.
final class ClipWriter: @unchecked Sendable {
    private let queue = BlockingQueue<WriterCommand>(capacity: nil)
    private var thread: DedicatedThread?
    private let logger: Logger
    weak var delegate: (any ClipWriterDelegate)?
    /// Sync after every fragment (always, except benchmarks that ask not to).
    let syncEveryFragment: Bool
    private let identity: DeviceIdentity?
    private let audit: AuditLog?
    /// Seal clips to this age recipient; nil writes plain MP4.
    private let recipient: String?
    private var auditFailed = false
    /// Audit events not yet written (the disk was full), oldest first; retried before each new
    /// one, so the log keeps its order and loses nothing unless this backlog overflows.
    private var auditBacklog: [AuditEvent] = []
    private var auditOverflow = 0
    private static let auditBacklogLimit = 4096

    private final class OpenClip {
        var manifest: ClipManifest
        let sink: any ClipSink
        let manifestPath: String
        var journalFD: Int32?
        let journalPath: String?
        var chain: JournalChain?
        /// Entries journaled so far, and how many of them are fragments.
        var entryCount = 0
        var fragmentCount = 0
        /// The entries themselves, kept only when there is no journal file to read them back
        /// from (a long clip's would grow by a line a second).
        var entries: [JournalEntry] = []
        var plaintextOffset: Int
        var failed: SystemError?
        /// Bytes of whole lines in the journal file.
        var journalSize = 0
        /// The dropped-frame counts last journaled.
        var journaledDrops = ClipManifest.DroppedFrames()
        /// The journal ends in a torn line that could not be cut back: it takes no more lines.
        var journalBroken = false

        init(manifest: ClipManifest, sink: any ClipSink, manifestPath: String, journalFD: Int32?, journalPath: String?,
             chain: JournalChain?) {
            self.manifest = manifest
            self.sink = sink
            self.manifestPath = manifestPath
            self.journalFD = journalFD
            self.journalPath = journalPath
            self.chain = chain
            plaintextOffset = 0
        }
    }

    private var clips: [String: OpenClip] = [:]
    /// Clips whose files could not be created, with why (ENOSPC is low storage to the recorder,
    /// anything else a fault): their fragments are refused with it until their close.
    private var openFailures: [String: SystemError] = [:]
    /// Ids from the moment a clip's files are created until its close is done (whether or not it
    /// finalised): the offload queue reports any other journal as a clip it cannot take.
    private let openIDs = Mutex<Set<String>>([])

    /// Whether `id`'s files are being written (its journal is expected to be there).
    func isOpen(_ id: String) -> Bool { openIDs.withLock { $0.contains(id) } }

    init(logger: Logger, identity: DeviceIdentity? = nil, audit: AuditLog? = nil, recipient: String? = nil,
         syncEveryFragment: Bool = true) {
        self.logger = logger
        self.identity = identity
        self.audit = audit
        self.recipient = recipient
        self.syncEveryFragment = syncEveryFragment
    }

    func start() {
        thread = DedicatedThread(name: "bc-writer") { [self] in
            writerThread.store(UInt(pthread_self()), ordering: .relaxed)
            while let command = queue.pop() {
                perform(command)
                completed.add(1, ordering: .relaxed)
            }
            // Thread ids are reused once a thread is joined.
            writerThread.store(0, ordering: .relaxed)
        }
    }

    /// Queues a command; false once the writer has finished (the command is dropped).
    @discardableResult
    func submit(_ command: WriterCommand) -> Bool {
        // What the writer's own callbacks ask for (the audit line of a fault found while closing
        // a clip) is taken even while the queue drains at shutdown: it is done after the command
        // in hand, in order, and not under the recorder's lock the callback holds.
        queue.push(command, evenIfClosed: UInt(pthread_self()) == writerThread.load(ordering: .relaxed))
    }

    private let writerThread = Atomic<UInt>(0)

    /// Finishes every queued command, then stops the thread.
    func finish() {
        queue.close()
        thread?.join()
    }

    var backlog: Int { queue.depth }

    /// Commands performed so far (the watchdog's evidence that storage keeps up).
    let completed = Atomic<Int>(0)

    // MARK: - Commands

    private func perform(_ command: WriterCommand) {
        switch command {
        case .open(let o): open(o)
        case .fragment(let job): write(job)
        case .marker(let id, let marker):
            guard let clip = clips[id] else { return }
            clip.manifest.markers.append(marker)
            var e = JournalEntry(seq: 0, type: "marker", clipId: id, prev: "")
            e.marker = marker
            journalNote(clip, &e)
        case .mute(let id, let span):
            guard let clip = clips[id] else { return }
            ClipManifest.Span.toggle(&clip.manifest.muteSpans, with: span)
            var e = JournalEntry(seq: 0, type: "mute", clipId: id, prev: "")
            e.mute = clip.manifest.muteSpans.last
            journalNote(clip, &e)
        case .gap(let id, let video, let span):
            guard let clip = clips[id] else { return }
            var e = JournalEntry(seq: 0, type: video ? "video_gap" : "audio_gap", clipId: id, prev: "")
            e.gap = span
            journalNote(clip, &e)
        case .close(let c): close(c)
        case .audit(let a): writeAudit(a)
        case .barrier(let done): done(audit != nil && !auditFailed)
        }
    }

    private func writeAudit(_ a: AuditEvent) {
        guard let audit else { return }
        if auditBacklog.count >= Self.auditBacklogLimit {
            auditBacklog.removeFirst()
            auditOverflow += 1
        }
        auditBacklog.append(a)
        while let next = auditBacklog.first {
            do {
                if auditOverflow > 0 {
                    // Say what could not be kept before the first event after the gap.
                    try audit.append(
                        event: "fault", details: ["what": "audit", "lost_events": "\(auditOverflow)"],
                        monotonic: next.monotonic, unixSeconds: next.unixSeconds, clockTrusted: next.clockTrusted)
                    auditOverflow = 0
                }
                try audit.append(
                    event: next.event, details: next.details, monotonic: next.monotonic, unixSeconds: next.unixSeconds,
                    clockTrusted: next.clockTrusted)
                auditBacklog.removeFirst()
                if auditFailed { logger.notice("audit log written again") }
                auditFailed = false
            } catch {
                if error.lineWritten { auditBacklog.removeFirst() }
                // Said once per failure streak: a full disk would otherwise log every event.
                if !auditFailed { logger.error("audit log not written (kept in memory, retried): \(error)") }
                auditFailed = true
                return
            }
        }
    }

    private func open(_ o: ClipOpening) {
        var manifest = o.manifest
        openIDs.withLock { _ = $0.insert(manifest.clipId) }
        manifest.devicePublicKey = identity?.publicKey.string
        do {
            let sink: any ClipSink
            if let recipient {
                sink = try SealedSink(path: o.mediaPath, recipient: recipient, clipID: manifest.clipId,
                                      scratchDirectory: o.journalPath.map { ($0 as NSString).deletingLastPathComponent },
                                      sync: syncEveryFragment)
            } else {
                sink = try PlainSink(path: o.mediaPath, sync: syncEveryFragment)
            }
            manifest.sealed = sink.initialSealInfo
            var journalFD: Int32?
            if let jp = o.journalPath {
                journalFD = try Syscall.retrying("open", path: jp) {
                    Glibc.open(jp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o640)
                }
            }
            let clip = OpenClip(
                manifest: manifest, sink: sink, manifestPath: o.manifestPath, journalFD: journalFD,
                journalPath: o.journalPath, chain: identity.map { JournalChain(identity: $0) })
            clips[manifest.clipId] = clip
            var header = JournalEntry(seq: 0, type: "clip", clipId: manifest.clipId, prev: "")
            header.header = manifest
            try journal(clip, &header)
            // The init segment is the first thing in the file, journaled like a fragment.
            let commit = try withBytes(o.initSegment) { (b: UnsafeRawBufferPointer) throws(SystemError) in
                try sink.append([b])
            }
            let range = ClipManifest.ByteRange(
                offset: 0, size: o.initSegment.count, sha256: Hex.string(SHA256.hash(data: o.initSegment)))
            clip.manifest.initSegment = range
            clip.plaintextOffset = o.initSegment.count
            clip.manifest.sizeBytes = o.initSegment.count
            var initEntry = JournalEntry(seq: 0, type: "init", clipId: manifest.clipId, prev: "")
            initEntry.range = range
            initEntry.seal = commit
            do {
                try journal(clip, &initEntry)
            } catch {
                sink.rollBack()
                throw error
            }
            sink.committed()
            // The new names must survive a power cut too.
            FileSystem.syncDirectory(containing: o.mediaPath)
            if let jp = o.journalPath { FileSystem.syncDirectory(containing: jp) }
            if let sf = o.sequenceFile { try? FileSystem.writeAtomically(Data("\(o.nextSequence)\n".utf8), to: sf) }
            logger.info("clip \(manifest.clipId) opened", metadata: ["file": "\(o.mediaPath)"])
        } catch {
            let failure = error as? SystemError ?? SystemError(op: "open clip", errno: EIO, path: o.mediaPath)
            if let clip = clips[manifest.clipId] { clip.failed = failure } else { openFailures[manifest.clipId] = failure }
            logger.error("cannot open clip \(manifest.clipId): \(error)")
        }
    }

    private func write(_ job: FragmentJob) {
        guard let clip = clips[job.clipID], clip.failed == nil else {
            delegate?.fragmentDone(
                job, error: clips[job.clipID]?.failed ?? openFailures[job.clipID] ?? SystemError(op: "write", errno: EBADF))
            return
        }
        var sha = SHA256()
        let size = job.header.count + job.slices.reduce(0) { $0 + $1.count }
        do {
            let commit = try withBytes(job.header) { (header: UnsafeRawBufferPointer) throws(SystemError) -> SealCommit? in
                sha.update(bufferPointer: header)
                for s in job.slices { sha.update(bufferPointer: s) }
                return try clip.sink.append([header] + job.slices)
            }
            let fragment = ClipManifest.Fragment(
                index: job.sequenceNumber, offset: clip.plaintextOffset, size: size, sha256: Hex.string(sha.finalize()),
                mediaTime: job.mediaTime, duration: job.duration, videoFrames: job.videoFrames,
                audioPackets: job.audioPackets)
            clip.plaintextOffset += size
            clip.manifest.sizeBytes = clip.plaintextOffset
            clip.manifest.duration = job.mediaTime + job.duration
            var e = JournalEntry(seq: 0, type: "fragment", clipId: job.clipID, prev: "")
            e.fragment = fragment
            e.seal = commit
            if job.dropped != clip.journaledDrops { e.dropped = job.dropped }
            e.audioStartsAt = job.audioStartsAt
            try journal(clip, &e)
            clip.journaledDrops = job.dropped
            clip.sink.committed()
            delegate?.fragmentDone(job, error: nil)
        } catch {
            clip.failed = error
            logger.error("clip \(job.clipID): fragment \(job.sequenceNumber) not written: \(error)")
            clip.sink.rollBack()
            delegate?.fragmentDone(job, error: error)
        }
    }

    private func close(_ c: ClipClosing) {
        defer { openIDs.withLock { _ = $0.remove(c.clipID) } }
        openFailures.removeValue(forKey: c.clipID)
        guard let clip = clips.removeValue(forKey: c.clipID) else { return }
        if let failure = clip.failed {
            // Storage failed mid-clip: what is on storage is exactly what a power cut at that
            // moment would have left, and the journal says what it is. Finalise it the same way.
            // The recorder heard of it from the fragment that failed, unless it was a journal
            // line no fragment came after (told once: it ignores a clip it already faulted).
            delegate?.clipNotFinalised(c.clipID, error: failure)
            finaliseFromJournal(clip, c, failure: failure, what: "ended early")
            return
        }
        var m = clip.manifest
        m.interrupted = clip.failed != nil
        m.endReason = clip.failed != nil ? "error" : c.endReason
        m.nextClip = c.nextClip
        m.duration = max(m.duration, 0)
        m.droppedFrames = c.droppedFrames
        m.video?.frames = c.videoFrames
        m.audio = c.audio
        m.audioGaps = c.audioGaps
        m.videoGaps = c.videoGaps
        // As recovery lists them: over the clip (a mute toggled between the stop and the close,
        // while late sound or a lost camera is awaited, covers nothing in it).
        m.muteSpans = ClipManifest.Span.closed(m.muteSpans, duration: m.duration)
        var reported = false
        do {
            let sealed = try clip.sink.finish()
            m.sealed = sealed?.info
            // The media is final: a manifest that fails to write is tried once more (an error that
            // passes leaves the clip whole, not in the form a power cut leaves).
            let skeleton = m
            for attempt in 1... {
                do {
                    m = try writeManifest(skeleton, clip, sealed: sealed)
                    break
                } catch {
                    let failure = error as? SystemError ?? SystemError(op: "write manifest (\(error))", errno: EIO, path: clip.manifestPath)
                    if !reported {
                        reported = true
                        delegate?.clipNotFinalised(c.clipID, error: failure)
                    }
                    if attempt == 2 { throw failure }
                    logger.error("clip \(m.clipId): manifest not written (\(failure)); trying once more")
                }
            }
            if let jfd = clip.journalFD {
                Syscall.close(jfd)
                if let jp = clip.journalPath {
                    unlink(jp)
                    // Durable before the clip is queued: a journal that came back after a power
                    // cut, once the clip has been offloaded and deleted, would be "recovered"
                    // into a manifest without media.
                    FileSystem.syncDirectory(containing: jp)
                }
            }
            clip.sink.removeScratch()
            logger.info(
                "clip \(m.clipId) closed",
                metadata: [
                    "duration": "\(String(format: "%.2f", m.duration))s", "fragments": "\(clip.fragmentCount)",
                    "bytes": "\(m.sizeBytes)", "reason": "\(m.endReason)", "sealed": "\(m.sealed != nil)",
                ])
            delegate?.clipClosed(m, path: clip.manifestPath)
        } catch {
            // Finishing the media or writing the manifest failed (a card error, a full card).
            // Everything journaled is on storage: finalise from the journal as start-up recovery
            // would (the failure may have passed); if that fails too, the journal stays for the
            // next start. Either way the recorder is told: the operator sees a storage fault.
            let failure = error as? SystemError ?? SystemError(op: "finalise clip (\(error))", errno: EIO, path: clip.manifestPath)
            logger.error("clip \(m.clipId): not finalised: \(error)")
            if !reported { delegate?.clipNotFinalised(c.clipID, error: failure) }
            finaliseFromJournal(clip, c, failure: failure, what: "not finalised at its close")
        }
    }

    /// Writes the manifest of a clip whose media is final: `skeleton` completed with the
    /// fragments, journal and seal chunks, signed. Returns what was written.
    private func writeManifest(_ skeleton: ClipManifest, _ clip: OpenClip, sealed: (info: SealInfo, chunks: ChunkDigests)?) throws -> ClipManifest {
        var m = skeleton
        if clip.journalFD != nil, let jp = clip.journalPath {
            // The fragment list and the journal come from the journal file, an entry at a
            // time, and the chunk hashes from their raw bytes: memory does not grow with the
            // clip's length.
            let decoder = Canonical.decoder()
            try FileSystem.writeAtomically(to: clip.manifestPath) { emit in
                m = try ManifestStream.write(
                    skeleton, identity: identity, fragmentCount: clip.fragmentCount, chunks: sealed?.chunks,
                    entries: { each in
                        try FileSystem.forEachLine(of: jp) { try each(try decoder.decode(JournalEntry.self, from: $0)) }
                    }, emit: emit)
            }
        } else {
            m.sealed?.chunks = sealed?.chunks.hexStrings ?? []
            m.journal = clip.entries
            m.fragments = clip.entries.compactMap(\.fragment)
            if let identity { try ManifestSeal.sign(&m, identity: identity) }
            try FileSystem.writeAtomically(Canonical.prettyBytes(m), to: clip.manifestPath)
        }
        return m
    }

    /// Finalises a clip whose writing or closing failed from its journal, as start-up recovery
    /// would after a power cut at that point (`Recovery`), with what only the recorder knows
    /// (every gap, even one the journal refused; the next clip).
    private func finaliseFromJournal(_ clip: OpenClip, _ c: ClipClosing, failure: SystemError, what: String) {
        if let jfd = clip.journalFD { Syscall.close(jfd) }
        // Recovery works on the clips folder's layout (`<id>.json` beside the media); `encode`
        // writes a sidecar manifest of another name, which it would not find.
        let inClipsFolder = (clip.manifestPath as NSString).lastPathComponent == c.clipID + ".json"
        var recovered: Recovery.Recovered?
        // The operator's markers and mutes as pressed: a line the journal refused is not lost.
        var known = c
        known.markers = clip.manifest.markers
        known.muteSpans = clip.manifest.muteSpans
        if !inClipsFolder {
            logger.critical("clip \(c.clipID) \(what) (\(failure)): \(clip.manifestPath) not written")
        } else if let jp = clip.journalPath,
            let r = Recovery.recover(
                journal: jp, clips: (clip.manifestPath as NSString).deletingLastPathComponent, identity: identity,
                reason: failure.isNoSpace ? "storage" : "error", closing: known, logger: logger), !r.leftoverOnly
        {
            logger.error("clip \(c.clipID) \(what): \(failure); finalised from its journal")
            recovered = r
            recovered?.cause = "\(what): \(failure.isNoSpace ? "storage full" : "storage fault"): \(failure)"
        } else {
            logger.critical("clip \(c.clipID) \(what) (\(failure)) and could not be finalised; its files stay for the next start")
        }
        // No longer open before the queue looks: it is then ready to send, or reported as
        // blocked, rather than passed over as a clip still being written.
        openIDs.withLock { _ = $0.remove(c.clipID) }
        delegate?.clipEndedEarly(c.clipID, recovered: recovered)
    }

    /// Signs the entry into the chain and appends it to the journal file, synced. On failure the
    /// journal is cut back to its last whole line and the chain is not advanced, so the journal
    /// still describes exactly what is committed; the caller decides what the failure means (if
    /// it cannot be cut back, the clip has failed whatever the caller decides).
    private func journal(_ clip: OpenClip, _ entry: inout JournalEntry) throws(SystemError) {
        if clip.journalBroken {
            throw SystemError(op: "journal (it ends in a torn line)", errno: EIO, path: clip.journalPath)
        }
        var line: Data
        var chain = clip.chain
        do {
            if chain != nil {
                line = try chain!.sign(&entry)
            } else {
                entry.seq = clip.entryCount
                line = try Canonical.bytes(entry)
            }
        } catch {
            throw SystemError(op: "journal entry (\(error))", errno: EINVAL, path: clip.journalPath)
        }
        if let fd = clip.journalFD {
            line.append(0x0a)
            do {
                try withBytes(line) { (b: UnsafeRawBufferPointer) throws(SystemError) in
                    try Syscall.writeAll(fd, b, path: clip.journalPath)
                }
                if syncEveryFragment { try Syscall.retrying("fdatasync", path: clip.journalPath) { fdatasync(fd) } }
            } catch {
                if ftruncate(fd, off_t(clip.journalSize)) != 0 {
                    let cutError = errno
                    // The journal ends in a torn line now, and a next line would follow it on
                    // the same line: it can take no more. The clip ends here, like a clip whose
                    // fragment could not be written, and recovery keeps everything before it.
                    logger.error("clip \(clip.manifest.clipId): journal cannot be cut back (errno \(cutError))")
                    if clip.failed == nil { clip.failed = error }
                    clip.journalBroken = true
                }
                throw error
            }
            clip.journalSize += line.count
        }
        clip.chain = chain
        clip.entryCount += 1
        if entry.fragment != nil { clip.fragmentCount += 1 }
        if clip.journalFD == nil { clip.entries.append(entry) }
    }

    /// A marker or mute line: the finished manifest has it regardless; if the journal cannot
    /// take it, only a recovery after a power cut would miss it.
    private func journalNote(_ clip: OpenClip, _ entry: inout JournalEntry) {
        do {
            try journal(clip, &entry)
        } catch {
            logger.error("clip \(clip.manifest.clipId): journal line (\(entry.type)) not written: \(error)")
        }
    }
}

import BodycamAdapters
import BodycamCore
import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Instructions for the writer thread, in the order they must happen on storage.
enum WriterCommand: @unchecked Sendable {
    case open(ClipOpening)
    case fragment(FragmentJob)
    case marker(clipID: String, ClipManifest.Marker)
    case mute(clipID: String, ClipManifest.Span)
    case close(ClipClosing)
}

struct ClipOpening: Sendable {
    var manifest: ClipManifest
    var initSegment: [UInt8]
    /// Where the media file goes; the manifest goes beside it, the journal into `journalDirectory`.
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
}

/// Events the writer reports back to the recorder.
protocol ClipWriterDelegate: AnyObject, Sendable {
    /// A fragment is on storage (or failed); its ring entries may be released.
    func fragmentDone(_ job: FragmentJob, error: SystemError?)
    /// A clip's manifest is final.
    func clipClosed(_ manifest: ClipManifest, path: String)
}

/// Writes clips on its own thread: media file, journal, manifest, each step synced.
///
/// Order on storage per fragment: the fragment's bytes are written and `fdatasync`ed, then its
/// journal line is appended and synced. A power cut at any point leaves a media file whose
/// journaled fragments are whole; start-up recovery cuts anything after the last of them.
final class ClipWriter: @unchecked Sendable {
    private let queue = BlockingQueue<WriterCommand>(capacity: nil)
    private var thread: DedicatedThread?
    private let logger: Logger
    weak var delegate: (any ClipWriterDelegate)?
    /// Sync after every fragment (always, except benchmarks that ask not to).
    let syncEveryFragment: Bool

    private final class OpenClip {
        var manifest: ClipManifest
        let fd: Int32
        let mediaPath: String
        let manifestPath: String
        var journalFD: Int32?
        let journalPath: String?
        var offset: Int
        var failed: SystemError?

        init(manifest: ClipManifest, fd: Int32, mediaPath: String, manifestPath: String, journalFD: Int32?,
             journalPath: String?, offset: Int) {
            self.manifest = manifest
            self.fd = fd
            self.mediaPath = mediaPath
            self.manifestPath = manifestPath
            self.journalFD = journalFD
            self.journalPath = journalPath
            self.offset = offset
        }
    }

    private var clips: [String: OpenClip] = [:]

    init(logger: Logger, syncEveryFragment: Bool = true) {
        self.logger = logger
        self.syncEveryFragment = syncEveryFragment
    }

    func start() {
        thread = DedicatedThread(name: "bc-writer") { [self] in
            while let command = queue.pop() { perform(command) }
        }
    }

    func submit(_ command: WriterCommand) { queue.push(command) }

    /// Finishes every queued command, then stops the thread.
    func finish() {
        queue.close()
        thread?.join()
    }

    var backlog: Int { queue.depth }

    // MARK: - Commands

    private func perform(_ command: WriterCommand) {
        switch command {
        case .open(let o): open(o)
        case .fragment(let job): write(job)
        case .marker(let id, let marker):
            guard let clip = clips[id] else { return }
            clip.manifest.markers.append(marker)
            journal(clip, JournalRecord(marker: marker))
        case .mute(let id, let span):
            guard let clip = clips[id] else { return }
            if let last = clip.manifest.muteSpans.last, last.end == nil, span.end != nil {
                clip.manifest.muteSpans[clip.manifest.muteSpans.count - 1].end = span.end
            } else {
                clip.manifest.muteSpans.append(span)
            }
            journal(clip, JournalRecord(mute: clip.manifest.muteSpans.last!))
        case .close(let c): close(c)
        }
    }

    private func open(_ o: ClipOpening) {
        var manifest = o.manifest
        do {
            let fd = try Syscall.retrying("open", path: o.mediaPath) {
                Glibc.open(o.mediaPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            }
            try withBytes(o.initSegment) { (b: UnsafeRawBufferPointer) throws(SystemError) in try Syscall.writeAll(fd, b, path: o.mediaPath) }
            if syncEveryFragment { try Syscall.retrying("fdatasync", path: o.mediaPath) { fdatasync(fd) } }
            manifest.initSegment = ClipManifest.ByteRange(
                offset: 0, size: o.initSegment.count, sha256: Self.hex(SHA256.hash(data: o.initSegment)))
            manifest.sizeBytes = o.initSegment.count
            var journalFD: Int32?
            if let jp = o.journalPath {
                journalFD = try Syscall.retrying("open", path: jp) {
                    Glibc.open(jp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0o640)
                }
            }
            let clip = OpenClip(
                manifest: manifest, fd: fd, mediaPath: o.mediaPath, manifestPath: o.manifestPath,
                journalFD: journalFD, journalPath: o.journalPath, offset: o.initSegment.count)
            clips[manifest.clipId] = clip
            journal(clip, JournalRecord(header: manifest))
            // The new names must survive a power cut too.
            FileSystem.syncDirectory(containing: o.mediaPath)
            if let jp = o.journalPath { FileSystem.syncDirectory(containing: jp) }
            if let sf = o.sequenceFile { try? FileSystem.writeAtomically(Data("\(o.nextSequence)\n".utf8), to: sf) }
            logger.info("clip \(manifest.clipId) opened", metadata: ["file": "\(o.mediaPath)"])
        } catch {
            logger.error("cannot open clip \(manifest.clipId): \(error)")
        }
    }

    private func write(_ job: FragmentJob) {
        guard let clip = clips[job.clipID], clip.failed == nil else {
            delegate?.fragmentDone(job, error: clips[job.clipID]?.failed)
            return
        }
        var sha = SHA256()
        let size = job.header.count + job.slices.reduce(0) { $0 + $1.count }
        do throws(SystemError) {
            try withBytes(job.header) { (header: UnsafeRawBufferPointer) throws(SystemError) in
                sha.update(bufferPointer: header)
                for s in job.slices { sha.update(bufferPointer: s) }
                try writeVector(fd: clip.fd, header: header, slices: job.slices, at: clip.offset, path: clip.mediaPath)
            }
            if syncEveryFragment {
                try Syscall.retrying("fdatasync", path: clip.mediaPath) { fdatasync(clip.fd) }
            }
            let fragment = ClipManifest.Fragment(
                index: job.sequenceNumber, offset: clip.offset, size: size, sha256: Self.hex(sha.finalize()),
                mediaTime: job.mediaTime, duration: job.duration, videoFrames: job.videoFrames,
                audioPackets: job.audioPackets)
            clip.offset += size
            clip.manifest.fragments.append(fragment)
            clip.manifest.sizeBytes = clip.offset
            clip.manifest.duration = job.mediaTime + job.duration
            journal(clip, JournalRecord(fragment: fragment))
            delegate?.fragmentDone(job, error: nil)
        } catch {
            clip.failed = error
            logger.error("clip \(job.clipID): fragment \(job.sequenceNumber) not written: \(error)")
            // Cut back to the last whole fragment so the file stays playable.
            _ = ftruncate(clip.fd, off_t(clip.offset))
            delegate?.fragmentDone(job, error: error)
        }
    }

    /// pwritev of the header and slices, resuming after short writes.
    private func writeVector(
        fd: Int32, header: UnsafeRawBufferPointer, slices: [UnsafeRawBufferPointer], at offset: Int, path: String
    ) throws(SystemError) {
        var iov = [iovec]()
        iov.reserveCapacity(slices.count + 1)
        iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: header.baseAddress), iov_len: header.count))
        for s in slices { iov.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: s.baseAddress), iov_len: s.count)) }
        var index = 0
        var position = offset
        let maxVectors = 1024  // IOV_MAX on Linux
        while index < iov.count {
            let n = try iov.withUnsafeBufferPointer { p throws(SystemError) -> Int in
                try Syscall.retrying("pwritev", path: path) {
                    pwritev(fd, p.baseAddress! + index, Int32(min(maxVectors, iov.count - index)), off_t(position))
                }
            }
            position += n
            var left = n
            while left > 0 && index < iov.count {
                if iov[index].iov_len <= left {
                    left -= iov[index].iov_len
                    index += 1
                } else {
                    iov[index].iov_base = iov[index].iov_base! + left
                    iov[index].iov_len -= left
                    left = 0
                }
            }
            while index < iov.count && iov[index].iov_len == 0 { index += 1 }
        }
    }

    private func close(_ c: ClipClosing) {
        guard let clip = clips.removeValue(forKey: c.clipID) else { return }
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
        for i in m.muteSpans.indices where m.muteSpans[i].end == nil { m.muteSpans[i].end = m.duration }
        if syncEveryFragment { _ = fsync(clip.fd) }
        Syscall.close(clip.fd)
        do {
            try FileSystem.writeAtomically(ManifestCoding.encode(m), to: clip.manifestPath)
            if let jfd = clip.journalFD {
                Syscall.close(jfd)
                if let jp = clip.journalPath { unlink(jp) }
            }
            logger.info(
                "clip \(m.clipId) closed",
                metadata: [
                    "duration": "\(String(format: "%.2f", m.duration))s", "fragments": "\(m.fragments.count)",
                    "bytes": "\(m.sizeBytes)", "reason": "\(m.endReason)",
                ])
            delegate?.clipClosed(m, path: clip.manifestPath)
        } catch {
            // The journal stays: start-up recovery will build the manifest from it.
            if let jfd = clip.journalFD { Syscall.close(jfd) }
            logger.error("clip \(m.clipId): manifest not written: \(error)")
        }
    }

    private func journal(_ clip: OpenClip, _ record: JournalRecord) {
        guard let fd = clip.journalFD else { return }
        do {
            var line = try ManifestCoding.encodeLine(record)
            line.append(0x0a)
            try withBytes(line) { (b: UnsafeRawBufferPointer) throws(SystemError) in try Syscall.writeAll(fd, b, path: clip.journalPath) }
            if syncEveryFragment { try Syscall.retrying("fdatasync", path: clip.journalPath) { fdatasync(fd) } }
        } catch {
            logger.error("clip \(clip.manifest.clipId): journal not written: \(error)")
        }
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in digest {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

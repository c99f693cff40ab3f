public import BodycamCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Frames from a raw video file (`encode --input`): tightly packed frames of one pixel format.
///
/// The file is memory-mapped and frames are lent in place, so reading costs no copy; frames are
/// delivered as fast as the pipeline takes them, stamped at their nominal times.
public final class RawFileCamera: VideoSource, @unchecked Sendable {
    public let format: VideoFormat
    public let path: String
    public let frameCount: Int
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int
    private var next = 0
    private let stopped = Atomic<Bool>(false)
    private let delivered = Atomic<UInt64>(0)

    public enum OpenError: Error, CustomStringConvertible {
        case system(SystemError)
        case notWholeFrames(path: String, bytes: Int, frameSize: Int)
        case empty(String)

        public var description: String {
            switch self {
            case .system(let e): return e.description
            case .notWholeFrames(let p, let b, let f):
                return "\(p): \(b) bytes is not a whole number of \(f)-byte frames (check --size and --pixel-format)"
            case .empty(let p): return "\(p): no frames"
            }
        }
    }

    public init(path: String, format: VideoFormat) throws(OpenError) {
        self.path = path
        self.format = format
        let fd: Int32
        do {
            fd = try Syscall.retrying("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw .system(error)
        }
        defer { Syscall.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .system(SystemError(op: "fstat", errno: errno, path: path)) }
        let size = Int(st.st_size)
        guard size > 0 else { throw .empty(path) }
        guard size % format.frameSize == 0 else {
            throw .notWholeFrames(path: path, bytes: size, frameSize: format.frameSize)
        }
        frameCount = size / format.frameSize
        // MAP_PRIVATE + PROT_WRITE lets later stages (the watermark) draw into a frame without
        // touching the file: pages are copied only where written.
        guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
            throw .system(SystemError(op: "mmap", errno: errno, path: path))
        }
        madvise(m, size, MADV_SEQUENTIAL)
        mapping = m
        mappedBytes = size
    }

    deinit {
        if let mapping { munmap(mapping, mappedBytes) }
    }

    /// Frames are views of the mapped file: as many as asked for.
    public var bufferCount: Int { Int.max }

    public var counters: CaptureCounters {
        var c = CaptureCounters()
        c.delivered = delivered.load(ordering: .relaxed)
        return c
    }

    public func nextFrame() throws -> RawFrame? {
        guard !stopped.load(ordering: .relaxed), next < frameCount, let mapping else { return nil }
        let k = next
        next += 1
        delivered.add(1, ordering: .relaxed)
        let time = MonotonicTime(nanoseconds: Int64(k) * format.frameRate.frameInterval)
        return RawFrame(
            format: format, base: mapping + k * format.frameSize, time: time, sequence: UInt64(k), bufferIndex: k)
    }

    public func release(_ frame: RawFrame) {
        // Frames come back in order. Pages of frames already encoded are unmapped in 8 MiB
        // steps, so a long file does not pile up in our memory, at one system call per step
        // rather than per frame (per-frame unmapping split the kernel's huge mappings and cost
        // 0.4 % of an encode). The page cache itself is the kernel's to manage.
        guard let mapping else { return }
        let end = (frame.bufferIndex + 1) * format.frameSize
        let upTo = end == mappedBytes ? end : end / Self.releaseStep * Self.releaseStep
        released.withLock { done in
            guard upTo > done else { return }
            madvise(mapping + done, upTo - done, MADV_DONTNEED)
            done = upTo
        }
    }

    private static let releaseStep = 8 << 20
    /// Bytes from the start of the mapping already handed back (a multiple of `releaseStep`,
    /// or the whole file).
    private let released = Mutex(0)

    public func stop() { stopped.store(true, ordering: .relaxed) }
}

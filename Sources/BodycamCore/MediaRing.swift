/// One encoded unit in a `MediaRing`: an H.264 access unit or an Opus packet.
public struct MediaEntry: Sendable, Equatable {
    /// Where its bytes start in the ring's storage.
    public var offset: Int
    public var length: Int
    /// CLOCK_MONOTONIC time of its first sample.
    public var time: MonotonicTime
    /// Presentation and decode time in the track's timescale, on the pipeline's running timeline.
    public var pts: Int64
    public var dts: Int64
    /// Ticks it lasts (audio: known when encoded; video: filled from the next frame's dts).
    public var duration: Int64
    /// A random-access point (IDR for video; every Opus packet is one).
    public var isSync: Bool

    public init(
        offset: Int = 0, length: Int, time: MonotonicTime, pts: Int64, dts: Int64, duration: Int64, isSync: Bool
    ) {
        self.offset = offset
        self.length = length
        self.time = time
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.isSync = isSync
    }
}

/// A fixed-size ring of encoded media: one allocation at start, none per frame.
///
/// Entries are numbered by a sequence number that only grows; the oldest live entry is `firstSeq`.
/// Each entry's bytes are contiguous (an entry that would straddle the end starts again at 0), so
/// the writer can hand them to `writev` and the hash without copying. Entries at or after
/// `pinnedSeq` are still owed to a clip and are never evicted; when they fill the ring, `append`
/// fails and the caller counts a dropped frame rather than losing what is already recorded.
///
/// Not thread-safe: the pipeline guards it with its lock. The bytes of pinned entries may be read
/// without the lock, because nothing overwrites them until they are unpinned.
public final class MediaRing: @unchecked Sendable {
    public let capacity: Int
    public let maxEntries: Int
    private let storage: UnsafeMutableRawPointer
    private let entries: UnsafeMutableBufferPointer<MediaEntry>
    /// Sequence number of the oldest live entry.
    public private(set) var firstSeq = 0
    public private(set) var count = 0
    /// Byte offset just past the newest entry.
    private var tail = 0
    /// Entries with a sequence number at or above this may not be evicted.
    public var pinnedSeq: Int?

    public init(capacity: Int, maxEntries: Int) {
        precondition(capacity > 0 && maxEntries > 0)
        self.capacity = capacity
        self.maxEntries = maxEntries
        storage = .allocate(byteCount: capacity, alignment: 64)
        entries = .allocate(capacity: maxEntries)
        entries.initialize(repeating: MediaEntry(length: 0, time: .zero, pts: 0, dts: 0, duration: 0, isSync: false))
    }

    deinit {
        storage.deallocate()
        entries.deallocate()
    }

    /// One past the newest entry's sequence number.
    public var endSeq: Int { firstSeq + count }
    public var isEmpty: Bool { count == 0 }

    /// Bytes in use by live entries, including any gap left at the end by a wrap.
    public var usedBytes: Int {
        guard count > 0 else { return 0 }
        let head = entries[firstSeq % maxEntries].offset
        return tail > head ? tail - head : capacity - head + tail
    }

    public subscript(seq: Int) -> MediaEntry {
        get {
            precondition(seq >= firstSeq && seq < endSeq, "entry \(seq) is not in the ring")
            return entries[seq % maxEntries]
        }
        set {
            precondition(seq >= firstSeq && seq < endSeq, "entry \(seq) is not in the ring")
            entries[seq % maxEntries] = newValue
        }
    }

    /// The bytes of entry `seq`.
    public func bytes(_ seq: Int) -> UnsafeRawBufferPointer {
        let e = self[seq]
        return UnsafeRawBufferPointer(start: storage + e.offset, count: e.length)
    }

    /// Where `length` contiguous bytes fit without touching live entries, if anywhere.
    private func place(_ length: Int) -> Int? {
        guard length <= capacity else { return nil }
        guard count > 0 else { return 0 }
        if count == maxEntries { return nil }
        let head = entries[firstSeq % maxEntries].offset
        if tail > head {
            // Used [head, tail): room at the end, else wrap to the front.
            if capacity - tail >= length { return tail }
            if head >= length { return 0 }
            return nil
        }
        // Wrapped (or exactly full): used [head, capacity) ∪ [0, tail).
        return head - tail >= length ? tail : nil
    }

    /// Whether `length` bytes fit now without evicting anything.
    public func fits(_ length: Int) -> Bool { place(length) != nil }

    /// Appends an entry of `entry.length` bytes, filled by `fill`. Returns its sequence number,
    /// or nil when there is no room (nothing is evicted here: retention is the caller's policy).
    @discardableResult
    public func append(_ entry: MediaEntry, fill: (UnsafeMutableRawBufferPointer) -> Void) -> Int? {
        precondition(entry.length > 0, "an empty entry cannot be stored")
        guard let at = place(entry.length) else { return nil }
        fill(UnsafeMutableRawBufferPointer(start: storage + at, count: entry.length))
        var e = entry
        e.offset = at
        if count == 0 { firstSeq = endSeq }
        entries[(firstSeq + count) % maxEntries] = e
        count += 1
        tail = at + entry.length
        return firstSeq + count - 1
    }

    /// Removes the oldest entry unless it is pinned. Returns whether one was removed.
    @discardableResult
    public func dropOldest() -> Bool {
        guard count > 0 else { return false }
        if let p = pinnedSeq, firstSeq >= p { return false }
        firstSeq += 1
        count -= 1
        if count == 0 { tail = 0 }
        return true
    }

    /// Sequence numbers of sync entries from `from` on, oldest first.
    public func syncSeqs(from: Int? = nil) -> [Int] {
        var out: [Int] = []
        var s = max(from ?? firstSeq, firstSeq)
        while s < endSeq {
            if entries[s % maxEntries].isSync { out.append(s) }
            s += 1
        }
        return out
    }

    /// The first sync entry at or after `seq`, if any.
    public func nextSync(atOrAfter seq: Int) -> Int? {
        var s = max(seq, firstSeq)
        while s < endSeq {
            if entries[s % maxEntries].isSync { return s }
            s += 1
        }
        return nil
    }
}

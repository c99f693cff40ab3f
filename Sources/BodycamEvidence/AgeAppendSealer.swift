/// One write the caller performs, in order: `bytes` at `offset` of the sealed file (pwrite).
public struct AgeWrite: Sendable, Equatable {
    public var offset: Int
    public var bytes: [UInt8]

    public init(offset: Int, bytes: [UInt8]) {
        self.offset = offset
        self.bytes = bytes
    }
}

/// Plans the writes that keep an append-only file sealed with age as it grows: after the writes of each
/// `append`, the file is a complete age file whose plaintext is everything appended so far — except when
/// that would reuse a nonce (see `AgeStreamWriter`), in which case the newest bytes stay pending in memory
/// until a later append fills the current chunk.
///
/// A value type that returns actions: the caller performs the writes (and the fsync) in the order given.
/// Full chunks come first and the final chunk last, so a crash in the middle of one step damages at most
/// the chunks of that step; `AgeStreamReader(allowTruncated: true)` recovers everything before them.
///
/// When a step leaves bytes pending (`pendingLength > 0`, only when an append adds less than the room
/// left in the current chunk), the caller may append at least `minimumPaddingToSeal` bytes of padding
/// that its format ignores (an MP4 `free` box, whose header needs 8) to push the stream into a fresh
/// chunk; `finish()` insists on it.
public struct AgeAppendSealer: Sendable {
    /// The writer whose chunk sequence this sealer owns; seal nothing through it directly.
    public let writer: AgeStreamWriter

    /// Plaintext of chunk `writer.sealedNonFinalChunks` not yet sealed as non-final (at most 64 KiB
    /// after every append).
    private var tail: [UInt8] = []
    /// Length of the tail as last sealed final at its index; nil if none was sealed there.
    private var sealedTailLength: Int?

    /// Every plaintext byte handed to `append`.
    public private(set) var appendedLength = 0

    /// Starts with a fresh writer sealed to `recipient`.
    public init(recipient: AgeRecipient) throws(AgeError) {
        self.init(writer: try AgeStreamWriter(recipient: recipient))
    }

    /// Takes over a writer that has sealed nothing yet.
    public init(writer: AgeStreamWriter) {
        precondition(writer.sealedNonFinalChunks == 0, "the sealer must own the writer's chunks from the start")
        self.writer = writer
    }

    /// The header write. Perform it together with the first `append`: an age file with no chunk is not
    /// valid, and sealing an empty final chunk now would spend chunk 0's final nonce on nothing.
    public var headerWrite: AgeWrite { AgeWrite(offset: 0, bytes: writer.headerBytes) }

    /// Plaintext bytes the file holds once the writes returned so far are done.
    public var sealedLength: Int {
        writer.sealedNonFinalChunks * AgePayload.chunkSize + (sealedTailLength ?? 0)
    }

    /// Appended bytes not yet sealed on disk (they would reuse a nonce; see the type's documentation).
    public var pendingLength: Int { appendedLength - sealedLength }

    /// The fewest bytes to append so that everything pending gets sealed: enough to overflow the current
    /// chunk by one byte. 0 when nothing is pending.
    public var minimumPaddingToSeal: Int {
        pendingLength == 0 ? 0 : AgePayload.chunkSize + 1 - tail.count
    }

    /// The length of the file once the writes returned so far are done.
    public var fileLength: Int {
        let committed = writer.chunkOffset(writer.sealedNonFinalChunks)
        return committed + (sealedTailLength.map { $0 + AgePayload.tagSize } ?? 0)
    }

    /// Appends plaintext and returns the writes that seal it: each chunk that filled up (as non-final),
    /// then the new tail as the final chunk.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> [AgeWrite] {
        tail += bytes
        appendedLength += bytes.count
        var writes: [AgeWrite] = []
        // A chunk becomes non-final only once a byte exists beyond it: the final chunk may be full but
        // must not be empty.
        var start = 0
        while tail.count - start > AgePayload.chunkSize {
            let index = writer.sealedNonFinalChunks
            let sealed = try tail[start..<(start + AgePayload.chunkSize)].withAgeBytes {
                (chunk) throws(AgeError) in try writer.sealChunk(index: index, plaintext: chunk, last: false)
            }
            writes.append(AgeWrite(offset: writer.chunkOffset(index), bytes: sealed))
            start += AgePayload.chunkSize
            sealedTailLength = nil
        }
        tail.removeFirst(start)
        if let final = try sealTail() { writes.append(final) }
        return writes
    }

    /// `append` for an array.
    public mutating func append(_ bytes: [UInt8]) throws(AgeError) -> [AgeWrite] {
        try bytes.withAgeBytes { (buffer) throws(AgeError) in try append(buffer) }
    }

    /// Seals the tail as the final chunk unless that chunk's final nonce was spent on other plaintext.
    private mutating func sealTail() throws(AgeError) -> AgeWrite? {
        // If a final chunk was sealed at this index, either it holds the whole tail already (same length
        // means same bytes: the stream only grows) or the rest must stay pending.
        guard !tail.isEmpty, sealedTailLength == nil else { return nil }
        let index = writer.sealedNonFinalChunks
        let bytes = try writer.sealChunk(index: index, plaintext: tail, last: true)
        sealedTailLength = tail.count
        return AgeWrite(offset: writer.chunkOffset(index), bytes: bytes)
    }

    /// Completes the file and erases the writer's key.
    ///
    /// Returns the single empty chunk of an empty payload when nothing was appended, otherwise no write.
    /// - Throws: `AgeError.pendingPlaintext` when bytes are pending: append `minimumPadding` bytes of
    ///   padding, perform the writes, and finish again.
    public mutating func finish() throws(AgeError) -> [AgeWrite] {
        var writes: [AgeWrite] = []
        if appendedLength == 0 && sealedTailLength == nil {
            let bytes = try writer.sealChunk(index: 0, plaintext: [], last: true)
            sealedTailLength = 0
            writes.append(AgeWrite(offset: writer.chunkOffset(0), bytes: bytes))
        }
        guard pendingLength == 0 else {
            throw .pendingPlaintext(bytes: pendingLength, minimumPadding: minimumPaddingToSeal)
        }
        writer.zeroizeKeys()
        return writes
    }
}

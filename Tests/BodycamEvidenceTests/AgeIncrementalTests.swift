import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

/// Sealing the way the recorder does: after every fragment, pwrite the chunks that filled up and the
/// tail as a provisional final chunk, so the file on disk is a complete age file after every step.
@Suite struct AgeIncrementalTests {
    /// Fragment sizes: random 1 B … 200 KB, plus sizes that land exactly on chunk boundaries and tiny
    /// fragments that cannot fill the current chunk (the case that would need nonce reuse).
    static func fragmentSizes(seed: UInt64) -> [Int] {
        var random = SeededBytes(state: seed)
        var sizes = (0..<22).map { _ in random.int(in: 1...200_000) }
        sizes.insert(65_536 - sizes[0] % 65_536, at: 1)  // total becomes a multiple of 64 KiB
        sizes.insert(65_536, at: 2)  // and stays one: the final chunk is full
        sizes.insert(1, at: 3)  // one byte after a full final chunk
        sizes.insert(1, at: 4)  // and one more: cannot grow the final chunk in place
        sizes += [3, 70_000, 10, 65_536, 2]
        return sizes
    }

    struct Run {
        var identity: AgeIdentity
        var plaintext: [UInt8]
        var file: [UInt8]
    }

    /// Records a clip; `pad` decides whether pending bytes get padding (as an MP4 `free` box would).
    /// Checks with `age -d` after every step.
    static func record(pad: Bool, seed: UInt64, scratch: borrowing AgeScratch) throws -> Run {
        let identity = AgeIdentity.generate()
        try identity.writeFile(atPath: scratch.file("agency.key"))
        var sealer = try AgeAppendSealer(recipient: identity.recipient)
        let file = try PositionalFile(path: scratch.file("clip.mp4.age"))
        var random = SeededBytes(state: seed ^ 0xabc)
        var plaintext: [UInt8] = []
        var first = true
        var steps = 0
        for size in fragmentSizes(seed: seed) {
            let fragment = random.bytes(size)
            plaintext += fragment
            var writes = try sealer.append(fragment)
            if first {
                writes.insert(sealer.headerWrite, at: 0)
                first = false
            }
            if pad && sealer.pendingLength > 0 {
                let padding = [UInt8](repeating: 0, count: max(8, sealer.minimumPaddingToSeal))
                plaintext += padding
                writes += try sealer.append(padding)
                #expect(sealer.pendingLength == 0)
            }
            for write in writes { try file.write(write) }
            steps += 1
            #expect(try file.size() == sealer.fileLength)
            #expect(sealer.pendingLength < AgePayload.chunkSize)
            let onDisk = Array(plaintext.prefix(sealer.sealedLength))
            if pad { #expect(onDisk == plaintext) }
            var failure = ""
            let opened = try ageDecrypt(file.path, identityFile: scratch.file("agency.key"), failure: &failure)
            #expect(opened == onDisk, "step \(steps): age -d: \(failure)")
            if opened != onDisk { break }
        }
        if !pad && sealer.pendingLength > 0 {
            let pending = sealer.pendingLength
            #expect(throws: AgeError.pendingPlaintext(bytes: pending, minimumPadding: sealer.minimumPaddingToSeal)) {
                _ = try sealer.finish()
            }
            let padding = [UInt8](repeating: 0, count: sealer.minimumPaddingToSeal)
            plaintext += padding
            for write in try sealer.append(padding) { try file.write(write) }
        }
        #expect(try sealer.finish().isEmpty)
        #expect(throws: AgeError.keysErased) { try sealer.writer.sealChunk(index: 0, plaintext: [1], last: true) }
        var failure = ""
        #expect(try ageDecrypt(file.path, identityFile: scratch.file("agency.key"), failure: &failure) == plaintext)
        let reader = try AgeStreamReader(path: file.path, identities: [identity])
        #expect(try reader.decryptAll().plaintext == plaintext)
        return Run(identity: identity, plaintext: plaintext, file: try readFile(file.path))
    }

    @Test func paddedWhenNeededEveryStepHoldsEverything() throws {
        let scratch = try AgeScratch()
        let run = try Self.record(pad: true, seed: 1, scratch: scratch)
        try Self.checkTruncations(of: run.file, plaintext: run.plaintext, identity: run.identity)
    }

    @Test func unpaddedStepsHoldAllButLessThanOneChunk() throws {
        let scratch = try AgeScratch()
        _ = try Self.record(pad: false, seed: 2, scratch: scratch)
    }

    @Test func emptyClipIsAValidEmptyFile() throws {
        let scratch = try AgeScratch()
        let identity = AgeIdentity.generate()
        try identity.writeFile(atPath: scratch.file("k"))
        var sealer = try AgeAppendSealer(recipient: identity.recipient)
        let file = try PositionalFile(path: scratch.file("e.age"))
        try file.write(sealer.headerWrite)
        for write in try sealer.finish() { try file.write(write) }
        var failure = ""
        #expect(try ageDecrypt(file.path, identityFile: scratch.file("k"), failure: &failure) == [], "\(failure)")
    }

    /// Cuts `file` at chunk boundaries, just after them, inside chunks and just before the end; each cut
    /// must give back exactly the complete chunks before it.
    static func checkTruncations(of file: [UInt8], plaintext: [UInt8], identity: AgeIdentity) throws {
        let payload = try AgeStreamReader(bytes: file, identities: [identity]).payloadOffset
        let full = AgePayload.sealedChunkSize
        let chunkCount = (file.count - payload + full - 1) / full
        var cuts: [(cut: Int, chunks: Int)] = [
            (payload, 0), (payload + 1, 0), (payload + 16, 0), (payload + full - 1, 0),
            (file.count - 1, chunkCount - 1),
        ]
        for k in [1, chunkCount / 2, chunkCount - 1] {
            cuts += [(payload + k * full, k), (payload + k * full + 17, k), (payload + k * full + 500, k)]
        }
        for (cut, chunks) in cuts where cut < file.count {
            let reader = try AgeStreamReader(bytes: Array(file.prefix(cut)), identities: [identity])
            let discarded = cut - payload - chunks * full
            let result = try reader.decryptAll(allowTruncated: true)
            #expect(result.plaintext == Array(plaintext.prefix(chunks * 65_536)), "cut at \(cut)")
            #expect(result.end == .truncated(chunk: chunks, discardedBytes: discarded), "cut at \(cut)")
            // Strict: a cut on a boundary or too short for any chunk is truncation; a longer torn piece
            // cannot be told from a damaged chunk.
            let tooShort = discarded < AgePayload.tagSize + (chunks == 0 ? 0 : 1)
            let strict = tooShort ? AgeError.truncated(chunk: chunks) : AgeError.badChunk(index: chunks)
            #expect(throws: strict, "cut at \(cut)") { try reader.decryptAll() }
        }
        #expect(try AgeStreamReader(bytes: file, identities: [identity]).decryptAll().plaintext == plaintext)
    }

    @Test func truncatedFilesYieldExactlyTheCompleteChunks() throws {
        let scratch = try AgeScratch()
        let identity = AgeIdentity.generate()
        var random = SeededBytes(state: 9)
        let plaintext = random.bytes(7 * 65_536 + 5000)
        let file = try AgeInteropTests.seal(plaintext, to: [identity.recipient])
        try Self.checkTruncations(of: file, plaintext: plaintext, identity: identity)
        let payload = try AgeStreamReader(bytes: file, identities: [identity]).payloadOffset
        let full = AgePayload.sealedChunkSize
        // The header alone, or part of the payload nonce: nothing to recover, and said so.
        #expect(throws: AgeError.truncated(chunk: 0)) {
            try AgeStreamReader(bytes: Array(file.prefix(payload - 1)), identities: [identity])
        }
        #expect(throws: AgeError.self) { try AgeStreamReader(bytes: Array(file.prefix(40)), identities: [identity]) }
        // Stock age refuses a cut file too.
        try writeFile(scratch.file("cut.age"), Array(file.prefix(payload + 3 * full)))
        try identity.writeFile(atPath: scratch.file("k"))
        var failure = ""
        #expect(try ageDecrypt(scratch.file("cut.age"), identityFile: scratch.file("k"), failure: &failure) == nil)
    }

    @Test func aCrashInsideAStepLosesOnlyThatStep() throws {
        // The recorder's step rewrites chunk c (provisional final → full non-final), then writes the new
        // final chunk. Power fails in between, or halfway through the first write.
        let identity = AgeIdentity.generate()
        var sealer = try AgeAppendSealer(recipient: identity.recipient)
        var random = SeededBytes(state: 5)
        var file: [UInt8] = []
        func apply(_ writes: [AgeWrite], to file: inout [UInt8], limit: Int = .max) {
            var budget = limit
            for w in writes where budget > 0 {
                let bytes = w.bytes.prefix(budget)
                budget -= bytes.count
                if file.count < w.offset + bytes.count {
                    file += [UInt8](repeating: 0, count: w.offset + bytes.count - file.count)
                }
                file.replaceSubrange(w.offset..<(w.offset + bytes.count), with: bytes)
            }
        }
        let first = random.bytes(100_000)  // chunk 0 full, chunk 1 provisional with 34_464 bytes
        apply([sealer.headerWrite] + (try sealer.append(first)), to: &file)
        let second = random.bytes(80_000)  // chunk 1 becomes full, chunk 2 provisional
        let step = try sealer.append(second)
        #expect(step.count == 2)

        var onlyFirstWrite = file
        apply(step, to: &onlyFirstWrite, limit: step[0].bytes.count)
        let a = try AgeStreamReader(bytes: onlyFirstWrite, identities: [identity]).decryptAll(allowTruncated: true)
        #expect(a.plaintext == Array((first + second).prefix(2 * 65_536)))
        #expect(a.end == .truncated(chunk: 2, discardedBytes: 0))

        var halfOfFirstWrite = file
        apply(step, to: &halfOfFirstWrite, limit: 40_000)
        let b = try AgeStreamReader(bytes: halfOfFirstWrite, identities: [identity]).decryptAll(allowTruncated: true)
        #expect(b.plaintext == Array(first.prefix(65_536)))
        #expect(b.end == .truncated(chunk: 1, discardedBytes: 40_000))
    }

    @Test func theWriterRefusesNonceReuseAndMisuse() throws {
        let identity = AgeIdentity.generate()
        let writer = try AgeStreamWriter(recipient: identity.recipient)
        let tail = [UInt8](repeating: 1, count: 1000)
        let provisional = try writer.sealChunk(index: 0, plaintext: tail, last: true)
        // Same plaintext, same nonce: identical output, so re-sealing it is harmless and allowed.
        #expect(try writer.sealChunk(index: 0, plaintext: tail, last: true) == provisional)
        // A grown provisional final chunk at the same index would reuse the nonce: refused.
        #expect(throws: AgeError.nonceReuse(chunk: 0)) {
            try writer.sealChunk(index: 0, plaintext: tail + [2], last: true)
        }
        #expect(throws: AgeError.shortNonFinalChunk(index: 0, size: 1001)) {
            try writer.sealChunk(index: 0, plaintext: tail + [2], last: false)
        }
        #expect(throws: AgeError.chunkTooLarge(index: 0, size: 65_537)) {
            try writer.sealChunk(index: 0, plaintext: [UInt8](repeating: 0, count: 65_537), last: true)
        }
        #expect(throws: AgeError.chunkOutOfOrder(index: 1, expected: 0)) {
            try writer.sealChunk(index: 1, plaintext: [UInt8](repeating: 0, count: 65_536), last: false)
        }
        // Becoming non-final uses the other nonce: fine. Then chunk 0 is done for good.
        let full = tail + [UInt8](repeating: 3, count: 65_536 - tail.count)
        _ = try writer.sealChunk(index: 0, plaintext: full, last: false)
        #expect(throws: AgeError.chunkOutOfOrder(index: 0, expected: 1)) {
            try writer.sealChunk(index: 0, plaintext: full, last: true)
        }
        #expect(throws: AgeError.emptyFinalChunk(index: 1)) {
            try writer.sealChunk(index: 1, plaintext: [], last: true)
        }
        _ = try writer.sealChunk(index: 1, plaintext: [9], last: true)
        writer.zeroizeKeys()
        #expect(throws: AgeError.keysErased) { try writer.sealChunk(index: 1, plaintext: [9], last: true) }
    }

    @Test func everyFileGetsItsOwnKeyAndNonce() throws {
        let recipient = AgeIdentity.generate().recipient
        let a = try AgeStreamWriter(recipient: recipient)
        let b = try AgeStreamWriter(recipient: recipient)
        #expect(a.headerBytes.suffix(16) != b.headerBytes.suffix(16))
        #expect(
            try a.sealChunk(index: 0, plaintext: [1, 2, 3], last: true)
                != b.sealChunk(index: 0, plaintext: [1, 2, 3], last: true))
    }
}

import Foundation
import Testing

@testable import BodycamEvidence

/// Wrong keys, altered headers, altered or reordered chunks, cut files: each is caught and named.
@Suite struct AgeTamperTests {
    let identity = AgeIdentity.generate()
    let plaintext: [UInt8]
    let file: [UInt8]
    let payloadOffset: Int

    init() throws {
        var random = SeededBytes(state: 42)
        plaintext = random.bytes(3 * 65_536 + 777)  // chunks 0, 1, 2 full; chunk 3 final and short
        file = try AgeInteropTests.seal(plaintext, to: [identity.recipient])
        payloadOffset = try AgeStreamReader(bytes: file, identities: [identity]).payloadOffset
    }

    func open(_ bytes: [UInt8], allowTruncated: Bool = false) throws(AgeError) -> AgeDecryption {
        try AgeStreamReader(bytes: bytes, identities: [identity]).decryptAll(allowTruncated: allowTruncated)
    }

    @Test func wrongIdentityMatchesNothing() throws {
        #expect(throws: AgeError.noMatchingIdentity) {
            try AgeStreamReader(bytes: file, identities: [AgeIdentity.generate(), AgeIdentity.generate()])
        }
        #expect(try open(file).plaintext == plaintext)
    }

    @Test func everyHeaderByteIsProtected() throws {
        // Any single flipped bit in the header or the payload nonce: the file never opens. Which error
        // depends on where the bit lands (grammar, the share, the wrapped key, the MAC).
        for offset in 0..<payloadOffset {
            for bit in [0, 5] {
                var bad = file
                bad[offset] ^= 1 << bit
                do {
                    let result = try open(bad)
                    // A flipped payload nonce gives another payload key: chunk 0 fails.
                    Issue.record("byte \(offset) bit \(bit) opened: \(result.end)")
                } catch {
                    // A nonce byte changes the payload key; the header bytes are covered by the header checks.
                    if offset >= payloadOffset - 16 { #expect(error == .badChunk(index: 0)) }
                }
            }
        }
    }

    @Test func alteredMACOrAddedStanzaIsABadHeaderMAC() throws {
        let text = Array(file.prefix(payloadOffset - 16))
        let macLine = text.lastIndex(of: UInt8(ascii: "-"))! + 2  // first MAC character
        var bad = file
        bad[macLine] = bad[macLine] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: AgeError.badHeaderMAC) { try open(bad) }
        // A well-formed stanza of an unknown type, slipped in before the MAC line: skipped by the identity,
        // but the MAC covers it.
        let dashes = text.indices.last { text[$0...].starts(with: Array("---".utf8)) }!
        let added = Array(file[..<dashes]) + Array("-> grease x y\nAAAA\n".utf8) + Array(file[dashes...])
        #expect(throws: AgeError.badHeaderMAC) { try open(added) }
    }

    @Test func flippedByteInAnyChunkNamesThatChunk() throws {
        let full = AgePayload.sealedChunkSize
        for chunk in 0..<4 {
            let start = payloadOffset + chunk * full
            let length = min(full, file.count - start)
            for offset in [start, start + length / 2, start + length - 1] {  // ciphertext … tag
                var bad = file
                bad[offset] ^= 0x40
                #expect(throws: AgeError.badChunk(index: chunk), "chunk \(chunk) byte \(offset)") { try open(bad) }
                // The chunks before it were authentic and delivered before the failure.
                var delivered: [UInt8] = []
                let reader = try AgeStreamReader(bytes: bad, identities: [identity])
                #expect(throws: AgeError.badChunk(index: chunk)) { try reader.decrypt { delivered += $0 } }
                #expect(delivered == Array(plaintext.prefix(chunk * 65_536)))
                // Damage followed by authentic chunks is not a torn end, even when cuts are allowed.
                if chunk < 3 {
                    #expect(throws: AgeError.badChunk(index: chunk)) { try open(bad, allowTruncated: true) }
                }
            }
        }
    }

    @Test func damageAtTheEndReadsAsATornEndWhenCutsAreAllowed() throws {
        var bad = file
        bad[bad.count - 1] ^= 1
        let result = try open(bad, allowTruncated: true)
        #expect(result.plaintext == Array(plaintext.prefix(3 * 65_536)))
        #expect(result.end == .truncated(chunk: 3, discardedBytes: 777 + 16))
    }

    @Test func swappedOrDroppedOrDuplicatedChunksAreDetected() throws {
        let full = AgePayload.sealedChunkSize
        func chunk(_ i: Int) -> ArraySlice<UInt8> {
            file[(payloadOffset + i * full)..<(payloadOffset + (i + 1) * full)]
        }
        let head = Array(file.prefix(payloadOffset))
        let last = Array(file[(payloadOffset + 3 * full)...])
        #expect(throws: AgeError.badChunk(index: 0)) { try open(head + chunk(1) + chunk(0) + chunk(2) + last) }
        #expect(throws: AgeError.badChunk(index: 1)) { try open(head + chunk(0) + chunk(2) + last) }
        #expect(throws: AgeError.badChunk(index: 2)) { try open(head + chunk(0) + chunk(1) + chunk(1) + last) }
        // Dropping the final chunk leaves a stream with no end.
        #expect(throws: AgeError.truncated(chunk: 3)) { try open(head + chunk(0) + chunk(1) + chunk(2)) }
    }

    @Test func bytesAfterAFullFinalChunkAreRejected() throws {
        var random = SeededBytes(state: 3)
        let exact = random.bytes(2 * 65_536)
        let sealed = try AgeInteropTests.seal(exact, to: [identity.recipient])
        #expect(try open(sealed) == AgeDecryption(plaintext: exact, end: .complete(chunks: 2)))
        #expect(throws: AgeError.trailingData(afterChunk: 1)) { try open(sealed + [0]) }
        #expect(throws: AgeError.trailingData(afterChunk: 1)) { try open(sealed + [0], allowTruncated: true) }
        // After a short final chunk, an extra byte makes that chunk fail to authenticate.
        #expect(throws: AgeError.badChunk(index: 3)) { try open(file + [0]) }
    }

    @Test func notAnAgeFileAndOtherVersions() throws {
        #expect(throws: AgeError.notAnAgeFile) { try open([]) }
        #expect(throws: AgeError.notAnAgeFile) { try open(Array("\u{0}\u{0}\u{0}\u{1C}ftypisom".utf8)) }
        #expect(throws: AgeError.notAnAgeFile) { try open(Array("-----BEGIN AGE ENCRYPTED FILE-----\n".utf8)) }
        #expect(throws: AgeError.unsupportedVersion("v2")) { try open(Array("age-encryption.org/v2\n".utf8)) }
        #expect(throws: AgeError.malformedHeader("the file ends inside the header")) {
            try open(Array(file.prefix(60)))
        }
    }

    @Test func sealingRefusesNoRecipientAndLowOrderKeys() throws {
        #expect(throws: AgeError.noRecipients) { try AgeStreamWriter(recipients: []) }
        // The all-zero point is of low order: every shared secret with it is zero.
        let zero = try AgeRecipient(parsing: Bech32.encode(hrp: "age", data: [UInt8](repeating: 0, count: 32)))
        #expect(throws: AgeError.invalidRecipient("\(zero.string) is a low-order point")) {
            try AgeStreamWriter(recipient: zero)
        }
    }
}

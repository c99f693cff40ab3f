import Foundation
import Testing

@testable import BodycamEvidence

/// Files sealed here open with Debian's `age`, and files `age` makes open here.
@Suite struct AgeInteropTests {
    static let sizes = [0, 1, 65_535, 65_536, 65_537, 3 * 65_536, 1_000_000]

    /// Seals `plaintext` the simple way: header, then every chunk in order, the last one final.
    static func seal(_ plaintext: [UInt8], to recipients: [AgeRecipient]) throws -> [UInt8] {
        let writer = try AgeStreamWriter(recipients: recipients)
        var file = writer.headerBytes
        let chunkCount = max(1, (plaintext.count + AgePayload.chunkSize - 1) / AgePayload.chunkSize)
        for index in 0..<chunkCount {
            let start = index * AgePayload.chunkSize
            let chunk = Array(plaintext[start..<min(plaintext.count, start + AgePayload.chunkSize)])
            #expect(file.count == writer.chunkOffset(index))
            file += try writer.sealChunk(index: index, plaintext: chunk, last: index == chunkCount - 1)
        }
        writer.zeroizeKeys()
        return file
    }

    @Test(arguments: sizes)
    func ageOpensWhatWeSeal(size: Int) throws {
        let scratch = try AgeScratch()
        let identity = AgeIdentity.generate()
        try identity.writeFile(atPath: scratch.file("id"))
        var random = SeededBytes(state: UInt64(size))
        let plaintext = random.bytes(size)
        try writeFile(scratch.file("clip.age"), try Self.seal(plaintext, to: [identity.recipient]))
        var failure = ""
        let opened = try ageDecrypt(scratch.file("clip.age"), identityFile: scratch.file("id"), failure: &failure)
        #expect(opened == plaintext, "age -d: \(failure)")
        // And ours, from the file, agrees.
        let reader = try AgeStreamReader(path: scratch.file("clip.age"), identities: [identity])
        #expect(
            try reader.decryptAll() == AgeDecryption(plaintext: plaintext, end: .complete(chunks: reader.chunkCount)))
    }

    @Test(arguments: sizes)
    func weOpenWhatAgeSeals(size: Int) throws {
        let scratch = try AgeScratch()
        let identity = AgeIdentity.generate()
        var random = SeededBytes(state: 1000 + UInt64(size))
        let plaintext = random.bytes(size)
        try writeFile(scratch.file("plain"), plaintext)
        let sealed = try runTool(
            ["age", "-e", "-r", identity.recipient.string, "-o", scratch.file("x.age"), scratch.file("plain")])
        try #require(sealed.status == 0, "age -e: \(sealed.stderr)")
        let fromBytes = try AgeStreamReader(bytes: try readFile(scratch.file("x.age")), identities: [identity])
        #expect(try fromBytes.decryptAll().plaintext == plaintext)
        let fromFile = try AgeStreamReader(path: scratch.file("x.age"), identities: [identity])
        var streamed: [UInt8] = []
        let end = try fromFile.decrypt { streamed += $0 }
        #expect(streamed == plaintext)
        #expect(end == .complete(chunks: max(1, (size + 65_535) / 65_536)))
    }

    @Test func severalRecipientsEachOpenAndAgeKeysWork() throws {
        let scratch = try AgeScratch()
        let ours = AgeIdentity.generate()
        try #require(try runTool(["age-keygen", "-o", scratch.file("theirs.key")]).status == 0)
        let theirs = try AgeIdentity.readFile(atPath: scratch.file("theirs.key"))[0]
        let plaintext = Array("two agencies".utf8)
        try writeFile(scratch.file("f.age"), try Self.seal(plaintext, to: [ours.recipient, theirs.recipient]))
        var failure = ""
        #expect(
            try ageDecrypt(scratch.file("f.age"), identityFile: scratch.file("theirs.key"), failure: &failure)
                == plaintext, "\(failure)")
        #expect(
            try AgeStreamReader(path: scratch.file("f.age"), identities: [ours]).decryptAll().plaintext == plaintext)
        // An identity list is tried in order; the one that matches wins.
        let stranger = AgeIdentity.generate()
        #expect(
            try AgeStreamReader(path: scratch.file("f.age"), identities: [stranger, theirs]).decryptAll().plaintext
                == plaintext)
    }

    @Test func stanzasForOtherIdentitiesAreSkipped() throws {
        // The first stanza of this file is for someone else; ours is the second.
        let scratch = try AgeScratch()
        let ours = AgeIdentity.generate()
        let other = AgeIdentity.generate()
        try writeFile(scratch.file("p"), Array("hello".utf8))
        let r = try runTool([
            "age", "-e", "-r", other.recipient.string, "-r", ours.recipient.string, "-o", scratch.file("p.age"),
            scratch.file("p"),
        ])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(
            try AgeStreamReader(path: scratch.file("p.age"), identities: [ours]).decryptAll().plaintext
                == Array("hello".utf8))
    }

    @Test func headerWrapsTheFileKeyForEveryRecipient() throws {
        let a = AgeIdentity.generate()
        let b = AgeIdentity.generate()
        let fileKey = AgeHeader.generateFileKey()
        let header = try AgeHeader.seal(fileKey: fileKey, to: [a.recipient, b.recipient])
        // Version line, two stanzas of a 43-character share and a 43-character body, the MAC line.
        let lines = String(decoding: header, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 7 && lines[0] == "age-encryption.org/v1" && lines[6] == "")
        for stanza in [1, 3] {
            #expect(lines[stanza].hasPrefix("-> X25519 ") && lines[stanza].count == 10 + 43)
            #expect(lines[stanza + 1].count == 43)
        }
        #expect(lines[5].hasPrefix("--- ") && lines[5].count == 4 + 43)
        for identity in [b, a] {
            let opened = try AgeHeader.open(header + [1, 2, 3], identities: [identity])
            #expect(opened.headerLength == header.count)
            #expect(opened.fileKey == fileKey)
        }
    }

    @Test func exportStreamsToADescriptor() throws {
        let scratch = try AgeScratch()
        let identity = AgeIdentity.generate()
        var random = SeededBytes(state: 77)
        let plaintext = random.bytes(5 * 65_536 + 123)
        try writeFile(scratch.file("c.age"), try Self.seal(plaintext, to: [identity.recipient]))
        let reader = try AgeStreamReader(path: scratch.file("c.age"), identities: [identity])
        let out = try PositionalFile(path: scratch.file("c.mp4"))
        #expect(try reader.decrypt(toFileDescriptor: out.fd) == .complete(chunks: 6))
        #expect(try readFile(scratch.file("c.mp4")) == plaintext)
    }
}

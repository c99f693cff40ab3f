import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

@Suite struct AgeKeyTests {
    @Test func bech32MatchesBIP173Vectors() throws {
        // Valid strings from BIP 173 whose data is whole bytes; checksum over the lowercase form.
        for valid in ["A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"] {
            let decoded = try Bech32.decode(valid)
            #expect(Bech32.encode(hrp: decoded.hrp, data: decoded.data) == valid)
        }
        // BIP 173 invalid: mixed case, checksum over uppercase data, empty hrp, bad character.
        #expect(throws: Bech32.Failure.mixedCase) { try Bech32.decode("A12uEL5L") }
        #expect(throws: Bech32.Failure.separator) { try Bech32.decode("1pzry9x0s0muk") }
        #expect(throws: Bech32.Failure.separator) { try Bech32.decode("pzry9x0s0muk") }
        #expect(throws: Bech32.Failure.invalidCharacter) { try Bech32.decode("x1b4n0q5v") }
        #expect(throws: Bech32.Failure.checksum) { try Bech32.decode("a12uel5m") }
    }

    @Test func specExampleIdentityGivesSpecExampleRecipient() throws {
        // From the X25519 section of the age spec.
        let identity = try AgeIdentity(
            parsing: "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        #expect(identity.recipient.string == "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj")
        #expect(identity.string == "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
        let recipient = try AgeRecipient(parsing: identity.recipient.string)
        #expect(recipient == identity.recipient)
    }

    @Test func generatedIdentityRoundTripsAndHidesItsSecret() throws {
        let identity = AgeIdentity.generate()
        #expect(identity.string.hasPrefix("AGE-SECRET-KEY-1"))
        #expect(identity.recipient.string.hasPrefix("age1"))
        let again = try AgeIdentity(parsing: identity.string)
        #expect(again.recipient == identity.recipient)
        #expect(!"\(identity)".contains("SECRET"))
        #expect(AgeIdentity.generate().recipient != identity.recipient)
    }

    @Test func malformedRecipientsAreRejected() throws {
        let good = AgeIdentity.generate().recipient.string
        var badChecksum = Array(good)
        badChecksum[badChecksum.count - 1] = badChecksum.last == "q" ? "p" : "q"
        let thirtyOneBytes = Bech32.encode(hrp: "age", data: [UInt8](repeating: 7, count: 31))
        let thirtyThreeBytes = Bech32.encode(hrp: "age", data: [UInt8](repeating: 7, count: 33))
        let cases = [
            String(badChecksum),  // checksum
            good.uppercased(),  // age only accepts lowercase recipients
            Bech32.encode(hrp: "agx", data: [UInt8](repeating: 7, count: 32)),  // wrong HRP
            AgeIdentity.generate().string,  // an identity is not a recipient
            thirtyOneBytes, thirtyThreeBytes,  // wrong length
            "age1", "", "age1qqqqqqqq", good + " ",
        ]
        for text in cases {
            #expect(throws: AgeError.self, "\(text)") { try AgeRecipient(parsing: text) }
        }
        do {
            _ = try AgeRecipient(parsing: String(badChecksum))
        } catch {
            guard case .invalidRecipient(let why) = error else { throw error }
            #expect(why.contains("checksum"))
        }
    }

    @Test func malformedIdentitiesAreRejectedWithoutEchoingThem() throws {
        let good = AgeIdentity.generate().string
        var badChecksum = Array(good)
        badChecksum[badChecksum.count - 1] = badChecksum.last == "Q" ? "P" : "Q"
        let cases = [
            String(badChecksum),
            good.lowercased(),  // age writes and requires uppercase identities
            Bech32.encode(hrp: "AGE-SECRET-KEY-PQ-", data: [UInt8](repeating: 1, count: 32)),
            Bech32.encode(hrp: "AGE-SECRET-KEY-", data: [UInt8](repeating: 1, count: 31)),
            AgeIdentity.generate().recipient.string,
            "AGE-SECRET-KEY-1",
        ]
        for text in cases {
            do {
                _ = try AgeIdentity(parsing: text)
                Issue.record("accepted \(text)")
            } catch {
                guard case .invalidIdentity(let why) = error else { throw error }
                #expect(!why.contains(text) || text.isEmpty, "the message repeats the key")
            }
        }
    }

    @Test func identityFilesParseLikeAge() throws {
        let a = AgeIdentity.generate()
        let b = AgeIdentity.generate()
        let text =
            "# created: 2024-01-01T00:00:00Z\r\n# public key: \(a.recipient)\r\n\(a.string)\r\n\n# another\n\(b.string)\n"
        let parsed = try AgeIdentity.parseFile(text)
        #expect(parsed.map(\.recipient) == [a.recipient, b.recipient])

        #expect(throws: AgeError.invalidIdentity("the identity file holds no identity")) {
            try AgeIdentity.parseFile("# only a comment\n\n")
        }
        #expect(throws: AgeError.invalidIdentity("line 2 is not an age identity")) {
            try AgeIdentity.parseFile("\(a.string)\n \(b.string)\n")
        }
    }

    @Test func identityFileIsWrittenAs0600AndNeverOverwritten() throws {
        let scratch = try AgeScratch()
        let path = scratch.file("agency.key")
        let identity = AgeIdentity.generate()
        try identity.writeFile(atPath: path, createdAt: 1_700_000_000.7)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(
            text == "# created: 2023-11-14T22:13:20Z\n# public key: \(identity.recipient)\n\(identity.string)\n")
        #expect(try AgeIdentity.readFile(atPath: path).map(\.recipient) == [identity.recipient])
        #expect(throws: AgeError.io(operation: "open", path: path, errno: EEXIST)) {
            try AgeIdentity.generate().writeFile(atPath: path)
        }
        #expect(try AgeIdentity.readFile(atPath: path).map(\.recipient) == [identity.recipient])
    }

    @Test func ageKeygenIdentitiesParseAndAgreeWithAgeKeygenY() throws {
        let scratch = try AgeScratch()
        let path = scratch.file("keygen.key")
        let generated = try runTool(["age-keygen", "-o", path])
        try #require(generated.status == 0, "age-keygen: \(generated.stderr)")
        let identities = try AgeIdentity.readFile(atPath: path)
        #expect(identities.count == 1)
        let public_ = try runTool(["age-keygen", "-y", path])
        try #require(public_.status == 0, "age-keygen -y: \(public_.stderr)")
        let expected = String(decoding: public_.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(identities[0].recipient.string == expected)
        #expect(try AgeRecipient(parsing: expected) == identities[0].recipient)
    }

    @Test func ourIdentityFileWorksWithAgeKeygenY() throws {
        let scratch = try AgeScratch()
        let path = scratch.file("ours.key")
        let identity = AgeIdentity.generate()
        try identity.writeFile(atPath: path)
        let result = try runTool(["age-keygen", "-y", path])
        try #require(result.status == 0, "age-keygen -y: \(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self) == identity.recipient.string + "\n")
    }
}

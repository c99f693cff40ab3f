import Crypto

/// One recipient stanza as written: its type (first argument), the other arguments, and the body.
struct AgeStanza: Equatable {
    var type: String
    var arguments: [String]
    var body: [UInt8]
}

/// A header that parsed: its stanzas, its MAC, and where things end.
struct ParsedAgeHeader {
    var stanzas: [AgeStanza]
    var mac: [UInt8]
    /// Bytes covered by the MAC: everything up to and including `---`.
    var macInputLength: Int
    /// Bytes of the whole header, through the newline after the MAC.
    var length: Int

    /// Tries every identity against every X25519 stanza, then checks the MAC with the file key found.
    func unwrap(identities: [AgeIdentity], bytes: UnsafeRawBufferPointer) throws(AgeError) -> SymmetricKey {
        for identity in identities {
            let ours = Array(identity.privateKey.publicKey.rawRepresentation)
            for stanza in stanzas where stanza.type == "X25519" {
                // The spec's checks, in this order, before any decryption: a stanza of our type that
                // breaks them rejects the file rather than being skipped.
                guard stanza.arguments.count == 1 else {
                    throw .invalidStanza("an X25519 stanza has \(stanza.arguments.count) arguments, not 1")
                }
                guard let share = AgeBase64.decode(stanza.arguments[0].utf8), share.count == 32 else {
                    throw .invalidStanza("the X25519 share is not canonical base64 of 32 bytes")
                }
                // Checked before decrypting, against partitioning-oracle attacks.
                guard stanza.body.count == AgeHeader.fileKeySize + 16 else {
                    throw .invalidStanza("an X25519 stanza body is \(stanza.body.count) bytes, not 32")
                }
                guard let shareKey = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: share),
                    let shared = try? identity.privateKey.sharedSecretFromKeyAgreement(with: shareKey),
                    let wrapKey = AgeHeader.wrappingKey(shared, share: share, recipient: ours)
                else { throw .invalidStanza("the X25519 share is a low-order point") }
                let opened = stanza.body.withUnsafeBytes {
                    AgeHeader.chachaOpen($0, key: wrapKey, nonce: AgeHeader.zeroNonce)
                }
                // Not for this identity (or tampered with, which the MAC would not tell apart): next.
                guard let fileKeyBytes = opened else { continue }
                let fileKey = SymmetricKey(data: fileKeyBytes)
                let expected = AgeHeader.headerMAC(fileKey: fileKey, header: bytes[..<macInputLength])
                // Constant-time comparison, as for any MAC.
                guard safeCompare(expected, mac) else { throw .badHeaderMAC }
                return fileKey
            }
        }
        throw .noMatchingIdentity
    }

    private func safeCompare(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension AgeHeader {
    /// Parses a header from the start of `bytes`.
    ///
    /// - Returns: nil when `bytes` ends before the header does (read more and try again).
    /// - Throws: `.notAnAgeFile`, `.unsupportedVersion`, `.malformedHeader` as soon as the bytes seen
    ///   cannot start a valid header.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(AgeError) -> ParsedAgeHeader? {
        let prefixLength = min(bytes.count, versionPrefix.count)
        guard bytes[..<prefixLength].elementsEqual(versionPrefix[..<prefixLength]) else { throw .notAnAgeFile }

        var cursor = 0
        /// The next line without its LF, or nil if no LF follows yet.
        func nextLine() throws(AgeError) -> UnsafeRawBufferPointer.SubSequence? {
            guard let end = bytes[cursor...].firstIndex(of: 0x0A) else {
                if bytes.count - cursor > sizeLimit { throw .malformedHeader("a header line is too long") }
                return nil
            }
            defer { cursor = end + 1 }
            return bytes[cursor..<end]
        }

        guard let version = try nextLine() else { return nil }
        guard bytes[..<cursor].elementsEqual(versionLine) else {
            let name = String(decoding: version.dropFirst(versionPrefix.count).prefix(40), as: UTF8.self)
            throw .unsupportedVersion(name)
        }

        var stanzas: [AgeStanza] = []
        while true {
            if cursor > sizeLimit { throw .malformedHeader("the header is larger than \(sizeLimit) bytes") }
            guard bytes.count - cursor >= 3 else { return nil }
            let macStart = cursor
            if bytes[cursor..<(cursor + 3)].elementsEqual("---".utf8) {
                guard let line = try nextLine() else { return nil }
                // Exactly "--- " and 43 characters of canonical base64 for the 32-byte MAC.
                guard line.count == 4 + 43, line[line.startIndex + 3] == 0x20,
                    let mac = AgeBase64.decode(line.dropFirst(4)), mac.count == 32
                else { throw .malformedHeader("the MAC line is not \"--- \" and a base64 32-byte MAC") }
                guard !stanzas.isEmpty else { throw .malformedHeader("the header has no recipient stanza") }
                return ParsedAgeHeader(stanzas: stanzas, mac: mac, macInputLength: macStart + 3, length: cursor)
            }
            guard let stanza = try parseStanza(nextLine) else { return nil }
            stanzas.append(stanza)
        }
    }

    /// Parses one stanza: `-> arg…` then body lines of 64 columns ending with a shorter (maybe empty)
    /// line. nil when the bytes end inside it.
    private static func parseStanza(
        _ nextLine: () throws(AgeError) -> UnsafeRawBufferPointer.SubSequence?
    ) throws(AgeError) -> AgeStanza? {
        guard let opening = try nextLine() else { return nil }
        guard opening.starts(with: "-> ".utf8) else {
            throw .malformedHeader("expected a stanza (\"-> \") or the MAC line (\"---\")")
        }
        let arguments = opening.dropFirst(3).split(separator: 0x20, omittingEmptySubsequences: false)
        // Every argument is 1*VCHAR: no empty argument (two spaces), no CR, no control characters.
        guard arguments.allSatisfy({ !$0.isEmpty && $0.allSatisfy { (33...126).contains($0) } }) else {
            throw .malformedHeader("a stanza argument is empty or holds a character outside VCHAR")
        }
        var body: [UInt8] = []
        while true {
            guard let line = try nextLine() else { return nil }
            guard line.count <= columns, let decoded = AgeBase64.decode(line) else {
                throw .malformedHeader("a stanza body line is not canonical base64 of at most 64 columns")
            }
            body += decoded
            if line.count < columns { break }
        }
        let strings = arguments.map { String(decoding: $0, as: UTF8.self) }
        return AgeStanza(type: strings[0], arguments: Array(strings.dropFirst()), body: body)
    }
}

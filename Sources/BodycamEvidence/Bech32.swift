/// Bech32 (BIP 173) as age uses it: no 90-character limit, the checksum computed over the lowercase
/// string, and the human-readable part returned in the case it was written in, because age tells
/// recipients (`age`, lowercase) from identities (`AGE-SECRET-KEY-`, uppercase) partly by case.
enum Bech32 {
    enum Failure: Error, Equatable, CustomStringConvertible {
        case mixedCase
        case separator
        case invalidCharacter
        case checksum
        case padding

        var description: String {
            switch self {
            case .mixedCase: "mixes upper and lower case"
            case .separator: "has no \"1\" separator in a valid position"
            case .invalidCharacter: "contains a character outside the Bech32 alphabet"
            case .checksum: "has a bad checksum"
            case .padding: "has invalid padding bits"
            }
        }
    }

    private static let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    /// Reverse of `alphabet`, indexed by ASCII code; -1 for characters outside it.
    private static let values: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (value, character) in alphabet.enumerated() { table[Int(character)] = Int8(value) }
        return table
    }()

    private static let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        var checksum: UInt32 = 1
        for value in values {
            let top = checksum >> 25
            checksum = (checksum & 0x1ff_ffff) << 5 ^ UInt32(value)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { checksum ^= generator[i] }
        }
        return checksum
    }

    /// The human-readable part expanded for the checksum, always from its lowercase form.
    private static func expand(_ hrp: [UInt8]) -> [UInt8] {
        let lower = hrp.map(lowercased)
        return lower.map { $0 >> 5 } + [0] + lower.map { $0 & 31 }
    }

    private static func lowercased(_ c: UInt8) -> UInt8 { (65...90).contains(c) ? c + 32 : c }
    private static func uppercased(_ c: UInt8) -> UInt8 { (97...122).contains(c) ? c - 32 : c }

    /// Regroups bits; `pad` when encoding, strict (no leftover non-zero bits, no whole padding group)
    /// when decoding, as BIP 173 requires.
    private static func convert(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var accumulator: UInt32 = 0
        var bits = 0
        var out: [UInt8] = []
        out.reserveCapacity(data.count * from / to + 1)
        let mask = UInt32(1 << to - 1)
        for value in data {
            accumulator = accumulator << UInt32(from) | UInt32(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((accumulator >> UInt32(bits)) & mask))
            }
        }
        if pad {
            if bits > 0 { out.append(UInt8((accumulator << UInt32(to - bits)) & mask)) }
        } else if bits >= from || (accumulator << UInt32(to - bits)) & mask != 0 {
            return nil
        }
        return out
    }

    /// Encodes `data` under `hrp`; the result is uppercase when `hrp` is, lowercase otherwise.
    static func encode(hrp: String, data: [UInt8]) -> String {
        let hrpBytes = Array(hrp.utf8)
        let words = convert(data, from: 8, to: 5, pad: true)!
        let polymodValue = polymod(expand(hrpBytes) + words + [0, 0, 0, 0, 0, 0]) ^ 1
        let checksum = (0..<6).map { UInt8((polymodValue >> UInt32(5 * (5 - $0))) & 31) }
        var out = hrpBytes.map(lowercased) + [UInt8(ascii: "1")]
        out += (words + checksum).map { alphabet[Int($0)] }
        let upper = hrp.utf8.contains { (65...90).contains($0) }
        return String(decoding: upper ? out.map(uppercased) : out, as: UTF8.self)
    }

    /// Decodes a Bech32 string into its human-readable part (case as written) and data bytes.
    static func decode(_ string: String) throws(Failure) -> (hrp: String, data: [UInt8]) {
        let bytes = Array(string.utf8)
        let hasLower = bytes.contains { (97...122).contains($0) }
        let hasUpper = bytes.contains { (65...90).contains($0) }
        if hasLower && hasUpper { throw .mixedCase }
        guard let separator = bytes.lastIndex(of: UInt8(ascii: "1")), separator >= 1,
            separator + 7 <= bytes.count
        else { throw .separator }
        let hrp = Array(bytes[..<separator])
        guard hrp.allSatisfy({ (33...126).contains($0) }) else { throw .invalidCharacter }
        var words: [UInt8] = []
        words.reserveCapacity(bytes.count - separator - 1)
        for c in bytes[(separator + 1)...] {
            guard c < 128, case let value = values[Int(lowercased(c))], value >= 0 else { throw .invalidCharacter }
            words.append(UInt8(value))
        }
        guard polymod(expand(hrp) + words) == 1 else { throw .checksum }
        guard let data = convert(Array(words.dropLast(6)), from: 5, to: 8, pad: false) else { throw .padding }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}

import Crypto
import Foundation
import Testing

@testable import BodycamEvidence

/// The C2SP age test kit (see testkit/README.md): every vector must succeed or fail the way it says,
/// and a payload failure must have released exactly the plaintext before the failure.
@Suite struct AgeTestkitTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testkit")

    static var names: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [])
            .filter { $0 != "README.md" }.sorted()
    }

    struct Vector {
        var expect = ""
        var payloadSHA256 = ""
        var identities: [String] = []
        var compressed = false
        var file: [UInt8] = []

        init(_ bytes: [UInt8]) throws {
            let separator = try #require(
                bytes.indices.first { bytes[$0] == 0x0A && $0 + 1 < bytes.count && bytes[$0 + 1] == 0x0A })
            for line in String(decoding: bytes[..<separator], as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                switch parts[0] {
                case "expect": expect = parts[1]
                case "payload": payloadSHA256 = parts[1]
                case "identity": identities.append(parts[1])
                case "compressed": compressed = parts[1] == "zlib"
                default: break
                }
            }
            let body = Array(bytes[(separator + 2)...])
            file = compressed ? try Inflate.zlib(body) : body
        }
    }

    @Test func theKitIsPresent() {
        #expect(Self.names.count == 67)
    }

    @Test(arguments: names)
    func vector(_ name: String) throws {
        let vector = try Vector(readFile(Self.directory.appendingPathComponent(name).path))
        let identities = try vector.identities.map { try AgeIdentity(parsing: $0) }
        var released: [UInt8] = []
        var failure: AgeError?
        do {
            let reader = try AgeStreamReader(bytes: vector.file, identities: identities)
            do {
                _ = try reader.decrypt { released += $0 }
            } catch {
                failure = error
                #expect(vector.expect == "payload failure", "\(name): \(error)")
            }
        } catch {
            failure = error
            switch vector.expect {
            case "no match": #expect(error == .noMatchingIdentity, "\(name): \(error)")
            case "HMAC failure": #expect(error == .badHeaderMAC, "\(name): \(error)")
            case "header failure":
                switch error {
                case .notAnAgeFile, .unsupportedVersion, .malformedHeader, .invalidStanza, .truncated(chunk: 0): break
                default: Issue.record("\(name): \(error)")
                }
            default: Issue.record("\(name) expected \(vector.expect), got \(error)")
            }
        }
        if vector.expect == "success" {
            #expect(failure == nil, "\(name): \(String(describing: failure))")
        } else {
            #expect(failure != nil, "\(name) opened, but the kit expects \(vector.expect)")
        }
        if vector.expect == "success" || vector.expect == "payload failure" {
            let digest = SHA256.hash(data: released).map { String(format: "%02x", $0) }.joined()
            #expect(digest == vector.payloadSHA256, "\(name): released plaintext differs")
        }
    }
}

/// A small DEFLATE (RFC 1951) decoder inside a zlib (RFC 1950) wrapper, for the kit's compressed vectors.
enum Inflate {
    struct Failure: Error {}

    private struct Bits {
        let data: [UInt8]
        var position = 0
        var buffer = 0
        var count = 0

        mutating func take(_ n: Int) throws -> Int {
            while count < n {
                guard position < data.count else { throw Failure() }
                buffer |= Int(data[position]) << count
                position += 1
                count += 8
            }
            let value = buffer & (1 << n - 1)
            buffer >>= n
            count -= n
            return value
        }

        mutating func alignToByte() {
            buffer = 0
            count = 0
        }
    }

    /// Canonical Huffman code as counts per length and symbols in code order (as in zlib's puff.c).
    private struct Huffman {
        var counts = [Int](repeating: 0, count: 16)
        var symbols: [Int] = []

        init(lengths: [Int]) {
            for length in lengths { counts[length] += 1 }
            counts[0] = 0
            var offsets = [Int](repeating: 0, count: 16)
            for length in 1..<15 { offsets[length + 1] = offsets[length] + counts[length] }
            symbols = [Int](repeating: 0, count: lengths.count)
            for (symbol, length) in lengths.enumerated() where length != 0 {
                symbols[offsets[length]] = symbol
                offsets[length] += 1
            }
        }

        func decode(_ bits: inout Bits) throws -> Int {
            var code = 0
            var first = 0
            var index = 0
            for length in 1...15 {
                code |= try bits.take(1)
                let count = counts[length]
                if code - first < count { return symbols[index + code - first] }
                index += count
                first = (first + count) << 1
                code <<= 1
            }
            throw Failure()
        }
    }

    private static let lengthBase = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ]
    private static let lengthExtra = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ]
    private static let distanceBase = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
        4097, 6145, 8193, 12289, 16385, 24577,
    ]
    private static let distanceExtra = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    ]

    static func zlib(_ data: [UInt8]) throws -> [UInt8] {
        guard data.count > 6, data[0] & 0x0f == 8 else { throw Failure() }
        var bits = Bits(data: Array(data.dropFirst(2)))
        var out: [UInt8] = []
        var final = 0
        repeat {
            final = try bits.take(1)
            switch try bits.take(2) {
            case 0:
                bits.alignToByte()
                let d = bits.data
                let p = bits.position
                guard p + 4 <= d.count else { throw Failure() }
                let length = Int(d[p]) | Int(d[p + 1]) << 8
                guard p + 4 + length <= d.count else { throw Failure() }
                out += d[(p + 4)..<(p + 4 + length)]
                bits.position = p + 4 + length
            case 1:
                let literal = Huffman(
                    lengths: Array(repeating: 8, count: 144) + Array(repeating: 9, count: 112)
                        + Array(repeating: 7, count: 24) + Array(repeating: 8, count: 8))
                try inflateBlock(&bits, &out, literal, Huffman(lengths: Array(repeating: 5, count: 30)))
            case 2:
                let literalCount = try bits.take(5) + 257
                let distanceCount = try bits.take(5) + 1
                let codeCount = try bits.take(4) + 4
                var codeLengths = [Int](repeating: 0, count: 19)
                for i in 0..<codeCount {
                    codeLengths[[16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15][i]] = try bits.take(
                        3)
                }
                let codes = Huffman(lengths: codeLengths)
                var lengths: [Int] = []
                while lengths.count < literalCount + distanceCount {
                    let symbol = try codes.decode(&bits)
                    switch symbol {
                    case 0..<16: lengths.append(symbol)
                    case 16:
                        guard let previous = lengths.last else { throw Failure() }
                        lengths += Array(repeating: previous, count: 3 + (try bits.take(2)))
                    case 17: lengths += Array(repeating: 0, count: 3 + (try bits.take(3)))
                    default: lengths += Array(repeating: 0, count: 11 + (try bits.take(7)))
                    }
                }
                try inflateBlock(
                    &bits, &out, Huffman(lengths: Array(lengths[..<literalCount])),
                    Huffman(lengths: Array(lengths[literalCount...])))
            default:
                throw Failure()
            }
        } while final == 0
        return out
    }

    private static func inflateBlock(
        _ bits: inout Bits, _ out: inout [UInt8], _ literal: Huffman, _ distance: Huffman
    ) throws {
        while true {
            let symbol = try literal.decode(&bits)
            if symbol < 256 {
                out.append(UInt8(symbol))
                continue
            }
            if symbol == 256 { return }
            let l = symbol - 257
            guard l < lengthBase.count else { throw Failure() }
            let length = lengthBase[l] + (try bits.take(lengthExtra[l]))
            let d = try distance.decode(&bits)
            guard d < distanceBase.count else { throw Failure() }
            let back = distanceBase[d] + (try bits.take(distanceExtra[d]))
            guard back <= out.count else { throw Failure() }
            let start = out.count - back
            for i in 0..<length { out.append(out[start + i]) }
        }
    }
}

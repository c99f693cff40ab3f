import BodycamCore
import Crypto
import Foundation
import Testing

@testable import BodycamEvidence

#if canImport(Glibc)
import Glibc
#endif

@Suite struct AuditLogTests {
    static let start = 1_735_787_045.0
    let a = EvKeys.deviceA.publicKey

    static let events: [(String, [String: String])] = [
        ("boot", ["version": "1.0.0", "board": "sim"]),
        ("config", ["sha256": evSHA(Array("x = 1\n".utf8))]),
        ("record_start", ["clip": "CAM-1-20250102T030405Z-0001", "trigger": "button"]),
        ("marker", ["media_time": "3.250"]),
        ("record_stop", ["clip": "CAM-1-20250102T030405Z-0001", "reason": "button"]),
    ]

    /// Opens an `AuditLog` on `dir`, appends `events`, closes it; returns the segment it wrote.
    @discardableResult
    func writeSegment(
        _ dir: String, identity: DeviceIdentity = EvKeys.deviceA, at t: Double = start,
        events: [(String, [String: String])] = events
    ) throws -> String {
        let log = try AuditLog(directory: dir, deviceID: "CAM-1", identity: identity, unixSeconds: t)
        for (i, (event, details)) in events.enumerated() {
            try log.append(event: event, details: details, monotonic: Int64(i + 1) * 1_000_000, unixSeconds: t + Double(i) * 0.5, clockTrusted: true)
        }
        return log.path
    }

    func lines(_ path: String) throws -> [[UInt8]] {
        try evRead(path).split(separator: 0x0a, omittingEmptySubsequences: false).dropLast().map(Array.init)
    }

    func entry(_ line: [UInt8]) throws -> AuditEntry { try Canonical.decoder().decode(AuditEntry.self, from: Data(line)) }

    func hash(_ line: [UInt8]) throws -> String {
        var e = try entry(line)
        e.sig = nil
        return evSHA(try Canonical.bytes(e))
    }

    /// A line that follows `previous` correctly (number, chain), signed by `identity`.
    func nextLine(after previous: [UInt8], signedBy identity: DeviceIdentity, event: String = "delete") throws -> [UInt8] {
        let p = try entry(previous)
        var e = AuditEntry(
            seq: p.seq + 1, time: "2025-01-02T03:05:00.000Z", mono: p.mono + 1, clockTrusted: true, device: p.device,
            event: event, details: ["clip": "CAM-1-20250102T030405Z-0001"], prev: try hash(previous), sig: nil)
        e.sig = identity.sign(Data(SHA256.hash(data: try Canonical.bytes(e))))
        return Array(try Canonical.bytes(e)) + [0x0a]
    }

    @Test func appendedLinesVerify() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            #expect(AuditLog.segments(in: dir) == [seg])
            let ls = try lines(seg)
            #expect(ls.count == 6)
            let entries = try ls.map(entry)
            #expect(entries.map(\.seq) == Array(0..<6))
            #expect(entries.map(\.event) == ["segment"] + Self.events.map(\.0))
            #expect(entries[0].prev == "")
            for i in 1..<ls.count { #expect(entries[i].prev == (try hash(ls[i - 1]))) }
            #expect(entries[3].details == Self.events[2].1)
            #expect(entries[2].time == "2025-01-02T03:04:05.500Z")

            let report = AuditCheck.verify(files: [seg], key: a)
            #expect(report.problems.isEmpty)
            #expect(report.warnings.isEmpty)
            #expect(report.lines == 6)
            #expect(report.devices == ["CAM-1"])
            #expect(AuditCheck.verify(files: [seg], key: EvKeys.deviceB.publicKey).problems.count == 1)

            let r = Verifier.verify(path: dir)
            #expect(r.kind == "audit log")
            #expect(r.verified)
            #expect(r.lines == 6)
            #expect(r.deviceKey == a.fingerprint)
            #expect(Verifier.verify(path: seg).verified)
            #expect(!Verifier.verify(path: seg, pinned: EvKeys.deviceB.publicKey).verified)
        }
    }

    @Test func firstLineOfASegmentAnnouncesTheKey() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            #expect(AuditCheck.announcedKey(in: seg) == a)
            let first = try entry(try lines(seg)[0])
            #expect(first.event == "segment")
            #expect(first.details["public_key"] == a.string)
            #expect(first.details["previous_segment"] == nil)
            // Without its announcement a segment names no key, and needs one given.
            let headless = dir + "/headless.jsonl"
            try evWrite(headless, Array(try lines(seg).dropFirst().joined(separator: [0x0a])) + [0x0a])
            #expect(AuditCheck.announcedKey(in: headless) == nil)
            #expect(!Verifier.verify(path: headless).verified)
            #expect(AuditCheck.announcedKey(in: dir + "/none.jsonl") == nil)
        }
        try withEvScratch { dir in
            // A log written by another device announces that device's key: verifiable on its
            // own, and refused when the agency pins the key it registered.
            let seg = try writeSegment(dir, identity: EvKeys.deviceB)
            #expect(AuditCheck.announcedKey(in: seg) == EvKeys.deviceB.publicKey)
            #expect(Verifier.verify(path: dir).verified)
            let pinned = Verifier.verify(path: dir, pinned: a)
            #expect(!pinned.verified)
            #expect(pinned.problems.first?.contains("line 1 (segment at ") == true)
        }
    }

    @Test func reopenedLogContinuesTheChainInANewSegment() throws {
        try withEvScratch { dir in
            let s1 = try writeSegment(dir)
            let s2 = try writeSegment(dir, at: Self.start + 60, events: [("boot", ["version": "1.0.0"]), ("dock", [:])])
            #expect(AuditLog.segments(in: dir) == [s1, s2])
            let last1 = try #require(try lines(s1).last)
            let first2 = try entry(try lines(s2)[0])
            #expect(first2.event == "segment")
            #expect(first2.seq == (try entry(last1)).seq + 1)
            #expect(first2.prev == (try hash(last1)))
            #expect(first2.details["previous_segment"] == (s1 as NSString).lastPathComponent)
            #expect(AuditCheck.announcedKey(in: s2) == a)

            let both = AuditCheck.verify(files: [s1, s2], key: a)
            #expect(both.problems.isEmpty)
            #expect(both.lines == 9)
            #expect(AuditCheck.verify(files: [s2], key: a).problems.isEmpty)  // a segment on its own
            let wrongOrder = AuditCheck.verify(files: [s2, s1], key: a)
            #expect(wrongOrder.problems.first?.message.hasPrefix("\((s1 as NSString).lastPathComponent) line 1") == true)
            #expect(Verifier.verify(path: dir).verified)
            #expect(Verifier.verify(path: dir).lines == 9)

            // Leaving out the first segment's last line breaks the chain into the second.
            var cut = try lines(s1)
            cut.removeLast()
            try evWrite(s1, Array(cut.joined(separator: [0x0a])) + [0x0a])
            let gap = AuditCheck.verify(files: [s1, s2], key: a)
            #expect(gap.problems.first?.message.hasPrefix("\((s2 as NSString).lastPathComponent) line 1: numbered 6, expected 5") == true)
        }
    }

    @Test func manyStartsInTheSameSecondStayInOrder() throws {
        // A start loop (restarts within one second) gives segments …-1 … -12 with the same time.
        try withEvScratch { dir in
            var written: [String] = []
            for i in 0..<12 { written.append(try writeSegment(dir, events: [("boot", ["n": String(i)])])) }
            #expect(AuditLog.segments(in: dir) == written)
            let r = Verifier.verify(path: dir)
            #expect(r.verified, "\(r.problems)")
            #expect(r.lines == 24)
        }
    }

    @Test func newSegmentAfterARolloverContinuesTheChain() throws {
        try withEvScratch { dir in
            let log = try AuditLog(directory: dir, deviceID: "CAM-1", identity: EvKeys.deviceA, unixSeconds: Self.start)
            let blob = String(repeating: "x", count: 300_000)
            var n = 0
            while AuditLog.segments(in: dir).count < 2 {
                try log.append(event: "fault", details: ["dump": blob], monotonic: Int64(n), unixSeconds: Self.start + 1, clockTrusted: false)
                n += 1
                #expect(n < 30)
                if n >= 30 { break }
            }
            try log.append(event: "shutdown", details: [:], monotonic: 99, unixSeconds: Self.start + 2, clockTrusted: false)
            let segs = AuditLog.segments(in: dir)
            #expect(segs.count == 2)
            #expect(try evRead(segs[0]).count >= AuditLog.segmentLimit)
            #expect(try lines(segs[1]).count == 3)  // announcement, the line that overflowed, shutdown
            let r = AuditCheck.verify(files: segs, key: a)
            #expect(r.problems.isEmpty)
            #expect(r.lines == n + 3)
        }
    }

    /// Line (1-based) that byte `i` of `bytes` belongs to (a newline belongs to the line it ends).
    func lineNumber(of i: Int, in bytes: [UInt8]) -> Int { bytes[..<i].filter { $0 == 0x0a }.count + 1 }

    @Test func everySingleByteChangeIsFoundAndNamesTheLine() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir, events: Array(Self.events.prefix(3)))
            let name = (seg as NSString).lastPathComponent
            let original = try evRead(seg)
            let lineCount = original.filter { $0 == 0x0a }.count
            #expect(lineCount == 4)
            var survivors: [String] = []
            var misnamed: [String] = []
            var tried = 0
            for i in original.indices {
                var replacements = Set((0..<8).map { original[i] ^ (1 << $0) })
                replacements.formUnion(Array(" \n\t\r".utf8))
                replacements.remove(original[i])
                for r in replacements.sorted() {
                    var changed = original
                    changed[i] = r
                    try evWrite(seg, changed)
                    tried += 1
                    let report = AuditCheck.verify(files: [seg], key: a)
                    let context = String(decoding: original[max(0, i - 12)..<min(original.count, i + 12)], as: UTF8.self)
                    guard let p = report.problems.first else {
                        survivors.append("byte \(i) \(original[i]) → \(r) in …\(context)… warnings \(report.warnings)")
                        continue
                    }
                    let line = lineNumber(of: i, in: original)
                    if !p.message.hasPrefix("\(name) line \(line)") { misnamed.append("byte \(i) → \(r): \(p.message)") }
                    if i == original.count - 1 && !p.message.hasSuffix("its end-of-line byte was altered") {
                        misnamed.append("final newline → \(r): \(p.message)")
                    }
                }
            }
            #expect(tried > original.count * 10)
            #expect(survivors.isEmpty, "\(survivors.count) changes verified, e.g. \(survivors.prefix(5))")
            #expect(misnamed.isEmpty, "\(misnamed.prefix(5))")
        }
    }

    @Test func everyAlternativeSpellingOfALineSignatureIsRejected() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir, events: Array(Self.events.prefix(2)))
            var ls = try lines(seg)
            var e = try entry(ls[2])
            let sig = try #require(e.sig)
            var survivors: [String] = []
            for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
                var chars = Array(sig)
                guard chars[chars.count - 3] != c else { continue }
                chars[chars.count - 3] = c
                e.sig = String(chars)
                ls[2] = Array(try Canonical.bytes(e))
                try evWrite(seg, Array(ls.joined(separator: [0x0a])) + [0x0a])
                if AuditCheck.verify(files: [seg], key: a).problems.isEmpty { survivors.append(String(chars)) }
            }
            #expect(survivors.isEmpty)
        }
    }

    @Test func lastLineCutShortIsTornNotTampering() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            let original = try evRead(seg)
            let ls = try lines(seg)
            let lastStart = original.count - ls[5].count - 1
            // 1 byte of the line, the middle, just before its closing brace, everything but the newline.
            for keep in [1, 2, ls[5].count / 2, ls[5].count - 1, ls[5].count] {
                try evWrite(seg, Array(original[..<(lastStart + keep)]))
                let report = AuditCheck.verify(files: [seg], key: a)
                #expect(report.problems.isEmpty, "kept \(keep): \(report.problems)")
                #expect(report.warnings == ["\(name) line 6: torn (written when the power went; not counted)"])
                #expect(report.lines == 5)
                let r = Verifier.verify(path: seg)
                #expect(r.verified)
                #expect(r.warnings.count == 1)
            }
            // Cut right at a line end: five whole lines, nothing to warn about.
            try evWrite(seg, Array(original[..<lastStart]))
            let whole = AuditCheck.verify(files: [seg], key: a)
            #expect(whole.problems.isEmpty && whole.warnings.isEmpty && whole.lines == 5)
        }
    }

    @Test func lastNewlineChangedIntoAnotherByteIsAltered() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            let original = try evRead(seg)
            for b in [UInt8(0x20), 0x0d, 0x00, 0x7d, 0x41, 0x0b] {
                var changed = original
                changed[changed.count - 1] = b
                try evWrite(seg, changed)
                let report = AuditCheck.verify(files: [seg], key: a)
                #expect(report.problems.map(\.message) == ["\(name) line 6: its end-of-line byte was altered"])
                #expect(report.warnings.isEmpty)
                #expect(!Verifier.verify(path: seg).verified)
            }
        }
    }

    @Test func tornLineInAnEarlierSegmentThenAReopen() throws {
        try withEvScratch { dir in
            let s1 = try writeSegment(dir)
            let original = try evRead(s1)
            try evWrite(s1, Array(original.dropLast(40)))  // power cut during record_stop
            let s2 = try writeSegment(dir, at: Self.start + 60, events: [("boot", [:])])
            let first2 = try entry(try lines(s2)[0])
            #expect(first2.seq == 5)  // continues after the last whole line
            let r = AuditCheck.verify(files: [s1, s2], key: a)
            #expect(r.problems.isEmpty)
            #expect(r.warnings.count == 1)
            #expect(r.lines == 5 + 2)
        }
    }

    @Test(arguments: [0, 1, 30])
    func powerCutDuringTheFirstLineOfASegment(keep: Int) throws {
        // The device starts, creates a segment, and the power goes while its announcement is
        // written (`keep` bytes reached storage). The next start must continue the chain from
        // the last whole line there is.
        try withEvScratch { dir in
            let s1 = try writeSegment(dir)
            let s2 = try writeSegment(dir, at: Self.start + 60, events: [])
            try evWrite(s2, Array(try evRead(s2).prefix(keep)))
            let s3 = try writeSegment(dir, at: Self.start + 120, events: [("boot", [:])])
            #expect(AuditLog.segments(in: dir) == [s1, s2, s3])
            let first3 = try entry(try lines(s3)[0])
            #expect(first3.seq == 6)
            #expect(first3.prev == (try hash(try #require(try lines(s1).last))))
            let r = Verifier.verify(path: dir)
            #expect(r.verified, "\(r.problems)")
            #expect(r.warnings.count == (keep > 0 ? 1 : 0))
        }
    }

    @Test func removedMiddleLineIsFound() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            for removed in 1..<5 {
                var ls = try lines(dir + "/" + name)
                let backup = ls
                ls.remove(at: removed)
                try evWrite(seg, Array(ls.joined(separator: [0x0a])) + [0x0a])
                let report = AuditCheck.verify(files: [seg], key: a)
                #expect(report.problems.map(\.message) == ["\(name) line \(removed + 1): numbered \(removed + 1), expected \(removed) (lines removed or reordered)"])
                try evWrite(seg, Array(backup.joined(separator: [0x0a])) + [0x0a])
            }
            #expect(AuditCheck.verify(files: [seg], key: a).problems.isEmpty)
        }
    }

    @Test func swappedLinesAreFound() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            var ls = try lines(seg)
            ls.swapAt(2, 3)
            try evWrite(seg, Array(ls.joined(separator: [0x0a])) + [0x0a])
            let report = AuditCheck.verify(files: [seg], key: a)
            #expect(report.problems.map(\.message) == ["\(name) line 3: numbered 3, expected 2 (lines removed or reordered)"])
        }
    }

    @Test func lineSignedByAnotherKeyIsFound() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            let original = try evRead(seg)
            let last = try #require(try lines(seg).last)
            // Control: correctly chained and numbered, signed by the device: accepted.
            try evWrite(seg, original + (try nextLine(after: last, signedBy: EvKeys.deviceA)))
            #expect(AuditCheck.verify(files: [seg], key: a).problems.isEmpty)
            #expect(AuditCheck.verify(files: [seg], key: a).lines == 7)
            // The same line signed by another key is not.
            try evWrite(seg, original + (try nextLine(after: last, signedBy: EvKeys.deviceB)))
            let report = AuditCheck.verify(files: [seg], key: a)
            #expect(report.problems.map(\.message) == ["\(name) line 7 (delete at 2025-01-02T03:05:00.000Z): signature does not verify"])
            #expect(!Verifier.verify(path: dir).verified)
            // A line from another log (a copy of an earlier one) does not follow on either.
            try evWrite(seg, original + Array(try lines(seg)[3]) + [0x0a])
            #expect(AuditCheck.verify(files: [seg], key: a).problems.first?.message.hasPrefix("\(name) line 7: numbered 3, expected 6") == true)
        }
    }

    @Test func unchainedOrUnsignedLinesAreFound() throws {
        try withEvScratch { dir in
            let seg = try writeSegment(dir)
            let name = (seg as NSString).lastPathComponent
            let original = try lines(seg)
            var ls = original
            var e = try entry(ls[3])
            e.prev = String(repeating: "0", count: 64)
            e.sig = nil
            e.sig = EvKeys.deviceA.sign(Data(SHA256.hash(data: try Canonical.bytes(e))))
            ls[3] = Array(try Canonical.bytes(e))
            try evWrite(seg, Array(ls.joined(separator: [0x0a])) + [0x0a])
            #expect(AuditCheck.verify(files: [seg], key: a).problems.first?.message.hasPrefix("\(name) line 4 (record_start at ") == true)
            #expect(AuditCheck.verify(files: [seg], key: a).problems.first?.message.hasSuffix("chain broken") == true)
            e = try entry(original[3])
            e.sig = nil
            ls = original
            ls[3] = Array(try Canonical.bytes(e))
            try evWrite(seg, Array(ls.joined(separator: [0x0a])) + [0x0a])
            #expect(AuditCheck.verify(files: [seg], key: a).problems.map(\.message) == ["\(name) line 4: not signed"])
        }
    }

    @Test func absurdLineNumbersAreReportedNotACrash() throws {
        // A log made up by someone with their own key (it announces that key, so unpinned it is
        // checked against it), numbered at the very end of the integer range.
        try withEvScratch { dir in
            let forger = EvKeys.deviceB
            func line(_ seq: Int, _ event: String, prev: String, details: [String: String] = [:]) throws -> (bytes: [UInt8], hash: String) {
                var e = AuditEntry(seq: seq, time: "2025-01-02T03:04:05.000Z", mono: 1, clockTrusted: false, device: "CAM-1", event: event, details: details, prev: prev, sig: nil)
                let h = SHA256.hash(data: try Canonical.bytes(e))
                e.sig = forger.sign(Data(h))
                return (Array(try Canonical.bytes(e)) + [0x0a], Hex.string(h))
            }
            let first = try line(Int.max, "segment", prev: "", details: ["public_key": forger.publicKey.string])
            let second = try line(0, "boot", prev: first.hash)
            let seg = dir + "/audit-20250102T030405Z-1.jsonl"
            try evWrite(seg, first.bytes + second.bytes)
            let r = Verifier.verify(path: dir)
            #expect(!r.verified)
            #expect(r.problems.first?.contains("line 2: numbered 0") == true)
            #expect(!Verifier.verify(path: dir, pinned: a).verified)
            // The device itself must still start on such a folder (and not trap on the number).
            try evWrite(seg, first.bytes)
            let next = try writeSegment(dir, at: Self.start + 60, events: [("boot", [:])])
            #expect(try lines(next).count == 2)
        }
    }
}

import BodycamCore
import Foundation
import Testing

@testable import BodycamEvidence

/// Inputs the fuzzer's `manifest`, `journal` and `audit` targets found
/// (Tests/Fuzz/regressions/<target>): each must be checked and refused cleanly, never trap.
/// Empty until the fuzzer finds one.
@Suite struct EvidenceFuzzRegressionTests {
    static func inputs(_ target: String) -> [Data] {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        let dir = url.appendingPathComponent("Fuzz/regressions/" + target).path
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            .compactMap { FileManager.default.contents(atPath: dir + "/" + $0) }
    }

    @Test func manifests() {
        for data in Self.inputs("manifest") {
            // `<manifest>\0<media>`: the manifest part.
            _ = ManifestSeal.verify(data.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false).first.map { Data($0) } ?? data)
        }
    }

    @Test func journals() {
        for data in Self.inputs("journal") {
            let entries = data.split(separator: 0x0a).compactMap { try? Canonical.decoder().decode(JournalEntry.self, from: Data($0)) }
            _ = entries.map(JournalCheck.describe)
            _ = JournalCheck.verify(entries, key: DeviceIdentity.generate().publicKey, clipID: entries.first?.clipId ?? "")
        }
    }

    @Test func auditSegments() throws {
        for data in Self.inputs("audit") {
            let dir = NSTemporaryDirectory() + "/bodycam-audit-regression-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/audit-1-20260101T000000Z.jsonl"
            try data.write(to: URL(fileURLWithPath: path))
            _ = Verifier.verify(path: path)
            _ = AuditCheck.verify(files: [path], key: DeviceIdentity.generate().publicKey)
        }
    }
}

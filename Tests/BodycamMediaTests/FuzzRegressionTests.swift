import Foundation
import Testing

@testable import BodycamMedia

/// Inputs the fuzzer's `mp4` target found (Tests/Fuzz/regressions/mp4): each must read as a
/// clip or be refused with an `MP4Error`, never trap. Empty until the fuzzer finds one.
@Suite struct MP4FuzzRegressionTests {
    static func inputs() -> [String] {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<2 { url.deleteLastPathComponent() }
        let dir = url.appendingPathComponent("Fuzz/regressions/mp4").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    @Test func regressionInputsAreReadOrRefused() {
        for path in Self.inputs() {
            let bytes = Array(FileManager.default.contents(atPath: path) ?? Data())
            _ = try? MP4Reader.scanFragmented(bytes)
            _ = bytes.withUnsafeBytes { try? MP4Reader.walk($0) }
        }
    }
}

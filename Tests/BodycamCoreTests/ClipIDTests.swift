import Testing

@testable import BodycamCore

@Suite("ClipID")
struct ClipIDTests {
    @Test("a clip id is <device>-<yyyymmddThhmmssZ>-<seq, 4 digits>")
    func format() {
        #expect(ClipID.make(deviceID: "BC-0042", unixSeconds: 1_800_000_000.25, sequence: 7)
            == "BC-0042-20270115T080000Z-0007")
        #expect(ClipID.make(deviceID: "unit_7", unixSeconds: 0, sequence: 0) == "unit_7-19700101T000000Z-0000")
        #expect(ClipID.make(deviceID: "cam", unixSeconds: 1_709_251_199.999, sequence: 123)
            == "cam-20240229T235959Z-0123")
        #expect(ClipID.make(deviceID: "cam", unixSeconds: 1_709_164_800, sequence: 9999)
            == "cam-20240229T000000Z-9999")
    }

    @Test("sequences past 9999 keep all their digits, so ids stay unique")
    func longSequence() {
        #expect(ClipID.make(deviceID: "cam", unixSeconds: 0, sequence: 10_000) == "cam-19700101T000000Z-10000")
        #expect(ClipID.make(deviceID: "cam", unixSeconds: 0, sequence: 123_456) == "cam-19700101T000000Z-123456")
    }

    @Test("the id is made only of file-name-safe characters and splits back into its parts")
    func structure() {
        let id = ClipID.make(deviceID: "BC-0042", unixSeconds: 1_764_242_403.7, sequence: 42)
        #expect(ClipID.isValidDeviceID(id))  // letters, digits, '-' only
        let parts = id.split(separator: "-")
        #expect(parts.count == 4)
        #expect(parts[0] == "BC" && parts[1] == "0042")
        #expect(parts[2] == "20251127T112003Z")
        #expect(parts[3] == "0042")
    }

    @Test(
        "device ids: letters, digits, '-' and '_', 1 to 48 bytes",
        arguments: [
            ("BC-0042", true), ("unit_7", true), ("A", true), ("z9", true),
            (String(repeating: "a", count: 48), true),
            (String(repeating: "a", count: 49), false),
            ("", false), ("a b", false), ("a/b", false), ("../x", false), ("a.b", false), ("a:b", false),
            ("caméra", false), ("a\u{0}b", false), ("a\nb", false), ("a\\b", false), ("a*", false),
        ] as [(String, Bool)])
    func deviceIDValidation(id: String, valid: Bool) {
        #expect(ClipID.isValidDeviceID(id) == valid)
    }

    @Test("a file's clip id: media (sealed or not), manifests and journals; exports and temporaries are not clips")
    func fromFileNames() {
        let id = "cam-20261127T120001Z-0001"
        #expect(ClipID.of(mediaFile: id + ".mp4") == id)
        #expect(ClipID.of(mediaFile: id + ".mp4.age") == id)
        #expect(ClipID.of(fileName: id + ".json", suffix: ".json") == id)
        #expect(ClipID.of(fileName: id + ".jsonl", suffix: ".jsonl") == id)
        #expect(ClipID.of(mediaFile: id + ".export.mp4") == nil)
        #expect(ClipID.of(fileName: id + ".export.json", suffix: ".json") == nil)
        #expect(ClipID.of(fileName: "." + id + ".json.tmp", suffix: ".json") == nil)
        #expect(ClipID.of(fileName: id + ".jsonl.damaged", suffix: ".jsonl") == nil)
        #expect(ClipID.of(mediaFile: ".mp4") == nil)
        #expect(ClipID.of(mediaFile: id + ".tail.age") == nil)
    }
}

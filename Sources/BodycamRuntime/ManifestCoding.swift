import BodycamCore
import Foundation

/// One line of a clip's journal (`DATA/journal/<clip-id>.jsonl`), written while it records.
///
/// The first line is the manifest as it stood when the clip opened; each later line adds a
/// fragment, a marker or a mute span. After a power cut, these lines are the clip's manifest.
struct JournalRecord: Codable, Sendable {
    var type: String
    var header: ClipManifest?
    var fragment: ClipManifest.Fragment?
    var marker: ClipManifest.Marker?
    var mute: ClipManifest.Span?

    init(header: ClipManifest) {
        type = "clip"
        self.header = header
    }

    init(fragment: ClipManifest.Fragment) {
        type = "fragment"
        self.fragment = fragment
    }

    init(marker: ClipManifest.Marker) {
        type = "marker"
        self.marker = marker
    }

    init(mute: ClipManifest.Span) {
        type = "mute"
        self.mute = mute
    }
}

/// JSON for manifests and journals: snake_case keys, sorted, human-readable manifests.
enum ManifestCoding {
    static func encode(_ m: ClipManifest) throws -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var d = try e.encode(m)
        d.append(0x0a)
        return d
    }

    static func encodeLine<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(value)
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    static func decodeManifest(_ data: Data) throws -> ClipManifest {
        try decoder().decode(ClipManifest.self, from: data)
    }
}

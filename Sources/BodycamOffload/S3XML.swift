/// Just enough XML for S3's answers (InitiateMultipartUpload, ListParts, ListMultipartUploads,
/// errors): elements found by name, their text with the five predefined entities decoded. S3's
/// answers have no attributes we need, no CDATA and no mixed content. Anything that does not
/// parse yields nothing, never a crash: a garbage answer is an error the caller names.
public struct S3XML: Sendable {
    public let text: Substring

    public init(_ text: String) { self.text = Substring(text) }
    init(_ text: Substring) { self.text = text }

    /// The inner text of each `<name>…</name>` (or `<name attr="…">…</name>`), in order, at any depth.
    public func all(_ name: String) -> [S3XML] {
        var out: [S3XML] = []
        var rest = text[...]
        let close = "</\(name)>"
        while let open = rest.range(of: "<\(name)") {
            let after = rest[open.upperBound...]
            guard let first = after.first else { break }
            if first == "/" && after.dropFirst().first == ">" {
                out.append(S3XML(""))  // <name/>
                rest = after.dropFirst(2)
                continue
            }
            guard first == ">" || first == " " else {
                rest = after  // <nameSomethingElse
                continue
            }
            guard let gt = after.firstIndex(of: ">") else { break }
            let body = after[after.index(after: gt)...]
            guard let end = body.range(of: close) else { break }
            out.append(S3XML(body[..<end.lowerBound]))
            rest = body[end.upperBound...]
        }
        return out
    }

    public func first(_ name: String) -> S3XML? { all(name).first }

    /// The decoded text of the first `<name>` element, trimmed.
    public func string(_ name: String) -> String? { first(name)?.value }

    public var value: String { Self.decode(String(text)).trimmingCharacters(in: .whitespacesAndNewlines) }

    static func decode(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    /// Escapes text for an element body.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}

import Foundation

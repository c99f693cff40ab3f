import Foundation
import Testing

@testable import BodycamRuntime

/// The control socket's JSON writer: what clients parse must be what the recorder meant.
struct ReplyJSONTests {
    @Test("keys sorted, nested values, absent optionals as null, escapes, shortest doubles")
    func exactBytes() {
        let none: Double? = nil
        let some: Int? = 7
        let obj: [String: Any] = [
            "state": "buffering", "ok": true, "clip": none as Any, "count": some as Any,
            "pre_event_seconds": 29.5, "big": UInt64(1) << 40, "neg": -3,
            "leds": ["warning": "off", "dock": "on"], "list": [1, 2.25, "a\"b\\c\n\u{1}"],
            "nan": Double.nan, "unicode": "Zürich",
        ]
        let text = String(decoding: ReplyJSON.encode(obj), as: UTF8.self)
        #expect(text == #"{"big":1099511627776,"clip":null,"count":7,"leds":{"dock":"on","warning":"off"},"#
            + #""list":[1,2.25,"a\"b\\c\n\u0001"],"nan":null,"neg":-3,"ok":true,"pre_event_seconds":29.5,"#
            + #""state":"buffering","unicode":"Zürich"}"#)
    }

    @Test("what it writes, JSONSerialization reads back to the same values")
    func roundTrip() throws {
        let obj: [String: Any] = ["a": 0.1, "b": 1e-7, "c": 123_456_789.125, "d": [[String: Any]](), "e": ["x": false]]
        let back = try #require(try JSONSerialization.jsonObject(with: Data(ReplyJSON.encode(obj))) as? [String: Any])
        #expect(back["a"] as? Double == 0.1)
        #expect(back["b"] as? Double == 1e-7)
        #expect(back["c"] as? Double == 123_456_789.125)
        #expect((back["d"] as? [Any])?.isEmpty == true)
        #expect((back["e"] as? [String: Any])?["x"] as? Bool == false)
    }
}

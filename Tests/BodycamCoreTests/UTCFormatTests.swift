import Testing

@testable import BodycamCore

@Suite("UTCFormat")
struct UTCFormatTests {
    @Test(
        "known instants format as ISO 8601 with milliseconds",
        arguments: [
            (0.0, "1970-01-01T00:00:00.000Z"),
            (1_800_000_000.25, "2027-01-15T08:00:00.250Z"),
            (1_709_164_800, "2024-02-29T00:00:00.000Z"),  // leap day
            (1_709_251_199.5, "2024-02-29T23:59:59.500Z"),
            (1_709_251_200, "2024-03-01T00:00:00.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),  // divisible by 400: leap
            (-2_203_891_200, "1900-03-01T00:00:00.000Z"),  // 1900: no 29 February
            (-2_203_977_600, "1900-02-28T00:00:00.000Z"),
            (4_107_542_400, "2100-03-01T00:00:00.000Z"),  // 2100: no 29 February either
            (2_147_483_648, "2038-01-19T03:14:08.000Z"),  // past 32-bit time_t
            (1_764_242_403.25, "2025-11-27T11:20:03.250Z"),
        ] as [(Double, String)])
    func iso8601(unix: Double, expected: String) {
        #expect(UTCFormat.iso8601(unix) == expected)
    }

    @Test(
        "negative times (before 1970) count back correctly, milliseconds included",
        arguments: [
            (-1.0, "1969-12-31T23:59:59.000Z"),
            (-0.25, "1969-12-31T23:59:59.750Z"),
            (-0.001, "1969-12-31T23:59:59.999Z"),
            (-86_400, "1969-12-31T00:00:00.000Z"),
            (-86_401, "1969-12-30T23:59:59.000Z"),
            (-86_400.5, "1969-12-30T23:59:59.500Z"),
            (-11_670_998_400, "1600-02-29T00:00:00.000Z"),
        ] as [(Double, String)])
    func negative(unix: Double, expected: String) {
        #expect(UTCFormat.iso8601(unix) == expected)
    }

    @Test("milliseconds are truncated, never rounded up into the next second")
    func truncation() {
        #expect(UTCFormat.iso8601(59.9996) == "1970-01-01T00:00:59.999Z")
        #expect(UTCFormat.compact(59.9996) == "19700101T000059Z")
        #expect(UTCFormat.iso8601(86_399.9999) == "1970-01-01T23:59:59.999Z")
    }

    @Test("compact form yyyymmddThhmmssZ")
    func compact() {
        #expect(UTCFormat.compact(0) == "19700101T000000Z")
        #expect(UTCFormat.compact(1_800_000_000.25) == "20270115T080000Z")
        #expect(UTCFormat.compact(1_709_251_199.999) == "20240229T235959Z")
        #expect(UTCFormat.compact(-1) == "19691231T235959Z")
        #expect(UTCFormat.compact(1_764_242_403.25) == "20251127T112003Z")
    }

    @Test("date() gives the UTC calendar date")
    func date() {
        #expect(UTCFormat.date(1_709_164_800) == (2024, 2, 29))
        #expect(UTCFormat.date(1_709_251_199.999) == (2024, 2, 29))
        #expect(UTCFormat.date(1_709_251_200) == (2024, 3, 1))
        #expect(UTCFormat.date(-1) == (1969, 12, 31))
        #expect(UTCFormat.date(0) == (1970, 1, 1))
    }

    @Test("every day from 1968 to 2032 follows the previous one")
    func consecutiveDays() {
        var previous = UTCFormat.date(-2 * 366 * 86_400)
        let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for day in (-2 * 366 + 1)..<(62 * 366) {
            let d = UTCFormat.date(Double(day) * 86_400 + 43_200)
            let leap = previous.year % 4 == 0 && (previous.year % 100 != 0 || previous.year % 400 == 0)
            let length = previous.month == 2 && leap ? 29 : monthDays[previous.month - 1]
            if previous.day < length {
                #expect(d == (previous.year, previous.month, previous.day + 1))
            } else if previous.month < 12 {
                #expect(d == (previous.year, previous.month + 1, 1))
            } else {
                #expect(d == (previous.year + 1, 1, 1))
            }
            previous = d
        }
    }

    @Test("ClockPair maps monotonic time to UTC through one paired reading")
    func clockPair() {
        let pair = ClockPair(
            monotonic: MonotonicTime(nanoseconds: 50_000_000_000),
            wall: WallClockReading(unixSeconds: 1_800_000_000, trusted: true))
        let at = pair.unixSeconds(at: MonotonicTime(nanoseconds: 52_250_000_000))
        #expect(UTCFormat.iso8601(at) == "2027-01-15T08:00:02.250Z")
        #expect(UTCFormat.iso8601(pair.unixSeconds(at: MonotonicTime(nanoseconds: 49_000_000_000)))
            == "2027-01-15T07:59:59.000Z")
    }
}

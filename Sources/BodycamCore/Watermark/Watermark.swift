/// How the watermark looks (the `[watermark]` config table).
public struct WatermarkSettings: Sendable, Equatable {
    public var enabled = true

    public enum Corner: String, Sendable, CaseIterable {
        case topLeft = "top-left", topRight = "top-right", bottomLeft = "bottom-left", bottomRight = "bottom-right"
    }

    public var corner: Corner = .bottomLeft
    /// Glyph scale: 0 = automatic (about 1/45 of the frame height per text line), else pixels per font pixel.
    public var scale = 0

    public init(enabled: Bool = true, corner: Corner = .bottomLeft, scale: Int = 0) {
        self.enabled = enabled
        self.corner = corner
        self.scale = scale
    }
}

/// Burns the device id and the UTC second into every frame, in a corner, before it is encoded.
///
/// The text sits in an opaque dark box (luma 24, chroma neutral) with white glyphs (luma 235), so
/// it reads on any background and carries no colour from the scene. When the wall clock is not
/// trusted the time is followed by `CLOCK?` and the box gets a dashed white border.
///
/// The box is rendered once per second (or when trust flips) into a buffer already laid out like
/// the frame's first plane (for YUYV with the neutral chroma interleaved); each frame then only
/// copies its rows into the frame and sets the chroma under it to 128. Nothing is allocated per
/// frame: the buffer is sized in `init` for the longer (untrusted) text.
///
/// The box starts on an even column and row and has an even width and height, so it covers whole
/// YUYV pixel pairs and whole 4:2:0 chroma samples. It always stays inside the frame: a text that
/// does not fit on one line is wrapped (device id / time / `CLOCK?`), then the scale is reduced;
/// at scale 1 a device id too long for the frame is broken across lines.
///
/// One per encoder thread; not thread-safe.
public final class Watermark {
    public let settings: WatermarkSettings
    /// The device id as drawn: upper-case, characters without a glyph as '?', at most
    /// `maxDeviceIDLength` characters.
    let deviceIDCodes: [UInt8]

    static let maxDeviceIDLength = 32
    static let textLuma: UInt8 = 235
    static let boxLuma: UInt8 = 24
    static let neutralChroma: UInt8 = 128
    /// Font pixels between the box edge and the text (the untrusted border takes the outer one).
    static let padding = 3
    /// Font pixels from one character (one line) to the next.
    static let cellWidth = WatermarkFont.glyphWidth + 1
    static let lineHeight = WatermarkFont.glyphHeight + 2
    /// Font pixels per dash of the untrusted border.
    static let dashLength = 3
    /// Characters of the time: `2026-11-27 14:05:09Z`.
    static let timeLength = 20
    static let untrustedMark: [UInt8] = Array("CLOCK?".utf8)

    /// Where a box goes and what it says, for one of the two texts (trusted, untrusted).
    struct Layout {
        var x = 0
        var y = 0
        var width = 0
        var height = 0
        /// Characters per line slot in `text`.
        var lineLength = 0
        var lines = 0
        /// `lines × lineLength` codes, space-padded; `timeBase + i` stands for character i of the time.
        var text: [UInt8] = []
    }

    /// Marks a time character in `Layout.text` (glyph codes are 7-bit).
    static let timeBase: UInt8 = 0x80

    // Geometry for the current frame format.
    private var width = 0
    private var height = 0
    private var pixelFormat = PixelFormat.nv12
    /// False when the frame is too small to hold any text (or the watermark is disabled).
    private(set) var active = false
    private(set) var glyphScale = 1
    private var trustedLayout = Layout()
    private var untrustedLayout = Layout()

    /// The rendered box, laid out like rows of plane 0 (`width × bytesPerPixel` bytes per row).
    private var image: UnsafeMutablePointer<UInt8>
    private var imageCapacity = 0
    /// The 20 characters of the cached second.
    private let timeText: UnsafeMutablePointer<UInt8>

    private var cachedSecond = Int64.min
    private var cachedTrusted = false
    private var cacheValid = false
    /// Times the box was rendered (tests check it stays put within a second).
    private(set) var renderCount = 0

    public init(settings: WatermarkSettings, deviceID: String, format: VideoFormat) {
        self.settings = settings
        deviceIDCodes = Self.sanitize(deviceID)
        image = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        timeText = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.timeLength)
        timeText.initialize(repeating: UInt8(ascii: "?"), count: Self.timeLength)
        // Builds the font table now rather than on the first frame.
        _ = WatermarkFont.row(0, of: UInt8(ascii: " "))
        configure(for: format)
    }

    deinit {
        image.deallocate()
        timeText.deallocate()
    }

    /// Draws "DEVICE-ID  2026-11-27 14:05:09Z" (the UTC second of the frame); when `clockTrusted` is false the
    /// time is followed by " CLOCK?" and the box gets a dashed border, so anyone looking at the footage sees
    /// the time may be wrong.
    public func draw(into frame: RawFrame, unixSeconds: Double, clockTrusted: Bool) {
        guard settings.enabled else { return }
        let f = frame.format
        if f.width != width || f.height != height || f.pixelFormat != pixelFormat {
            // A source changing format mid-stream; allocates, but only on the change.
            configure(for: f)
        }
        guard active else { return }
        let second = Self.second(of: unixSeconds)
        if !cacheValid || second != cachedSecond || clockTrusted != cachedTrusted {
            render(second: second, trusted: clockTrusted)
        }
        blit(into: frame, layout: clockTrusted ? trustedLayout : untrustedLayout)
    }

    // MARK: - Per frame

    private func blit(into frame: RawFrame, layout l: Layout) {
        let bpp = pixelFormat == .yuyv ? 2 : 1
        let rowBytes = l.width * bpp
        let stride0 = frame.stride0
        var dst = frame.plane0 + l.y * stride0 + l.x * bpp
        var src = UnsafeRawPointer(image)
        for _ in 0..<l.height {
            dst.copyMemory(from: src, byteCount: rowBytes)
            dst += stride0
            src += rowBytes
        }
        switch pixelFormat {
        case .yuyv:
            break  // The neutral chroma is interleaved in `image`.
        case .nv12:
            guard let uv = frame.plane1 else { return }
            Self.fill(uv + (l.y / 2) * frame.stride1 + l.x, stride: frame.stride1, rows: l.height / 2, bytes: l.width)
        case .i420:
            guard let u = frame.plane1, let v = frame.plane2 else { return }
            Self.fill(u + (l.y / 2) * frame.stride1 + l.x / 2, stride: frame.stride1, rows: l.height / 2, bytes: l.width / 2)
            Self.fill(v + (l.y / 2) * frame.stride2 + l.x / 2, stride: frame.stride2, rows: l.height / 2, bytes: l.width / 2)
        }
    }

    @inline(__always)
    private static func fill(_ start: UnsafeMutableRawPointer, stride: Int, rows: Int, bytes: Int) {
        var p = start
        for _ in 0..<rows {
            p.initializeMemory(as: UInt8.self, repeating: neutralChroma, count: bytes)
            p += stride
        }
    }

    /// The UTC second `unixSeconds` falls in, floored the way `UTCFormat` does (through milliseconds);
    /// `Int64.min` for a time the text cannot show (not finite, before 1970, after 9999).
    static func second(of unixSeconds: Double) -> Int64 {
        guard unixSeconds.isFinite, unixSeconds >= 0, unixSeconds < 253_402_300_800 else { return .min }
        return Int64((unixSeconds * 1000).rounded(.down)) / 1000
    }

    // MARK: - Once per second

    private func render(second: Int64, trusted: Bool) {
        cachedSecond = second
        cachedTrusted = trusted
        cacheValid = true
        renderCount += 1
        Self.formatTime(second, into: timeText)

        let l = trusted ? trustedLayout : untrustedLayout
        let s = glyphScale
        let bpp = pixelFormat == .yuyv ? 2 : 1
        let rowBytes = l.width * bpp

        // Background (and, for YUYV, the neutral chroma between the luma bytes).
        if bpp == 1 {
            image.update(repeating: Self.boxLuma, count: rowBytes * l.height)
        } else {
            var i = 0
            while i < rowBytes * l.height {
                image[i] = Self.boxLuma
                image[i + 1] = Self.neutralChroma
                i += 2
            }
        }

        @inline(__always) func set(_ x: Int, _ y: Int, _ value: UInt8) {
            image[y * rowBytes + x * bpp] = value
        }

        if !trusted {
            // Dashed border, one font pixel thick, on the box's outer edge.
            let dash = Self.dashLength * s
            for x in 0..<l.width {
                let v = (x / dash) & 1 == 0 ? Self.textLuma : Self.boxLuma
                for t in 0..<s {
                    set(x, t, v)
                    set(x, l.height - 1 - t, v)
                }
            }
            for y in 0..<l.height {
                let v = (y / dash) & 1 == 0 ? Self.textLuma : Self.boxLuma
                for t in 0..<s {
                    set(t, y, v)
                    set(l.width - 1 - t, y, v)
                }
            }
        }

        l.text.withUnsafeBufferPointer { text in
            for line in 0..<l.lines {
                let top = (Self.padding + line * Self.lineHeight) * s
                for column in 0..<l.lineLength {
                    var code = text[line * l.lineLength + column]
                    if code >= Self.timeBase { code = timeText[Int(code - Self.timeBase)] }
                    if code == UInt8(ascii: " ") { continue }
                    let left = (Self.padding + column * Self.cellWidth) * s
                    for row in 0..<WatermarkFont.glyphHeight {
                        let bits = WatermarkFont.row(row, of: code)
                        if bits == 0 { continue }
                        for col in 0..<WatermarkFont.glyphWidth where bits & (0x10 >> UInt8(col)) != 0 {
                            let px = left + col * s
                            let py = top + row * s
                            for dy in 0..<s {
                                for dx in 0..<s { set(px + dx, py + dy, Self.textLuma) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes `YYYY-MM-DD HH:MM:SSZ` for `second` (question marks for `Int64.min`).
    static func formatTime(_ second: Int64, into out: UnsafeMutablePointer<UInt8>) {
        let pattern: StaticString = "????-??-?? ??:??:??Z"
        pattern.withUTF8Buffer { p in
            for i in 0..<timeLength { out[i] = p[i] }
        }
        guard second != .min else { return }
        let days = second / 86_400
        let rem = second - days * 86_400
        let (year, month, day) = UTCFormat.civil(days: days)
        @inline(__always) func put(_ value: Int64, at index: Int, digits: Int) {
            var v = value
            for k in stride(from: digits - 1, through: 0, by: -1) {
                out[index + k] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
        }
        put(year, at: 0, digits: 4)
        put(month, at: 5, digits: 2)
        put(day, at: 8, digits: 2)
        put(rem / 3600, at: 11, digits: 2)
        put(rem % 3600 / 60, at: 14, digits: 2)
        put(rem % 60, at: 17, digits: 2)
    }

    // MARK: - Layout (in init, and if the frame format changes)

    static func sanitize(_ deviceID: String) -> [UInt8] {
        var codes: [UInt8] = []
        for scalar in deviceID.unicodeScalars.prefix(maxDeviceIDLength) {
            codes.append(WatermarkFont.glyphCode(for: scalar))
        }
        // Trailing spaces would only widen the box.
        while codes.last == UInt8(ascii: " ") { codes.removeLast() }
        return codes
    }

    /// Scale the automatic setting picks: one text line about 1/45 of the frame height.
    static func automaticScale(height: Int) -> Int {
        max(1, (height + 45 * lineHeight / 2) / (45 * lineHeight))
    }

    /// Gap between the box and the frame edges: about 1/90 of the smaller side, even, at least 2.
    static func margin(width: Int, height: Int) -> Int {
        max(2, min(width, height) / 90 & ~1)
    }

    private func configure(for format: VideoFormat) {
        width = format.width
        height = format.height
        pixelFormat = format.pixelFormat
        cacheValid = false
        active = false
        guard settings.enabled else { return }

        let margin = Self.margin(width: width, height: height)
        let availableWidth = width - 2 * margin
        let availableHeight = height - 2 * margin
        let wanted = settings.scale > 0 ? settings.scale : Self.automaticScale(height: height)
        let time = (0..<UInt8(Self.timeLength)).map { Self.timeBase + $0 }
        var trustedTokens: [[UInt8]] = [time]
        var separators: [[UInt8]] = [[]]
        if !deviceIDCodes.isEmpty {
            trustedTokens.insert(deviceIDCodes, at: 0)
            separators.append(Array("  ".utf8))
        }
        let untrustedTokens = trustedTokens + [Self.untrustedMark]
        separators.append(Array(" ".utf8))

        // The largest scale at or below the wanted one at which the untrusted text fits, wrapped at
        // token boundaries; at scale 1 tokens may be broken, and lines that do not fit are dropped.
        var chosen: (scale: Int, lines: [[UInt8]])?
        for s in stride(from: wanted, through: 1, by: -1) {
            let maxChars = Self.maxCharacters(availableWidth: availableWidth, scale: s)
            guard let lines = Self.wrap(untrustedTokens, separators, maxChars: maxChars, breakTokens: s == 1)
            else { continue }
            if Self.boxHeight(lines: lines.count, scale: s) <= availableHeight {
                chosen = (s, lines)
                break
            }
        }
        if chosen == nil {
            let maxChars = Self.maxCharacters(availableWidth: availableWidth, scale: 1)
            if var lines = Self.wrap(untrustedTokens, separators, maxChars: maxChars, breakTokens: true) {
                while !lines.isEmpty && Self.boxHeight(lines: lines.count, scale: 1) > availableHeight {
                    lines.removeLast()
                }
                if !lines.isEmpty { chosen = (1, lines) }
            }
        }
        guard let (s, untrustedLines) = chosen else { return }
        glyphScale = s
        let maxChars = Self.maxCharacters(availableWidth: availableWidth, scale: s)
        var trustedLines = Self.wrap(trustedTokens, separators, maxChars: maxChars, breakTokens: true) ?? []
        if trustedLines.count > untrustedLines.count { trustedLines.removeLast(trustedLines.count - untrustedLines.count) }

        untrustedLayout = layout(untrustedLines, scale: s, margin: margin)
        trustedLayout = layout(trustedLines, scale: s, margin: margin)

        let bpp = pixelFormat == .yuyv ? 2 : 1
        let needed = max(
            untrustedLayout.width * untrustedLayout.height, trustedLayout.width * trustedLayout.height) * bpp
        if needed > imageCapacity {
            image.deallocate()
            image = UnsafeMutablePointer<UInt8>.allocate(capacity: needed)
            imageCapacity = needed
        }
        active = true
    }

    /// The most characters a line can hold so that the box fits `availableWidth` pixels.
    static func maxCharacters(availableWidth: Int, scale s: Int) -> Int {
        guard availableWidth > 0 else { return 0 }
        var n = (availableWidth / s - 2 * padding + 1) / cellWidth
        while n > 0 && boxWidth(characters: n, scale: s) > availableWidth { n -= 1 }
        return max(0, n)
    }

    static func boxWidth(characters n: Int, scale s: Int) -> Int {
        evenUp((2 * padding + n * cellWidth - 1) * s)
    }

    static func boxHeight(lines: Int, scale s: Int) -> Int {
        evenUp((2 * padding + lines * lineHeight - 2) * s)
    }

    private static func evenUp(_ v: Int) -> Int { (v + 1) & ~1 }

    /// Greedy line breaking: each token goes on the current line after its separator if it fits, else on a
    /// new line. A token longer than a line is broken only when `breakTokens` (else nil).
    static func wrap(_ tokens: [[UInt8]], _ separators: [[UInt8]], maxChars: Int, breakTokens: Bool) -> [[UInt8]]? {
        guard maxChars > 0 else { return nil }
        var lines: [[UInt8]] = []
        for (i, token) in tokens.enumerated() {
            if let last = lines.last, last.count + separators[i].count + token.count <= maxChars {
                lines[lines.count - 1] += separators[i] + token
                continue
            }
            if token.count <= maxChars {
                lines.append(token)
            } else if breakTokens {
                var rest = token[...]
                while !rest.isEmpty {
                    lines.append(Array(rest.prefix(maxChars)))
                    rest = rest.dropFirst(maxChars)
                }
            } else {
                return nil
            }
        }
        return lines
    }

    private func layout(_ lines: [[UInt8]], scale s: Int, margin: Int) -> Layout {
        var l = Layout()
        l.lines = lines.count
        l.lineLength = lines.map(\.count).max() ?? 0
        l.width = Self.boxWidth(characters: l.lineLength, scale: s)
        l.height = Self.boxHeight(lines: l.lines, scale: s)
        l.text = [UInt8](repeating: UInt8(ascii: " "), count: l.lines * l.lineLength)
        for (i, line) in lines.enumerated() {
            for (j, code) in line.enumerated() { l.text[i * l.lineLength + j] = code }
        }
        switch settings.corner {
        case .topLeft, .bottomLeft: l.x = margin
        case .topRight, .bottomRight: l.x = (width - margin - l.width) & ~1
        }
        switch settings.corner {
        case .topLeft, .topRight: l.y = margin
        case .bottomLeft, .bottomRight: l.y = (height - margin - l.height) & ~1
        }
        return l
    }

    // MARK: - For tests

    /// Where the box goes for the given trust, in frame pixels.
    func box(clockTrusted: Bool) -> (x: Int, y: Int, width: Int, height: Int) {
        let l = clockTrusted ? trustedLayout : untrustedLayout
        return (l.x, l.y, l.width, l.height)
    }

    /// The text lines drawn for `unixSeconds` (allocates; tests only).
    func lines(unixSeconds: Double, clockTrusted: Bool) -> [String] {
        let time = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.timeLength)
        defer { time.deallocate() }
        Self.formatTime(Self.second(of: unixSeconds), into: time)
        let l = clockTrusted ? trustedLayout : untrustedLayout
        return (0..<l.lines).map { line in
            let codes = l.text[line * l.lineLength..<(line + 1) * l.lineLength].map {
                $0 >= Self.timeBase ? time[Int($0 - Self.timeBase)] : $0
            }
            var s = String(decoding: codes, as: UTF8.self)
            while s.last == " " { s.removeLast() }
            return s
        }
    }
}

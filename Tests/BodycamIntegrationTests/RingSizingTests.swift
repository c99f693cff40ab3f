import BodycamCore
import Testing

@testable import BodycamRuntime

/// The default bitrate cap and the pre-event ring it sizes: what bounds the recorder's RAM.
struct RingSizingTests {
    let hd = VideoFormat(width: 1280, height: 720, pixelFormat: .yuyv, frameRate: FrameRate(30))
    let fullHD = VideoFormat(width: 1920, height: 1080, pixelFormat: .nv12, frameRate: FrameRate(30))

    @Test("the default cap is 0.15 bit per pixel: 4100 kbit/s at 720p30, 9300 at 1080p30, never below 500")
    func defaultCap() {
        #expect(VideoEncoderSettings.defaultCapKbps(for: hd) == 4100)
        #expect(VideoEncoderSettings.defaultCapKbps(for: fullHD) == 9300)
        let tiny = VideoFormat(width: 160, height: 120, pixelFormat: .yuyv, frameRate: FrameRate(10))
        #expect(VideoEncoderSettings.defaultCapKbps(for: tiny) == 500)
    }

    @Test("CRF left uncapped by the config gets the default cap; a configured cap or bitrate is kept")
    func capApplied() throws {
        let plain = try BodycamConfig.parse("", file: "c.toml")
        #expect(plain.video.cappedByDefault(for: hd).rateControl == .crf(23, maxKbps: 4100, bufferKbits: 4100))
        let capped = try BodycamConfig.parse("[video]\ncrf = 20\nmax_bitrate_kbps = 8000\n", file: "c.toml")
        #expect(capped.video.cappedByDefault(for: hd).rateControl == .crf(20, maxKbps: 8000, bufferKbits: nil))
        let abr = try BodycamConfig.parse("[video]\nbitrate_kbps = 3000\n", file: "c.toml")
        #expect(abr.video.cappedByDefault(for: hd).rateControl == .bitrate(kbps: 3000, maxKbps: nil, bufferKbits: nil))
    }

    @Test("the ring holds what the VBV lets through in the pre-event time plus 6 s, and no more than 5 % over")
    func ringFromVBV() throws {
        let v = try BodycamConfig.parse("", file: "c.toml").video.cappedByDefault(for: hd)
        let r = RingSizing(format: hd, settings: v, preEventSeconds: 30, bufferMiB: nil, audioKbps: 32)
        let bound = (4100 * 36 + 4100) * 125  // bytes a 4100 kbit/s VBV with a 1 s buffer passes in 36 s
        #expect(r.videoBytes >= bound && r.videoBytes <= bound * 105 / 100)
        #expect(r.videoEntries >= 36 * 30)
        // Opus at 32 kbit/s for 36 s, with room to spare, and not the megabytes it used to be.
        #expect(r.audioBytes >= 32 * 125 * 36 && r.audioBytes <= 512 * 1024)
        // buffer_mib overrides; a short pre-event keeps the 8 MiB floor.
        #expect(RingSizing(format: hd, settings: v, preEventSeconds: 30, bufferMiB: 64).videoBytes == 64 << 20)
        #expect(RingSizing(format: hd, settings: v, preEventSeconds: 0, bufferMiB: nil).videoBytes == 8 << 20)
    }
}

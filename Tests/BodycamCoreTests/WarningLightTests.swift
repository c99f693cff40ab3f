import Testing

@testable import BodycamCore

@Suite("Warning light: one light, several reasons")
struct WarningLightTests {
    @Test("low storage blinks over any other reason; clearing one reason never hides another")
    func reasons() {
        var light = WarningLight()
        #expect(light.pattern == .off)
        #expect(light.set(.storageFault, true) == .on)
        // The storage comes back above its reserve: the write fault still shows.
        #expect(light.set(.storageLow, true) == WarningLight.storageLowBlink)
        #expect(light.set(.storageLow, false) == .on)
        #expect(light.pattern == .on && light.reasons == [.storageFault])
        // A lost camera on top of the fault changes nothing visible, and its return leaves the
        // fault lit.
        #expect(light.set(.cameraLost, true) == nil)
        #expect(light.set(.cameraLost, false) == nil)
        #expect(light.pattern == .on)
        #expect(light.set(.storageFault, false) == .off)
    }

    @Test("a lost camera while storage is low: the blink stays, and the light stays on after it")
    func cameraLostDuringLowStorage() {
        var light = WarningLight()
        #expect(light.set(.storageLow, true) == WarningLight.storageLowBlink)
        #expect(light.set(.cameraLost, true) == nil)
        #expect(light.set(.storageLow, false) == .on)
        #expect(light.set(.cameraLost, false) == .off)
        // Repeats change nothing.
        #expect(light.set(.cameraLost, false) == nil)
        #expect(light.reasons.isEmpty)
    }

    @Test("an untrusted clock flashes only when nothing more urgent holds, and comes back after it")
    func clockUntrusted() {
        var light = WarningLight()
        #expect(light.set(.clockUntrusted, true) == WarningLight.clockUntrustedFlash)
        // The flash is brief and rare: lit 100 ms in every 3 s.
        #expect(light.pattern.level(elapsed: 50_000_000) && !light.pattern.level(elapsed: 150_000_000))
        #expect(!light.pattern.level(elapsed: 2_950_000_000) && light.pattern.level(elapsed: 3_050_000_000))
        #expect(light.set(.cameraLost, true) == .on)
        #expect(light.set(.storageLow, true) == WarningLight.storageLowBlink)
        #expect(light.set(.storageLow, false) == .on)
        #expect(light.set(.cameraLost, false) == WarningLight.clockUntrustedFlash)
        // The clock synchronises while the camera is lost: the light stays on, then goes out.
        #expect(light.set(.cameraLost, true) == .on)
        #expect(light.set(.clockUntrusted, false) == nil)
        #expect(light.set(.cameraLost, false) == .off)
        #expect(light.reasons.isEmpty)
    }

    @Test("stalled video lights it steadily, as a lost camera does; its end leaves the clock's flash")
    func videoStalled() {
        var light = WarningLight()
        #expect(light.set(.clockUntrusted, true) == WarningLight.clockUntrustedFlash)
        #expect(light.set(.videoStalled, true) == .on)
        #expect(light.set(.cameraLost, true) == nil)
        #expect(light.set(.cameraLost, false) == nil)
        #expect(light.set(.videoStalled, false) == WarningLight.clockUntrustedFlash)
        #expect(light.reasons == [.clockUntrusted])
    }
}

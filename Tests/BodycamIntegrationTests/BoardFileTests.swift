import Foundation
import Testing

@testable import BodycamRuntime

/// Every board file in the repository parses, and says what its hardware is.
struct BoardFileTests {
    func load(_ name: String) throws -> BoardDescription {
        let path = BodycamBinary.boardDirectory + "/\(name).toml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try BoardDescription.parse(text, file: path)
    }

    @Test("sim: synthetic camera and microphone, buttons and lights through the control socket")
    func sim() throws {
        let b = try load("sim")
        #expect(b.camera.kind == .synthetic && b.microphone.kind == .synthetic)
        #expect(b.videoFormat.width == 1280 && b.videoFormat.height == 720 && b.videoFormat.frameRate.numerator == 30)
        #expect(b.buttons.kind == "socket" && b.indicators.kind == "status")
    }

    @Test(
        "the synthetic devices' loss faults: both keys, synthetic only, named when wrong",
        arguments: ["camera", "microphone"])
    func deviceLoss(table: String) throws {
        let camera = table == "camera"
        // The fault's table last, so the keys below land in it.
        let base = camera ? "name = \"x\"\n[microphone]\n[camera]\n" : "name = \"x\"\n[camera]\n[microphone]\n"
        let ok = try BoardDescription.parse(base + "loss_after_seconds = 2\nloss_seconds = 0.5\n", file: "b.toml")
        if camera {
            #expect(ok.camera.lossAfterSeconds == 2 && ok.camera.lossSeconds == 0.5)
            #expect(try BoardDescription.parse(base, file: "b.toml").camera.lossAfterSeconds == nil)
        } else {
            #expect(ok.microphone.lossAfterSeconds == 2 && ok.microphone.lossSeconds == 0.5)
            #expect(try BoardDescription.parse(base, file: "b.toml").microphone.lossAfterSeconds == nil)
        }
        let real = camera ? "kind = \"v4l2\"\ndevice = \"/dev/video0\"\n" : "kind = \"alsa\"\ndevice = \"hw:0\"\n"
        let wrong: [(String, String)] = [
            ("loss_after_seconds = 2\n", "loss_seconds"),
            ("loss_seconds = 0.5\n", "loss_after_seconds"),
            ("loss_after_seconds = 2\nloss_seconds = 0\n", "loss_seconds"),
            (real + "loss_after_seconds = 2\nloss_seconds = 0.5\n", "synthetic"),
        ]
        for (text, named) in wrong {
            do {
                _ = try BoardDescription.parse(base + text, file: "b.toml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains("b.toml:") && "\(error)".contains(named), "\(error)")
            }
        }
    }

    @Test("the VM rig and the real boards describe V4L2, ALSA and GPIO", arguments: ["qemu", "rpi-zero2w", "cm4"])
    func hardware(name: String) throws {
        let b = try load(name)
        #expect(b.camera.kind == .v4l2)
        #expect(b.microphone.kind == .alsa)
        #expect(b.buttons.kind == "gpio" && b.buttons.lines[.record] != nil && b.buttons.lines[.marker] != nil)
        #expect(b.buttons.options.activeLow)
        #expect(b.indicators.kind == "gpio" && b.indicators.leds[.recording] != nil && b.indicators.haptic != nil)
        #expect(b.dock.kind == "gpio" && b.dock.line != nil)
    }

    @Test("qemu: vivid's HDMI input with DV timings, the loopback microphone, lines by name")
    func qemu() throws {
        let b = try load("qemu")
        #expect(b.camera.card == "vivid" && b.camera.input == 3 && b.camera.dvTimings)
        #expect(b.microphone.device == "hw:Loopback,1,0")
        #expect(b.buttons.lines[.record] == .named("bodycam-record"))
    }

    @Test("a line given as chip and offset, and mistakes in it, name the key and line")
    func lineSpecs() throws {
        let ok = try BoardDescription.parse("""
            name = "x"
            [camera]
            [buttons]
            kind = "gpio"
            record = { chip = "gpiochip0", offset = 17 }
            marker = "m"
            """, file: "b.toml")
        #expect(ok.buttons.lines[.record] == .chip("gpiochip0", offset: 17))
        #expect(throws: (any Error).self) {
            _ = try BoardDescription.parse("name = \"x\"\n[camera]\n[buttons]\nkind = \"gpio\"\nrecord = 17\nmarker = \"m\"\n", file: "b.toml")
        }
        do {
            _ = try BoardDescription.parse("name = \"x\"\n[camera]\n[buttons]\nkind = \"gpio\"\nmarker = \"m\"\n", file: "b.toml")
            Issue.record("a GPIO board without a record line must be refused")
        } catch {
            #expect("\(error)".contains("b.toml:3:") && "\(error)".contains("record"), "\(error)")
        }
    }
}

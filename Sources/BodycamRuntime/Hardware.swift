import BodycamAdapters
import BodycamCore
import Logging
import Synchronization

/// The devices a board file describes, opened: camera, microphone, GPIO buttons, lights, dock
/// line. A missing GPIO chip or line is a configuration error (exit 78) naming it; a missing
/// camera or microphone fails the start (exit 1), and systemd starts us again.
final class Hardware: @unchecked Sendable {
    let camera: any VideoSource
    let microphone: (any AudioSource)?
    let indicators: any Indicators
    private let gpioIndicators: GPIOIndicators?
    private let buttonLines: [(Button, GPIOLine)]
    private let dockLine: GPIOLine?
    private let lowBatteryLine: GPIOLine?
    /// Set by the V4L2 camera when frames flow again after an outage.
    private let v4l2: V4L2Camera?
    /// The same report from the synthetic camera's loss fault.
    private let synthetic: SyntheticCamera?

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    init(board: BoardDescription, logger: Logger) throws {
        // GPIO first: every line is looked up before anything else opens, so a wrong board file
        // is reported at once (exit 78) and names the line.
        do {
            var buttons: [(Button, GPIOLine)] = []
            if board.buttons.kind == "gpio" {
                for (button, spec) in board.buttons.lines.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                    buttons.append(
                        (button, try GPIOLine.input(spec, options: board.buttons.options, consumer: "bodycam-\(button.rawValue)")))
                }
            }
            buttonLines = buttons
            if board.indicators.kind == "gpio" {
                var leds: [LED: GPIOLine] = [:]
                for (led, spec) in board.indicators.leds {
                    leds[led] = try GPIOLine.output(spec, options: board.indicators.options, consumer: "bodycam-led-\(led.rawValue)")
                }
                let haptic = try board.indicators.haptic.map {
                    try GPIOLine.output($0, options: board.indicators.options, consumer: "bodycam-haptic")
                }
                let buzzer = try board.indicators.buzzer.map {
                    try GPIOLine.output($0, options: board.indicators.options, consumer: "bodycam-buzzer")
                }
                let g = GPIOIndicators(leds: leds, haptic: haptic, buzzer: buzzer)
                gpioIndicators = g
                indicators = g
            } else {
                gpioIndicators = nil
                indicators = StatusIndicators()
            }
            if board.dock.kind == "gpio", let spec = board.dock.line {
                dockLine = try GPIOLine.input(spec, options: board.dock.options, consumer: "bodycam-dock")
            } else {
                dockLine = nil
            }
            lowBatteryLine = try board.lowBattery.map {
                try GPIOLine.input($0.line, options: $0.options, consumer: "bodycam-low-battery")
            }
        } catch let e as GPIOError {
            if case .notFound = e { throw ConfigurationFailure(description: "board \(board.name): \(e)") }
            throw StartFailure(description: "GPIO: \(e)")
        }

        let format = board.videoFormat
        switch board.camera.kind {
        case .synthetic:
            let cam = SyntheticCamera(
                format: format, bufferCount: board.camera.buffers, syncMarks: board.camera.syncMarks,
                stallAfter: board.camera.stallAfterSeconds,
                loss: board.camera.lossAfterSeconds.map { ($0, board.camera.lossSeconds) })
            camera = cam
            synthetic = cam
            v4l2 = nil
        case .v4l2:
            let c = board.camera
            let config = V4L2CameraConfig(
                device: c.device, card: c.card, busInfo: c.busInfo, input: c.input, dvTimings: c.dvTimings,
                width: c.width, height: c.height, frameRate: c.frameRate, pixelFormats: c.pixelFormats,
                buffers: c.buffers, timeoutSeconds: c.timeoutSeconds)
            do {
                let cam = try V4L2Camera(config: config, logger: logger)
                camera = cam
                v4l2 = cam
                synthetic = nil
            } catch {
                throw StartFailure(description: "camera: \(error)")
            }
        }

        let mic = board.microphone
        switch mic.kind {
        case .none:
            microphone = nil
        case .synthetic:
            microphone = SyntheticMicrophone(
                sampleRate: mic.sampleRate, channels: mic.channels, clockErrorPPM: mic.clockErrorPPM,
                syncMarks: mic.syncMarks, loss: mic.lossAfterSeconds.map { ($0, mic.lossSeconds) })
        case .alsa:
            do {
                microphone = try ALSAMicrophone(
                    config: ALSAMicrophoneConfig(
                        device: mic.device, sampleRate: mic.sampleRate, channels: mic.channels,
                        periodFrames: mic.periodFrames, bufferFrames: mic.bufferFrames),
                    logger: logger)
            } catch {
                throw StartFailure(description: "microphone: \(error)")
            }
        }
    }

    /// Connects the devices' events to the recorder and returns what the control thread serves.
    func wire(
        recorder: Recorder, docked: @escaping @Sendable (Bool) -> Void, wake: @escaping @Sendable () -> Void,
        lowBattery: @escaping @Sendable () -> Void = {}
    ) -> ControlLoop.Hooks {
        let onGap: @Sendable (MonotonicTime, MonotonicTime, String) -> Void = { from, to, reason in
            recorder.videoGap(from: from, to: to, reason: reason)
        }
        v4l2?.onGap = onGap
        synthetic?.onGap = onGap
        gpioIndicators?.wake = wake
        var hooks = ControlLoop.Hooks()
        for (button, line) in buttonLines {
            hooks.sources.append(
                (line.eventFD, {
                    // One event per wake-up: a second read would block; poll reports the next.
                    if let e = line.readEvent() { recorder.edge(button, pressed: e.active, at: e.time) }
                }))
        }
        if let dockLine {
            docked(dockLine.value)
            hooks.sources.append(
                (dockLine.eventFD, {
                    if let e = dockLine.readEvent() { docked(e.active) }
                }))
        }
        // The low-battery line must stay active for a second (a brown-out glitch while the motor
        // runs must not end a recording).
        let lowSince = Mutex<MonotonicTime?>(nil)
        if let line = lowBatteryLine {
            if line.value {
                // Already low at start (after a restart, say): keep recording while there is power.
                recorder.audit("fault", ["what": "battery", "state": "low at start"])
            }
            hooks.sources.append(
                (line.eventFD, {
                    guard let e = line.readEvent() else { return }
                    lowSince.withLock { $0 = e.active ? e.time : nil }
                }))
        }
        var indicatorTick: (@Sendable (MonotonicTime) -> MonotonicTime?)?
        if let g = gpioIndicators {
            indicatorTick = { now in
                g.apply(now: now)
                return g.nextDeadline(after: now)
            }
        }
        let tickIndicators = indicatorTick
        if lowBatteryLine != nil || tickIndicators != nil {
            let line = lowBatteryLine
            hooks.tick = { now in
                var next = tickIndicators?(now)
                if let since = lowSince.withLock({ $0 }) {
                    let due = since + Nanos.seconds(1)
                    if now >= due {
                        lowSince.withLock { $0 = nil }
                        if line?.value == true { lowBattery() }
                    } else {
                        next = min(next ?? due, due)
                    }
                }
                return next
            }
        }
        return hooks
    }

    /// Lights and motor off as the process ends.
    func shutdown() { gpioIndicators?.allOff() }
}

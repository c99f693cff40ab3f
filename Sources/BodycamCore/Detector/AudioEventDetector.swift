/// Tuning of the audio event detector (`[detector]` in the config).
public struct AudioEventSettings: Sendable, Equatable {
    /// A sound this many dB over the noise floor, held for `loudSeconds`, is a "loud" event.
    public var loudAboveFloor: Double = 15
    public var loudSeconds: Double = 0.25
    /// A 2.5 ms slice this many dB over the floor and over the preceding 100 ms is an "impulse".
    public var impulseAboveFloor: Double = 22
    public var impulseRise: Double = 18
    /// Nothing quieter than this (dBFS) is an event, however quiet the room.
    public var minimumLevel: Double = -50
    /// An event ends after this long within 6 dB of the floor.
    public var quietSeconds: Double = 0.6
    /// How fast the floor follows a louder environment (dB per second); it follows a quieter one at once.
    public var floorRise: Double = 1.5

    public init() {}
}

/// Sound events from the level of the microphone signal against a tracked noise floor.
///
/// The signal is measured in 10 ms windows (mean square, in dBFS) and 2.5 ms slices. The noise
/// floor drops at once to a quieter window and rises slowly (`floorRise` dB/s), so traffic or a
/// crowd becomes the new normal within seconds while a shout does not. An *impulse* is a slice far
/// above both the floor and the preceding 100 ms: a bang, a slam, a shot. A *loud* event is level
/// held well above the floor: a shout, a siren, an alarm. It measures level only: nothing is
/// recognised, nothing of what is said is kept.
///
/// Used from one thread; `process` allocates nothing.
public final class AudioEventDetector {
    public let settings: AudioEventSettings
    public let sampleRate: Int
    public let channels: Int
    private let window: Int
    private let slice: Int
    private var sumSquares = 0.0
    private var sliceSquares = 0.0
    private var sliceMax = 0.0
    private var inWindow = 0
    private var inSlice = 0
    private var windowStart: MonotonicTime?
    /// Noise floor, dBFS; nil until the first window.
    public private(set) var floor: Double?
    /// Energies of the last ten windows (the "preceding 100 ms").
    private var history = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    private var historyCount = 0
    private var loudSince: MonotonicTime?
    private var quietSince: MonotonicTime?
    private var open: ActivityEvent?
    /// The last window's level (dBFS), for status and tests.
    public private(set) var level: Double = -120

    public init(sampleRate: Int, channels: Int, settings: AudioEventSettings = AudioEventSettings()) {
        precondition(sampleRate > 0 && channels > 0, "audio detector needs a rate and channels")
        self.settings = settings
        self.sampleRate = sampleRate
        self.channels = channels
        window = max(1, sampleRate / 100)
        slice = max(1, window / 4)
    }

    /// Feeds interleaved samples; `time` is the capture time of the first frame. `emit` is called
    /// for every event opening or closing inside the block.
    public func process(_ samples: UnsafeBufferPointer<Int16>, frames: Int, time: MonotonicTime,
                        _ emit: (DetectorUpdate) -> Void) {
        precondition(samples.count >= frames * channels, "audio detector: short block")
        let nsPerFrame = 1e9 / Double(sampleRate)
        let scale = 1.0 / (32768.0 * 32768.0 * Double(channels))
        for f in 0..<frames {
            if windowStart == nil { windowStart = time + Int64(Double(f) * nsPerFrame) }
            var e = 0.0
            for c in 0..<channels {
                let v = Double(samples[f * channels + c])
                e += v * v
            }
            e *= scale
            sumSquares += e
            sliceSquares += e
            inSlice += 1
            if inSlice == slice {
                sliceMax = max(sliceMax, sliceSquares / Double(slice))
                sliceSquares = 0
                inSlice = 0
            }
            inWindow += 1
            if inWindow == window {
                let t = windowStart!
                windowEnded(at: t, energy: sumSquares / Double(window), peakSlice: sliceMax, emit)
                sumSquares = 0
                sliceMax = 0
                inWindow = 0
                windowStart = nil
            }
        }
    }

    /// Forgets the signal so far except the noise floor (after a mute or a capture gap): the next
    /// window starts afresh, and an open event is dropped (close it with `finish` first).
    public func reset() {
        sumSquares = 0
        sliceSquares = 0
        sliceMax = 0
        inWindow = 0
        inSlice = 0
        windowStart = nil
        historyCount = 0
        loudSince = nil
        quietSince = nil
        open = nil
    }

    /// Closes an open event (end of input, or the microphone stopped).
    public func finish(at time: MonotonicTime) -> DetectorUpdate? {
        guard var e = open else { return nil }
        e.end = quietSince ?? time
        open = nil
        return .ended(e)
    }

    private static func dB(_ energy: Double) -> Double { Decibels.of(energy: energy) }

    private func windowEnded(at t: MonotonicTime, energy: Double, peakSlice: Double, _ emit: (DetectorUpdate) -> Void) {
        let l = Self.dB(energy)
        level = l
        let peak = Self.dB(peakSlice)
        var before = 0.0
        withUnsafeBytes(of: history) { raw in
            let h = raw.bindMemory(to: Double.self)
            for i in 0..<min(historyCount, 10) { before += h[i] }
        }
        let background = historyCount > 0 ? Self.dB(before / Double(min(historyCount, 10))) : l
        withUnsafeMutableBytes(of: &history) { raw in
            raw.bindMemory(to: Double.self)[historyCount % 10] = energy
        }
        historyCount += 1
        guard let f = floor else {
            floor = l
            return
        }
        let s = settings
        let impulse = peak - f >= s.impulseAboveFloor && peak - background >= s.impulseRise && peak >= s.minimumLevel
            && historyCount > 10
        if l - f >= s.loudAboveFloor && l >= s.minimumLevel {
            if loudSince == nil { loudSince = t }
        } else {
            loudSince = nil
        }
        let loud = loudSince.map { t - $0 >= Int64(s.loudSeconds * 1e9) } ?? false
        if var e = open {
            e.score = max(e.score, max(l, peak) - f)
            open = e
            if l - f < 6 {
                if quietSince == nil { quietSince = t }
                if let q = quietSince, t - q >= Int64(s.quietSeconds * 1e9) {
                    e.end = q
                    open = nil
                    quietSince = nil
                    emit(.ended(e))
                }
            } else {
                quietSince = nil
            }
        } else if impulse || loud {
            let e = ActivityEvent(kind: "audio", cause: impulse ? "impulse" : "loud",
                                  start: impulse ? t : loudSince!, score: max(l, peak) - f)
            open = e
            quietSince = nil
            emit(.began(e))
        }
        // The floor: down at once, up slowly; it does not learn from an event in progress faster
        // than from anything else.
        if l < f {
            floor = f + (l - f) * 0.5
        } else {
            floor = f + min(l - f, s.floorRise * 0.01)
        }
    }
}

/// Decibels without the C maths library (the core imports nothing).
public enum Decibels {
    /// 10·log10(energy), floored at −130 dB. Accurate to better than 0.001 dB.
    public static func of(energy: Double) -> Double {
        let e = max(energy, 1e-13)
        // log2(e) = exponent + log2(significand), significand in [1, 2); ln via the atanh series.
        let m = e.significand
        let z = (m - 1) / (m + 1)
        let z2 = z * z
        let ln = 2 * z * (1 + z2 * (1.0 / 3 + z2 * (1.0 / 5 + z2 * (1.0 / 7 + z2 * (1.0 / 9 + z2 / 11)))))
        let log2 = Double(e.exponent) + ln / 0.6931471805599453
        return 10 * 0.30102999566398120 * log2
    }
}

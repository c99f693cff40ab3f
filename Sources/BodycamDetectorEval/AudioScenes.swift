import Foundation

/// One generated audio sequence (48 kHz mono): a background (a quiet room, a street, wind, the
/// wearer's own steps and clothing), and the sounds a detector should report.
public struct AudioScenario: Sendable {
    public enum Sound: Sendable {
        /// A bang, a slam, a shot: a noise burst with an instant attack and a fast decay.
        case bang(level: Double)
        /// A shout: a voiced harmonic sound with vibrato, `seconds` long.
        case shout(level: Double, seconds: Double)
        /// A siren or an alarm: a sweeping tone that goes on.
        case siren(level: Double, seconds: Double)
    }

    public enum Background: Sendable {
        /// A room: steady noise at `floor` dBFS.
        case room(floor: Double)
        /// A street: low-pass noise at `floor` with slow swells of up to `swell` dB (cars passing).
        case street(floor: Double, swell: Double)
        /// Walking outside: wind gusts of up to `gust` dB, footsteps and rustle `steps` dB over the floor.
        case walking(floor: Double, gust: Double, steps: Double)
    }

    public var name: String
    public var category: String
    public var duration: Double
    public var background: Background
    public var sounds: [(time: Double, sound: Sound)]
    public var seed: UInt64
    public static let rate = 48_000

    /// The onsets of the sounds, with their ends.
    public var labels: [(start: Double, end: Double)] {
        sounds.map { s in
            switch s.sound {
            case .bang: (s.time, s.time + 0.2)
            case .shout(_, let d), .siren(_, let d): (s.time, s.time + d)
            }
        }
    }

    public func render() -> [Int16] {
        let n = Int(duration * Double(Self.rate))
        var out = [Double](repeating: 0, count: n)
        var rng = SeededRandom(seed: seed)
        let fs = Double(Self.rate)
        func amp(_ db: Double) -> Double { 32768 * pow(10, db / 20) }
        // White noise of RMS 1 is gauss(); a one-pole low-pass keeps its RMS with this gain.
        switch background {
        case .room(let floor):
            let a = amp(floor)
            for i in 0..<n { out[i] = a * rng.gauss() }
        case .street(let floor, let swell):
            var lp = 0.0
            let k = 0.05, g = (2 / k - 1).squareRoot()
            let phase = rng.uniform(0...1), period = rng.uniform(6...14)
            for i in 0..<n {
                lp += k * (rng.gauss() - lp)
                let t = Double(i) / fs
                let sw = swell * max(0, sin(2 * .pi * (t / period + phase)))
                out[i] = amp(floor + sw) * (0.6 * lp * g + 0.4 * rng.gauss())
            }
        case .walking(let floor, let gust, let steps):
            var lp = 0.0, slow = 0.0
            let k = 0.02, g = (2 / k - 1).squareRoot()
            let stepRate = rng.uniform(1.6...2.2)
            var nextStep = rng.uniform(0...0.5)
            var stepLeft = 0, stepAmp = 0.0
            for i in 0..<n {
                let t = Double(i) / fs
                lp += k * (rng.gauss() - lp)
                slow += 0.00002 * (rng.gauss() - slow)
                let gustDB = gust * min(1, max(0, 0.5 + 40 * slow))
                var v = amp(floor) * rng.gauss() + amp(floor - 3 + gustDB) * lp * g
                if t >= nextStep {
                    nextStep += 1 / stepRate + rng.uniform(-0.05...0.05)
                    stepLeft = Int(0.04 * fs)
                    stepAmp = amp(floor + steps + rng.uniform(-3...1))
                }
                if stepLeft > 0 {
                    let e = Double(stepLeft) / (0.04 * fs)
                    v += stepAmp * e * e * rng.gauss()
                    stepLeft -= 1
                }
                out[i] = v
            }
        }
        for s in sounds {
            let i0 = Int(s.time * fs)
            switch s.sound {
            case .bang(let level):
                let a = amp(level) * 1.5
                for i in i0..<min(n, i0 + Int(0.3 * fs)) {
                    let t = Double(i - i0) / fs
                    out[i] += a * exp(-t / 0.035) * rng.gauss()
                }
            case .shout(let level, let seconds):
                let f0 = rng.uniform(180...380)
                let a = amp(level) * 0.8
                for i in i0..<min(n, i0 + Int(seconds * fs)) {
                    let t = Double(i - i0) / fs
                    let env = min(1, t / 0.04) * min(1, (seconds - t) / 0.08)
                    let f = f0 * (1 + 0.02 * sin(2 * .pi * 5 * t))
                    var v = 0.0
                    for h in 1...6 { v += sin(2 * .pi * f * Double(h) * t) / Double(h) }
                    out[i] += a * env * v * 0.7
                }
            case .siren(let level, let seconds):
                let a = amp(level) * 1.41
                var phase = 0.0
                for i in i0..<min(n, i0 + Int(seconds * fs)) {
                    let t = Double(i - i0) / fs
                    let f = 900 + 300 * sin(2 * .pi * t / 1.6)
                    phase += f / fs
                    out[i] += a * min(1, t / 0.2) * sin(2 * .pi * phase)
                }
            }
        }
        return out.map { Int16(max(-32768, min(32767, $0.rounded()))) }
    }
}

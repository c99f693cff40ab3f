import BodycamCore
import Dispatch
import Foundation

/// Which generated footage to evaluate on.
public struct EvaluationSet: Sendable {
    /// "tuning": the footage the detector's constants were chosen on. "held-out": other seeds,
    /// another kind of world, stronger motion, other objects, never looked at while tuning.
    public var name: String
    public var seed: UInt64
    public var worldStyle: Int
    /// Multiplies camera motion.
    public var intensity: ClosedRange<Double>
    /// Hours of footage in which the camera moves and nothing happens.
    public var motionHours: Double
    /// Picture size. 640×360 is read into the same 160×90 luma image as 1280×720 (4×4 samples
    /// per cell at 720p, 4×4 at 640×360 too, so low-light noise averages the same way); 320×180
    /// averages only 2×2 and is a harder, noisier case.
    public var width = 640
    public var height = 360

    /// The world the scenarios look at, at a resolution matching the picture size.
    public func makeWorld() -> World {
        World(width: 1024 * width / 320, height: 512 * width / 320, seed: seed ^ 0x3011D, style: worldStyle)
    }

    public static func tuning(hours: Double) -> EvaluationSet {
        EvaluationSet(name: "tuning", seed: 1, worldStyle: 0, intensity: 0.7...1.3, motionHours: hours)
    }

    public static func heldOut(hours: Double) -> EvaluationSet {
        EvaluationSet(name: "held-out", seed: 0x5EED_0F_F00D, worldStyle: 1, intensity: 0.9...1.6, motionHours: hours)
    }

    /// Objects entering, in every kind of camera motion and light.
    public func videoScenarios() -> [VideoScenario] {
        var rng = SeededRandom(seed: seed)
        var out: [VideoScenario] = []
        func scenario(_ name: String, _ category: String, _ motion: CameraMotion, seconds: Double, objects: Int,
                      night: Bool = false, lighting: Lighting = Lighting()) -> VideoScenario {
            let s = rng.next()
            var sc = VideoScenario(
                name: name, category: category, duration: seconds, motion: motion, objects: [], lighting: lighting,
                noise: night ? rng.uniform(8...12) : rng.uniform(1.5...3.5), seed: s, intensity: rng.uniform(intensity),
                worldStyle: worldStyle)
            if night {
                sc.lighting.base = rng.uniform(0.25...0.4)
                sc.lighting.offset = 10
            }
            for i in 0..<objects {
                let start = rng.uniform(4...8) + Double(i) * 12
                let person = rng.uniform(0...1) < 0.7
                let rx = person ? rng.uniform(11...18) : rng.uniform(30...48)
                let ry = person ? rng.uniform(28...45) : rng.uniform(16...24)
                let speed = person ? rng.uniform(25...70) : rng.uniform(70...140)
                let fromLeft = rng.uniform(0...1) < 0.5
                let cam = sc.pose(at: start, width: width)
                let x0 = cam.x + (fromLeft ? -1 : 1) * (160 * cam.scale + rx + 4)
                let y0 = cam.y + rng.uniform(-25...25)
                let sign: Double = rng.uniform(0...1) < 0.5 ? -1 : 1
                let level = Float(sign * rng.uniform(25...65))
                let crossing = (320 * cam.scale + 2 * rx + 8) / speed
                sc.objects.append(MovingObject(
                    x0: x0, y0: y0, vx: fromLeft ? speed : -speed, vy: rng.uniform(-5...5), start: start,
                    end: start + crossing, rx: rx, ry: ry, level: level, stripes: Float(rng.uniform(0...18)),
                    ellipse: person))
            }
            return sc
        }
        for i in 0..<12 { out.append(scenario("still-object-\(i)", "still, object enters", .still, seconds: 20, objects: 1)) }
        for i in 0..<12 { out.append(scenario("walk-object-\(i)", "walking, object enters", .walk, seconds: 20, objects: 1)) }
        for i in 0..<6 { out.append(scenario("pan-object-\(i)", "panning, object enters", .pan, seconds: 20, objects: 1)) }
        for i in 0..<4 { out.append(scenario("shake-object-\(i)", "shaking, object enters", .shake, seconds: 20, objects: 1)) }
        for i in 0..<6 {
            out.append(scenario("night-object-\(i)", "night, object enters", i % 2 == 0 ? .still : .walk, seconds: 20,
                                objects: 1, night: true))
        }
        let motionSequences = max(3, Int((motionHours * 60).rounded()))
        let kinds: [CameraMotion] = [.pan, .walk, .shake]
        for i in 0..<motionSequences {
            out.append(scenario("\(kinds[i % 3].rawValue)-nothing-\(i)", "camera moves, nothing happens", kinds[i % 3],
                                seconds: 60, objects: 0))
        }
        for i in 0..<6 {
            var l = Lighting()
            switch i % 3 {
            case 0: l.steps = [(rng.uniform(10...20), rng.uniform(1.4...1.8)), (rng.uniform(35...50), rng.uniform(0.5...0.7))]
            case 1: l.rampAmplitude = rng.uniform(0.2...0.35); l.rampPeriod = rng.uniform(8...20)
            default: l.shadowSpeed = rng.uniform(20...60); l.shadowDepth = rng.uniform(0.25...0.45)
            }
            out.append(scenario("light-nothing-\(i)", "lighting changes, nothing happens", i < 3 ? .still : .walk,
                                seconds: 60, objects: 0, lighting: l))
        }
        for i in 0..<6 {
            out.append(scenario("night-nothing-\(i)", "night, nothing happens", i % 2 == 0 ? .still : .walk,
                                seconds: 60, objects: 0, night: true))
        }
        return out
    }

    public func audioScenarios() -> [AudioScenario] {
        var rng = SeededRandom(seed: seed ^ 0xA0D1)
        var out: [AudioScenario] = []
        func add(_ name: String, _ category: String, _ seconds: Double, _ bg: AudioScenario.Background,
                 _ sounds: [(Double, AudioScenario.Sound)]) {
            out.append(AudioScenario(name: name, category: category, duration: seconds, background: bg,
                                     sounds: sounds.map { (time: $0.0, sound: $0.1) }, seed: rng.next()))
        }
        for i in 0..<10 {
            add("bang-\(i)", "bang in a quiet room", 20, .room(floor: rng.uniform(-65...(-50))),
                [(rng.uniform(5...15), .bang(level: rng.uniform(-24...(-6))))])
        }
        for i in 0..<10 {
            add("shout-\(i)", "shout in a room", 20, .room(floor: rng.uniform(-62...(-48))),
                [(rng.uniform(5...15), .shout(level: rng.uniform(-28...(-12)), seconds: rng.uniform(0.5...1.5)))])
        }
        for i in 0..<8 {
            let floor = rng.uniform(-42...(-34))
            add("street-shout-\(i)", "shout or bang in traffic", 30, .street(floor: floor, swell: rng.uniform(4...8)),
                [(rng.uniform(8...22), i % 2 == 0 ? .shout(level: floor + rng.uniform(24...32), seconds: rng.uniform(0.6...1.4))
                                                 : .bang(level: floor + rng.uniform(28...36)))])
        }
        for i in 0..<4 {
            add("siren-\(i)", "siren starts", 40, .street(floor: rng.uniform(-45...(-38)), swell: 3),
                [(rng.uniform(8...15), .siren(level: rng.uniform(-22...(-15)), seconds: 20))])
        }
        for i in 0..<6 {
            let floor = rng.uniform(-55...(-45))
            add("walk-bang-\(i)", "walking, bang or shout", 30, .walking(floor: floor, gust: rng.uniform(4...8), steps: 10),
                [(rng.uniform(8...22), i % 2 == 0 ? .bang(level: floor + rng.uniform(32...40))
                                                 : .shout(level: floor + rng.uniform(26...34), seconds: 1))])
        }
        let quiet = max(2, Int((motionHours * 30).rounded()))
        for i in 0..<quiet {
            add("walk-nothing-\(i)", "walking, wind, steps: nothing happens", 60,
                .walking(floor: rng.uniform(-58...(-42)), gust: rng.uniform(4...9), steps: rng.uniform(6...11)), [])
        }
        for i in 0..<quiet {
            add("street-nothing-\(i)", "street swells: nothing happens", 60,
                .street(floor: rng.uniform(-45...(-32)), swell: rng.uniform(4...9)), [])
        }
        return out
    }
}

/// Events against labels for one category (or a whole set).
public struct Score: Sendable {
    public var sequences = 0
    public var seconds = 0.0
    public var labels = 0
    public var found = 0
    public var events = 0
    public var trueEvents = 0
    public var falseEvents = 0
    /// How long false events lasted in all.
    public var falseSeconds = 0.0
    /// Detector onset − label onset, seconds, for each label found.
    public var timeErrors: [Double] = []

    public var recall: Double { labels == 0 ? .nan : Double(found) / Double(labels) }
    public var precision: Double { events == 0 ? .nan : Double(trueEvents) / Double(events) }
    public var falsePerHour: Double { seconds == 0 ? .nan : Double(falseEvents) / (seconds / 3600) }
    public var medianTimeError: Double {
        guard !timeErrors.isEmpty else { return .nan }
        let s = timeErrors.map(abs).sorted()
        return s[s.count / 2]
    }

    mutating func add(_ o: Score) {
        sequences += o.sequences
        seconds += o.seconds
        labels += o.labels
        found += o.found
        events += o.events
        trueEvents += o.trueEvents
        falseEvents += o.falseEvents
        falseSeconds += o.falseSeconds
        timeErrors += o.timeErrors
    }

    /// Matches events (start, end in seconds) to labels by their onset: an event is true when it
    /// begins while a label lasts (from 0.5 s before its start to 0.5 s after its end), and a
    /// label is found by the earliest event beginning between 0.5 s before it and its end. An
    /// event already going on when the label begins (a false alarm that happens to last into
    /// it) counts as false and finds nothing.
    static func of(events: [(start: Double, end: Double)], labels: [(start: Double, end: Double)], seconds: Double) -> Score {
        var s = Score()
        s.sequences = 1
        s.seconds = seconds
        s.labels = labels.count
        s.events = events.count
        for e in events {
            if labels.contains(where: { e.start >= $0.start - 0.5 && e.start <= $0.end + 0.5 }) {
                s.trueEvents += 1
            } else {
                s.falseEvents += 1
                s.falseSeconds += max(0.1, e.end - e.start)
            }
        }
        for l in labels {
            if let e = events.filter({ $0.start >= l.start - 0.5 && $0.start <= l.end }).min(by: { $0.start < $1.start }) {
                s.found += 1
                s.timeErrors.append(e.start - l.start)
            }
        }
        return s
    }
}

/// Results of one evaluation run: per category, ours and the frame-difference baseline.
public struct EvaluationReport: Sendable {
    public var set: String
    public var size = ""
    public var video: [(category: String, ours: Score, baseline: Score)] = []
    public var audio: [(category: String, ours: Score)] = []
    /// Sequences where our detector raised a false event or missed a label, for a closer look
    /// (`detector-eval --trace NAME`).
    public var misses: [String] = []
    /// Wall time and CPU time of our video detector alone per sample, microseconds.
    public var microsecondsPerSample = 0.0

    public func total(_ pick: (String) -> Bool) -> (ours: Score, baseline: Score) {
        var o = Score(), b = Score()
        for v in video where pick(v.category) {
            o.add(v.ours)
            b.add(v.baseline)
        }
        return (o, b)
    }

    public var audioTotal: Score {
        var o = Score()
        for a in audio { o.add(a.ours) }
        return o
    }
}

public enum Evaluation {
    /// Runs every scenario of `set` through our detectors and the baseline.
    public static func run(_ set: EvaluationSet, progress: (@Sendable (String) -> Void)? = nil) -> EvaluationReport {
        let scenarios = set.videoScenarios()
        let results = Results(count: scenarios.count)
        var report = EvaluationReport(set: set.name)
        report.size = "\(set.width)x\(set.height)"
        let world = set.makeWorld()
        DispatchQueue.concurrentPerform(iterations: scenarios.count) { i in
            let r = runVideo(scenarios[i], set: set, world: world)
            results.put(i, r)
            progress?(scenarios[i].name)
        }
        var order: [String] = []
        var byCategory: [String: (Score, Score)] = [:]
        var micros = 0.0, samples = 0
        for (i, sc) in scenarios.enumerated() {
            let r = results.get(i)
            if byCategory[sc.category] == nil { order.append(sc.category) }
            var entry = byCategory[sc.category] ?? (Score(), Score())
            entry.0.add(r.ours)
            entry.1.add(r.baseline)
            byCategory[sc.category] = entry
            micros += r.micros
            samples += r.samples
            if r.ours.falseEvents > 0 { report.misses.append("\(sc.name) (\(r.ours.falseEvents) false)") }
            if r.ours.found < r.ours.labels { report.misses.append("\(sc.name) (missed)") }
        }
        report.video = order.map { ($0, byCategory[$0]!.0, byCategory[$0]!.1) }
        report.microsecondsPerSample = micros / Double(max(1, samples))
        let audio = set.audioScenarios()
        var audioOrder: [String] = []
        var audioBy: [String: Score] = [:]
        let audioResults = Results(count: audio.count)
        DispatchQueue.concurrentPerform(iterations: audio.count) { i in
            audioResults.put(i, (runAudio(audio[i]), Score(), 0, 0))
        }
        for (i, sc) in audio.enumerated() {
            if audioBy[sc.category] == nil { audioOrder.append(sc.category) }
            var s = audioBy[sc.category] ?? Score()
            s.add(audioResults.get(i).ours)
            audioBy[sc.category] = s
        }
        report.audio = audioOrder.map { ($0, audioBy[$0]!) }
        return report
    }

    /// Renders a scenario at 10 samples a second (the frames the detector would take from 30 fps)
    /// and runs both video detectors on every frame, through the same entry point `run` uses.
    public static func runVideo(_ sc: VideoScenario, set: EvaluationSet, world: World, trace: Bool = false)
        -> (ours: Score, baseline: Score, micros: Double, samples: Int)
    {
        let format = VideoFormat(width: set.width, height: set.height, pixelFormat: .yuyv,
                                 frameRate: FrameRate(30))
        let ours = VideoActivityDetector(format: format)
        let base = FrameDifferenceDetector(format: format)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: format.frameSize, alignment: 64)
        defer { buffer.deallocate() }
        var rng = SeededRandom(seed: sc.seed ^ 0x0015E)
        var oursEvents: [(start: Double, end: Double)] = []
        var baseEvents: [(start: Double, end: Double)] = []
        func collect(_ u: DetectorUpdate?, into list: inout [(start: Double, end: Double)]) {
            if case .ended(let e)? = u { list.append((e.start.seconds, (e.end ?? e.start).seconds)) }
        }
        var micros = 0.0
        let steps = Int(sc.duration * 10)
        for k in 0..<steps {
            let t = Double(k) / 10
            sc.render(at: t, width: set.width, height: set.height, world: world,
                      into: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), rng: &rng)
            let frame = RawFrame(format: format, base: buffer.baseAddress!, time: MonotonicTime(nanoseconds: Int64(t * 1e9)),
                                 sequence: UInt64(k * 3), bufferIndex: 0)
            let c0 = DispatchTime.now().uptimeNanoseconds
            let u = ours.process(frame)
            micros += Double(DispatchTime.now().uptimeNanoseconds - c0) / 1000
            if trace {
                let f = ours.lastSample
                print(String(format: "t=%5.1f reliable=%d motion=(%6.2f,%6.2f) fit=%.2f noise=%.2f misreg=%.3f active=%d %@",
                             t, f.reliable ? 1 : 0, f.motion.0, f.motion.1, f.fitError, f.noise, f.misregistration,
                             f.activeCells, u.map { "\($0)" } ?? ""))
            }
            collect(u, into: &oursEvents)
            collect(base.process(frame), into: &baseEvents)
        }
        let end = MonotonicTime(nanoseconds: Int64(sc.duration * 1e9))
        collect(ours.finish(at: end), into: &oursEvents)
        collect(base.finish(at: end), into: &baseEvents)
        let labels = sc.labels(width: set.width, height: set.height)
        return (Score.of(events: oursEvents, labels: labels, seconds: sc.duration),
                Score.of(events: baseEvents, labels: labels, seconds: sc.duration), micros, steps)
    }

    /// Runs the audio detector over a scenario in 10 ms blocks, as the microphone thread feeds it.
    public static func runAudio(_ sc: AudioScenario) -> Score {
        let pcm = sc.render()
        let det = AudioEventDetector(sampleRate: AudioScenario.rate, channels: 1)
        var events: [(start: Double, end: Double)] = []
        let block = 480
        pcm.withUnsafeBufferPointer { p in
            var i = 0
            while i + block <= p.count {
                let t = MonotonicTime(nanoseconds: Int64(Double(i) / Double(AudioScenario.rate) * 1e9))
                det.process(UnsafeBufferPointer(rebasing: p[i..<(i + block)]), frames: block, time: t) { u in
                    if case .ended(let e) = u { events.append((e.start.seconds, (e.end ?? e.start).seconds)) }
                }
                i += block
            }
        }
        if case .ended(let e)? = det.finish(at: MonotonicTime(nanoseconds: Int64(sc.duration * 1e9))) {
            events.append((e.start.seconds, (e.end ?? e.start).seconds))
        }
        return Score.of(events: events, labels: sc.labels, seconds: sc.duration)
    }

    /// The report as a table.
    public static func format(_ r: EvaluationReport) -> String {
        func f(_ v: Double, _ digits: Int = 2) -> String { v.isNaN ? "—" : String(format: "%.\(digits)f", v) }
        var s = "detector evaluation, \(r.set) set\n"
        s += "video (ours | frame difference)        seqs  hours  labels  recall        precision     onset err s   false ev  false/h\n"
        for v in r.video {
            let o = v.ours, b = v.baseline
            s += v.category.padding(toLength: 38, withPad: " ", startingAt: 0)
            s += String(format: " %5d %6.2f %7d", o.sequences, o.seconds / 3600, o.labels)
            s += "  \(f(o.recall)) | \(f(b.recall))   \(f(o.precision)) | \(f(b.precision))   \(f(o.medianTimeError)) | \(f(b.medianTimeError))"
            s += String(format: "   %3d | %-4d %6.1f | %.1f\n", o.falseEvents, b.falseEvents, o.falsePerHour, b.falsePerHour)
        }
        let all = r.total { _ in true }
        let motion = r.total { $0.contains("nothing happens") && $0.hasPrefix("camera") }
        let labelled = r.total { $0.contains("object enters") }
        s += "all object sequences: recall \(f(labelled.ours.recall)) (baseline \(f(labelled.baseline.recall))), "
        s += "median onset error \(f(labelled.ours.medianTimeError)) s\n"
        s += "camera moving, nothing happening: \(motion.ours.falseEvents) false events in \(f(motion.ours.seconds / 3600)) h = "
        s += "\(f(motion.ours.falsePerHour, 1))/h (baseline \(motion.baseline.falseEvents) = \(f(motion.baseline.falsePerHour, 1))/h, "
        s += "in false alarm \(f(100 * motion.baseline.falseSeconds / max(1, motion.baseline.seconds), 0)) % of the time)\n"
        s += "all footage: \(all.ours.falseEvents) false events (baseline \(all.baseline.falseEvents)) in \(f(all.ours.seconds / 3600)) h; "
        s += "precision \(f(all.ours.precision)) (baseline \(f(all.baseline.precision)))\n"
        if !r.misses.isEmpty { s += "video misses and false events: " + r.misses.joined(separator: ", ") + "\n" }
        s += String(format: "video detector cost: %.0f µs per sample (%@ frames, 160x90 luma)\n", r.microsecondsPerSample, r.size)
        s += "audio                                   seqs  hours  labels  recall  precision  onset err s  false ev  false/h\n"
        for a in r.audio {
            let o = a.ours
            s += a.category.padding(toLength: 38, withPad: " ", startingAt: 0)
            s += String(format: " %5d %6.2f %7d", o.sequences, o.seconds / 3600, o.labels)
            s += "  \(f(o.recall))    \(f(o.precision))       \(f(o.medianTimeError, 3))"
            s += String(format: "       %3d  %6.1f\n", o.falseEvents, o.falsePerHour)
        }
        let at = r.audioTotal
        s += "audio overall: recall \(f(at.recall)), precision \(f(at.precision)), \(at.falseEvents) false events in \(f(at.seconds / 3600)) h\n"
        return s
    }
}

/// Results filled in from concurrent workers.
final class Results: @unchecked Sendable {
    private var items: [(ours: Score, baseline: Score, micros: Double, samples: Int)?]
    private let lock = NSLock()

    init(count: Int) { items = Array(repeating: nil, count: count) }

    func put(_ i: Int, _ v: (ours: Score, baseline: Score, micros: Double, samples: Int)) {
        lock.lock()
        items[i] = v
        lock.unlock()
    }

    func get(_ i: Int) -> (ours: Score, baseline: Score, micros: Double, samples: Int) {
        lock.lock()
        defer { lock.unlock() }
        return items[i]!
    }
}

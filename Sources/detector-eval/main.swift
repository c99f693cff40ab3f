// detector-eval: the activity detector against a plain frame-difference detector on generated,
// labelled footage. Usage: detector-eval [--set tuning|held-out|both] [--hours H] [--size WxH] [--trace NAME]
import BodycamDetectorEval
import Foundation

var setName = "both"
var hours = 1.0
var size = (640, 360)
var trace: String?
var args = CommandLine.arguments.dropFirst()
func usage(_ message: String) -> Never {
    FileHandle.standardError.write(Data("detector-eval: \(message)\nusage: detector-eval [--set tuning|held-out|both] [--hours H] [--size WxH (640x360)] [--trace NAME]\n".utf8))
    exit(64)
}
while let a = args.popFirst() {
    switch a {
    case "--set":
        guard let v = args.popFirst() else { usage("--set needs a value") }
        setName = v
    case "--hours":
        guard let v = args.popFirst().flatMap(Double.init), v > 0, v <= 100 else { usage("--hours needs a number in (0, 100]") }
        hours = v
    case "--size":
        let parts = (args.popFirst() ?? "").split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 160, parts[1] >= 90, parts[0] % 2 == 0 else { usage("--size needs WxH, at least 160x90") }
        size = (parts[0], parts[1])
    case "--trace":
        guard let v = args.popFirst() else { usage("--trace needs a scenario name") }
        trace = v
    case "-h", "--help": usage("")
    default: usage("unknown argument \(a)")
    }
}
var sets: [EvaluationSet] = []
if setName == "tuning" || setName == "both" { sets.append(.tuning(hours: hours)) }
if setName == "held-out" || setName == "both" { sets.append(.heldOut(hours: hours)) }
guard !sets.isEmpty else { usage("--set must be tuning, held-out or both") }
for var set in sets {
    set.width = size.0
    set.height = size.1
    if let name = trace {
        // One scenario, sample by sample, with its labels.
        guard let sc = set.videoScenarios().first(where: { $0.name == name }) else { usage("no scenario \(name)") }
        print("labels: \(sc.labels(width: set.width, height: set.height))")
        let world = set.makeWorld()
        let r = Evaluation.runVideo(sc, set: set, world: world, trace: true)
        print("ours: \(r.ours.found)/\(r.ours.labels) found, \(r.ours.falseEvents) false; baseline: \(r.baseline.found)/\(r.baseline.labels), \(r.baseline.falseEvents) false")
        continue
    }
    let start = Date()
    let report = Evaluation.run(set)
    print(Evaluation.format(report))
    print(String(format: "(%.0f s)\n", Date().timeIntervalSince(start)))
}

import BodycamCore
import Testing

@testable import BodycamMedia

func scanError(_ bytes: [UInt8]) -> MP4Error? {
    if case .failure(let error) = scan(bytes) { return error }
    return nil
}

/// Box headers: 32- and 64-bit sizes, size 0, `uuid`, truncation and impossible sizes.
@Suite struct MP4BoxHeaderTests {
    @Test func largesizeSizeZeroAndUUID() throws {
        var bytes: [UInt8] =
            [0, 0, 0, 1] + Array("free".utf8) + [0, 0, 0, 0, 0, 0, 0, 24] + [UInt8](repeating: 7, count: 8)
        bytes += [0, 0, 0, 28] + Array("uuid".utf8) + [UInt8](repeating: 0xee, count: 16) + [1, 2, 3, 4]
        bytes += [0, 0, 0, 0] + Array("skip".utf8) + [9, 9, 9, 9, 9]  // size 0: to the end of the file
        let top = try topLevel(bytes).get()
        #expect(
            top.boxes == [
                MP4Box(type: "free", offset: 0, size: 24, headerSize: 16),
                MP4Box(type: "uuid", offset: 24, size: 28, headerSize: 24),
                MP4Box(type: "skip", offset: 52, size: 13, headerSize: 8),
            ])
        #expect(top.truncatedAt == nil)
        #expect(top.boxes[1].payloadSize == 4)
    }

    @Test func truncationIsReportedWhereTheBoxStarts() throws {
        let whole = box("free", [1, 2, 3, 4, 5, 6, 7, 8])
        // The file ends inside a header, inside a 32-bit box, inside a largesize header and box.
        let cases: [[UInt8]] = [
            whole + [0, 0, 0],
            whole + box("mdat", [UInt8](repeating: 0, count: 20)).dropLast(1),
            whole + [0, 0, 0, 1] + Array("mdat".utf8) + [0, 0, 0],
            whole + [0, 0, 0, 1] + Array("mdat".utf8) + [0, 0, 0, 0, 0, 0, 0, 40] + [1, 2],
            whole + [0xff, 0xff, 0xff, 0xff] + Array("mdat".utf8),
            whole + [0, 0, 0, 1] + Array("mdat".utf8) + [UInt8](repeating: 0xff, count: 8),
        ]
        for bytes in cases {
            let top = try topLevel(bytes).get()
            #expect(top.boxes == [MP4Box(type: "free", offset: 0, size: 16, headerSize: 8)])
            #expect(top.truncatedAt == 16)
        }
    }

    @Test(
        arguments: [
            [0, 0, 0, 7] + Array("free".utf8),
            [0, 0, 0, 1] + Array("free".utf8) + [0, 0, 0, 0, 0, 0, 0, 15],
            [0, 0, 0, 20] + Array("uuid".utf8) + [UInt8](repeating: 0, count: 16),
        ] as [[UInt8]])
    func impossibleSizesAreErrors(header: [UInt8]) {
        let bytes = box("free") + header + [UInt8](repeating: 0, count: 32)
        guard case .failure(let error) = topLevel(bytes) else {
            Issue.record("no error")
            return
        }
        #expect(error.offset == 8)
        guard case .sizeTooSmall = error.problem else {
            Issue.record("wrong problem: \(error)")
            return
        }
    }

    @Test func childLargerThanItsParentIsAnError() throws {
        var inner = box("mvhd", [UInt8](repeating: 0, count: 12))
        putBE32(&inner, 0, 100)  // claims 100 bytes inside a 28-byte parent
        let moov = box("moov", box("free") + inner)
        let parent = try #require(try topLevel(moov).get().boxes.first)
        guard case .failure(let error) = children(parent, in: moov) else {
            Issue.record("no error")
            return
        }
        #expect(error.offset == 16)
        #expect(error.problem == .exceedsParent(size: 100, available: 20))
    }

    /// Nested containers are followed to `maxDepth` and no deeper: a hostile file cannot make
    /// the reader recurse without bound.
    @Test func nestingDepthIsCapped() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var bytes = box("free")
            for _ in 0..<depth { bytes = box("moov", bytes) }
            return bytes
        }
        let ok = nested(MP4Reader.maxDepth - 1)
        let visited = try ok.withUnsafeBytes { raw in
            try Result { () throws(MP4Error) in try MP4Reader.walk(raw) }.get()
        }
        #expect(visited.map(\.depth) == Array(0..<MP4Reader.maxDepth))
        #expect(visited.last?.box.type == "free")

        let deep = nested(200)
        let result = deep.withUnsafeBytes { raw in
            Result { () throws(MP4Error) in try MP4Reader.walk(raw) }
        }
        guard case .failure(let error) = result else {
            Issue.record("no error for 200 levels")
            return
        }
        #expect(error.problem == .nestingTooDeep(limit: MP4Reader.maxDepth))

        let longPath = [FourCC](repeating: "moov", count: MP4Reader.maxDepth + 1)
        #expect(throws: MP4Error.self) {
            try deep.withUnsafeBytes { raw in
                try Result { () throws(MP4Error) in try MP4Reader.boxes(at: longPath, in: raw) }.get()
            }
        }
    }
}

/// A clip cut by a power failure, or damaged, read by `scanFragmented`.
@Suite struct TornAndDamagedClipTests {
    let clip: ClipAssembler

    init() throws { clip = try fixtureClip() }

    /// Cut at every byte of the last fragment: the first fragment is all that is valid and the
    /// rest is trailing, never an error.
    @Test func cutInsideTheLastFragment() throws {
        let firstEnd = clip.fragmentEnds[0]
        for cut in firstEnd..<clip.bytes.count {
            let mp4 = try scan(Array(clip.bytes[..<cut])).get()
            #expect(mp4.fragments.count == 1, "cut at \(cut)")
            #expect(mp4.validEnd == firstEnd, "cut at \(cut)")
            #expect(mp4.trailingBytes == cut - firstEnd, "cut at \(cut)")
        }
    }

    /// Cut anywhere: a cut inside the init segment is an error (nothing is playable), any later
    /// cut keeps exactly the fragments that are complete.
    @Test func cutAnywhere() {
        let initSize = clip.fragmentStarts[0]
        for cut in 0...clip.bytes.count {
            switch scan(Array(clip.bytes[..<cut])) {
            case .success(let mp4):
                #expect(cut >= initSize, "cut at \(cut) inside the init segment was accepted")
                let complete = clip.fragmentEnds.filter { $0 <= cut }
                #expect(mp4.fragments.map(\.end) == complete, "cut at \(cut)")
                #expect(mp4.validEnd == (complete.last ?? initSize), "cut at \(cut)")
            case .failure(let error):
                #expect(cut < initSize, "cut at \(cut): \(error)")
                switch error.problem {
                case .truncated, .missing: break
                default: Issue.record("cut at \(cut): unexpected \(error)")
                }
            }
        }
    }

    /// A file system can leave a torn file's tail as zeros: that is torn, not damaged.
    @Test func zeroFilledTailIsTorn() throws {
        let appended = try scan(clip.bytes + [UInt8](repeating: 0, count: 4096)).get()
        #expect(appended.fragments.count == 2)
        #expect(appended.validEnd == clip.bytes.count)
        #expect(appended.trailingBytes == 4096)

        // The last fragment's moof was written, its mdat never was.
        var zeroed = clip.bytes
        let moof = try #require(boxes("moof", in: clip.bytes).last)
        for i in moof.end..<zeroed.count { zeroed[i] = 0 }
        let mp4 = try scan(zeroed).get()
        #expect(mp4.fragments.count == 1)
        #expect(mp4.validEnd == clip.fragmentEnds[0])

        // Nonzero garbage in the same place is damage, reported where it starts.
        zeroed[moof.end + 5] = 1
        #expect(scanError(zeroed)?.offset == moof.end)
    }

    /// Garbage where the next top-level box would start: a size past the end of the file is a
    /// torn write; a size below 8 cannot be written by anyone and is an error at its offset.
    @Test func garbageSizesAfterTheLastFragment() throws {
        let end = clip.bytes.count
        let huge = try scan(clip.bytes + [0xff, 0xff, 0xff, 0xff] + Array("moof".utf8) + [1, 2, 3]).get()
        #expect(huge.validEnd == end)
        #expect(huge.trailingBytes == 11)
        let large = try scan(clip.bytes + [0, 0, 0, 1] + Array("moof".utf8) + [UInt8](repeating: 0xff, count: 8)).get()
        #expect(large.validEnd == end)
        for size: UInt32 in [1, 2, 7] {
            var tail: [UInt8] = [0, 0, 0, 0] + Array("moof".utf8) + [0, 0, 0, 0, 0, 0, 0, 9]
            putBE32(&tail, 0, size)
            let error = try #require(scanError(clip.bytes + tail), "size \(size)")
            #expect(error.offset == end)
            if case .sizeTooSmall = error.problem {} else { Issue.record("size \(size): \(error)") }
        }
    }

    /// A box inside the first moof that claims more than the moof: typed error, at the box.
    @Test func childOfMoofTooLarge() throws {
        var bytes = clip.bytes
        let traf = try #require(boxes("moof traf", in: bytes).first)
        putBE32(&bytes, traf.offset, 0xffff_fff0)
        let error = try #require(scanError(bytes))
        #expect(error.offset == traf.offset)
        if case .exceedsParent = error.problem {} else { Issue.record("\(error)") }
    }

    @Test func sampleCountLargerThanTheTable() throws {
        var bytes = clip.bytes
        let trun = try #require(boxes("moof traf trun", in: bytes).first)
        putBE32(&bytes, trun.payloadOffset + 4, 0xffff_ffff)
        let error = try #require(scanError(bytes))
        #expect(error.box == "trun")
        if case .truncated = error.problem {} else { Issue.record("\(error)") }
    }

    /// A trun whose samples take no bytes of the table (every value from defaults) can claim
    /// four billion samples in a few bytes: refused before anything is allocated for them.
    @Test func sampleCountWithoutATableIsBounded() throws {
        var bytes = clip.bytes
        let trun = try #require(boxes("moof traf trun", in: bytes).dropFirst().first)  // audio: flags 0x201
        putBE32(&bytes, trun.payloadOffset, 0x0000_0001)  // data offset only
        #expect(try scan(bytes).get().fragments[0].track(2)?.sampleCount == 50)  // zero-size samples
        putBE32(&bytes, trun.payloadOffset + 4, 0xffff_ffff)
        let error = try #require(scanError(bytes))
        #expect(error.problem == .tooManySamples(0xffff_ffff))
        #expect(error.offset == trun.payloadOffset + 4)
    }

    @Test(arguments: [-1, 1, 1 << 20])
    func dataOffsetOutsideTheMdat(shift: Int) throws {
        var bytes = clip.bytes
        let trun = try #require(boxes("moof traf trun", in: bytes).first)  // first fragment, video
        // -1 starts one byte before the mdat's contents; +1 makes the run end one byte past them
        // (audio follows video, so shift the audio run instead); 1 MiB is far outside.
        let target = shift == 1 ? try #require(boxes("moof traf trun", in: bytes).dropFirst().first) : trun
        let targetAt = target.payloadOffset + 8
        let original = Int(Int32(bitPattern: be32(bytes, targetAt)))
        putBE32(&bytes, targetAt, UInt32(bitPattern: Int32(original + shift)))
        let error = try #require(scanError(bytes))
        guard case .sampleOutsideMdat(let track, _, _, let mdat) = error.problem else {
            Issue.record("\(error)")
            return
        }
        #expect(track == (shift == 1 ? 2 : 1))
        #expect(mdat.upperBound == clip.fragmentEnds[0])
        #expect(error.offset == target.offset)
    }

    @Test func sequenceNumbersMustIncrease() throws {
        var bytes = clip.bytes
        let mfhd = try #require(boxes("moof mfhd", in: bytes).last)
        putBE32(&bytes, mfhd.payloadOffset + 4, 1)
        let error = try #require(scanError(bytes))
        #expect(error.problem == .sequenceNotIncreasing(previous: 1, found: 1))
        #expect(error.offset == mfhd.payloadOffset + 4)
    }

    @Test func unknownTrack() throws {
        var bytes = clip.bytes
        let tfhd = try #require(boxes("moof traf tfhd", in: bytes).first)
        putBE32(&bytes, tfhd.payloadOffset + 4, 9)
        let error = try #require(scanError(bytes))
        #expect(error.problem == .unknownTrack(9))
        #expect(error.offset == tfhd.payloadOffset + 4)
    }

    @Test func moofMustBeFollowedByMdat() throws {
        var bytes = clip.bytes
        let moof = try #require(boxes("moof", in: bytes).first)
        bytes.replaceSubrange((moof.end + 4)..<(moof.end + 8), with: Array("free".utf8))
        let error = try #require(scanError(bytes))
        #expect(error.problem == .unexpected("free"))
        #expect(error.offset == moof.end)
    }

    @Test func initSegmentProblems() throws {
        let initSegment = Array(clip.bytes[..<clip.fragmentStarts[0]])
        var noFtyp = initSegment
        noFtyp.replaceSubrange(4..<8, with: Array("free".utf8))
        #expect(scanError(noFtyp)?.problem == .unexpected("free"))
        #expect(scanError(box("ftyp", Array("isom".utf8) + [0, 0, 0, 0]))?.problem == .missing("moov"))
        #expect(scanError([])?.problem == .truncated(needed: 8, available: 0))

        var noMvex = initSegment
        let mvex = try #require(boxes("moov mvex", in: initSegment).first)
        noMvex.replaceSubrange((mvex.offset + 4)..<(mvex.offset + 8), with: Array("free".utf8))
        #expect(scanError(noMvex)?.problem == .missing("mvex"))

        var noTrex = initSegment
        let trex = try #require(boxes("moov mvex trex", in: initSegment).last)
        noTrex.replaceSubrange((trex.offset + 4)..<(trex.offset + 8), with: Array("free".utf8))
        #expect(scanError(noTrex)?.problem == .missing("trex"))

        var noAvcC = initSegment
        let avcC = try #require(boxes("moov trak mdia minf stbl stsd avc1 avcC", in: initSegment).first)
        noAvcC[avcC.offset + 4] = UInt8(ascii: "x")
        #expect(scanError(noAvcC)?.problem == .missing("avcC"))
    }

    /// Random damage to the structural bytes (init segment and fragment headers): the reader
    /// must return an error or a structure that is consistent with the bytes, and never trap.
    @Test func randomDamageNeverBreaksTheReader() {
        var rng = SplitMix64(seed: 0x6d70_3472)
        var structural: [Int] = Array(0..<clip.fragmentStarts[0])
        for moof in boxes("moof", in: clip.bytes) { structural += Array(moof.offset..<(moof.end + 8)) }
        let interesting: [UInt32] = [0, 1, 7, 8, 9, 15, 16, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]
        var accepted = 0
        for round in 0..<3000 {
            var bytes = clip.bytes
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let at = structural[Int(rng.next() % UInt64(structural.count))]
                if rng.next() % 2 == 0, at + 4 <= bytes.count {
                    putBE32(&bytes, at, interesting[Int(rng.next() % UInt64(interesting.count))])
                } else {
                    bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                }
            }
            if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            guard case .success(let mp4) = scan(bytes) else { continue }
            accepted += 1
            #expect(mp4.validEnd <= bytes.count, "round \(round)")
            #expect(mp4.trailingBytes == bytes.count - mp4.validEnd, "round \(round)")
            var previousEnd = mp4.initSegmentSize
            var previousSequence: UInt32?
            for f in mp4.fragments {
                #expect(f.offset >= previousEnd, "round \(round)")
                #expect(f.end <= mp4.validEnd, "round \(round)")
                if let p = previousSequence { #expect(f.sequenceNumber > p, "round \(round)") }
                for t in f.trackFragments {
                    #expect(mp4.track(id: t.trackID) != nil, "round \(round)")
                    for s in t.samples {
                        #expect(s.offset >= f.mdatPayload.lowerBound, "round \(round)")
                        #expect(s.offset + s.size <= f.mdatPayload.upperBound, "round \(round)")
                    }
                }
                previousEnd = f.end
                previousSequence = f.sequenceNumber
            }
        }
        #expect(accepted > 0)  // the damage was not all fatal, so the checks above did run
    }
}

/// A small deterministic generator, so a failing round can be replayed.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

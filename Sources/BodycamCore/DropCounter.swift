/// Frames the camera lost before the pipeline saw them, told apart from the frames the pipeline
/// itself handed back unencoded ("ours").
///
/// Every missing frame leaves a gap in the sequence numbers, whoever lost it; the device's share
/// is the gaps less ours. Ours are counted the moment they happen, the gap they leave only when
/// the encoder sees the next frame: in between (for seconds, when the camera is unplugged right
/// after) the gaps less ours read low. So the device's share is never taken back, and a clip
/// that closes in between does not report a negative count. A source whose sequence starts
/// again (reopened, without carrying its numbering on) is re-based, for the same reason.
public struct CaptureDropCounter: Sendable {
    private var lastSequence: UInt64?
    private var gaps = 0
    /// Frames the device lost so far (never decreases).
    public private(set) var device = 0

    public init() {}

    /// A frame reached the encoder; `ours` is the pipeline's drops so far.
    public mutating func saw(sequence: UInt64, ours: Int) {
        if let last = lastSequence {
            if sequence > last {
                gaps += Int(clamping: sequence - last - 1)
            } else if sequence < last {
                gaps = max(gaps, ours + device)
            }
            // The same number again (some drivers repeat one) is no gap and no restart.
        }
        lastSequence = sequence
    }

    /// The device's drops, given the pipeline's drops so far (`ours` only grows).
    public mutating func deviceDrops(ours: Int) -> Int {
        device = max(device, gaps - ours)
        return device
    }
}

import Foundation
import Testing

@testable import BodycamRuntime

/// The queue between the capture and encoder threads.
@Suite("BlockingQueue")
struct BlockingQueueTests {
    @Test("a timed pop returns an element at once, times out when empty, and says closed once drained",
          .timeLimit(.minutes(1)))
    func timedPop() throws {
        let q = BlockingQueue<Int>(capacity: 3)
        #expect(q.tryPush(1) && q.tryPush(2))
        try #require(q.pop(waitingAtMost: 1_000_000_000) == .element(1), "first element not returned")
        let before = DispatchTime.now().uptimeNanoseconds
        try #require(q.pop(waitingAtMost: 1_000_000_000) == .element(2), "second element not returned")
        try #require(q.pop(waitingAtMost: 50_000_000) == .timedOut, "an empty queue did not time out")
        // It waited for the time given (not a spin, not forever).
        #expect(DispatchTime.now().uptimeNanoseconds - before >= 50_000_000)
        // An element pushed from another thread while waiting wakes the pop.
        let pusher = Thread { usleep(20_000); _ = q.tryPush(3) }
        pusher.start()
        try #require(q.pop(waitingAtMost: 5_000_000_000) == .element(3), "a push while waiting did not wake the pop")
        #expect(q.tryPush(4))
        q.close()
        try #require(q.pop(waitingAtMost: 1_000_000) == .element(4), "what was left before the close was not drained")
        try #require(q.pop(waitingAtMost: 1_000_000_000) == .closed, "a closed, drained queue did not say so")
    }

    @Test("a queue that never runs empty (the consumer always behind) does not grow", .timeLimit(.minutes(1)))
    func boundedWhenNeverEmpty() {
        let q = BlockingQueue<Int>(capacity: 3)
        #expect(q.tryPush(0) && q.tryPush(1))
        for i in 2..<100_000 {
            _ = q.tryPush(i)
            guard case .element = q.pop(waitingAtMost: 1_000_000) else {
                Issue.record("pop \(i) found nothing")
                return
            }
        }
        #expect(q.depth == 2)
        #expect(q.storedCount < 200, "\(q.storedCount) elements kept for a queue of 3")
    }

    @Test("a closed queue refuses pushes, except the consumer's own while it drains")
    func pushWhileDraining() {
        let q = BlockingQueue<Int>(capacity: nil)
        #expect(q.push(1))
        q.close()
        #expect(!q.push(2))
        #expect(q.pop() == 1)
        #expect(q.push(3, evenIfClosed: true))
        #expect(q.pop() == 3)
        #expect(q.pop() == nil)
    }
}

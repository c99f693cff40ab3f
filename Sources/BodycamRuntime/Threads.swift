import BodycamAdapters

#if canImport(Glibc)
import Glibc
#endif

/// A named OS thread for a blocking loop (capture, encode, audio, writer, control).
///
/// These loops block in C calls (DQBUF, snd_pcm_readi, fdatasync, poll); they must not run on
/// Swift's cooperative pool, which has one thread per core here.
final class DedicatedThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var finished = false
    private var joined = false
    let name: String

    private final class Box {
        let body: () -> Void
        let name: String
        init(_ name: String, _ body: @escaping () -> Void) {
            self.name = name
            self.body = body
        }
    }

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        self.name = name
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        let box = Box(name) {
            body()
            pthread_mutex_lock(self.mutex)
            self.finished = true
            pthread_cond_broadcast(self.cond)
            pthread_mutex_unlock(self.mutex)
        }
        let context = Unmanaged.passRetained(box).toOpaque()
        let r = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                // Thread names show in `top -H` and in crash reports; Linux allows 15 bytes.
                Posix.setThreadName(box.name)
                box.body()
                return nil
            }, context)
        precondition(r == 0, "pthread_create failed (\(r))")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    /// Waits for the thread to finish.
    func join() {
        while !join(timeout: 3600) {}
    }

    /// Waits up to `seconds` for the thread to finish; true if it did.
    func join(timeout seconds: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let ns = Int(seconds * 1e9) + deadline.tv_nsec
        deadline.tv_sec += ns / 1_000_000_000
        deadline.tv_nsec = ns % 1_000_000_000
        pthread_mutex_lock(mutex)
        while !finished {
            if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT { break }
        }
        let done = finished
        let mustJoin = done && !joined
        if mustJoin { joined = true }
        pthread_mutex_unlock(mutex)
        if mustJoin { pthread_join(thread, nil) }
        return done
    }
}

/// A first-in first-out queue between two threads, with blocking pop and, when bounded, blocking push.
///
/// Unbounded (`capacity: nil`) where blocking the producer could deadlock: the writer's queue is
/// fed under the recorder's lock, which the writer itself takes; if storage hangs, the pre-event
/// ring fills and frames are dropped (and counted) instead.
final class BlockingQueue<Element>: @unchecked Sendable {
    private var items: [Element] = []
    private var head = 0
    private var closed = false
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let notFull = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    let capacity: Int?

    init(capacity: Int?) {
        self.capacity = capacity
        items.reserveCapacity(capacity ?? 64)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        // `pop(waitingAtMost:)` measures CLOCK_MONOTONIC: a wall-clock step cannot stretch it.
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(notEmpty, &attr)
        pthread_condattr_destroy(&attr)
        pthread_cond_init(notFull, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(notEmpty)
        pthread_cond_destroy(notFull)
        mutex.deallocate()
        notEmpty.deallocate()
        notFull.deallocate()
    }

    private var count: Int { items.count - head }

    /// Appends, waiting while a bounded queue is full. Returns false once closed, unless
    /// `evenIfClosed`: the consumer's own thread adding work found while it drains (it pops
    /// until the queue is empty, so that is still done).
    @discardableResult
    func push(_ e: Element, evenIfClosed: Bool = false) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if let capacity { while count >= capacity && !closed { pthread_cond_wait(notFull, mutex) } }
        if closed && !evenIfClosed { return false }
        reclaim()
        items.append(e)
        pthread_cond_signal(notEmpty)
        return true
    }

    /// Drops the consumed front now and then, in place (the array keeps its capacity), so the
    /// array stays bounded even when the queue never runs empty (an encoder always a frame
    /// or two behind). Mutex held.
    private func reclaim() {
        if head > 0 && head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    /// Elements stored, consumed ones included (for tests: bounded however the queue is used).
    var storedCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return items.count
    }

    /// Appends unless the queue is full (or closed). Never waits.
    func tryPush(_ e: Element) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if closed { return false }
        if let capacity, count >= capacity { return false }
        reclaim()
        items.append(e)
        pthread_cond_signal(notEmpty)
        return true
    }

    /// Takes the oldest element, waiting while empty. nil once closed and drained.
    func pop() -> Element? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count == 0 && !closed { pthread_cond_wait(notEmpty, mutex) }
        guard count > 0 else { return nil }
        let e = items[head]
        head += 1
        pthread_cond_signal(notFull)
        return e
    }

    enum Popped {
        case element(Element)
        /// Nothing came within the time given.
        case timedOut
        /// Closed and drained.
        case closed
    }

    /// Takes the oldest element, waiting while empty, but at most `nanoseconds`.
    func pop(waitingAtMost nanoseconds: Int64) -> Popped {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = SystemClock.monotonic() + nanoseconds
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while count == 0 && !closed {
            if pthread_cond_timedwait(notEmpty, mutex, &ts) == ETIMEDOUT && count == 0 && !closed { return .timedOut }
        }
        guard count > 0 else { return .closed }
        let e = items[head]
        head += 1
        pthread_cond_signal(notFull)
        return .element(e)
    }

    var depth: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return count
    }

    /// No more pushes; pops drain what is left and then return nil.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        pthread_cond_broadcast(notEmpty)
        pthread_cond_broadcast(notFull)
        pthread_mutex_unlock(mutex)
    }
}

extension BlockingQueue.Popped: Equatable where Element: Equatable {}

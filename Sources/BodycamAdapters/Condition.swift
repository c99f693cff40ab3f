#if canImport(Glibc)
import Glibc
#endif

/// A mutex with a condition variable, for threads that must wait for each other (the capture
/// thread waiting for the encoder to hand back every buffer before unmapping them, queues).
public final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        // Timed waits measure CLOCK_MONOTONIC, so a wall-clock step cannot stretch or cut them.
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the mutex.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every waiter. Call with the mutex held.
    public func broadcast() { pthread_cond_broadcast(cond) }

    /// Wakes one waiter. Call with the mutex held.
    public func signal() { pthread_cond_signal(cond) }

    /// Waits (mutex held) until woken. Spurious wake-ups happen: re-check the predicate.
    public func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits (mutex held) until woken or until `deadlineNs` on CLOCK_MONOTONIC. False on timeout.
    @discardableResult
    public func wait(untilMonotonic deadlineNs: Int64) -> Bool {
        var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT
    }
}

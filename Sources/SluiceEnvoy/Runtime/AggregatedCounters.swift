// Labelled counters summed inside the module and handed to Envoy in one flush per interval.
//
// Why: for a labelled stat Envoy turns each label value into symbols and looks the tagged stat up
// on every call — about 1.6 µs a call in the perf profile of a loaded proxy, the largest single
// item of the module's per-request cost (see benchmarks/README.md). A request increments two to
// four labelled counters. Here an increment is a dictionary add under a per-worker lock nobody
// else takes on the hot path, and a flush makes one Envoy call per (counter, label set) that
// moved since the last one: under load, one call per second instead of thousands.
//
// What users see does not change: the same stats with the same names and labels, behind by at
// most one flush interval (100 ms; Envoy's own stats sinks flush every 5 s by default). A config
// that goes away flushes what it holds first. Histograms are recorded per request as before: a
// distribution cannot be pre-summed through this ABI.
//
// Threads: `add` on any worker (inside a hook); `flush` and `stop` on the main thread (the config
// scheduler's event, config destroy); a ticker thread of our own only commits the scheduler.
#if canImport(Glibc)
internal import Glibc
#endif
import Synchronization

/// The config-scheduler event that flushes summed counters to Envoy (public for hosts and tests
/// that deliver config events themselves).
public enum CounterFlush {
    public static let eventID: UInt64 = 0x5C_F1_05
}

final class AggregatedCounters: Sendable {
    /// The config-scheduler event id of a flush.
    static let flushEvent = CounterFlush.eventID

    /// How often the ticker asks the main thread to flush.
    static let flushIntervalMilliseconds = 100

    private struct Key: Hashable, Sendable {
        let counter: CounterID
        let labels: [String]
    }

    /// One per worker (by index, modulo the shard count): workers never share a lock on the hot
    /// path unless there are more of them than shards.
    private final class Shard: Sendable {
        let pending = Mutex<[Key: UInt64]>([:])
    }

    private let shards: [Shard]
    private let config: FilterConfigHandle
    private let scheduler: ConfigScheduler?
    private let ticker: Ticker?

    /// Starts the ticker. Main thread, in `config_new`. Without a scheduler (Envoy refused one),
    /// increments go straight to Envoy as before.
    init(config: FilterConfigHandle, shardCount: Int = 64) {
        self.config = config
        shards = (0..<shardCount).map { _ in Shard() }
        let scheduler = config.makeScheduler()
        self.scheduler = scheduler
        ticker = scheduler.flatMap { scheduler in
            Ticker(intervalMilliseconds: Self.flushIntervalMilliseconds) { scheduler.commit(Self.flushEvent) }
        }
    }

    /// Adds `value` to the counter with these labels, for the next flush. Worker thread.
    func add(_ counter: CounterID, labels: [String], by value: UInt64 = 1, on stream: EnvoyHTTPStream) {
        guard value > 0 else { return }
        guard ticker != nil else {
            stream.increment(counter, labels: labels, by: value)
            return
        }
        let shard = shards[Int(stream.workerIndex) % shards.count]
        shard.pending.withLock { $0[Key(counter: counter, labels: labels), default: 0] &+= value }
    }

    /// Hands every pending sum to Envoy. Main thread.
    func flush() {
        for shard in shards {
            let taken = shard.pending.withLock { pending -> [Key: UInt64] in
                guard !pending.isEmpty else { return [:] }
                var out: [Key: UInt64] = [:]
                swap(&out, &pending)
                return out
            }
            for (key, value) in taken { config.increment(key.counter, labels: key.labels, by: value) }
        }
    }

    /// Stops the ticker (joining its thread) and flushes what is left. Main thread, config destroy.
    func stop() {
        ticker?.stop()
        flush()
    }

    // The ticker's thread must never outlive the scheduler it commits (released with us).
    deinit { ticker?.stop() }
}

/// A thread that calls `tick` every interval until `stop`, which wakes it at once and joins it.
private final class Ticker: @unchecked Sendable {
    // @unchecked: `stopped` is only read and written under `mutex`; the rest is immutable.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var stopped = false
    private var thread = pthread_t()
    private let intervalNanoseconds: Int
    private let tick: @Sendable () -> Void

    init?(intervalMilliseconds: Int, tick: @escaping @Sendable () -> Void) {
        intervalNanoseconds = intervalMilliseconds * 1_000_000
        self.tick = tick
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        let box = Unmanaged.passRetained(self).toOpaque()
        let created = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let ticker = Unmanaged<Ticker>.fromOpaque(argument).takeRetainedValue()
            ticker.run()
            return nil
        }, box)
        guard created == 0 else {
            Unmanaged<Ticker>.fromOpaque(box).release()
            return nil
        }
    }

    private func run() {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        pthread_mutex_lock(mutex)
        while !stopped {
            deadline.tv_nsec += intervalNanoseconds
            while deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_nsec -= 1_000_000_000
                deadline.tv_sec += 1
            }
            while !stopped, pthread_cond_timedwait(condition, mutex, &deadline) == 0 {}
            if stopped { break }
            pthread_mutex_unlock(mutex)
            tick()
            pthread_mutex_lock(mutex)
        }
        pthread_mutex_unlock(mutex)
    }

    func stop() {
        pthread_mutex_lock(mutex)
        let wasStopped = stopped
        stopped = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if !wasStopped { pthread_join(thread, nil) }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }
}

// Runs one batch of work on N threads at once: N − 1 worker threads started once, outside the
// measured region, plus the calling (benchmark) thread. A batch is released by bumping a
// generation counter and is over when every worker has bumped a finished counter, so the
// measured region holds the work and two cache-line hand-offs, not thread start-up. Waiting
// spins briefly, then yields the CPU (the machine has two cores shared with other jobs), and
// only after a long idle spell sleeps; `Quota.batch.empty.*` measures what is left of it.
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class BatchRunner: Sendable {
    /// Threads taking part in a batch, the caller included.
    let participants: Int
    /// Participant index → requests refused (should be 0).
    private let work: @Sendable (Int) -> Int
    private let generation = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let exited = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let refused = Atomic<Int>(0)
    private let cpuNanos = Atomic<Int>(0)

    init(participants: Int, work: @escaping @Sendable (Int) -> Int) {
        precondition(participants >= 1)
        self.participants = participants
        self.work = work
    }

    /// Starts the workers (once); they wait for the first batch.
    func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        for index in 1..<participants {
            let thread = Thread { [self] in workerLoop(index) }
            thread.name = "quota-bench-\(index)"
            thread.start()
        }
    }

    /// Stops the workers and waits until they have left their loop.
    func stop() {
        guard started.load(ordering: .relaxed), !stopping.exchange(true, ordering: .releasing) else { return }
        generation.wrappingAdd(1, ordering: .releasing)
        Self.wait { exited.load(ordering: .acquiring) == participants - 1 }
    }

    /// Runs one batch on every participant and returns the CPU time they spent in it (sum of each
    /// thread's CPU clock around its share).
    func run() -> Int {
        cpuNanos.store(0, ordering: .relaxed)
        let batch = generation.wrappingAdd(1, ordering: .releasing).newValue
        runShare(0)
        let expected = batch * (participants - 1)
        Self.wait { finished.load(ordering: .acquiring) == expected }
        return cpuNanos.load(ordering: .relaxed)
    }

    /// Requests refused so far, over all batches and participants.
    var refusedCount: Int { refused.load(ordering: .relaxed) }

    private func workerLoop(_ index: Int) {
        var seen = 0
        while true {
            Self.wait { generation.load(ordering: .acquiring) != seen }
            seen += 1
            if stopping.load(ordering: .acquiring) { break }
            runShare(index)
            finished.wrappingAdd(1, ordering: .releasing)
        }
        exited.wrappingAdd(1, ordering: .releasing)
    }

    private func runShare(_ index: Int) {
        let start = Self.threadCPUNanos()
        let refusals = work(index)
        let spent = Self.threadCPUNanos() - start
        if refusals != 0 { refused.wrappingAdd(refusals, ordering: .relaxed) }
        cpuNanos.wrappingAdd(spent, ordering: .relaxed)
    }

    /// Spins ~100 rounds, then yields the CPU; after ~200,000 yields (well over 50 ms of
    /// nothing to do, e.g. between benchmarks) sleeps 100 µs at a time.
    @inline(__always)
    static func wait(until condition: () -> Bool) {
        var rounds = 0
        while !condition() {
            rounds &+= 1
            if rounds <= 100 { continue }
            if rounds <= 200_000 { sched_yield() } else { usleep(100) }
        }
    }

    static func threadCPUNanos() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return now.tv_sec * 1_000_000_000 + now.tv_nsec
    }
}

/// Splits `total` operations over `participants` as evenly as possible.
func shares(of total: Int, over participants: Int) -> [Int] {
    (0..<participants).map { total / participants + ($0 < total % participants ? 1 : 0) }
}

/// Runs `body(index)` on `threads` fresh threads released together, and waits for all of them;
/// for the admission checks in set-up, not for measuring.
func runTogether(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let box = TogetherState()
    for index in 0..<threads {
        Thread {
            box.ready.wrappingAdd(1, ordering: .releasing)
            BatchRunner.wait { box.go.load(ordering: .acquiring) }
            body(index)
            box.done.wrappingAdd(1, ordering: .releasing)
        }.start()
    }
    BatchRunner.wait { box.ready.load(ordering: .acquiring) == threads }
    box.go.store(true, ordering: .releasing)
    BatchRunner.wait { box.done.load(ordering: .acquiring) == threads }
}

private final class TogetherState: Sendable {
    let ready = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    let done = Atomic<Int>(0)
}

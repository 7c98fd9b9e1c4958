// How a store tells sluiced that its data changed: every write bumps a version row; a feed polls
// that row (which also sees writes by other processes: the CLI on the same SQLite file, other
// replicas on the same PostgreSQL) and is woken at once by writes through its own store.
import Synchronization

/// The wake-up side: a store calls `notify()` after each committed write.
final class ChangeFeed: Sendable {
    private struct State {
        var nextID = 0
        var wakers: [Int: AsyncStream<Void>.Continuation] = [:]
        var closed = false
    }

    private let state = Mutex(State())

    /// Wakes every feed at once.
    func notify() {
        let wakers = state.withLock { Array($0.wakers.values) }
        for waker in wakers { waker.yield() }
    }

    /// Ends every feed; later feeds end at once.
    func close() {
        let wakers = state.withLock { state in
            state.closed = true
            defer { state.wakers = [:] }
            return Array(state.wakers.values)
        }
        for waker in wakers { waker.finish() }
    }

    /// The current version, then each new one, read with `read` when woken or every `pollInterval`.
    func versions(
        pollInterval: Duration, read: @escaping @Sendable () async throws -> Int64
    ) -> AsyncStream<Int64> {
        let (output, outputContinuation) = AsyncStream.makeStream(of: Int64.self, bufferingPolicy: .bufferingNewest(1))
        let (wakes, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id: Int? = state.withLock { state in
            guard !state.closed else { return nil }
            defer { state.nextID += 1 }
            state.wakers[state.nextID] = wakeContinuation
            return state.nextID
        }
        guard let id else {
            outputContinuation.finish()
            return output
        }
        wakeContinuation.yield()  // read the current version at once
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                wakeContinuation.yield()
            }
        }
        let reader = Task {
            var last: Int64?
            for await _ in wakes {
                guard let version = try? await read() else { continue }
                if version != last {
                    last = version
                    outputContinuation.yield(version)
                }
            }
            outputContinuation.finish()
        }
        outputContinuation.onTermination = { [weak self] _ in
            ticker.cancel()
            reader.cancel()
            wakeContinuation.finish()
            self?.state.withLock { _ = $0.wakers.removeValue(forKey: id) }
        }
        return output
    }
}

// What the background worker does with usage records, without I/O: it holds them in a bounded
// buffer, decides when a batch goes out (by count, by time, at once while draining), and reads
// what came back — delivered, rejected one by one, or failed and retried with exponential
// backoff and jitter. The worker (SluiceEnvoy's `FleetWorker`) owns the timer and the callout
// and feeds their events in; time is passed in, randomness is seeded, so every rule is tested
// without Envoy (Tests/SluiceCoreTests/UsageShipperTests.swift).
//
// One batch is in flight at a time: the oldest records go first and leave the buffer only when
// sluiced has answered for them, so a record is never lost to a failed callout, and a retried
// batch is harmless (sluiced stores by id; a second copy is a duplicate).

/// Cumulative counts and the last outcome, for Envoy counters and the `/sluice/fleet` admin page.
public struct UsageShipperStats: Sendable, Equatable {
    /// Records sluiced accepted or already had (duplicates).
    public var sent = 0
    /// Batches that failed and were kept for a retry.
    public var retried = 0
    /// Records dropped without reaching sluiced: past the buffer bound, a full hand-over queue,
    /// or still held when the shutdown flush ran out of time.
    public var dropped = 0
    /// Records sluiced refused (they are not retried).
    public var rejected = 0
    /// Unix ms of the last delivered batch.
    public var lastSuccessMillis: Int64?
    /// The last failure, and when.
    public var lastError: String?
    public var lastErrorMillis: Int64?
    public init() {}
}

/// How a callout to sluiced ended.
public enum FleetCalloutOutcome: Sendable, Equatable {
    /// An HTTP answer (its `:status` and body).
    case answered(status: Int, body: [UInt8])
    /// No answer: reset, connection refused, timeout, oversized answer, or the callout could not start.
    case failed(String)
}

/// What the worker should do after a batch finished (it logs; counters are in `stats`).
public enum UsageBatchResult: Sendable, Equatable {
    /// Delivered; `rejected` lists sluiced's reasons for the records it refused.
    case delivered(accepted: Int, duplicates: Int, rejected: [String])
    /// Kept; tried again no earlier than `retryAtMillis`.
    case willRetry(reason: String, retryAtMillis: Int64)
    /// Given up on (sluiced refused the batch as malformed, or one record is too large to send).
    case droppedBatch(reason: String, records: Int)
}

public struct UsageShipper: Sendable {
    public let config: FleetWorkerConfig
    public private(set) var stats = UsageShipperStats()
    /// Records not yet delivered, oldest first, from `start` on (the ones before are delivered
    /// and removed in bulk now and then, so a batch costs no shifting of the rest).
    private var buffer: [FleetUsageRecord] = []
    private var start = 0
    /// Records of the batch in flight (the first ones of the buffer), if one is.
    public private(set) var inFlight: Int?
    /// The largest batch sent now; halves when sluiced answers 413 (too large).
    private var batchLimit: Int
    private var consecutiveFailures = 0
    private var notBeforeMillis: Int64 = 0
    private var lastSendMillis: Int64
    /// Set by `startDraining`: send whatever is held at once, do not wait for a full batch.
    public private(set) var draining = false
    /// The last failure reason was a refused token (so the worker reads the token file again).
    public private(set) var tokenRefused = false
    private var random: SplitMix64

    /// First retry delay, doubled per consecutive failure up to `maxBackoffMillis`.
    public static let baseBackoffMillis: Int64 = 250
    public static let maxBackoffMillis: Int64 = 30_000
    /// While draining, retries come at least this often (the shutdown flush is short).
    public static let drainingBackoffMillis: Int64 = 200

    public init(config: FleetWorkerConfig, nowMillis: Int64, seed: UInt64) {
        self.config = config
        batchLimit = config.batchMaxRecords
        lastSendMillis = nowMillis
        random = SplitMix64(seed: seed)
    }

    /// Records held (in flight included).
    public var bufferedCount: Int { buffer.count - start }

    /// Adds a record; false when the buffer is full (the record is dropped and counted).
    @discardableResult
    public mutating func accept(_ record: consuming FleetUsageRecord) -> Bool {
        guard bufferedCount < config.bufferMaxRecords else {
            stats.dropped += 1
            return false
        }
        buffer.append(record)
        return true
    }

    /// Counts records dropped before they reached the buffer (the hand-over queue was full).
    public mutating func countDropped(_ records: Int) {
        stats.dropped += max(0, records)
    }

    /// Envoy is draining or shutting down: send what is held without waiting for the interval.
    public mutating func startDraining(nowMillis: Int64) {
        draining = true
        notBeforeMillis = min(notBeforeMillis, nowMillis + Self.drainingBackoffMillis)
    }

    /// Gives up on what is still held (the shutdown flush ran out of time): counted as dropped.
    public mutating func abandon() -> Int {
        let left = bufferedCount
        stats.dropped += left
        buffer.removeAll()
        start = 0
        inFlight = nil
        return left
    }

    /// The body of the next batch, if one is due at `nowMillis`: none in flight, records held,
    /// not backing off, and a full batch waiting, the flush interval passed, or draining.
    public mutating func nextBatch(nowMillis: Int64) -> [UInt8]? {
        guard inFlight == nil, bufferedCount > 0, nowMillis >= notBeforeMillis else { return nil }
        let due = draining || bufferedCount >= batchLimit || nowMillis - lastSendMillis >= config.flushIntervalMillis
        guard due else { return nil }
        let count = min(bufferedCount, batchLimit)
        inFlight = count
        lastSendMillis = nowMillis
        return FleetUsageRecord.batchBody(envoy: config.envoy, records: buffer[start..<(start + count)])
    }

    /// The batch in flight ended with `outcome`.
    public mutating func batchFinished(_ outcome: FleetCalloutOutcome, nowMillis: Int64) -> UsageBatchResult {
        guard let count = inFlight else { return .willRetry(reason: "no batch in flight", retryAtMillis: nowMillis) }
        inFlight = nil
        switch outcome {
        case .failed(let reason):
            return retry("sluiced unreachable: \(reason)", nowMillis: nowMillis)
        case .answered(let status, let body):
            switch status {
            case 200:
                let answer: FleetUsageAnswer
                do {
                    answer = try FleetUsageAnswer.parse(body, batchCount: count)
                } catch {
                    return retry("sluiced's answer was not understood: \(error.message)", nowMillis: nowMillis)
                }
                removeFirst(count)
                consecutiveFailures = 0
                tokenRefused = false
                stats.sent += answer.accepted + answer.duplicates
                stats.rejected += answer.rejected.count
                stats.lastSuccessMillis = nowMillis
                if let first = answer.rejected.first {
                    note("sluiced rejected \(answer.rejected.count) records (first: #\(first.index): \(first.error))", nowMillis)
                }
                return .delivered(
                    accepted: answer.accepted, duplicates: answer.duplicates, rejected: answer.rejected.map(\.error))
            case 400:
                // The envelope itself was refused: sending it again would be refused again.
                removeFirst(count)
                stats.rejected += count
                let reason = "sluiced refused the batch as malformed (400): \(Self.excerpt(body))"
                note(reason, nowMillis)
                return .droppedBatch(reason: reason, records: count)
            case 413:
                if count > 1 {
                    batchLimit = max(1, count / 2)
                    note("sluiced found a batch of \(count) records too large (413); batches now hold \(batchLimit)", nowMillis)
                    return .willRetry(reason: "batch too large", retryAtMillis: nowMillis)
                }
                removeFirst(1)
                stats.rejected += 1
                let reason = "sluiced refused a single record as too large (413)"
                note(reason, nowMillis)
                return .droppedBatch(reason: reason, records: 1)
            case 401, 403:
                tokenRefused = true
                return retry("sluiced refused the fleet token (\(status))", nowMillis: nowMillis)
            default:
                return retry("sluiced answered \(status): \(Self.excerpt(body))", nowMillis: nowMillis)
            }
        }
    }

    // MARK: - Helpers

    private mutating func retry(_ reason: String, nowMillis: Int64) -> UsageBatchResult {
        consecutiveFailures += 1
        stats.retried += 1
        note(reason, nowMillis)
        let delay = backoff(failures: consecutiveFailures)
        notBeforeMillis = nowMillis + delay
        return .willRetry(reason: reason, retryAtMillis: notBeforeMillis)
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random, so Envoys that
    /// lost sluiced together do not come back in step.
    mutating func backoff(failures: Int) -> Int64 {
        let cap = draining ? Self.drainingBackoffMillis : Self.maxBackoffMillis
        let exponent = min(max(failures - 1, 0), 20)
        let delay = min(cap, Self.baseBackoffMillis << Int64(exponent))
        let jitter = Int64(random.next() % UInt64(delay / 2 + 1))
        return delay - delay / 2 + jitter
    }

    private mutating func note(_ reason: String, _ nowMillis: Int64) {
        stats.lastError = reason
        stats.lastErrorMillis = nowMillis
    }

    private mutating func removeFirst(_ count: Int) {
        start += min(count, bufferedCount)
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 4096)
            start = 0
        } else if start >= 4096, start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }

    private static func excerpt(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(200), as: UTF8.self)
    }
}

/// A small seeded generator (SplitMix64) for jitter: deterministic in tests, seeded from the
/// system generator in Envoy.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

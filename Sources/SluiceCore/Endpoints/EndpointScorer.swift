// Picking the model-server endpoint for a request from a snapshot of the pool's metrics: filters,
// then weighted scorers, then the highest score. Pure functions of their inputs; the pick reads
// fixed-size values and arrays and allocates nothing. The SluiceCore.docc article "Endpoint
// scoring" describes the model.

/// A set of endpoint indexes 0..<64, as a bit mask: which endpoints may be picked (healthy, not
/// the host a retry is avoiding). 64 is the largest pool a snapshot holds.
public struct EndpointSet: Sendable, Equatable {
    public static let capacity = 64
    public var bits: UInt64

    public init(bits: UInt64) { self.bits = bits }

    /// Endpoints 0..<count (count clamped to 0...64).
    public static func first(_ count: Int) -> EndpointSet {
        if count >= capacity { return EndpointSet(bits: .max) }
        if count <= 0 { return EndpointSet(bits: 0) }
        return EndpointSet(bits: (1 &<< UInt64(count)) &- 1)
    }

    public func contains(_ endpoint: Int) -> Bool {
        endpoint >= 0 && endpoint < Self.capacity && bits & (1 &<< UInt64(endpoint)) != 0
    }

    public mutating func remove(_ endpoint: Int) {
        guard endpoint >= 0, endpoint < Self.capacity else { return }
        bits &= ~(1 &<< UInt64(endpoint))
    }

    public var isEmpty: Bool { bits == 0 }
}

/// One endpoint in a snapshot: its metrics and when they were read (nil: never read, or the last
/// scrape failed).
public struct EndpointState: Sendable, Equatable {
    public var metrics: ModelServerMetrics
    public var readAtMillis: Int64?

    public init(metrics: ModelServerMetrics, readAtMillis: Int64?) {
        self.metrics = metrics
        self.readAtMillis = readAtMillis
    }
}

/// The pool's metrics at one moment: immutable once made; the scraper publishes a new one.
public struct EndpointSnapshot: Sendable {
    public let endpoints: [EndpointState]
    /// Increases with each snapshot published, so per-snapshot state (`PicksSinceSnapshot`) knows
    /// when to start over.
    public let generation: UInt64

    /// At most `EndpointSet.capacity` endpoints; more are dropped.
    public init(endpoints: [EndpointState], generation: UInt64) {
        self.endpoints = endpoints.count > EndpointSet.capacity ? Array(endpoints.prefix(EndpointSet.capacity)) : endpoints
        self.generation = generation
    }
}

/// The scorer's knobs; `validated()` range-checks every field. The defaults of the prefix weight
/// and the queue threshold come from the routing benchmark (benchmarks/README.md, "Endpoint
/// picker through Envoy"): with a prefix weight of 3 and a threshold of 5 the picker left a
/// prompt's replica as soon as a short queue formed there, so at 50 requests/s (past the pool's
/// capacity without prefix reuse) only 63 % of prompt tokens hit the cache and p90 TTFT was
/// 690 ms; with 20 and 20 it follows the prefix until a real queue forms (74 %, 217 ms), and at
/// 40 requests/s and on the no-shared-prefix workload it does no worse.
public struct EndpointScoringConfig: Sendable, Equatable {
    /// Metrics older than this are stale (the scrape runs every 50 ms; 2 s is 40 missed scrapes).
    public var staleAfterMillis: Int64 = 2000
    /// An endpoint with this many requests waiting (plus the picks sent since its metrics were
    /// read) is saturated: new work would only queue behind them.
    public var saturationQueue = 20
    /// An endpoint whose KV cache is this full is saturated: new prompts would preempt running ones.
    public var saturationKVCache = 0.8

    public var prefixWeight = 20.0
    public var queueWeight = 2.0
    public var kvCacheWeight = 1.0
    public var loraWeight = 2.0
    /// Applies only when the request names a session endpoint.
    public var sessionWeight = 4.0

    public init() {}

    public static let weightRange = 0.0...100.0

    /// The config, or the first field out of range.
    public func validated() throws(EndpointConfigError) -> EndpointScoringConfig {
        guard (100...600_000).contains(staleAfterMillis) else {
            throw EndpointConfigError(field: "stale_after_ms", message: "must be 100...600000, got \(staleAfterMillis)")
        }
        guard (1...ModelServerMetrics.maxCount).contains(saturationQueue) else {
            throw EndpointConfigError(
                field: "saturation_queue", message: "must be 1...\(ModelServerMetrics.maxCount), got \(saturationQueue)")
        }
        guard saturationKVCache > 0, saturationKVCache <= 1 else {
            throw EndpointConfigError(field: "saturation_kv_cache", message: "must be in (0, 1], got \(saturationKVCache)")
        }
        for (field, weight) in [
            ("prefix_weight", prefixWeight), ("queue_weight", queueWeight), ("kv_cache_weight", kvCacheWeight),
            ("lora_weight", loraWeight), ("session_weight", sessionWeight),
        ] where !Self.weightRange.contains(weight) {
            throw EndpointConfigError(field: field, message: "must be 0...100, got \(weight)")
        }
        return self
    }
}

/// What a request brings to the pick.
public struct EndpointRequest: Sendable {
    /// The prompt's prefix-block hashes (empty: no prefix affinity).
    public var prefix: PrefixBlockHashes
    /// The LoRA adapter the request names, if the model is one.
    public var adapter: AdapterID?
    /// The endpoint this request's session used before, if session affinity is on.
    public var sessionEndpoint: Int?

    public init(prefix: PrefixBlockHashes = PrefixBlockHashes(), adapter: AdapterID? = nil, sessionEndpoint: Int? = nil) {
        self.prefix = prefix
        self.adapter = adapter
        self.sessionEndpoint = sessionEndpoint
    }
}

/// Requests sent to each endpoint since the snapshot in use was published. Reset when a newer
/// snapshot arrives (its queue figures include those requests by then).
///
/// The guard against piling onto one endpoint: each pick counts as one more waiting request on
/// the endpoint it chose until fresh metrics show the real queue. Between two scrapes (50 ms) a
/// busy gateway routes hundreds of requests; without this, every request sharing a prefix would
/// go to the same endpoint on the same stale queue figure, and the saturation filter would not
/// see the queue it built. Chosen over power-of-two choices because it keeps the pick
/// deterministic and the best prefix match winning while it has room (two random candidates miss
/// the endpoint holding the prefix most of the time in a pool of 8), and it spreads load by the
/// same queue scorer that orders endpoints anyway.
public struct PicksSinceSnapshot: Sendable {
    public private(set) var generation: UInt64 = 0
    private var counts = InlineArray<64, UInt32>(repeating: 0)

    public init() {}

    public subscript(endpoint: Int) -> Int {
        guard endpoint >= 0, endpoint < EndpointSet.capacity else { return 0 }
        return Int(counts[endpoint])
    }

    /// Starts over when `snapshot` is newer than the picks counted.
    public mutating func align(with snapshot: borrowing EndpointSnapshot) {
        guard snapshot.generation != generation else { return }
        generation = snapshot.generation
        for index in 0..<EndpointSet.capacity { counts[index] = 0 }
    }

    public mutating func recordPick(_ endpoint: Int) {
        guard endpoint >= 0, endpoint < EndpointSet.capacity, counts[endpoint] < UInt32.max else { return }
        counts[endpoint] &+= 1
    }
}

/// The scorer's answer.
public enum EndpointPick: Sendable, Equatable {
    /// Send the request to endpoint `index`; `score` is its weighted score, for the admin page.
    case endpoint(index: Int, score: Double, saturated: Bool)
    /// Metrics cannot be trusted for this pick: use least-request on Envoy's own counts.
    case leastRequest(LeastRequestReason)
}

public enum LeastRequestReason: Sendable, Equatable {
    /// A candidate's metrics are older than `staleAfterMillis` (or it has none).
    case staleMetrics(endpoint: Int)
    /// No candidate is in the snapshot.
    case noCandidates
}

/// One endpoint's scores apart from the request: whether it is saturated, its queue room and free
/// KV cache (each 0...1), and the weighted total a request without prefix, adapter or session
/// would give it (`EndpointScorer.weightedScore`).
public struct EndpointScoreComponents: Sendable, Equatable {
    public var saturated: Bool
    public var queueRoom: Double
    public var kvCacheFree: Double
    public var total: Double
}

/// The pick: filters, then weighted scorers, then the best score.
public struct EndpointScorer: Sendable {
    public let config: EndpointScoringConfig

    public init(config: EndpointScoringConfig) throws(EndpointConfigError) {
        self.config = try config.validated()
    }

    /// Picks among `candidates` of `snapshot` for `request`.
    ///
    /// - Staleness: if any candidate's metrics are stale, the whole pick falls back. Scoring
    ///   fresh endpoints against ones known only from old figures would keep favouring whichever
    ///   looked idle when its metrics stopped; least-request on Envoy's active-request counts is
    ///   right for all of them.
    /// - Filters (each fails open: when it would remove every candidate it removes none, since
    ///   the request has to go somewhere and the server queues it): not saturated; with an
    ///   adapter, the adapter loaded or a slot free.
    /// - Scores, each in 0...1 and weighted: queue room (1 - (waiting + picks since the
    ///   snapshot) / saturation threshold), prefix (leading blocks held / blocks, times the queue
    ///   room), KV cache (1 - use), LoRA (1 loaded, 0.5 a free slot, 0 otherwise), session (1 on
    ///   the session's endpoint). When every candidate is saturated the fewest waiting wins.
    /// - Ties go to the first candidate at or after `tieBreak % count`, so equal endpoints share
    ///   the load when the caller varies it (a per-request counter or random number).
    public func pick(
        _ request: borrowing EndpointRequest, snapshot: borrowing EndpointSnapshot, candidates: EndpointSet,
        prefixIndex: borrowing PrefixIndex, picksSinceSnapshot: borrowing PicksSinceSnapshot, nowMillis: Int64,
        tieBreak: UInt64 = 0
    ) -> EndpointPick {
        let count = snapshot.endpoints.count
        var eligible = EndpointSet(bits: candidates.bits & EndpointSet.first(count).bits)
        guard !eligible.isEmpty else { return .leastRequest(.noCandidates) }

        // Staleness. A read time ahead of `nowMillis` by more than the limit (or absurdly far
        // off either way) is as untrustworthy as an old one.
        for index in 0..<count where eligible.contains(index) {
            guard let readAt = snapshot.endpoints[index].readAtMillis else {
                return .leastRequest(.staleMetrics(endpoint: index))
            }
            let (age, overflow) = nowMillis.subtractingReportingOverflow(readAt)
            guard !overflow, age <= config.staleAfterMillis, age >= -config.staleAfterMillis else {
                return .leastRequest(.staleMetrics(endpoint: index))
            }
        }

        // Filter: saturation. A full KV cache does not saturate an endpoint for a request whose
        // prefix it holds (at least half the blocks): the server reuses those blocks and needs
        // few new ones. Without this exception, replicas with full batches (whose KV use is
        // high because they are busy, not because they are short of room for this request)
        // turned away the requests whose prompts they held, and on the routing benchmark at
        // 50 requests/s for 30 s prefix hits fell from 74 % to 46 % and p90 TTFT rose from
        // 0.13 s to 5.3 s.
        var unsaturated = eligible
        for index in 0..<count where eligible.contains(index) {
            let metrics = snapshot.endpoints[index].metrics
            let picks = picksSinceSnapshot[index]
            if queueDepth(metrics, picks: picks) >= config.saturationQueue {
                unsaturated.remove(index)
            } else if (metrics.kvCacheUsage ?? 0) >= config.saturationKVCache {
                let blocks = request.prefix.count
                var held = 0
                if blocks > 0 { held = prefixIndex.leadingBlocks(endpoint: index, request.prefix) }
                if held == 0 { unsaturated.remove(index) } else if held &* 2 < blocks { unsaturated.remove(index) }
            }
        }
        let allSaturated = unsaturated.isEmpty
        if !allSaturated { eligible = unsaturated }

        // Filter: adapter loaded or a slot free.
        if let adapter = request.adapter {
            var fitting = eligible
            for index in 0..<count where eligible.contains(index) {
                guard let lora = snapshot.endpoints[index].metrics.lora else { continue }  // not vLLM LoRA: keep
                if !lora.isRunning(adapter) && !lora.hasFreeSlot { fitting.remove(index) }
            }
            if !fitting.isEmpty { eligible = fitting }
        }

        var best = -1
        var bestScore = -Double.infinity
        let start = Int(tieBreak % UInt64(count))
        for step in 0..<count {
            var index = start &+ step
            if index >= count { index &-= count }
            guard eligible.contains(index) else { continue }
            let metrics = snapshot.endpoints[index].metrics
            let queue = queueDepth(metrics, picks: picksSinceSnapshot[index])
            let score: Double
            if allSaturated {
                // Every endpoint is past a threshold: the wait decides, as least-request would,
                // except that a cached prefix counts as up to half a threshold of waiting requests
                // saved. Under sustained overload the shortest queue alone spread each prompt over
                // every replica, evicting the prompts and making every prefill a full one (the
                // benchmark's prefix hits fell from 74 % to 43 %), just when prefill time was
                // what the pool lacked.
                score = -Double(queue) + saturatedPrefixCredit(request, index: index, prefixIndex: prefixIndex)
            } else {
                score = weightedScore(request, metrics, queue: queue, index: index, prefixIndex: prefixIndex)
            }
            if score > bestScore {
                bestScore = score
                best = index
            }
        }
        guard best >= 0 else { return .leastRequest(.noCandidates) }
        return .endpoint(index: best, score: bestScore, saturated: allSaturated)
    }

    /// The weighted sum of the scorers for an unsaturated endpoint.
    @inline(__always)
    func weightedScore(
        _ request: borrowing EndpointRequest, _ metrics: ModelServerMetrics, queue: Int, index: Int,
        prefixIndex: borrowing PrefixIndex
    ) -> Double {
        // Queue room: 1 when nothing waits, 0 at the saturation threshold. Absolute rather than
        // min-max across the candidates: min-max turns a queue of 1 against 0 into the whole
        // weight, and a queue of 20 against 5 into no more than that, so a strong prefix match
        // would keep winning however deep its queue grew.
        let room = 1 - Double(min(queue, config.saturationQueue)) / Double(config.saturationQueue)
        var score = config.queueWeight * room
        if request.prefix.count > 0 {
            // A cached prefix saves prefill time, which a queue eats up: the affinity shrinks with
            // the room left, so the endpoint holding a hot prefix gets its share, not all of it.
            let held = prefixIndex.leadingBlocks(endpoint: index, request.prefix)
            score += config.prefixWeight * room * Double(held) / Double(request.prefix.count)
        }
        score += config.kvCacheWeight * (1 - (metrics.kvCacheUsage ?? 0))
        if let adapter = request.adapter, let lora = metrics.lora {
            score += config.loraWeight * (lora.isRunning(adapter) ? 1 : lora.hasFreeSlot ? 0.5 : 0)
        } else {
            // No adapter asked for, or a server that does not report LoRA: neutral.
            score += config.loraWeight
        }
        if request.sessionEndpoint == index { score += config.sessionWeight }
        return score
    }

    /// What the scorers make of `metrics` for a request with no prefix, adapter or session (the
    /// admin page's view: the parts that depend only on the endpoint).
    public func components(_ metrics: ModelServerMetrics) -> EndpointScoreComponents {
        let queue = queueDepth(metrics, picks: 0)
        let room = 1 - Double(min(queue, config.saturationQueue)) / Double(config.saturationQueue)
        return EndpointScoreComponents(
            saturated: isSaturated(metrics, picks: 0), queueRoom: room, kvCacheFree: 1 - (metrics.kvCacheUsage ?? 0),
            total: config.queueWeight * room + config.kvCacheWeight * (1 - (metrics.kvCacheUsage ?? 0)) + config.loraWeight)
    }

    /// What a cached prefix is worth in waiting requests when every endpoint is saturated: up to
    /// half the saturation threshold, in proportion to the leading blocks held. The picks since
    /// the snapshot still count as queue, so a hot prefix's replica takes that much more, no more.
    @inline(__always)
    func saturatedPrefixCredit(_ request: borrowing EndpointRequest, index: Int, prefixIndex: borrowing PrefixIndex) -> Double {
        guard request.prefix.count > 0, config.prefixWeight > 0 else { return 0 }
        let held = prefixIndex.leadingBlocks(endpoint: index, request.prefix)
        return Double(config.saturationQueue) / 2 * Double(held) / Double(request.prefix.count)
    }

    /// Waiting requests plus the picks sent since the metrics were read (clamped).
    @inline(__always)
    func queueDepth(_ metrics: ModelServerMetrics, picks: Int) -> Int {
        min((metrics.waitingRequests ?? 0) &+ picks, ModelServerMetrics.maxCount &* 2)
    }

    @inline(__always)
    func isSaturated(_ metrics: ModelServerMetrics, picks: Int) -> Bool {
        queueDepth(metrics, picks: picks) >= config.saturationQueue
            || (metrics.kvCacheUsage ?? 0) >= config.saturationKVCache
    }
}

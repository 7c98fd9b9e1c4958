// A small but honest model of one vLLM engine's timing, in simulated microseconds: the scheduler
// of vLLM's V1 engine (continuous batching under a cap on running sequences and a per-step token
// budget, chunked prefill, a FIFO waiting queue), its paged KV cache with automatic prefix caching
// (blocks keyed by chained hashes, cached blocks of finished requests kept until evicted
// least-recently-freed first) and its LoRA adapter slots (`max_loras`, a load that stalls the step).
//
// It costs simulated time, not CPU: a step says how long the forward pass would take and the
// driver (sluice-sim's VLLMReplica) sleeps that long; the bookkeeping here is a few array walks.
// Nothing is random, so the same arrivals at the same times give the same steps (the tests drive
// it with a virtual clock).
//
// Simplifications, each chosen so the signals a router sees stay true:
// - A request reserves the KV blocks of its whole life (prompt + every output token) when it is
//   admitted, so nothing is ever preempted; a real engine allocates as it decodes and preempts
//   under pressure. Admission still waits for free blocks, and the usage gauge still rises with
//   the batch.
// - Tokens are bytes/4 and a block is 256 prompt bytes (64 tokens): the same 256-byte blocks the
//   gateway's prefix index hashes (SluiceCore PrefixBlocks), where a real engine hashes 16-token
//   blocks of the tokenizer's output. Only whole blocks are cached, as in vLLM.
// - The prompt's full blocks enter the prefix cache when its prefill finishes (vLLM caches each
//   block as soon as it is computed; with chunked prefill that is a few steps earlier).
// - Generated tokens are never cached (vLLM caches full output blocks too; the next turn of a
//   chat differs from the simulated reply's bytes anyway).

/// The engine's size and speed. Defaults are small (milliseconds) so that queueing, cache hits and
/// adapter loads show at the scale of a test.
public struct VLLMEngineConfig: Sendable, Equatable {
    /// Requests in the running batch at most (vLLM `--max-num-seqs`).
    public var maxNumSeqs = 8
    /// Tokens one step computes at most: one per decoding sequence, the rest prefill chunks
    /// (vLLM `--max-num-batched-tokens`).
    public var maxNumBatchedTokens = 2048
    /// KV-cache blocks (vLLM `num_gpu_blocks`), each `blockTokens` tokens.
    public var numBlocks = 256
    /// Longest prompt + output a request may ask for, in tokens (vLLM `--max-model-len`).
    public var maxModelLen = 8192
    /// Simulated cost of one prefill token.
    public var prefillMicrosPerToken = 25
    /// Fixed cost of one step (a forward pass), whatever the batch.
    public var stepMicros = 4000
    /// Added per sequence in the batch: decode inter-token latency grows with the batch.
    public var decodeMicrosPerSequence = 400
    /// LoRA adapters loaded at once (vLLM `--max-loras`).
    public var maxLoRAs = 2
    /// Loading an adapter that is not loaded stalls the step this long.
    public var loRALoadMicros = 20000

    /// Tokens per KV block: a 256-byte prompt block at 4 bytes per token.
    public static let blockTokens = 64
    /// Bytes per prompt block.
    public static let blockBytes = 256

    public init() {}

    /// What is wrong with this configuration, nil when it is usable.
    public func problem() -> String? {
        if !(1...1024).contains(maxNumSeqs) { return "max_num_seqs must be 1...1024, got \(maxNumSeqs)" }
        if !(1...1_000_000).contains(maxNumBatchedTokens) {
            return "max_num_batched_tokens must be 1...1000000, got \(maxNumBatchedTokens)"
        }
        if !(1...1_000_000).contains(numBlocks) { return "num_blocks must be 1...1000000, got \(numBlocks)" }
        if !(1...10_000_000).contains(maxModelLen) { return "max_model_len must be 1...10000000, got \(maxModelLen)" }
        if maxModelLen > numBlocks * Self.blockTokens {
            return "max_model_len \(maxModelLen) does not fit in \(numBlocks) KV blocks of \(Self.blockTokens) tokens"
        }
        for (name, value) in [
            ("prefill_us_per_token", prefillMicrosPerToken), ("step_us", stepMicros),
            ("decode_us_per_seq", decodeMicrosPerSequence), ("lora_load_us", loRALoadMicros),
        ] where !(0...10_000_000).contains(value) {
            return "\(name) must be 0...10000000, got \(value)"
        }
        if !(0...64).contains(maxLoRAs) { return "max_loras must be 0...64, got \(maxLoRAs)" }
        return nil
    }
}

/// A request as the engine sees it.
public struct EngineRequest: Sendable {
    public var id: Int
    /// Chained hashes of the prompt's full 256-byte blocks (`PromptBlocks.hashes`).
    public var blockHashes: [UInt64]
    public var promptTokens: Int
    /// Tokens to generate (the reply's length, or `max_tokens` with `ignore_eos`).
    public var outputTokens: Int
    /// The LoRA adapter the request names, nil for the base model.
    public var adapter: String?
    /// The reply ends at `outputTokens` because of `max_tokens` (finish reason `length`), not at
    /// its natural end (`stop`).
    public var endsAtLimit: Bool

    public init(
        id: Int, blockHashes: [UInt64], promptTokens: Int, outputTokens: Int, adapter: String? = nil,
        endsAtLimit: Bool = false
    ) {
        self.id = id
        self.endsAtLimit = endsAtLimit
        self.blockHashes = blockHashes
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.adapter = adapter
    }
}

/// What a finished step did to one request.
public enum EngineEvent: Sendable, Equatable {
    /// Prefill finished and the first token was sampled; `cachedTokens` came from the prefix cache.
    case firstToken(id: Int, cachedTokens: Int)
    /// One more token (the second onwards).
    case token(id: Int)
    /// The last token was sent; the request left the engine.
    case finished(id: Int)
}

/// Why a request was refused at the door.
public enum EngineRefusal: Error, Sendable, Equatable {
    /// Prompt plus output exceed `maxModelLen` (vLLM answers 400).
    case tooLong(promptTokens: Int, outputTokens: Int, maxModelLen: Int)
    case duplicateID(Int)
    case invalid(String)
}

/// One vLLM engine: add requests, then alternate `beginStep` / `endStep` on a clock.
public struct VLLMEngine: Sendable {
    public let config: VLLMEngineConfig

    private struct Sequence: Sendable {
        var request: EngineRequest
        var arrival: Int
        var admitted = -1
        var firstTokenAt = -1
        /// Blocks held (prompt blocks first, in order); empty while waiting.
        var blocks: [Int] = []
        var cachedTokens = 0
        /// Prompt tokens still to prefill (0: decoding).
        var prefillRemaining = 0
        var generated = 0
        /// Tokens this step computes for it (set by `beginStep`).
        var scheduledTokens = 0
    }

    private var sequences: [Int: Sequence] = [:]
    private var waiting: [Int] = []
    private var running: [Int] = []
    private var stepStartedAt: Int?

    // KV cache: block → hash (0 = none) and reference count; free blocks on an intrusive doubly
    // linked list in the order they were freed (head = evicted first).
    private var blockHash: [UInt64]
    private var refCount: [Int]
    private var cachedBlock: [UInt64: Int] = [:]
    private var freePrev: [Int]
    private var freeNext: [Int]
    private var freeHead = -1
    private var freeTail = -1
    public private(set) var freeBlockCount: Int

    // LoRA: loaded adapters, least recently used first.
    private var loadedAdapters: [String] = []

    public private(set) var stats = EngineStats()

    public init(config: VLLMEngineConfig) {
        self.config = config
        let count = max(1, config.numBlocks)
        blockHash = Array(repeating: 0, count: count)
        refCount = Array(repeating: 0, count: count)
        freePrev = Array(repeating: -1, count: count)
        freeNext = Array(repeating: -1, count: count)
        freeBlockCount = 0
        for block in 0..<count { pushFree(block, front: false) }
    }

    // MARK: Requests

    /// Queues a request (FIFO). Refuses one that can never run.
    public mutating func add(_ request: EngineRequest, now: Int) throws(EngineRefusal) {
        guard sequences[request.id] == nil else { throw .duplicateID(request.id) }
        guard request.promptTokens >= 1, request.outputTokens >= 1, request.outputTokens <= 1_000_000,
            request.promptTokens <= 100_000_000
        else {
            throw .invalid("a request needs 1 or more prompt and output tokens")
        }
        guard request.promptTokens + request.outputTokens <= config.maxModelLen else {
            throw .tooLong(
                promptTokens: request.promptTokens, outputTokens: request.outputTokens,
                maxModelLen: config.maxModelLen)
        }
        sequences[request.id] = Sequence(request: request, arrival: now)
        waiting.append(request.id)
    }

    /// Drops a request (the client went away); its blocks are freed like a finished one's.
    public mutating func abort(id: Int) {
        guard let sequence = sequences.removeValue(forKey: id) else { return }
        waiting.removeAll { $0 == id }
        running.removeAll { $0 == id }
        release(sequence.blocks)
        stats.aborted += 1
    }

    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }
    public var waitingCount: Int { waiting.count }
    public var runningCount: Int { running.count }
    /// Blocks in use by requests over all blocks (vLLM `kv_cache_usage_perc`); cached blocks no
    /// request holds are free.
    public var kvCacheUsage: Double { Double(config.numBlocks - freeBlockCount) / Double(max(1, config.numBlocks)) }
    /// Adapters of running requests, then of waiting ones (names, each once, in queue order).
    public var runningAdapters: [String] { uniqueAdapters(running) }
    public var waitingAdapters: [String] { uniqueAdapters(waiting) }
    public var loRAsLoaded: [String] { loadedAdapters }

    private func uniqueAdapters(_ ids: [Int]) -> [String] {
        var names: [String] = []
        for id in ids {
            if let adapter = sequences[id]?.request.adapter, !names.contains(adapter) { names.append(adapter) }
        }
        return names
    }

    /// Leading blocks of `hashes` in this engine's prefix cache now.
    public func cachedPrefixBlocks(_ hashes: [UInt64]) -> Int {
        var count = 0
        for hash in hashes {
            guard cachedBlock[hash] != nil else { break }
            count += 1
        }
        return count
    }

    // MARK: Steps

    /// Starts a step at `now`: schedules the running batch and admits waiting requests that fit.
    /// Returns the step's duration in microseconds, or nil when there is nothing to do.
    public mutating func beginStep(now: Int) -> Int? {
        precondition(stepStartedAt == nil, "beginStep twice without endStep")
        var budget = config.maxNumBatchedTokens
        var prefillTokens = 0
        // Running requests first: a token each for those decoding, a chunk for those prefilling.
        for id in running {
            guard var sequence = sequences[id] else { continue }
            if sequence.prefillRemaining > 0 {
                let chunk = min(sequence.prefillRemaining, budget)
                sequence.scheduledTokens = chunk
                prefillTokens += chunk
                budget -= chunk
            } else if budget > 0 {
                sequence.scheduledTokens = 1
                budget -= 1
            } else {
                sequence.scheduledTokens = 0
            }
            sequences[id] = sequence
        }
        // Then the queue, in order, while slots, budget and blocks last. A request whose adapter
        // cannot get a slot is skipped (it keeps its place), as vLLM's scheduler does; one that
        // does not fit in the free blocks stops admission (everything behind it waits too).
        var loadMicros = 0
        var index = 0
        var adaptersInBatch = Set(running.compactMap { sequences[$0]?.request.adapter })
        while index < waiting.count, running.count < config.maxNumSeqs, budget > 0 {
            let id = waiting[index]
            guard var sequence = sequences[id] else {
                waiting.remove(at: index)
                continue
            }
            if let adapter = sequence.request.adapter, !adaptersInBatch.contains(adapter) {
                guard adaptersInBatch.count < config.maxLoRAs else {
                    index += 1
                    continue
                }
                if !loadedAdapters.contains(adapter), loadedAdapters.count >= config.maxLoRAs,
                    !loadedAdapters.contains(where: { !adaptersInBatch.contains($0) })
                {
                    index += 1
                    continue
                }
            }
            guard allocate(&sequence) else { break }
            if let adapter = sequence.request.adapter {
                if let position = loadedAdapters.firstIndex(of: adapter) {
                    loadedAdapters.remove(at: position)
                } else {
                    // Evict the least recently used adapter no request in the batch uses.
                    if loadedAdapters.count >= config.maxLoRAs,
                        let victim = loadedAdapters.firstIndex(where: { !adaptersInBatch.contains($0) })
                    {
                        loadedAdapters.remove(at: victim)
                    }
                    loadMicros += config.loRALoadMicros
                    stats.loRALoads += 1
                }
                adaptersInBatch.insert(adapter)
                loadedAdapters.append(adapter)
            }
            sequence.admitted = now
            sequence.prefillRemaining = sequence.request.promptTokens - sequence.cachedTokens
            let chunk = min(sequence.prefillRemaining, budget)
            sequence.scheduledTokens = chunk
            prefillTokens += chunk
            budget -= chunk
            stats.promptTokens += sequence.request.promptTokens
            stats.prefixQueryTokens += sequence.request.promptTokens
            stats.prefixHitTokens += sequence.cachedTokens
            stats.queueSeconds.observe(Double(now - sequence.arrival) / 1e6)
            sequences[id] = sequence
            waiting.remove(at: index)
            running.append(id)
        }
        let batch = running.reduce(0) { $0 + ((sequences[$1]?.scheduledTokens ?? 0) > 0 ? 1 : 0) }
        guard batch > 0 else { return nil }
        stepStartedAt = now
        stats.steps += 1
        stats.computedPromptTokens += prefillTokens
        return config.stepMicros + config.decodeMicrosPerSequence * batch + config.prefillMicrosPerToken * prefillTokens
            + loadMicros
    }

    /// Ends the step begun last, at `now`: what each scheduled request got.
    public mutating func endStep(now: Int) -> [EngineEvent] {
        guard stepStartedAt != nil else { return [] }
        stepStartedAt = nil
        var events: [EngineEvent] = []
        var finished: [Int] = []
        for id in running {
            guard var sequence = sequences[id], sequence.scheduledTokens > 0 else { continue }
            if sequence.prefillRemaining > 0 {
                sequence.prefillRemaining -= sequence.scheduledTokens
                if sequence.prefillRemaining == 0 {
                    // The last prefill chunk samples the first token; the prompt's blocks are
                    // now computed and enter the prefix cache.
                    registerPromptBlocks(sequence)
                    sequence.generated = 1
                    sequence.firstTokenAt = now
                    stats.timeToFirstToken.observe(Double(now - sequence.arrival) / 1e6)
                    stats.prefillSeconds.observe(Double(now - sequence.admitted) / 1e6)
                    events.append(.firstToken(id: id, cachedTokens: sequence.cachedTokens))
                    stats.generationTokens += 1
                }
            } else {
                sequence.generated += 1
                stats.generationTokens += 1
                events.append(.token(id: id))
            }
            sequence.scheduledTokens = 0
            if sequence.generated >= sequence.request.outputTokens, sequence.prefillRemaining == 0 {
                events.append(.finished(id: id))
                finished.append(id)
                stats.requestsFinished += 1
                if sequence.request.endsAtLimit { stats.finishedAtLimit += 1 }
                stats.endToEnd.observe(Double(now - sequence.arrival) / 1e6)
                if sequence.request.outputTokens > 1 {
                    stats.interTokenLatency.observe(
                        Double(now - sequence.firstTokenAt) / 1e6 / Double(sequence.request.outputTokens - 1))
                }
            }
            sequences[id] = sequence
        }
        for id in finished {
            if let sequence = sequences.removeValue(forKey: id) { release(sequence.blocks) }
            running.removeAll { $0 == id }
        }
        return events
    }

    // MARK: KV cache

    /// Reserves a request's blocks: the cached leading prompt blocks it can share, and fresh
    /// ones for the rest of its prompt and output. False (nothing changed) when they do not fit.
    private mutating func allocate(_ sequence: inout Sequence) -> Bool {
        let request = sequence.request
        let needed = (request.promptTokens + request.outputTokens + VLLMEngineConfig.blockTokens - 1)
            / VLLMEngineConfig.blockTokens
        var hits: [Int] = []
        for hash in request.blockHashes {
            guard let block = cachedBlock[hash] else { break }
            hits.append(block)
        }
        // At least one prompt token is always computed (the engine needs its logits).
        while !hits.isEmpty, hits.count * VLLMEngineConfig.blockTokens >= request.promptTokens {
            hits.removeLast()
        }
        let hitsOnFreeList = hits.reduce(0) { $0 + (refCount[$1] == 0 ? 1 : 0) }
        let fresh = needed - hits.count
        guard fresh <= freeBlockCount - hitsOnFreeList else { return false }
        for block in hits {
            if refCount[block] == 0 { unlinkFree(block) }
            refCount[block] += 1
        }
        var blocks = hits
        for _ in 0..<fresh {
            let block = freeHead
            unlinkFree(block)
            if blockHash[block] != 0 {
                // Evicting a cached block: its prefix is gone from this engine.
                cachedBlock.removeValue(forKey: blockHash[block])
                blockHash[block] = 0
                stats.evictedBlocks += 1
            }
            refCount[block] = 1
            blocks.append(block)
        }
        sequence.blocks = blocks
        sequence.cachedTokens = hits.count * VLLMEngineConfig.blockTokens
        return true
    }

    private mutating func registerPromptBlocks(_ sequence: Sequence) {
        let full = min(sequence.request.blockHashes.count, sequence.blocks.count)
        for index in 0..<full {
            let hash = sequence.request.blockHashes[index]
            let block = sequence.blocks[index]
            // A block another request computed first keeps the name; this copy stays unnamed.
            if hash != 0, cachedBlock[hash] == nil, blockHash[block] == 0 {
                cachedBlock[hash] = block
                blockHash[block] = hash
            }
        }
    }

    /// Frees a request's blocks: named (cached) ones join the free list's tail, so they are
    /// evicted last, the prompt's tail block before its head (vLLM frees in reverse order so a
    /// prefix outlives its continuations); unnamed ones go to the head, to be reused first.
    private mutating func release(_ blocks: [Int]) {
        for block in blocks.reversed() {
            refCount[block] -= 1
            if refCount[block] == 0 { pushFree(block, front: blockHash[block] == 0) }
        }
    }

    private mutating func pushFree(_ block: Int, front: Bool) {
        if freeHead == -1 {
            freeHead = block
            freeTail = block
            freePrev[block] = -1
            freeNext[block] = -1
        } else if front {
            freePrev[block] = -1
            freeNext[block] = freeHead
            freePrev[freeHead] = block
            freeHead = block
        } else {
            freeNext[block] = -1
            freePrev[block] = freeTail
            freeNext[freeTail] = block
            freeTail = block
        }
        freeBlockCount += 1
    }

    private mutating func unlinkFree(_ block: Int) {
        let previous = freePrev[block]
        let next = freeNext[block]
        if previous == -1 { freeHead = next } else { freeNext[previous] = next }
        if next == -1 { freeTail = previous } else { freePrev[next] = previous }
        freePrev[block] = -1
        freeNext[block] = -1
        freeBlockCount -= 1
    }

}

/// Counters and histograms of one engine, for its `/metrics` page.
public struct EngineStats: Sendable {
    public var steps = 0
    /// Prompt tokens of admitted requests, cached or not (vLLM `prompt_tokens`).
    public var promptTokens = 0
    /// Prompt tokens actually computed (cache misses).
    public var computedPromptTokens = 0
    public var generationTokens = 0
    public var prefixQueryTokens = 0
    public var prefixHitTokens = 0
    public var requestsFinished = 0
    /// Of `requestsFinished`, those cut at `max_tokens`.
    public var finishedAtLimit = 0
    public var aborted = 0
    public var evictedBlocks = 0
    public var loRALoads = 0
    public var timeToFirstToken = Histogram(buckets: Histogram.timeToFirstTokenBuckets)
    public var interTokenLatency = Histogram(buckets: Histogram.interTokenBuckets)
    public var endToEnd = Histogram(buckets: Histogram.requestLatencyBuckets)
    public var queueSeconds = Histogram(buckets: Histogram.requestLatencyBuckets)
    public var prefillSeconds = Histogram(buckets: Histogram.requestLatencyBuckets)
}

/// A Prometheus histogram: cumulative counts per upper bound, a sum and a count.
public struct Histogram: Sendable, Equatable {
    public let buckets: [Double]
    public private(set) var counts: [Int]
    public private(set) var sum = 0.0
    public private(set) var count = 0

    public init(buckets: [Double]) {
        self.buckets = buckets
        counts = Array(repeating: 0, count: buckets.count)
    }

    public mutating func observe(_ value: Double) {
        guard value.isFinite else { return }
        for index in buckets.indices where value <= buckets[index] { counts[index] += 1 }
        sum += value
        count += 1
    }

    // vLLM's bucket bounds (vllm/v1/metrics/loggers.py).
    public static let timeToFirstTokenBuckets: [Double] = [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
        80.0, 160.0, 640.0, 2560.0,
    ]
    public static let interTokenBuckets: [Double] = [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
    ]
    public static let requestLatencyBuckets: [Double] = [
        0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
        960.0, 1920.0, 7680.0,
    ]
}

// The vLLM engine model on a virtual clock: batching and queueing, prefix-cache hits and LRU
// eviction, LoRA slots and load cost, and its /metrics page read back by SluiceCore's parser (the
// one the gateway's picker uses).
import SluiceCore
import SluiceSimEngine
import Testing

/// Drives an engine on a virtual clock until it is idle; returns each event with its time.
private func drain(_ engine: inout VLLMEngine, from start: Int = 0, limit: Int = 100_000)
    -> [(time: Int, event: EngineEvent)]
{
    var now = start
    var log: [(Int, EngineEvent)] = []
    for _ in 0..<limit {
        guard let duration = engine.beginStep(now: now) else { break }
        now += duration
        for event in engine.endStep(now: now) { log.append((now, event)) }
    }
    return log
}

private func prompt(_ seed: String, bytes: Int) -> [UInt8] {
    var out: [UInt8] = []
    var counter = 0
    while out.count < bytes {
        out += Array("\(seed) sentence \(counter) of a long shared system prompt. ".utf8)
        counter += 1
    }
    return Array(out.prefix(bytes))
}

private func request(_ id: Int, _ text: [UInt8], output: Int = 4, adapter: String? = nil) -> EngineRequest {
    EngineRequest(
        id: id, blockHashes: PromptBlocks.hashes(text), promptTokens: PromptBlocks.tokens(byteCount: text.count),
        outputTokens: output, adapter: adapter)
}

private func firstTokenTime(_ log: [(time: Int, event: EngineEvent)], id wanted: Int) -> (Int, Int)? {
    for (time, event) in log {
        if case .firstToken(let id, let cached) = event, id == wanted { return (time, cached) }
    }
    return nil
}

@Suite struct VLLMEngineTests {
    @Test func aSharedPrefixIsServedFromTheCacheAndSkipsPrefill() throws {
        var engine = VLLMEngine(config: VLLMEngineConfig())
        let system = prompt("alpha", bytes: 8192)
        try engine.add(request(1, system + Array("first question".utf8)), now: 0)
        let first = drain(&engine)
        let (firstTime, firstCached) = try #require(firstTokenTime(first, id: 1))
        #expect(firstCached == 0)
        let start = first.last!.time
        try engine.add(request(2, system + Array("second, different question".utf8)), now: start)
        let second = drain(&engine, from: start)
        let (secondTime, secondCached) = try #require(firstTokenTime(second, id: 2))
        // 8192 bytes = 32 full blocks of 64 tokens, all cached.
        #expect(secondCached == 32 * 64)
        #expect(secondTime - start < firstTime / 4)
        #expect(engine.stats.prefixHitTokens == 32 * 64)
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(system)) == 32)
        // A different prompt shares nothing.
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(prompt("beta", bytes: 8192))) == 0)
    }

    @Test func theLeastRecentlyFreedPrefixIsEvictedFirst() throws {
        var config = VLLMEngineConfig()
        config.numBlocks = 40
        config.maxModelLen = 40 * 64
        var engine = VLLMEngine(config: config)
        let a = prompt("a", bytes: 16 * 256)
        let b = prompt("b", bytes: 16 * 256)
        let c = prompt("c", bytes: 16 * 256)
        var now = 0
        for (id, text) in [(1, a), (2, b)] {
            try engine.add(request(id, text), now: now)
            now = drain(&engine, from: now).last!.time
        }
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(a)) == 16)
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(b)) == 16)
        #expect(engine.kvCacheUsage == 0)
        // c needs 17 blocks; 40 - 32 cached leaves 8 never-named ones, so 9 of a's go.
        try engine.add(request(3, c), now: now)
        now = drain(&engine, from: now).last!.time
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(b)) == 16)
        #expect(engine.cachedPrefixBlocks(PromptBlocks.hashes(a)) < 16)
        #expect(engine.stats.evictedBlocks > 0)
    }

    @Test func theBatchIsCappedAndTheRestWaitsInOrder() throws {
        var config = VLLMEngineConfig()
        config.maxNumSeqs = 2
        var engine = VLLMEngine(config: config)
        for id in 1...3 { try engine.add(request(id, prompt("q\(id)", bytes: 300), output: 10), now: 0) }
        let durationStep = engine.beginStep(now: 0)
        let duration = try #require(durationStep)
        #expect(engine.runningCount == 2)
        #expect(engine.waitingCount == 1)
        let page = VLLMMetricsPage(modelName: "m").render(engine, epochSeconds: 1)
        let metrics = ModelServerMetrics.parse(Array(page.utf8))
        #expect(metrics.runningRequests == 2)
        #expect(metrics.waitingRequests == 1)
        #expect(metrics.ignoredSamples == 0)
        let usage = try #require(metrics.kvCacheUsage)
        #expect(abs(usage - engine.kvCacheUsage) < 1e-9)
        #expect(usage > 0)
        let log = engine.endStep(now: duration).map { (time: duration, event: $0) } + drain(&engine, from: duration)
        // The third request's first token comes after one of the first two finished.
        let finishes = log.compactMap { entry -> Int? in
            if case .finished(let id) = entry.event, id != 3 { return entry.time }
            return nil
        }
        let third = try #require(firstTokenTime(log, id: 3))
        #expect(third.0 > finishes.min()!)
    }

    @Test func decodeSlowsAsTheBatchGrows() throws {
        var single = VLLMEngine(config: VLLMEngineConfig())
        try single.add(request(1, Array("x".utf8), output: 3), now: 0)
        var batch = VLLMEngine(config: VLLMEngineConfig())
        for id in 1...8 { try batch.add(request(id, Array("x".utf8), output: 3), now: 0) }
        // The first step prefills (1 token each); the second only decodes.
        _ = single.beginStep(now: 0)
        _ = single.endStep(now: 1000)
        _ = batch.beginStep(now: 0)
        _ = batch.endStep(now: 1000)
        let oneStep = single.beginStep(now: 1000)
        let one = try #require(oneStep)
        let eightStep = batch.beginStep(now: 1000)
        let eight = try #require(eightStep)
        #expect(one == VLLMEngineConfig().stepMicros + VLLMEngineConfig().decodeMicrosPerSequence)
        #expect(eight - one == 7 * VLLMEngineConfig().decodeMicrosPerSequence)
    }

    @Test func anUnloadedAdapterWaitsForASlotAndCostsALoad() throws {
        var config = VLLMEngineConfig()
        config.maxLoRAs = 1
        var engine = VLLMEngine(config: config)
        try engine.add(request(1, Array("one".utf8), output: 20, adapter: "sql-lora"), now: 0)
        try engine.add(request(2, Array("two".utf8), output: 5, adapter: "chat-lora"), now: 0)
        try engine.add(request(3, Array("three".utf8), output: 5), now: 0)
        let durationStep = engine.beginStep(now: 0)
        let duration = try #require(durationStep)
        // sql-lora loads (one stall); chat-lora has no slot and is skipped; the base-model
        // request behind it runs.
        #expect(duration >= config.loRALoadMicros)
        #expect(engine.runningCount == 2)
        #expect(engine.waitingCount == 1)
        #expect(engine.runningAdapters == ["sql-lora"])
        #expect(engine.waitingAdapters == ["chat-lora"])
        let page = VLLMMetricsPage(modelName: "m").render(engine, epochSeconds: 1_700_000_000.5)
        let lora = try #require(ModelServerMetrics.parse(Array(page.utf8)).lora)
        #expect(lora.maxLoRA == 1)
        #expect(lora.isRunning(AdapterID("sql-lora")))
        #expect(lora.isWaiting(AdapterID("chat-lora")))
        #expect(!lora.hasFreeSlot)
        #expect(lora.updatedAt == 1_700_000_000.5)
        let log = engine.endStep(now: duration).map { (time: duration, event: $0) } + drain(&engine, from: duration)
        let sqlDone = log.first { if case .finished(1) = $0.event { true } else { false } }!.time
        let chatFirst = try #require(firstTokenTime(log, id: 2)).0
        #expect(chatFirst > sqlDone)
        #expect(engine.stats.loRALoads == 2)
        #expect(engine.loRAsLoaded == ["chat-lora"])
    }

    @Test func theSameArrivalsGiveTheSameTimeline() throws {
        func timeline() throws -> [String] {
            var engine = VLLMEngine(config: VLLMEngineConfig())
            for id in 1...12 {
                try engine.add(
                    request(id, prompt("p\(id % 3)", bytes: 1000 + id * 100), output: id % 5 + 1,
                        adapter: id % 4 == 0 ? "a\(id % 3)" : nil), now: id * 1000)
            }
            return drain(&engine).map { "\($0.time) \($0.event)" }
        }
        let first = try timeline()
        #expect(first.count > 12)
        #expect(try timeline() == first)
    }

    @Test func randomLoadsDrainToAnEmptyCacheWithEveryRequestAnswered() throws {
        // A seeded generator (SplitMix64) so a failure replays.
        var state: UInt64 = 0x5EED
        func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
        for round in 0..<20 {
            var config = VLLMEngineConfig()
            config.maxNumSeqs = 1 + next(8)
            config.numBlocks = 40 + next(200)
            config.maxModelLen = 40 * 64
            config.maxNumBatchedTokens = 1 + next(3000)
            config.maxLoRAs = 1 + next(3)
            var engine = VLLMEngine(config: config)
            var now = 0
            var accepted = 0
            var firstTokens = 0
            var finished = 0
            var tokens = 0
            for id in 0..<60 {
                let text = prompt("p\(next(4))", bytes: 1 + next(6000))
                let adapter = next(3) == 0 ? "a\(next(4))" : nil
                do {
                    try engine.add(request(id, text, output: 1 + next(40), adapter: adapter), now: now)
                    accepted += 1
                } catch {
                    // Prompts of at most 1500 tokens and 40 output tokens fit in 2560.
                    Issue.record("round \(round): refused \(error)")
                }
                // Interleave arrivals with a few steps.
                for _ in 0..<next(3) {
                    guard let duration = engine.beginStep(now: now) else { break }
                    now += duration
                    for event in engine.endStep(now: now) {
                        switch event {
                        case .firstToken: firstTokens += 1; tokens += 1
                        case .token: tokens += 1
                        case .finished: finished += 1
                        }
                    }
                    #expect(engine.runningCount <= config.maxNumSeqs)
                    #expect((0...1).contains(engine.kvCacheUsage))
                    #expect(engine.runningAdapters.count <= config.maxLoRAs)
                }
            }
            for (_, event) in drain(&engine, from: now) {
                switch event {
                case .firstToken: firstTokens += 1; tokens += 1
                case .token: tokens += 1
                case .finished: finished += 1
                }
            }
            #expect(engine.isIdle, "round \(round)")
            #expect(firstTokens == accepted && finished == accepted, "round \(round)")
            #expect(tokens == engine.stats.generationTokens)
            #expect(engine.kvCacheUsage == 0)
            #expect(engine.stats.prefixHitTokens <= engine.stats.prefixQueryTokens)
        }
    }

    @Test func tooLongRequestsAreRefusedAtTheDoor() {
        var engine = VLLMEngine(config: VLLMEngineConfig())
        #expect(throws: EngineRefusal.tooLong(promptTokens: 8000, outputTokens: 500, maxModelLen: 8192)) {
            try engine.add(EngineRequest(id: 1, blockHashes: [], promptTokens: 8000, outputTokens: 500), now: 0)
        }
        #expect(engine.isIdle)
    }

    @Test func anAbortedRequestFreesItsBlocks() throws {
        var engine = VLLMEngine(config: VLLMEngineConfig())
        try engine.add(request(1, prompt("z", bytes: 4096), output: 50), now: 0)
        _ = engine.beginStep(now: 0)
        _ = engine.endStep(now: 1)
        #expect(engine.kvCacheUsage > 0)
        engine.abort(id: 1)
        #expect(engine.kvCacheUsage == 0)
        #expect(engine.isIdle)
        #expect(engine.stats.aborted == 1)
    }

    @Test func thePageUsesVLLMNamesAndTheLegacyNameOnRequest() {
        let engine = VLLMEngine(config: VLLMEngineConfig())
        let page = VLLMMetricsPage(modelName: "llama", legacyCacheName: true).render(engine, epochSeconds: 5)
        for line in [
            "vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 0.0",
            "vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 0.0",
            "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.0",
            "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.0",
            "vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"llama\"} 0.0",
            "vllm:time_to_first_token_seconds_bucket{engine=\"0\",model_name=\"llama\",le=\"+Inf\"} 0.0",
            "vllm:lora_requests_info{max_lora=\"2\",waiting_lora_adapters=\"\",running_lora_adapters=\"\"} 5.0",
        ] {
            #expect(page.contains(line + "\n"), "missing \(line)")
        }
        let metrics = ModelServerMetrics.parse(Array(page.utf8))
        #expect(metrics.kvCacheUsage == 0)
        #expect(metrics.lora?.maxLoRA == 2)
        #expect(metrics.lora?.hasFreeSlot == true)
        #expect(!VLLMMetricsPage(modelName: "llama").render(engine, epochSeconds: 5).contains("gpu_cache_usage_perc"))
    }
}

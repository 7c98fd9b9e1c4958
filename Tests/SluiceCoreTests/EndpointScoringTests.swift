// Inference-aware endpoint picking without Envoy (issue 11, items 2-3 pure core): the model
// servers' /metrics pages as untrusted input, prefix-block hashes and the bounded per-endpoint
// index, and the scorer's filters, weights, staleness fallback and pile-on guard.
import Foundation
import Testing

@testable import SluiceCore

private func page(_ text: String) -> ModelServerMetrics {
    ModelServerMetrics.parse(Array(text.utf8))
}

private let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/metrics")

@Suite struct ModelServerMetricsTests {
    @Test func readsARealisticVLLMPage() throws {
        let bytes = Array(try Data(contentsOf: fixtureDirectory.appendingPathComponent("vllm.txt")))
        let metrics = ModelServerMetrics.parse(bytes)
        #expect(metrics.waitingRequests == 4)
        #expect(metrics.runningRequests == 37)
        #expect(metrics.kvCacheUsage == 0.4375)
        #expect(metrics.ignoredSamples == 0)
        // The second of three LoRA samples has the largest value: it is the current state.
        let lora = try #require(metrics.lora)
        #expect(lora.maxLoRA == 4)
        #expect(lora.runningCount == 3)
        #expect(lora.isRunning(AdapterID("summary-lora")))
        #expect(lora.isRunning(AdapterID("sql-lora")))
        #expect(!lora.isRunning(AdapterID("sql")))
        #expect(lora.isWaiting(AdapterID("summary-lora")))
        #expect(lora.waitingCount == 1)
        #expect(lora.hasFreeSlot)
        #expect(lora.updatedAt == 1.7649412560051e+09)
    }

    @Test func readsSGLangAndTGINames() {
        let sglang = page(
            """
            # HELP sglang:token_usage The token usage
            # TYPE sglang:token_usage gauge
            sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.28
            sglang:num_running_reqs{model_name="m"} 12.0
            sglang:num_queue_reqs{model_name="m"} 3.0
            sglang:time_to_first_token_seconds_bucket{le="0.001",model_name="m"} 0.0
            """)
        #expect(sglang == ModelServerMetrics(waitingRequests: 3, runningRequests: 12, kvCacheUsage: 0.28))
        let tgi = page("tgi_queue_size 7\ntgi_batch_current_size 2\ntgi_batch_current_max_tokens 4096\n")
        #expect(tgi == ModelServerMetrics(waitingRequests: 7, runningRequests: 2))
    }

    @Test func preferTheNewKVNameOverTheOldOneInEitherOrder() {
        #expect(page("vllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.2\n").kvCacheUsage == 0.2)
        #expect(page("vllm:kv_cache_usage_perc 0.2\nvllm:gpu_cache_usage_perc 0.9\n").kvCacheUsage == 0.2)
        #expect(page("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.9\n").kvCacheUsage == 0.9)
    }

    @Test func formatDetails() {
        // Timestamps, tabs, CRLF, escapes in labels (including `}` and `,` inside a value), a
        // trailing comma, exponents.
        let metrics = page(
            "vllm:num_requests_waiting{a=\"x\\\"}, \\\\\",b=\"\\n\",} 1.5e1 1700000000000\r\n"
                + "  vllm:num_requests_running\t2E+0\n"
                + "vllm:kv_cache_usage_perc{model_name=\"m\"} 5e-1\n")
        #expect(metrics.waitingRequests == 15)
        #expect(metrics.runningRequests == 2)
        #expect(metrics.kvCacheUsage == 0.5)
        #expect(metrics.ignoredSamples == 0)
    }

    @Test func specialAndHostileValuesAreClampedOrAbsentAndCounted() {
        #expect(page("vllm:num_requests_waiting NaN\n") == {
            var expected = ModelServerMetrics()
            expected.ignoredSamples = 1
            return expected
        }())
        let bad = page(
            """
            vllm:num_requests_waiting +Inf
            vllm:num_requests_running -3
            vllm:kv_cache_usage_perc -Inf
            """)
        #expect(bad.waitingRequests == nil)
        #expect(bad.runningRequests == nil)
        #expect(bad.kvCacheUsage == nil)
        #expect(bad.ignoredSamples == 3)

        let absurd = page("vllm:num_requests_waiting 1e300\nvllm:num_requests_running 9e18\nvllm:kv_cache_usage_perc 42\n")
        #expect(absurd.waitingRequests == ModelServerMetrics.maxCount)
        #expect(absurd.runningRequests == ModelServerMetrics.maxCount)
        #expect(absurd.kvCacheUsage == 1)

        // Repeated series add up (clamped); KV takes the largest.
        let repeated = page(String(repeating: "vllm:num_requests_waiting{engine=\"0\"} 600000\nvllm:kv_cache_usage_perc 0.3\nvllm:kv_cache_usage_perc 0.6\n", count: 3))
        #expect(repeated.waitingRequests == ModelServerMetrics.maxCount)
        #expect(repeated.kvCacheUsage == 0.6)
        #expect(page("vllm:num_requests_waiting 2\nvllm:num_requests_waiting 3\n").waitingRequests == 5)

        // Malformed lines of known metrics: counted, never read.
        let malformed = page(
            """
            vllm:num_requests_waiting{model_name="m" 3
            vllm:num_requests_waiting{model_name=m} 3
            vllm:num_requests_waiting{model_name="m} 3
            vllm:num_requests_waiting 0x10
            vllm:num_requests_waiting 1e
            vllm:num_requests_waiting
            vllm:num_requests_waiting3
            """)
        #expect(malformed.waitingRequests == nil)
        #expect(malformed.ignoredSamples == 6)  // the last is another metric's name
    }

    @Test func longLinesAreSkippedAndPagesReadUpToTheirBound() {
        func pageWithLine(of length: Int) -> [UInt8] {
            var bytes = Array("vllm:num_requests_waiting{x=\"".utf8)
            bytes += [UInt8](repeating: 0x61, count: length)
            bytes += Array("\"} 99\nvllm:num_requests_running 3\n".utf8)
            return bytes
        }
        // Past `maxLineBytes` the line is skipped and the next one still read.
        let long = ModelServerMetrics.parse(pageWithLine(of: 200 * 1024))
        #expect(long.waitingRequests == nil)
        #expect(long.runningRequests == 3)
        #expect(long.ignoredSamples == 1)
        // A 10 MB line: skipped, and what lies past `maxPageBytes` is not read at all.
        let huge = ModelServerMetrics.parse(pageWithLine(of: 10 * 1024 * 1024))
        #expect(huge == {
            var expected = ModelServerMetrics()
            expected.ignoredSamples = 1
            return expected
        }())
    }

    @Test func loraLabelsAreBoundedAndMaxLoRARangeChecked() throws {
        let names = (0..<40).map { "a\($0)" }.joined(separator: ",")
        let metrics = page("vllm:lora_requests_info{max_lora=\"99999\",running_lora_adapters=\"\(names)\",waiting_lora_adapters=\",,\"} 1\n")
        let lora = try #require(metrics.lora)
        #expect(lora.runningCount == LoRAState.maxAdapters)
        #expect(lora.truncated)
        #expect(lora.waitingCount == 0)
        #expect(lora.maxLoRA == nil)
        #expect(!lora.hasFreeSlot)
        #expect(lora.isRunning(AdapterID("a15")))
        #expect(!lora.isRunning(AdapterID("a16")))
        // A later line with a smaller value does not replace the current state; NaN is ignored.
        let ordered = page(
            """
            vllm:lora_requests_info{max_lora="2",running_lora_adapters="new",waiting_lora_adapters=""} 20
            vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters=""} 10
            vllm:lora_requests_info{max_lora="2",running_lora_adapters="nan",waiting_lora_adapters=""} NaN
            """)
        #expect(try #require(ordered.lora).isRunning(AdapterID("new")))
        #expect(ordered.ignoredSamples == 1)
        #expect(try #require(ordered.lora).runningCount == 1)
    }

    @Test func floatsParseLikePrometheus() {
        func float(_ text: String) -> Double? {
            let bytes = Array(text.utf8)
            return parsePrometheusFloat(bytes.span, 0, bytes.count)
        }
        #expect(float("0") == 0)
        #expect(float("42") == 42)
        #expect(float("-0.5") == -0.5)
        #expect(float(".25") == 0.25)
        #expect(float("3.") == 3)
        #expect(float("1.7649412560051e+09") == 1.7649412560051e+09)
        #expect(float("0.0000000123") == 1.23e-8)
        #expect(float("12345678901234567890123") == 1.2345678901234567e22)
        #expect(float("1e-400") == 0)
        #expect(float("1e99999999999") == .infinity)
        #expect(float("+Inf") == .infinity)
        #expect(float("-inf") == -.infinity)
        #expect(float("Infinity") == .infinity)
        #expect(float("NaN")?.isNaN == true)
        for invalid in ["", "-", ".", "e5", "1e", "1e+", "1.2.3", "nanx", "in", "0x1", "1_000", "--1"] {
            #expect(float(invalid) == nil, "\(invalid)")
        }
    }

    @Test func randomBytesAndMutatedPagesNeverTrap() throws {
        var generator = SplitMix64(seed: 11)
        let fixture = Array(try Data(contentsOf: fixtureDirectory.appendingPathComponent("vllm.txt")))
        let alphabet = Array("vllm:num_requests_waiting{}=\",\\ \n\t#.e+-0123456789NaInf".utf8)
        for round in 0..<2000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int(generator.next() % 512)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            case 1:
                bytes = (0..<Int(generator.next() % 512)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            default:
                bytes = fixture
                for _ in 0..<8 {
                    let index = Int(generator.next() % UInt64(bytes.count))
                    bytes[index] = alphabet[Int(generator.next() % UInt64(alphabet.count))]
                }
                if generator.next() % 2 == 0 { bytes.removeLast(Int(generator.next() % UInt64(bytes.count))) }
            }
            let metrics = ModelServerMetrics.parse(bytes)
            if let waiting = metrics.waitingRequests { #expect((0...ModelServerMetrics.maxCount).contains(waiting)) }
            if let running = metrics.runningRequests { #expect((0...ModelServerMetrics.maxCount).contains(running)) }
            if let kv = metrics.kvCacheUsage { #expect((0...1).contains(kv)) }
            if let lora = metrics.lora {
                #expect(lora.runningCount <= LoRAState.maxAdapters)
                if let maxLoRA = lora.maxLoRA { #expect((0...1024).contains(maxLoRA)) }
            }
        }
    }
}

// SplitMix64 (JSONParserTests.swift) drives the fuzz-style tests.

private func prompt(_ seed: UInt64, bytes: Int) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    return (0..<bytes).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
}

@Suite struct PrefixBlockTests {
    @Test func blocksAreFullAndChained() {
        let base = prompt(1, bytes: 4096)
        let hashes = PrefixBlockHashes(prompt: base)
        #expect(hashes.count == 16)
        #expect(PrefixBlockHashes(prompt: Array(base.prefix(255))).count == 0)
        #expect(PrefixBlockHashes(prompt: Array(base.prefix(257))).count == 1)
        #expect(PrefixBlockHashes(prompt: prompt(2, bytes: 64 * 1024)).count == PrefixBlockHashes.maxBlocks)
        #expect(hashes[-1] == 0 && hashes[16] == 0)

        // Same prefix, different tail: the leading hashes agree up to the first changed block,
        // and every hash after a change differs, even where the block's own bytes are equal.
        var changed = base
        changed[5 * 256 + 3] ^= 1
        let other = PrefixBlockHashes(prompt: changed)
        for block in 0..<5 { #expect(other[block] == hashes[block]) }
        for block in 5..<16 { #expect(other[block] != hashes[block]) }

        // The same block after different parents hashes differently.
        let repeated = [UInt8](repeating: 7, count: 1024)
        let chain = PrefixBlockHashes(prompt: repeated)
        #expect(Set((0..<4).map { chain[$0] }).count == 4)

        // The seed keys every hash; nothing is 0.
        let seeded = PrefixBlockHashes(prompt: base, seed: 42)
        for block in 0..<16 {
            #expect(seeded[block] != hashes[block])
            #expect(hashes[block] != 0)
        }
    }

    @Test func singleBitChangesSpreadAcrossTheHash() {
        // A weak mix would leave most output bits unchanged; about half must flip.
        let base = prompt(3, bytes: 256)
        let reference = PrefixBlockHashes(prompt: base)[0]
        var flipped = 0
        for bit in 0..<(256 * 8) {
            var changed = base
            changed[bit / 8] ^= UInt8(1 << (bit % 8))
            flipped += (PrefixBlockHashes(prompt: changed)[0] ^ reference).nonzeroBitCount
        }
        let average = Double(flipped) / Double(256 * 8)
        #expect(average > 28 && average < 36, "average flipped bits \(average)")
    }
}

@Suite struct PrefixIndexTests {
    @Test func learnsLeadingBlocksPerEndpoint() throws {
        var index = try PrefixIndex(endpointCount: 4, blocksPerEndpoint: 1024)
        let system = prompt(4, bytes: 2048)
        let first = PrefixBlockHashes(prompt: system + prompt(5, bytes: 1024))
        let second = PrefixBlockHashes(prompt: system + prompt(6, bytes: 1024))
        #expect(index.leadingBlocks(endpoint: 2, second) == 0)
        index.record(endpoint: 2, first)
        #expect(index.leadingBlocks(endpoint: 2, first) == 12)
        #expect(index.leadingBlocks(endpoint: 2, second) == 8)  // the shared 2 KiB system prompt
        #expect(index.leadingBlocks(endpoint: 1, second) == 0)
        #expect(index.leadingBlocks(endpoint: 9, second) == 0)
        index.record(endpoint: -1, first)  // ignored
        index.forget(endpoint: 2)
        #expect(index.leadingBlocks(endpoint: 2, first) == 0)
    }

    @Test func staysBoundedAndForgetsTheLeastRecentlyUsed() throws {
        var index = try PrefixIndex(endpointCount: 1, blocksPerEndpoint: 64)
        #expect(index.blocksPerEndpoint == 64)
        let hot = PrefixBlockHashes(prompt: prompt(7, bytes: 1024))
        index.record(endpoint: 0, hot)
        // Thousands of other prompts go through; the hot one is used again between them.
        for round in 0..<500 {
            index.record(endpoint: 0, PrefixBlockHashes(prompt: prompt(100 + UInt64(round), bytes: 512)))
            if round % 4 == 0 { index.record(endpoint: 0, hot) }
        }
        #expect(index.leadingBlocks(endpoint: 0, hot) == 4)
        // A prompt seen once long ago is gone.
        let old = PrefixBlockHashes(prompt: prompt(100, bytes: 512))
        #expect(index.leadingBlocks(endpoint: 0, old) < 2)
    }

    @Test func configIsRangeChecked() {
        #expect(throws: EndpointConfigError.self) { try PrefixIndex(endpointCount: 0) }
        #expect(throws: EndpointConfigError.self) { try PrefixIndex(endpointCount: 65) }
        #expect(throws: EndpointConfigError.self) { try PrefixIndex(endpointCount: 1, blocksPerEndpoint: 10) }
        #expect(throws: EndpointConfigError.self) { try PrefixIndex(endpointCount: 1, blocksPerEndpoint: 1 << 30) }
        #expect((try? PrefixIndex(endpointCount: 1, blocksPerEndpoint: 100))?.blocksPerEndpoint == 128)
    }
}

@Suite struct SessionTableTests {
    @Test func remembersWhereEachSessionWentLast() throws {
        var table = try SessionTable(capacity: 64)
        let alice = try #require(SessionTable.key(of: "conversation-alice"))
        let bob = try #require(SessionTable.key(of: "conversation-bob"))
        #expect(alice != bob && table.endpoint(for: alice) == nil)
        table.record(alice, endpoint: 3)
        table.record(bob, endpoint: 0)
        #expect(table.endpoint(for: alice) == 3 && table.endpoint(for: bob) == 0)
        table.record(alice, endpoint: 5)  // the session moved
        #expect(table.endpoint(for: alice) == 5 && table.occupied == 2)
        table.record(alice, endpoint: 64)  // out of range: ignored
        table.record(alice, endpoint: -1)
        #expect(table.endpoint(for: alice) == 5)
        #expect(table.endpoint(for: 0) == nil)
    }

    @Test func idsAreBoundedAndEmptyOnesAreNoSession() {
        #expect(SessionTable.key(of: "") == nil)
        #expect(SessionTable.key(of: String(repeating: "x", count: SessionTable.maxIDBytes)) != nil)
        #expect(SessionTable.key(of: String(repeating: "x", count: SessionTable.maxIDBytes + 1)) == nil)
        // Ids that differ only in their last byte still spread over the sets.
        let keys = (0..<16).compactMap { SessionTable.key(of: "session-\($0)") }
        #expect(Set(keys).count == 16)
    }

    @Test func staysBoundedAndForgetsTheLeastRecentlyUsed() throws {
        var table = try SessionTable(capacity: 64)
        let hot = try #require(SessionTable.key(of: "hot"))
        table.record(hot, endpoint: 1)
        for round in 0..<2000 {
            table.record(try #require(SessionTable.key(of: "s\(round)")), endpoint: round % 8)
            if round % 8 == 0 { table.record(hot, endpoint: 1) }
        }
        #expect(table.occupied == 64)
        #expect(table.endpoint(for: hot) == 1)
        #expect(table.endpoint(for: try #require(SessionTable.key(of: "s0"))) == nil)
        #expect(table.endpoint(for: try #require(SessionTable.key(of: "s1999"))) == 1999 % 8)
    }

    @Test func capacityIsRangeChecked() {
        #expect(throws: EndpointConfigError.self) { try SessionTable(capacity: 10) }
        #expect(throws: EndpointConfigError.self) { try SessionTable(capacity: 1 << 23) }
        #expect((try? SessionTable(capacity: 100))?.capacity == 128)
    }

    @Test func pickerConfigNamesTheHeader() throws {
        let config = try EndpointPickerConfig.parse(Array(#"{"pool":"p","session_header":"X-Session-ID","session_entries":1024}"#.utf8))
        #expect(config.sessionHeader == "x-session-id" && config.sessionEntries == 1024)
        #expect(try EndpointPickerConfig.parse(Array(#"{"pool":"p"}"#.utf8)).sessionHeader == nil)
        for bad in [#""""#, #""x session""#, #"":path""#, #""x-sluice-epp""#, "\"\(String(repeating: "h", count: 129))\""] {
            #expect(throws: ConfigError.self, "\(bad)") {
                try EndpointPickerConfig.parse(Array(#"{"pool":"p","session_header":"#.utf8) + Array(bad.utf8) + [UInt8(ascii: "}")])
            }
        }
        #expect(throws: ConfigError.self) { try EndpointPickerConfig.parse(Array(#"{"pool":"p","session_entries":8}"#.utf8)) }
    }
}

@Suite struct EndpointScorerTests {
    let now: Int64 = 1_000_000

    func snapshot(_ metrics: [ModelServerMetrics], readAt: Int64? = nil, generation: UInt64 = 1) -> EndpointSnapshot {
        EndpointSnapshot(
            endpoints: metrics.map { EndpointState(metrics: $0, readAtMillis: readAt ?? now - 30) }, generation: generation)
    }

    func idle(_ count: Int) -> [ModelServerMetrics] {
        Array(repeating: ModelServerMetrics(waitingRequests: 0, runningRequests: 1, kvCacheUsage: 0.1), count: count)
    }

    func pickIndex(
        _ scorer: EndpointScorer, _ request: EndpointRequest, _ snapshot: EndpointSnapshot, index: PrefixIndex,
        picks: PicksSinceSnapshot = PicksSinceSnapshot(), candidates: EndpointSet? = nil, tieBreak: UInt64 = 0
    ) -> Int? {
        guard
            case .endpoint(let chosen, _, _) = scorer.pick(
                request, snapshot: snapshot, candidates: candidates ?? .first(snapshot.endpoints.count),
                prefixIndex: index, picksSinceSnapshot: picks, nowMillis: now, tieBreak: tieBreak)
        else { return nil }
        return chosen
    }

    @Test func prefixAffinityWinsAmongEqualEndpoints() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        var index = try PrefixIndex(endpointCount: 8, blocksPerEndpoint: 1024)
        let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(8, bytes: 4096)))
        index.record(endpoint: 5, request.prefix)
        for tieBreak in 0..<8 as Range<UInt64> {
            #expect(pickIndex(scorer, request, snapshot(idle(8)), index: index, tieBreak: tieBreak) == 5)
        }
        // Without a prefix, ties rotate with tieBreak.
        let plain = EndpointRequest()
        #expect(pickIndex(scorer, plain, snapshot(idle(8)), index: index, tieBreak: 3) == 3)
        #expect(pickIndex(scorer, plain, snapshot(idle(8)), index: index, tieBreak: 11) == 3)
    }

    @Test func saturatedEndpointsAreFilteredEvenWithThePrefix() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        var index = try PrefixIndex(endpointCount: 3)
        let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(9, bytes: 4096)))
        index.record(endpoint: 0, request.prefix)
        index.record(endpoint: 1, request.prefix)
        var metrics = idle(3)
        metrics[0].waitingRequests = scorer.config.saturationQueue  // at the queue threshold
        metrics[1].kvCacheUsage = 0.85  // past the KV threshold
        // Endpoint 1's full KV cache does not count against a request whose prefix it holds (it
        // reuses those blocks); a request it does not hold the prefix of is kept away from it.
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 1)
        let stranger = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(19, bytes: 4096)))
        #expect(pickIndex(scorer, stranger, snapshot(metrics), index: index) == 2)
        // Holding less than half the prompt's blocks is not enough.
        var partial = try PrefixIndex(endpointCount: 3)
        let half = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(9, bytes: 1024) + prompt(29, bytes: 3072)))
        partial.record(endpoint: 1, PrefixBlockHashes(prompt: prompt(9, bytes: 1024)))
        #expect(pickIndex(scorer, half, snapshot(metrics), index: partial) == 2)
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 1)
        // Every endpoint saturated (for a request none holds): still picks (the least queued),
        // and says so.
        metrics[2].waitingRequests = 50
        let pick = scorer.pick(
            stranger, snapshot: snapshot(metrics), candidates: .first(3), prefixIndex: index,
            picksSinceSnapshot: PicksSinceSnapshot(), nowMillis: now)
        guard case .endpoint(let chosen, _, let saturated) = pick else {
            Issue.record("expected an endpoint, got \(pick)")
            return
        }
        #expect(saturated)
        #expect(chosen == 1)  // the shortest queue (its KV cache is what saturates it)
    }

    @Test func whenEverythingIsSaturatedACachedPrefixCountsAsHalfAThreshold() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        var index = try PrefixIndex(endpointCount: 3)
        let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(31, bytes: 4096)))
        index.record(endpoint: 2, request.prefix)
        var metrics = idle(3)
        let threshold = scorer.config.saturationQueue
        metrics[0].waitingRequests = threshold
        metrics[1].waitingRequests = threshold + 2
        // The prefix's endpoint has up to half a threshold more waiting and still wins...
        metrics[2].waitingRequests = threshold + threshold / 2 - 1
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 2)
        // ...but not more than that.
        metrics[2].waitingRequests = threshold + threshold / 2 + 1
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 0)
    }

    @Test func loraFilterAndAffinity() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        let index = try PrefixIndex(endpointCount: 3)
        func lora(max: Int, running: [String]) -> LoRAState {
            var state = LoRAState()
            state.maxLoRA = max
            for name in running { state.appendRunning(AdapterID(name)) }
            return state
        }
        var metrics = idle(3)
        metrics[0].lora = lora(max: 1, running: ["other"])  // full, without ours
        metrics[1].lora = lora(max: 2, running: ["other"])  // a free slot
        metrics[2].lora = lora(max: 1, running: ["other"])
        let request = EndpointRequest(adapter: AdapterID("ours"))
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 1)
        metrics[2].lora = lora(max: 1, running: ["ours"])  // loaded beats a free slot
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) == 2)
        // No endpoint fits: the filter fails open.
        metrics[1].lora = lora(max: 1, running: ["x"])
        metrics[2].lora = lora(max: 1, running: ["x"])
        #expect(pickIndex(scorer, request, snapshot(metrics), index: index) != nil)
    }

    @Test func staleOrMissingMetricsFallBackToLeastRequest() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        let index = try PrefixIndex(endpointCount: 4)
        var endpoints = idle(4).map { EndpointState(metrics: $0, readAtMillis: now - 100) }
        endpoints[2].readAtMillis = now - 2001
        let request = EndpointRequest()
        let stale = EndpointSnapshot(endpoints: endpoints, generation: 1)
        func pick(_ snapshot: EndpointSnapshot, _ candidates: EndpointSet) -> EndpointPick {
            scorer.pick(
                request, snapshot: snapshot, candidates: candidates, prefixIndex: index,
                picksSinceSnapshot: PicksSinceSnapshot(), nowMillis: now)
        }
        #expect(pick(stale, .first(4)) == .leastRequest(.staleMetrics(endpoint: 2)))
        // Not a candidate (a retry avoids it): its staleness does not matter.
        var others = EndpointSet.first(4)
        others.remove(2)
        #expect(pickIndex(scorer, request, stale, index: index, candidates: others) != nil)
        endpoints[2].readAtMillis = nil
        #expect(pick(EndpointSnapshot(endpoints: endpoints, generation: 2), .first(4)) == .leastRequest(.staleMetrics(endpoint: 2)))
        for absurd in [Int64.min, Int64.max, now + 2001] {
            endpoints[2].readAtMillis = absurd
            #expect(pick(EndpointSnapshot(endpoints: endpoints, generation: 3), .first(4)) == .leastRequest(.staleMetrics(endpoint: 2)))
        }
        endpoints[2].readAtMillis = now - 2000  // exactly at the limit: still fresh
        #expect(pickIndex(scorer, request, EndpointSnapshot(endpoints: endpoints, generation: 4), index: index) != nil)
        #expect(pick(stale, EndpointSet(bits: 0)) == .leastRequest(.noCandidates))
        #expect(pick(stale, EndpointSet(bits: 1 << 40)) == .leastRequest(.noCandidates))
    }

    @Test func picksSinceTheSnapshotSpreadAHotPrefix() throws {
        // 40 requests sharing one prefix arrive between two scrapes of an idle pool of 4: the
        // first goes to the endpoint holding the prefix, and once the picks fill its queue to
        // the saturation threshold the rest spread, rather than all piling onto it. (A threshold
        // of 5 and a prefix weight of 3 make 40 picks enough to show it; the defaults are
        // tuned to hold a prefix longer.)
        var config = EndpointScoringConfig()
        config.saturationQueue = 5
        config.prefixWeight = 3
        let scorer = try EndpointScorer(config: config)
        var index = try PrefixIndex(endpointCount: 4)
        let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: prompt(10, bytes: 4096)))
        index.record(endpoint: 1, request.prefix)
        let pool = snapshot(idle(4))
        var picks = PicksSinceSnapshot()
        picks.align(with: pool)
        var perEndpoint = [0, 0, 0, 0]
        for request_ in 0..<40 {
            guard let chosen = pickIndex(scorer, request, pool, index: index, picks: picks, tieBreak: UInt64(request_))
            else {
                Issue.record("no pick")
                return
            }
            picks.recordPick(chosen)
            perEndpoint[chosen] += 1
        }
        #expect(perEndpoint[1] >= 5)
        #expect(perEndpoint.allSatisfy { $0 >= 5 }, "\(perEndpoint)")
        #expect(perEndpoint.max()! - perEndpoint.min()! <= 6, "\(perEndpoint)")
        // A newer snapshot starts the count over.
        picks.align(with: snapshot(idle(4), generation: 2))
        #expect((0..<4).allSatisfy { picks[$0] == 0 })
    }

    @Test func sessionAffinityAndQueueOrdering() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        let index = try PrefixIndex(endpointCount: 3)
        var metrics = idle(3)
        metrics[0].waitingRequests = 3
        metrics[1].waitingRequests = 1
        metrics[2].waitingRequests = 2
        #expect(pickIndex(scorer, EndpointRequest(), snapshot(metrics), index: index) == 1)
        #expect(pickIndex(scorer, EndpointRequest(sessionEndpoint: 2), snapshot(metrics), index: index) == 2)
        // The session's endpoint saturated: the session moves rather than queue behind it.
        metrics[2].waitingRequests = EndpointScoringConfig().saturationQueue
        #expect(pickIndex(scorer, EndpointRequest(sessionEndpoint: 2), snapshot(metrics), index: index) == 1)
        metrics[2].waitingRequests = 2
        var kvOnly = EndpointScoringConfig()
        kvOnly.queueWeight = 0
        metrics[1].kvCacheUsage = 0.7
        #expect(pickIndex(try EndpointScorer(config: kvOnly), EndpointRequest(), snapshot(metrics), index: index) == 0)
    }

    @Test func randomPoolsNeverTrapAndPickOnlyCandidates() throws {
        var generator = SplitMix64(seed: 12)
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        var index = try PrefixIndex(endpointCount: 64, blocksPerEndpoint: 64)
        var picks = PicksSinceSnapshot()
        for round in 0..<3000 {
            let count = Int(generator.next() % 70)
            var endpoints: [EndpointState] = []
            for _ in 0..<count {
                var metrics = ModelServerMetrics()
                if generator.next() % 4 != 0 { metrics.waitingRequests = Int(generator.next() % 20) }
                if generator.next() % 4 != 0 { metrics.kvCacheUsage = Double(generator.next() % 101) / 100 }
                if generator.next() % 3 == 0 {
                    var lora = LoRAState()
                    lora.maxLoRA = Int(generator.next() % 3)
                    if generator.next() % 2 == 0 { lora.appendRunning(AdapterID("a\(generator.next() % 3)")) }
                    metrics.lora = lora
                }
                let readAt: Int64? = generator.next() % 50 == 0 ? nil : now - Int64(generator.next() % 2100)
                endpoints.append(EndpointState(metrics: metrics, readAtMillis: readAt))
            }
            let snapshot = EndpointSnapshot(endpoints: endpoints, generation: UInt64(round / 10))
            picks.align(with: snapshot)
            let request = EndpointRequest(
                prefix: PrefixBlockHashes(prompt: prompt(generator.next() % 8, bytes: Int(generator.next() % 2048))),
                adapter: generator.next() % 2 == 0 ? AdapterID("a\(generator.next() % 3)") : nil,
                sessionEndpoint: generator.next() % 4 == 0 ? Int(generator.next() % 80) - 8 : nil)
            let candidates = EndpointSet(bits: generator.next())
            let pick = scorer.pick(
                request, snapshot: snapshot, candidates: candidates, prefixIndex: index, picksSinceSnapshot: picks,
                nowMillis: now, tieBreak: generator.next())
            if case .endpoint(let chosen, let score, _) = pick {
                #expect(candidates.contains(chosen) && chosen < snapshot.endpoints.count)
                #expect(score.isFinite)
                picks.recordPick(chosen)
                index.record(endpoint: chosen, request.prefix)
            }
        }
    }

    @Test func configIsRangeChecked() {
        var config = EndpointScoringConfig()
        config.prefixWeight = -1
        #expect(throws: EndpointConfigError(field: "prefix_weight", message: "must be 0...100, got -1.0")) {
            try config.validated()
        }
        config = EndpointScoringConfig()
        config.sessionWeight = .nan
        #expect(throws: EndpointConfigError.self) { try config.validated() }
        config = EndpointScoringConfig()
        config.saturationKVCache = 0
        #expect(throws: EndpointConfigError.self) { try config.validated() }
        config = EndpointScoringConfig()
        config.staleAfterMillis = 10
        #expect(throws: EndpointConfigError.self) { try EndpointScorer(config: config) }
        #expect(EndpointSnapshot(endpoints: Array(repeating: EndpointState(metrics: .init(), readAtMillis: 0), count: 70), generation: 0).endpoints.count == 64)
    }
}

// The fleet usage path without Envoy: the lock-free hand-over queue (one and many threads), the
// worker's config, the records' protocol form, sluiced's answer read as untrusted input, and the
// shipper's batching, bound, retry and drain rules with an injected clock and seed.
import Synchronization
import Testing

@testable import SluiceCore

@Suite struct UsageRecordQueueTests {
    @Test func pushesComeOutInOrderAndAFullRingRefusesAndCounts() {
        let queue = BoundedMPSCQueue<Int>(minimumCapacity: 5)
        #expect(queue.capacity == 8)
        for value in 0..<8 { #expect(queue.push(value)) }
        #expect(!queue.push(8))
        #expect(!queue.push(9))
        #expect(queue.takeRefusedCount() == 2)
        #expect(queue.takeRefusedCount() == 0)
        var out: [Int] = []
        #expect(queue.drain(max: 3) { out.append($0) } == 3)
        #expect(out == [0, 1, 2])
        // Freed slots are reused on the next lap.
        for value in 8..<11 { #expect(queue.push(value)) }
        #expect(!queue.push(11))
        queue.drain(max: .max) { out.append($0) }
        #expect(out == Array(0..<11))
        #expect(queue.approximateCount == 0)
        #expect(queue.drain(max: .max) { _ in } == 0)
    }

    @Test func recordsWithStringsSurviveTheRingAndAreReleasedWithIt() {
        let queue = BoundedMPSCQueue<String>(minimumCapacity: 4)
        for lap in 0..<5 {
            for index in 0..<4 { #expect(queue.push("record-\(lap)-\(index)-" + String(repeating: "x", count: 40))) }
            var out: [String] = []
            queue.drain(max: .max) { out.append($0) }
            #expect(out.count == 4)
            #expect(out.last?.hasPrefix("record-\(lap)-3-") == true)
        }
        // Left in the ring at deinit: released, not leaked or double-freed (ASan/leaks would tell).
        for index in 0..<3 { queue.push("left-\(index)-" + String(repeating: "y", count: 40)) }
    }

    /// Four producer threads push 50,000 numbers each while the consumer drains concurrently:
    /// every number comes out exactly once, each producer's in its own order, and what a full
    /// ring refused is exactly what is missing.
    @Test func manyProducersOneConsumerLoseNothingUncounted() async {
        let queue = BoundedMPSCQueue<Int>(minimumCapacity: 1024)
        let producers = 4
        let perProducer = 50_000
        let finishedProducers = ProducerCount()
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for sequence in 0..<perProducer { _ = queue.push(producer * 1_000_000 + sequence) }
                    finishedProducers.count.add(1, ordering: .releasing)
                }
            }
            group.addTask {
                var last = [Int](repeating: -1, count: producers)
                var received = 0
                var refused = 0
                var ordered = true
                while true {
                    let finished = finishedProducers.count.load(ordering: .acquiring) == producers
                    queue.drain(max: .max) { value in
                        let producer = value / 1_000_000
                        let sequence = value % 1_000_000
                        if sequence <= last[producer] { ordered = false }
                        last[producer] = sequence
                        received += 1
                    }
                    refused += queue.takeRefusedCount()
                    if finished && queue.approximateCount == 0 {
                        queue.drain(max: .max) { _ in received += 1 }
                        break
                    }
                }
                #expect(ordered)
                #expect(received + refused == producers * perProducer)
                #expect(received > 0)
            }
        }
    }
}

private final class ProducerCount: Sendable {
    let count = Atomic<Int>(0)
}

@Suite struct FleetWorkerConfigTests {
    static let valid = #"{"cluster":"sluiced_fleet","token_file":"/tmp/t","envoy":"node-1"}"#

    @Test func defaultsFollowTheProtocol() throws {
        let config = try FleetWorkerConfig.parse(Array(Self.valid.utf8))
        #expect(config.cluster == "sluiced_fleet")
        #expect(config.flushIntervalMillis == 1000)
        #expect(config.batchMaxRecords == 500)
        #expect(config.bufferMaxRecords == 100_000)
        #expect(config.timeoutMillis == 2000)
        let full = try FleetWorkerConfig.parse(Array(#"""
            {"cluster":"c","token_file":"/a/b","envoy":"e","flush_interval_ms":"250","batch_max_records":1000,
             "buffer_max_records":10,"timeout_ms":1e3}
            """#.utf8))
        #expect(full.flushIntervalMillis == 250 && full.batchMaxRecords == 1000 && full.bufferMaxRecords == 10)
        #expect(full.timeoutMillis == 1000)
    }

    @Test(arguments: [
        (#"{"token_file":"/t","envoy":"e"}"#, "cluster: is required"),
        (#"{"cluster":"","token_file":"/t","envoy":"e"}"#, "cluster: must not be empty"),
        (#"{"cluster":"c","token_file":"t","envoy":"e"}"#, "token_file: must be an absolute path, got \"t\""),
        (#"{"cluster":"c","token_file":"/t","envoy":"e\u0001"}"#, "envoy: must be 1 to 128 printable ASCII characters"),
        (#"{"cluster":"c","token_file":"/t","envoy":"e","batch_max_records":1001}"#,
         "batch_max_records: must be between 1 and 1000, got 1001"),
        (#"{"cluster":"c","token_file":"/t","envoy":"e","flush_interval_ms":1.5}"#, "flush_interval_ms: expected an integer, got 1.5"),
        (#"{"cluster":"c","token_file":"/t","envoy":"e","timeout_ms":0}"#, "timeout_ms: must be between 1 and 600000, got 0"),
        (#"{"cluster":"c","token_file":"/t","envoy":"e","buffer_max_records":-1}"#,
         "buffer_max_records: must be between 1 and 10000000, got -1"),
        (#"{"cluster":"c","token_file":"/t","envoy":"e","flush_ms":5}"#, "flush_ms: unknown field"),
        (#"[1]"#, "expected an object, got array"),
    ])
    func badConfigsNameTheField(json: String, message: String) {
        #expect(throws: ConfigError.self) { try FleetWorkerConfig.parse(Array(json.utf8)) }
        do {
            _ = try FleetWorkerConfig.parse(Array(json.utf8))
        } catch {
            #expect(error.message == message)
        }
    }
}

@Suite struct UsageRecordTests {
    static func record(_ id: String = "req-1", status: Int = 200, ttft: Int64? = nil) -> FleetUsageRecord {
        FleetUsageRecord(
            id: id, timeMillis: 1_700_000_000_000, key: "alice", team: "research", model: "gpt-4o-mini", backend: "openai",
            provider: "openai", status: status, inputTokens: 12, cachedInputTokens: 2, outputTokens: 30, costMicros: 20,
            durationMillis: 15, ttftMillis: ttft, stream: ttft != nil)
    }

    @Test func aBatchIsTheProtocolsJSON() throws {
        let body = FleetUsageRecord.batchBody(envoy: "node-1", records: [Self.record(), Self.record("req-2", ttft: 7)])
        let expected = #"{"envoy":"node-1","records":[{"id":"req-1","time_ms":1700000000000,"key":"alice","team":"research","model":"gpt-4o-mini","backend":"openai","provider":"openai","status":200,"unit":"tokens","input_tokens":12,"cached_input_tokens":2,"output_tokens":30,"search_units":0,"cost_micro_usd":20,"duration_ms":15,"ttft_ms":null,"stream":false},{"id":"req-2","time_ms":1700000000000,"key":"alice","team":"research","model":"gpt-4o-mini","backend":"openai","provider":"openai","status":200,"unit":"tokens","input_tokens":12,"cached_input_tokens":2,"output_tokens":30,"search_units":0,"cost_micro_usd":20,"duration_ms":15,"ttft_ms":7,"stream":true}]}"#
        #expect(String(decoding: body, as: UTF8.self) == expected)
        _ = try JSONParser.parse(body)
    }

    @Test func valuesAreClampedIntoTheProtocolsRanges() {
        let record = FleetUsageRecord(
            id: "", timeMillis: -5, key: "", team: "", model: "", backend: "", provider: "", status: 0, inputTokens: -1,
            cachedInputTokens: Int.max, outputTokens: 2_000_000_000, costMicros: Int64.max, durationMillis: -3,
            ttftMillis: Int64.max, stream: true)
        #expect(record.id.hasPrefix("sluice-"))
        #expect(record.timeMillis == 0)
        #expect(record.status == 499)
        #expect(record.inputTokens == 0 && record.cachedInputTokens == 1_000_000_000 && record.outputTokens == 1_000_000_000)
        #expect(record.costMicros == 1_000_000_000_000_000)
        #expect(record.durationMillis == 0 && record.ttftMillis == 1_000_000_000)
        #expect(FleetUsageRecord.protocolStatus(700) == 500)
        #expect(FleetUsageRecord.protocolStatus(429) == 429)
    }

    @Test func longNamesAreCutAtACharacterBoundaryWithin256Bytes() {
        let long = String(repeating: "a", count: 255) + "é" + "tail"
        let cut = FleetUsageRecord.protocolName(long)
        #expect(cut == String(repeating: "a", count: 255))
        #expect(FleetUsageRecord.protocolName(String(repeating: "m", count: 300)).utf8.count == 256)
        #expect(FleetUsageRecord.protocolName("gpt-4o-mini") == "gpt-4o-mini")
        let record = FleetUsageRecord(
            id: "r", timeMillis: 0, key: long, team: long, model: long, backend: long, provider: long, status: 200,
            inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, costMicros: 0, durationMillis: 0, ttftMillis: nil, stream: false)
        #expect([record.key, record.team, record.model, record.backend, record.provider].allSatisfy { $0.utf8.count <= 256 })
    }

    @Test func idsArePrintableASCIIOfAtMost128Bytes() {
        #expect(FleetUsageRecord.protocolID("3f1c-ab") == "3f1c-ab")
        #expect(FleetUsageRecord.protocolID("a\u{1}b\u{e9}") == "a_b__")  // é is two UTF-8 bytes
        #expect(FleetUsageRecord.protocolID(String(repeating: "z", count: 300)).utf8.count == 128)
        let first = UsageRecordID.generate()
        let second = UsageRecordID.generate()
        #expect(first != second)
    }
}

@Suite struct FleetUsageAnswerTests {
    @Test func aValidAnswerAccountsForEveryRecord() throws {
        let answer = try FleetUsageAnswer.parse(
            Array(#"{"accepted":2,"duplicates":1,"rejected":[{"index":3,"error":"status: must be 100..599"}],"extra":1}"#.utf8),
            batchCount: 4)
        #expect(answer.accepted == 2 && answer.duplicates == 1)
        #expect(answer.rejected.map(\.index) == [3])
        #expect(answer.rejected.first?.error == "status: must be 100..599")
    }

    @Test(arguments: [
        (#"not json"#, "answer is not JSON"),
        (#"[]"#, "answer is not an object"),
        (#"{"duplicates":0,"rejected":[]}"#, "answer has no accepted"),
        (#"{"accepted":-1,"duplicates":0,"rejected":[]}"#, "accepted is not an integer in 0...2"),
        (#"{"accepted":3,"duplicates":0,"rejected":[]}"#, "accepted is not an integer in 0...2"),
        (#"{"accepted":1.5,"duplicates":0,"rejected":[]}"#, "accepted is not an integer in 0...2"),
        (#"{"accepted":1,"duplicates":0,"rejected":[]}"#, "answer accounts for 1 records of a batch of 2"),
        (#"{"accepted":0,"duplicates":0,"rejected":[{"index":2,"error":"x"},{"index":0,"error":"y"}]}"#,
         "rejected[0].index is not an index of the batch (0..<2)"),
        (#"{"accepted":0,"duplicates":0,"rejected":[{"index":1,"error":"x"},{"index":1,"error":"y"}]}"#,
         "rejected[1].index 1 is repeated"),
        (#"{"accepted":1,"duplicates":0,"rejected":[{"index":1}]}"#, "rejected[0].error is not a string"),
        (#"{"accepted":1,"duplicates":0,"rejected":{}}"#, "rejected is not an array"),
    ])
    func anAnswerThatDoesNotFitTheBatchIsRefused(body: String, message: String) {
        do {
            _ = try FleetUsageAnswer.parse(Array(body.utf8), batchCount: 2)
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.message.hasPrefix(message))
        }
    }
}

@Suite struct UsageShipperTests {
    static func config(batch: Int = 3, buffer: Int = 10, flush: Int64 = 1000) -> FleetWorkerConfig {
        var config = FleetWorkerConfig(cluster: "c", tokenFile: "/t", envoy: "node-1")
        config.batchMaxRecords = batch
        config.bufferMaxRecords = buffer
        config.flushIntervalMillis = flush
        return config
    }

    static func ids(_ body: [UInt8]?) -> [String] {
        guard let body, case .object(let root)? = try? JSONParser.parse(body), case .array(let records)? = root["records"] else { return [] }
        return records.compactMap { if case .object(let record) = $0, case .string(let id)? = record["id"] { id } else { nil } }
    }

    static func ok(_ accepted: Int) -> FleetCalloutOutcome {
        .answered(status: 200, body: Array(#"{"accepted":\#(accepted),"duplicates":0,"rejected":[]}"#.utf8))
    }

    @Test func aFullBatchGoesAtOnceAndAPartialOneAfterTheFlushInterval() {
        var shipper = UsageShipper(config: Self.config(), nowMillis: 0, seed: 1)
        shipper.accept(UsageRecordTests.record("a"))
        shipper.accept(UsageRecordTests.record("b"))
        #expect(shipper.nextBatch(nowMillis: 10) == nil)
        shipper.accept(UsageRecordTests.record("c"))
        shipper.accept(UsageRecordTests.record("d"))
        let first = shipper.nextBatch(nowMillis: 20)
        #expect(Self.ids(first) == ["a", "b", "c"])
        #expect(shipper.inFlight == 3)
        // One batch at a time.
        #expect(shipper.nextBatch(nowMillis: 5000) == nil)
        #expect(shipper.batchFinished(Self.ok(3), nowMillis: 30) == .delivered(accepted: 3, duplicates: 0, rejected: []))
        #expect(shipper.bufferedCount == 1)
        #expect(shipper.nextBatch(nowMillis: 500) == nil)
        #expect(Self.ids(shipper.nextBatch(nowMillis: 1020)) == ["d"])
        #expect(shipper.stats.sent == 3)
        #expect(shipper.stats.lastSuccessMillis == 30)
    }

    @Test func failuresKeepTheRecordsAndBackOffExponentiallyWithJitter() {
        var shipper = UsageShipper(config: Self.config(batch: 2), nowMillis: 0, seed: 42)
        shipper.accept(UsageRecordTests.record("a"))
        shipper.accept(UsageRecordTests.record("b"))
        var now: Int64 = 0
        var delays: [Int64] = []
        for _ in 0..<10 {
            guard let body = shipper.nextBatch(nowMillis: now) else {
                Issue.record("no batch at \(now)")
                return
            }
            #expect(Self.ids(body) == ["a", "b"])
            guard case .willRetry(_, let retryAt) = shipper.batchFinished(.failed("connection refused"), nowMillis: now) else {
                Issue.record("a failure must be retried")
                return
            }
            delays.append(retryAt - now)
            #expect(shipper.nextBatch(nowMillis: retryAt - 1) == nil)
            now = retryAt
        }
        // Equal jitter: each delay lies in [d/2, d] for d = 250 · 2^(n−1), capped at 30 s.
        for (index, delay) in delays.enumerated() {
            let full = min(UsageShipper.maxBackoffMillis, UsageShipper.baseBackoffMillis << Int64(index))
            #expect(delay >= full / 2 && delay <= full, "attempt \(index + 1): \(delay) ms")
        }
        #expect(Set(delays.suffix(3)).count > 1, "jitter must vary the capped delays")
        #expect(shipper.stats.retried == 10)
        #expect(shipper.stats.lastError == "sluiced unreachable: connection refused")
        #expect(shipper.bufferedCount == 2)
        // Back: delivered, and the next failure starts from the base delay again.
        #expect(shipper.batchFinished(Self.ok(2), nowMillis: now) == .willRetry(reason: "no batch in flight", retryAtMillis: now))
        _ = shipper.nextBatch(nowMillis: now)
        #expect(shipper.batchFinished(Self.ok(2), nowMillis: now) == .delivered(accepted: 2, duplicates: 0, rejected: []))
        #expect(shipper.bufferedCount == 0 && shipper.stats.sent == 2)
    }

    @Test func pastTheBoundNewRecordsAreDroppedAndCounted() {
        var shipper = UsageShipper(config: Self.config(buffer: 4), nowMillis: 0, seed: 1)
        for index in 0..<6 { _ = shipper.accept(UsageRecordTests.record("r\(index)")) }
        shipper.countDropped(3)
        #expect(shipper.bufferedCount == 4)
        #expect(shipper.stats.dropped == 5)
        #expect(Self.ids(shipper.nextBatch(nowMillis: 0)) == ["r0", "r1", "r2"])
    }

    @Test func sluicedsRejectionsAreCountedAndNotRetried() {
        var shipper = UsageShipper(config: Self.config(), nowMillis: 0, seed: 1)
        for index in 0..<3 { shipper.accept(UsageRecordTests.record("r\(index)")) }
        _ = shipper.nextBatch(nowMillis: 0)
        let answer = #"{"accepted":1,"duplicates":1,"rejected":[{"index":2,"error":"model: too long"}]}"#
        #expect(
            shipper.batchFinished(.answered(status: 200, body: Array(answer.utf8)), nowMillis: 5)
                == .delivered(accepted: 1, duplicates: 1, rejected: ["model: too long"]))
        #expect(shipper.stats.sent == 2 && shipper.stats.rejected == 1 && shipper.bufferedCount == 0)
        #expect(shipper.stats.lastError?.contains("model: too long") == true)

        // A malformed envelope (400) is dropped whole, counted as rejected.
        for index in 0..<3 { shipper.accept(UsageRecordTests.record("s\(index)")) }
        _ = shipper.nextBatch(nowMillis: 10)
        guard case .droppedBatch(_, let records) = shipper.batchFinished(.answered(status: 400, body: []), nowMillis: 11) else {
            Issue.record("a 400 must drop the batch")
            return
        }
        #expect(records == 3 && shipper.stats.rejected == 4 && shipper.bufferedCount == 0)
    }

    @Test func anAnswerNotUnderstoodIsRetriedAndATokenRefusalIsNoted() {
        var shipper = UsageShipper(config: Self.config(), nowMillis: 0, seed: 1)
        for index in 0..<3 { shipper.accept(UsageRecordTests.record("r\(index)")) }
        _ = shipper.nextBatch(nowMillis: 0)
        let lying = #"{"accepted":30,"duplicates":0,"rejected":[]}"#
        guard case .willRetry(let reason, _) = shipper.batchFinished(.answered(status: 200, body: Array(lying.utf8)), nowMillis: 1)
        else {
            Issue.record("an answer that does not fit must be retried")
            return
        }
        #expect(reason.hasPrefix("sluiced's answer was not understood: accepted is not an integer"))
        #expect(shipper.bufferedCount == 3 && shipper.stats.sent == 0)
        _ = shipper.nextBatch(nowMillis: 10_000)
        _ = shipper.batchFinished(.answered(status: 401, body: []), nowMillis: 10_000)
        #expect(shipper.tokenRefused)
        #expect(shipper.stats.lastError == "sluiced refused the fleet token (401)")
    }

    @Test func tooLargeBatchesAreHalvedAndASingleTooLargeRecordRejected() {
        var shipper = UsageShipper(config: Self.config(batch: 4), nowMillis: 0, seed: 1)
        for index in 0..<4 { shipper.accept(UsageRecordTests.record("r\(index)")) }
        #expect(Self.ids(shipper.nextBatch(nowMillis: 0)).count == 4)
        _ = shipper.batchFinished(.answered(status: 413, body: []), nowMillis: 0)
        #expect(Self.ids(shipper.nextBatch(nowMillis: 0)).count == 2)
        _ = shipper.batchFinished(.answered(status: 413, body: []), nowMillis: 0)
        #expect(Self.ids(shipper.nextBatch(nowMillis: 0)) == ["r0"])
        #expect(shipper.batchFinished(.answered(status: 413, body: []), nowMillis: 0)
            == .droppedBatch(reason: "sluiced refused a single record as too large (413)", records: 1))
        #expect(shipper.stats.rejected == 1 && shipper.bufferedCount == 3)
    }

    @Test func drainingSendsAtOnceAndRetriesQuicklyThenAbandonsCounted() {
        var shipper = UsageShipper(config: Self.config(flush: 60_000), nowMillis: 0, seed: 1)
        shipper.accept(UsageRecordTests.record("a"))
        #expect(shipper.nextBatch(nowMillis: 10) == nil)
        shipper.startDraining(nowMillis: 10)
        #expect(Self.ids(shipper.nextBatch(nowMillis: 10)) == ["a"])
        guard case .willRetry(_, let retryAt) = shipper.batchFinished(.failed("reset"), nowMillis: 20) else {
            Issue.record("must retry")
            return
        }
        #expect(retryAt - 20 <= UsageShipper.drainingBackoffMillis)
        #expect(shipper.abandon() == 1)
        #expect(shipper.stats.dropped == 1 && shipper.bufferedCount == 0)
    }

    @Test func manyBatchesThroughALargeBufferKeepTheOrder() {
        var shipper = UsageShipper(config: Self.config(batch: 500, buffer: 20_000), nowMillis: 0, seed: 1)
        for index in 0..<12_000 { shipper.accept(UsageRecordTests.record("r\(index)")) }
        var next = 0
        var now: Int64 = 0
        while let body = shipper.nextBatch(nowMillis: now) {
            let ids = Self.ids(body)
            #expect(ids.first == "r\(next)")
            next += ids.count
            _ = shipper.batchFinished(Self.ok(ids.count), nowMillis: now)
            now += 1
        }
        #expect(next == 12_000 && shipper.bufferedCount == 0 && shipper.stats.sent == 12_000)
    }
}

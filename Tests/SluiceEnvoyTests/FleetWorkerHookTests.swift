// The background worker (bootstrap extension `sluice_fleet`) driven through its real exported
// hooks by the fake Envoy: timers fire and callouts are answered when the test says so.
//
// Serialized: the worker publishes the process's one usage-record queue, which filters of
// other suites running at the same time may also push to, so assertions name their own ids.
import Foundation
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

@Suite(.serialized) struct FleetWorkerHookTests {
    static func tokenFile(_ token: String = "fleet-token-123") throws -> String {
        let path = NSTemporaryDirectory() + "sluice-fleet-token-\(UInt64.random(in: 0...UInt64.max))"
        try (token + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Batches go by time (every 10 ms) and hold up to 1,000 records, so each test's records
    /// travel in one batch even when filters of suites running alongside push records of theirs.
    static func config(_ token: String, flush: Int = 10, _ extra: String = "") -> String {
        #"{"cluster":"sluiced_fleet","token_file":"\#(token)","envoy":"node-a","flush_interval_ms":\#(flush),"batch_max_records":1000"#
            + extra + "}"
    }

    /// Lets the flush interval pass, then fires the timer.
    static func tick(_ worker: FakeBootstrapExtension) {
        Thread.sleep(forTimeInterval: 0.02)
        worker.fireTimers()
    }

    /// Answers every pending callout with 200 (records of other suites may come in a batch of their own).
    static func acceptAll(_ worker: FakeBootstrapExtension) {
        for _ in 0..<10 {
            guard let callout = worker.config.callouts.first else { return }
            worker.answerCallout(callout.id, body: accepted(ids(callout.body).count))
        }
    }

    static func record(_ id: String) -> FleetUsageRecord {
        FleetUsageRecord(
            id: id, timeMillis: 1_700_000_000_000, key: "k", team: "", model: "m", backend: "b", provider: "openai", status: 200,
            inputTokens: 1, cachedInputTokens: 0, outputTokens: 2, costMicros: 3, durationMillis: 4, ttftMillis: nil, stream: false)
    }

    static func ids(_ body: [UInt8]) -> [String] {
        guard case .object(let root)? = try? JSONParser.parse(body), case .array(let records)? = root["records"] else { return [] }
        return records.compactMap { if case .object(let record) = $0, case .string(let id)? = record["id"] { id } else { nil } }
    }

    static func accepted(_ count: Int) -> [UInt8] { Array(#"{"accepted":\#(count),"duplicates":0,"rejected":[]}"#.utf8) }

    @Test func badConfigsAreRefusedWithTheFieldNamed() {
        let bad = FakeBootstrapExtension(name: "sluice_fleet", config: #"{"cluster":"c","token_file":"/t","envoy":"e","batch_max_records":0}"#)
        #expect(!bad.loaded)
        #expect(bad.config.initCompleteSignals == 0)
        #expect(!FakeLog.lines(containing: "batch_max_records: must be between 1 and 1000, got 0").isEmpty)
        let unknown = FakeBootstrapExtension(name: "other", config: "{}")
        #expect(!unknown.loaded)
        #expect(!FakeLog.lines(containing: "unknown extension_name 'other'").isEmpty)
    }

    @Test func recordsGoToSluicedInBatchesWithTheFleetToken() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token))
        defer { worker.destroy() }
        #expect(worker.loaded)
        #expect(worker.config.initCompleteSignals == 1)
        worker.serverInitialized()
        #expect(worker.config.adminHandlers == ["/sluice/fleet", "/sluice/endpoints"])
        #expect(worker.config.timers.count == 1 && worker.config.timers.first?.enabledDelay == 10)

        let queue = try #require(ProcessUsageQueue.current)
        #expect(queue.push(Self.record("fleet-a1")))
        #expect(queue.push(Self.record("fleet-a2")))
        Self.tick(worker)
        // The timer is armed again after each tick.
        #expect(worker.config.timers.first?.enabledDelay == 10)
        let callout = try #require(worker.config.callouts.first)
        #expect(callout.cluster == "sluiced_fleet")
        #expect(callout.headers[":method"] == "POST")
        #expect(callout.headers[":path"] == "/v1/fleet/usage")
        #expect(callout.headers["authorization"] == "Bearer fleet-token-123")
        #expect(callout.headers["content-type"] == "application/json")
        #expect(callout.timeoutMilliseconds == 2000)
        #expect(Self.ids(callout.body).filter { $0.hasPrefix("fleet-a") } == ["fleet-a1", "fleet-a2"])
        guard case .object(let root)? = try? JSONParser.parse(callout.body) else {
            Issue.record("the batch is not JSON")
            return
        }
        #expect(root["envoy"] == .string("node-a"))
        worker.answerCallout(callout.id, body: Self.accepted(Self.ids(callout.body).count))
        #expect(worker.config.counters["fleet_usage_sent"] ?? 0 >= 2)
        let page = worker.admin("/sluice/fleet")
        #expect(page.status == 200)
        #expect(page.body.contains(#""envoy":"node-a""#))
        #expect(page.body.contains(#""last_error":null"#))
        #expect(!page.body.contains(#""last_success_ms":null"#))
    }

    @Test func anUnreachableSluicedIsRetriedAfterABackoffAndTheErrorShown() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token))
        defer { worker.destroy() }
        worker.serverInitialized()
        let queue = try #require(ProcessUsageQueue.current)
        queue.push(Self.record("fleet-b1"))
        queue.push(Self.record("fleet-b2"))
        Self.tick(worker)
        let first = try #require(worker.config.callouts.first)
        worker.answerCallout(first.id, reset: true)
        #expect(worker.config.counters["fleet_usage_retried"] == 1)
        #expect(worker.config.gauges["fleet_usage_buffered"] ?? 0 >= 2)
        // Backing off: the next tick sends nothing.
        worker.fireTimers()
        #expect(worker.config.callouts.isEmpty)
        #expect(worker.admin("/sluice/fleet").body.contains("sluiced unreachable: connection reset or refused, or timed out"))
        Thread.sleep(forTimeInterval: 0.3)
        worker.fireTimers()
        let second = try #require(worker.config.callouts.first)
        #expect(Self.ids(second.body).filter { $0.hasPrefix("fleet-b") } == ["fleet-b1", "fleet-b2"])
        // 503 is retried too; a 401 makes the worker read the token file again.
        worker.answerCallout(second.id, status: 401)
        #expect(worker.config.counters["fleet_usage_retried"] == 2)
        #expect(worker.admin("/sluice/fleet").body.contains("refused the fleet token (401)"))
    }

    @Test func pastTheBufferBoundRecordsAreDroppedAndCounted() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token, #","buffer_max_records":3"#))
        defer { worker.destroy() }
        worker.serverInitialized()
        worker.config.calloutInitResult = envoy_dynamic_module_type_http_callout_init_result_ClusterNotFound
        let queue = try #require(ProcessUsageQueue.current)
        for index in 0..<5 { queue.push(Self.record("fleet-c\(index)")) }
        Self.tick(worker)
        #expect(worker.config.counters["fleet_usage_dropped"] ?? 0 >= 2)
        #expect(worker.config.gauges["fleet_usage_buffered"] == 3)
        #expect(worker.admin("/sluice/fleet").body.contains("callout could not start (clusterNotFound)"))
    }

    @Test func shutdownWaitsForTheFlushAndCompletesExactlyOnce() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token, flush: 600_000))
        #expect(worker.loaded)
        worker.serverInitialized()
        let queue = try #require(ProcessUsageQueue.current)
        queue.push(Self.record("fleet-d1"))
        worker.fireTimers()
        #expect(worker.config.callouts.isEmpty, "one record waits for the flush interval")
        worker.drainStarted()
        let callout = try #require(worker.config.callouts.first, "draining sends at once")
        worker.shutdown()
        #expect(worker.shutdownDoneCalls == 0, "a batch is in flight")
        worker.answerCallout(callout.id, body: Self.accepted(Self.ids(callout.body).count))
        Self.acceptAll(worker)
        #expect(worker.shutdownDoneCalls == 1)
        worker.fireTimers()
        worker.destroy()
        #expect(worker.shutdownDoneCalls == 1)
        #expect(worker.config.timers.first?.deleted == true)
        let withdrawn = ProcessUsageQueue.current == nil
        #expect(withdrawn, "filters stop pushing once the worker is gone")
    }

    @Test func shutdownGivesUpAfterTheTimeoutAndCountsWhatIsLeft() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token, #","timeout_ms":50"#))
        worker.serverInitialized()
        let queue = try #require(ProcessUsageQueue.current)
        queue.push(Self.record("fleet-e1"))
        worker.shutdown()
        let callout = try #require(worker.config.callouts.first)
        worker.answerCallout(callout.id, status: 503)
        #expect(worker.shutdownDoneCalls == 0)
        Thread.sleep(forTimeInterval: 0.08)
        worker.fireTimers()
        #expect(worker.shutdownDoneCalls == 1)
        #expect(worker.config.counters["fleet_usage_dropped"] ?? 0 >= 1)
        #expect(!FakeLog.lines(containing: "did not take them within 50 ms of shutdown").isEmpty)
        worker.destroy()
        #expect(worker.shutdownDoneCalls == 1)
    }

    @Test func aMissingTokenFileKeepsTheRecordsAndSaysWhy() throws {
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config("/nonexistent/fleet-token"))
        defer { worker.destroy() }
        worker.serverInitialized()
        let queue = try #require(ProcessUsageQueue.current)
        queue.push(Self.record("fleet-f1"))
        queue.push(Self.record("fleet-f2"))
        Self.tick(worker)
        #expect(worker.config.callouts.isEmpty)
        #expect(worker.admin("/sluice/fleet").body.contains("fleet token unavailable"))
        #expect(worker.config.gauges["fleet_usage_buffered"] ?? 0 >= 2)
    }

    @Test func theGatewayFilterPushesOneRecordPerRoutedRequest() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token))
        defer { worker.destroy() }
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ("x-request-id", "fleet-g-request"),
            ]))
        #expect(driver.requestHeaders() == 1)
        driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
        driver.stream.setAttemptReport(inputTokens: 12, outputTokens: 5, backend: "openai-primary")
        driver.responseHeaders([(":status", "200")])
        driver.responseBody(Array("{}".utf8), endOfStream: true)
        driver.streamComplete()
        var mine: [FleetUsageRecord] = []
        try #require(ProcessUsageQueue.current).drain(max: .max) { record in
            if record.id == "fleet-g-request" { mine.append(record) }
        }
        let record = try #require(mine.first)
        #expect(mine.count == 1)
        #expect(record.key == "demo" && record.model == "gpt-4o-mini" && record.backend == "openai-primary")
        #expect(record.provider == "openai" && record.status == 200 && !record.stream && record.ttftMillis == nil)
        #expect(record.inputTokens == 12 && record.outputTokens == 5)
    }
}

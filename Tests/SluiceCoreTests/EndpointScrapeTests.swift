// The pure half of the endpoint scraper (issue 11, item 2): its config (scrape list in the picker
// config, settings in the worker config), pacing with backoff, which answers count, what a failed
// scrape does to the published snapshot, and the admin page's score components.
import Testing

@testable import SluiceCore

@Suite struct EndpointScrapeConfigTests {
    @Test func pickerConfigCarriesTheScrapeList() throws {
        let config = try EndpointPickerConfig.parse(
            Array(#"{"pool":"llama","endpoints":["10.0.0.7:8000","[::1]:8001"],"metrics_path":"/v1/metrics"}"#.utf8))
        #expect(config.endpoints == ["10.0.0.7:8000", "[::1]:8001"])
        #expect(config.metricsPath == "/v1/metrics")
        let plain = try EndpointPickerConfig.parse(Array(#"{"pool":"llama"}"#.utf8))
        #expect(plain.endpoints.isEmpty && plain.metricsPath == "/metrics")
    }

    @Test func badScrapeListsAreRefusedWithTheEntryNamed() {
        func problem(_ json: String) -> ConfigError? {
            do {
                _ = try EndpointPickerConfig.parse(Array(json.utf8))
                return nil
            } catch {
                return error
            }
        }
        #expect(problem(#"{"pool":"p","endpoints":["10.0.0.7:8000","llama.internal:8000"]}"#)?.path == "endpoints[1]")
        #expect(problem(#"{"pool":"p","endpoints":["10.0.0.7:8000","10.0.0.7:8000"]}"#)?.problem.contains("twice") == true)
        #expect(problem(#"{"pool":"p","endpoints":["10.0.0.7"]}"#)?.path == "endpoints[0]")
        #expect(problem(#"{"pool":"p","endpoints":[7]}"#)?.path == "endpoints[0]")
        let many = (0..<65).map { "\"10.0.0.\($0):80\"" }.joined(separator: ",")
        #expect(problem(#"{"pool":"p","endpoints":[\#(many)]}"#)?.path == "endpoints")
        #expect(problem(#"{"pool":"p","metrics_path":"metrics"}"#)?.path == "metrics_path")
        #expect(problem(#"{"pool":"p","metrics_path":"/a b"}"#)?.path == "metrics_path")
    }

    @Test func hostAddressesAreEnvoysForm() {
        for good in ["127.0.0.1:18111", "10.0.0.255:1", "[::1]:8000", "[fe80::1:2]:65535", "0.0.0.0:80"] {
            #expect(HostAddress.isValid(good), "\(good)")
        }
        for bad in [
            "localhost:80", "10.0.0.1", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.256:80", "10.0.0:80", "10.0.0.01:80",
            "::1:80", "[::1]", "[]:80", "[xyz::1]:80", "10.0.0.1:+80", "10.0.0.1:080", "", ":80",
        ] {
            #expect(!HostAddress.isValid(bad), "\(bad)")
        }
    }

    @Test func workerScrapeSettingsAreRangeChecked() throws {
        let base = #""cluster":"sluiced_fleet","token_file":"/t","envoy":"e""#
        let defaults = try FleetWorkerConfig.parse(Array("{\(base)}".utf8))
        #expect(defaults.endpointMetrics == EndpointScrapeSettings())
        #expect(defaults.endpointMetrics.intervalMillis == 50 && defaults.endpointMetrics.cluster == "sluice_endpoint_metrics")
        let tuned = try FleetWorkerConfig.parse(
            Array(
                #"{\#(base),"endpoint_metrics":{"cluster":"scrape","interval_ms":100,"timeout_ms":300,"max_backoff_ms":5000,"max_page_bytes":65536}}"#
                    .utf8))
        #expect(tuned.endpointMetrics.cluster == "scrape" && tuned.endpointMetrics.intervalMillis == 100)
        #expect(tuned.endpointMetrics.timeoutMillis == 300 && tuned.endpointMetrics.maxBackoffMillis == 5000)
        #expect(tuned.endpointMetrics.maxPageBytes == 65536)
        for (json, path) in [
            (#""endpoint_metrics":{"interval_ms":5}"#, "endpoint_metrics.interval_ms"),
            (#""endpoint_metrics":{"timeout_ms":0}"#, "endpoint_metrics.timeout_ms"),
            (#""endpoint_metrics":{"max_page_bytes":100}"#, "endpoint_metrics.max_page_bytes"),
            (#""endpoint_metrics":{"interval_ms":500,"max_backoff_ms":100}"#, "endpoint_metrics.max_backoff_ms"),
            (#""endpoint_metrics":{"cluster":""}"#, "endpoint_metrics.cluster"),
            (#""endpoint_metrics":{"intervall_ms":50}"#, "endpoint_metrics.intervall_ms"),
        ] {
            #expect(throws: ConfigError.self, "\(json)") { try FleetWorkerConfig.parse(Array("{\(base),\(json)}".utf8)) }
            do {
                _ = try FleetWorkerConfig.parse(Array("{\(base),\(json)}".utf8))
            } catch {
                #expect(error.path == path, "\(json): \(error)")
            }
        }
    }
}

@Suite struct CalloutPacingTests {
    @Test func dueEveryIntervalThenBackingOffWhileFailing() {
        var pacing = CalloutPacing()
        let ms: Int64 = 1_000_000
        #expect(pacing.isDue(nowNanos: 0, intervalMillis: 50, maxBackoffMillis: 1000))
        pacing.started(nowNanos: 1000 * ms)
        #expect(!pacing.isDue(nowNanos: 1049 * ms, intervalMillis: 50, maxBackoffMillis: 1000))
        #expect(pacing.isDue(nowNanos: 1050 * ms, intervalMillis: 50, maxBackoffMillis: 1000))
        pacing.failed()
        #expect(pacing.waitMillis(intervalMillis: 50, maxBackoffMillis: 1000) == 100)
        pacing.failed()
        pacing.failed()
        #expect(pacing.waitMillis(intervalMillis: 50, maxBackoffMillis: 1000) == 400)
        for _ in 0..<100 { pacing.failed() }
        #expect(pacing.waitMillis(intervalMillis: 50, maxBackoffMillis: 1000) == 1000)
        #expect(!pacing.isDue(nowNanos: 1999 * ms, intervalMillis: 50, maxBackoffMillis: 1000))
        #expect(pacing.isDue(nowNanos: 2000 * ms, intervalMillis: 50, maxBackoffMillis: 1000))
        // A cap below the interval never shortens it (the lease requests' "no doubling").
        #expect(pacing.waitMillis(intervalMillis: 1000, maxBackoffMillis: 1000) == 1000)
        pacing.succeeded()
        #expect(pacing.waitMillis(intervalMillis: 50, maxBackoffMillis: 1000) == 50)
        // A clock that went backwards makes it due rather than stuck.
        #expect(pacing.isDue(nowNanos: 0, intervalMillis: 50, maxBackoffMillis: 1000))
        // Huge intervals do not overflow.
        pacing.failed()
        #expect(pacing.waitMillis(intervalMillis: .max / 2 + 1, maxBackoffMillis: .max) == .max)
    }
}

@Suite struct MetricsPageTests {
    let vllm = Array("vllm:num_requests_waiting{model_name=\"m\"} 3\nvllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n".utf8)

    @Test func onlyA200WithKnownMetricsWithinTheBoundCounts() throws {
        let read = try MetricsPage.read(status: 200, body: vllm, maxBytes: 1024).get()
        #expect(read.waitingRequests == 3 && read.kvCacheUsage == 0.5)
        let tgi = try MetricsPage.read(status: 200, body: Array("tgi_queue_size 2\ntgi_batch_current_size 7\n".utf8), maxBytes: 1024).get()
        #expect(tgi.waitingRequests == 2 && tgi.runningRequests == 7)
        #expect(throws: EndpointScrapeError.self) { try MetricsPage.read(status: 503, body: vllm, maxBytes: 1024).get() }
        #expect(throws: EndpointScrapeError.self) { try MetricsPage.read(status: 200, body: vllm, maxBytes: 10).get() }
        let garbled = MetricsPage.read(status: 200, body: Array("<html>nope</html>\nvllm:num_requests_waiting{ x\n".utf8), maxBytes: 1024)
        guard case .failure(let error) = garbled else {
            Issue.record("a page without known metrics was accepted")
            return
        }
        #expect(error.message.contains("no queue or KV-cache metric"))
        // Hostile numbers are clamped, not refused.
        let huge = try MetricsPage.read(status: 200, body: Array("vllm:num_requests_waiting 1e300\n".utf8), maxBytes: 1024).get()
        #expect(huge.waitingRequests == ModelServerMetrics.maxCount)
    }

    @Test func aFailedScrapeMakesTheEndpointStaleAtOnceAndASuccessFreshAgain() {
        var endpoint = ScrapedEndpoint(address: "127.0.0.1:8000")
        #expect(endpoint.isFailing && endpoint.snapshotState.readAtMillis == nil)
        let metrics = ModelServerMetrics(waitingRequests: 1, runningRequests: 2, kvCacheUsage: 0.25)
        endpoint.succeeded(metrics, atMillis: 1000)
        #expect(endpoint.snapshotState == EndpointState(metrics: metrics, readAtMillis: 1000))
        endpoint.failed("answered 500", atMillis: 1050)
        // Stale in the snapshot; the last good figures stay for the admin page.
        #expect(endpoint.snapshotState.readAtMillis == nil)
        #expect(endpoint.lastGood == metrics && endpoint.lastError == "answered 500" && endpoint.consecutiveFailures == 1)
        endpoint.failed(String(repeating: "x", count: 5000), atMillis: 1100)
        #expect(endpoint.lastError?.count == 200 && endpoint.consecutiveFailures == 2 && endpoint.scrapesFailed == 2)
        endpoint.succeeded(metrics, atMillis: 1150)
        #expect(endpoint.snapshotState.readAtMillis == 1150 && !endpoint.isFailing && endpoint.scrapesOK == 2)
    }

    @Test func aStaleEndpointInTheSnapshotSendsThePickToLeastRequest() throws {
        let scorer = try EndpointScorer(config: EndpointScoringConfig())
        var good = ScrapedEndpoint(address: "a")
        good.succeeded(ModelServerMetrics(waitingRequests: 0, kvCacheUsage: 0.1), atMillis: 10_000)
        var failing = ScrapedEndpoint(address: "b")
        failing.succeeded(ModelServerMetrics(waitingRequests: 0, kvCacheUsage: 0.1), atMillis: 10_000)
        failing.failed("timed out", atMillis: 10_020)
        let snapshot = EndpointSnapshot(endpoints: [good.snapshotState, failing.snapshotState], generation: 1)
        let index = try PrefixIndex(endpointCount: 2, blocksPerEndpoint: 64)
        let pick = scorer.pick(
            EndpointRequest(), snapshot: snapshot, candidates: .first(2), prefixIndex: index,
            picksSinceSnapshot: PicksSinceSnapshot(), nowMillis: 10_030)
        #expect(pick == .leastRequest(.staleMetrics(endpoint: 1)))
    }
}

@Suite struct EndpointAdminFiguresTests {
    @Test func scoreComponentsMatchTheScorersWeights() throws {
        var config = EndpointScoringConfig()
        config.queueWeight = 2
        config.kvCacheWeight = 1
        config.loraWeight = 2
        config.saturationQueue = 4
        let scorer = try EndpointScorer(config: config)
        let idle = scorer.components(ModelServerMetrics(waitingRequests: 0, kvCacheUsage: 0.25))
        #expect(idle == EndpointScoreComponents(saturated: false, queueRoom: 1, kvCacheFree: 0.75, total: 2 + 0.75 + 2))
        let busy = scorer.components(ModelServerMetrics(waitingRequests: 3, kvCacheUsage: 0.5))
        #expect(!busy.saturated && busy.queueRoom == 0.25 && busy.total == 0.5 + 0.5 + 2)
        #expect(scorer.components(ModelServerMetrics(waitingRequests: 4)).saturated)
        #expect(scorer.components(ModelServerMetrics(waitingRequests: 0, kvCacheUsage: 0.9)).saturated)
    }

    @Test func prefixIndexCountsItsOccupiedSlots() throws {
        var index = try PrefixIndex(endpointCount: 2, blocksPerEndpoint: 64)
        let blocks = PrefixBlockHashes(prompt: Array(String(repeating: "abcd", count: 64 * 5).utf8))
        #expect(index.occupied == 0 && blocks.count == 5)
        index.record(endpoint: 0, blocks)
        #expect(index.occupied == 5)
        index.record(endpoint: 0, blocks)
        #expect(index.occupied == 5)
        index.record(endpoint: 1, blocks)
        #expect(index.occupied == 10)
        index.forget(endpoint: 0)
        #expect(index.occupied == 5)
        // Bounded: no more than the table's slots, however much is recorded.
        for round in 0..<40 {
            index.record(endpoint: 1, PrefixBlockHashes(prompt: Array(String(repeating: "r\(round)-", count: 400).utf8)))
        }
        #expect(index.occupied <= 64 + 5 && index.occupied > 5)
    }
}

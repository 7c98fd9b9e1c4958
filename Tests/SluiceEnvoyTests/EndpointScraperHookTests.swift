// The endpoint scraper of the background worker driven through the real exported hooks by the
// fake Envoy: a picker cluster config registers its scrape list, the worker's timer starts one
// callout per endpoint through the ORIGINAL_DST cluster, the answers become a published
// snapshot the picker scores, a failed scrape makes the pool fall back, and `/sluice/endpoints`
// shows it. Part of the serialized FleetWorkerHookTests suite: the worker publishes the process's
// usage queue, which those tests read.
import Foundation
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

extension FleetWorkerHookTests {
    static func page(waiting: Int, kv: Double) -> [UInt8] {
        Array("vllm:num_requests_waiting{model_name=\"m\"} \(waiting)\nvllm:num_requests_running{model_name=\"m\"} 1\nvllm:kv_cache_usage_perc{model_name=\"m\"} \(kv)\n".utf8)
    }

    /// Answers every pending scrape callout: `answer(address)` gives (status, body) or nil for a reset.
    static func answerScrapes(_ worker: FakeBootstrapExtension, _ answer: (String) -> (Int, [UInt8])?) -> [String] {
        var answered: [String] = []
        for callout in worker.config.callouts where callout.cluster == "sluice_endpoint_metrics" {
            let address = callout.headers["x-envoy-original-dst-host"] ?? ""
            answered.append(address)
            if let (status, body) = answer(address) {
                worker.answerCallout(callout.id, status: status, body: body)
            } else {
                worker.answerCallout(callout.id, reset: true)
            }
        }
        return answered
    }

    @Test func picksAreScoredOnScrapedMetricsAndFallBackWhenAScrapeFails() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(
            name: "sluice_fleet", config: Self.config(token, flush: 1000, #","endpoint_metrics":{"interval_ms":50,"max_backoff_ms":1000}"#))
        defer { worker.destroy() }
        worker.serverInitialized()
        let pool = EndpointPickerHookTests.uniquePool("scraped")
        let addresses = EndpointPickerHookTests.addresses
        let list = addresses.map { "\"\($0)\"" }.joined(separator: ",")
        let lb = FakeLoadBalancer(
            config: #"{"pool":"\#(pool)","endpoints":[\#(list)],"metrics_path":"/stats/prometheus"}"#,
            hosts: EndpointPickerHookTests.hosts())
        #expect(lb.loaded)

        // The timer ticks at the scrape interval once a pool is registered: one GET per endpoint.
        worker.fireTimers()
        #expect(worker.config.timers.first?.enabledDelay == 50)
        let scrapes = worker.config.callouts.filter { $0.cluster == "sluice_endpoint_metrics" }
        #expect(Set(scrapes.map { $0.headers["x-envoy-original-dst-host"] ?? "" }) == Set(addresses))
        for scrape in scrapes {
            #expect(scrape.headers[":method"] == "GET" && scrape.headers[":path"] == "/stats/prometheus")
            #expect(scrape.headers["host"] == scrape.headers["x-envoy-original-dst-host"])
            #expect(scrape.timeoutMilliseconds == 500 && scrape.body.isEmpty)
        }
        // No second scrape of an endpoint while its first is out.
        Thread.sleep(forTimeInterval: 0.06)
        worker.fireTimers()
        #expect(worker.config.callouts.filter { $0.cluster == "sluice_endpoint_metrics" }.count == 4)

        // Endpoint 2 idle, the others queued: the picker sends everything there.
        _ = Self.answerScrapes(worker) { address in
            (200, address == addresses[2] ? Self.page(waiting: 0, kv: 0.1) : Self.page(waiting: 4, kv: 0.5))
        }
        #expect(lb.choose() == addresses[2])
        #expect(lb.counters["endpoint_picker_picks_scored"] == 1)
        #expect(worker.config.counters["endpoint_scrapes_ok"] == 4)
        let page = worker.admin("/sluice/endpoints")
        #expect(page.status == 200)
        #expect(page.body.contains(#""pool":"\#(pool)""#))
        #expect(page.body.contains(#""address":"127.0.0.1:9003","stale":false"#))
        #expect(page.body.contains(#""waiting":4"#) && page.body.contains(#""saturated":false"#))
        #expect(page.body.contains(#""scored_picks":1"#))

        // Endpoint 0 answers a garbled page, endpoint 1 a 503, endpoint 3 resets: stale at once,
        // least-request for the pool.
        Thread.sleep(forTimeInterval: 0.06)
        worker.fireTimers()
        _ = Self.answerScrapes(worker) { address in
            switch address {
            case addresses[0]: (200, Array("<html>not metrics</html>".utf8))
            case addresses[1]: (503, [])
            case addresses[3]: nil
            default: (200, Self.page(waiting: 0, kv: 0.1))
            }
        }
        lb.priorities = EndpointPickerHookTests.hosts(active: [0, 3, 3, 3])
        #expect(lb.choose() == addresses[0])
        #expect(lb.counters["endpoint_picker_picks_least_request_stale_metrics"] == 1)
        #expect(worker.config.counters["endpoint_scrapes_failed"] == 3)
        #expect(worker.config.gauges["endpoint_scrape_failing"] == 3)
        let stale = worker.admin("/sluice/endpoints").body
        #expect(stale.contains("no queue or KV-cache metric on the page"))
        #expect(stale.contains("answered 503") && stale.contains("connection reset or refused"))
        // The last good figures stay on the page, marked stale.
        #expect(stale.contains(#""address":"127.0.0.1:9002","stale":true"#))

        // Failing endpoints back off (100 ms after one failure); the healthy one is scraped again.
        Thread.sleep(forTimeInterval: 0.055)
        worker.fireTimers()
        let next = worker.config.callouts.filter { $0.cluster == "sluice_endpoint_metrics" }
        #expect(next.map { $0.headers["x-envoy-original-dst-host"] ?? "" } == [addresses[2]])
        _ = Self.answerScrapes(worker) { _ in (200, Self.page(waiting: 0, kv: 0.1)) }
        Thread.sleep(forTimeInterval: 0.11)
        worker.fireTimers()
        #expect(worker.config.callouts.filter { $0.cluster == "sluice_endpoint_metrics" }.count == 4)
        _ = Self.answerScrapes(worker) { _ in (200, Self.page(waiting: 0, kv: 0.1)) }
        lb.priorities = EndpointPickerHookTests.hosts()
        #expect(lb.choose() != nil)
        #expect(lb.counters["endpoint_picker_picks_scored"] == 2)

        // The cluster config goes: its pool is no longer scraped or published.
        lb.destroy()
        Thread.sleep(forTimeInterval: 0.06)
        worker.fireTimers()
        #expect(worker.config.callouts.filter { $0.cluster == "sluice_endpoint_metrics" }.isEmpty)
        #expect(!worker.admin("/sluice/endpoints").body.contains(pool))
        #expect(ProcessEndpointSnapshots.current(pool: pool) == nil)
    }
}

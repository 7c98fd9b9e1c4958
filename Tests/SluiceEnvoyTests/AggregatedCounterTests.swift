// Labelled counters are summed in the module and flushed to Envoy by a config-scheduler event
// that the module's own timer thread commits.
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

@Suite struct AggregatedCounterTests {
    func routedRequest(_ chain: FakeHTTPFilterChain) throws {
        let driver = try #require(chain.newStream([
            (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
        ]))
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
        driver.streamComplete()
        driver.destroy()
    }

    @Test func incrementsReachEnvoyOnlyWhenFlushedAndThenExactlyOnce() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        for _ in 0..<3 { try routedRequest(chain) }
        #expect((chain.config.value("requests_total", labels: ["routed"]) ?? 0) == 0)
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["routed"]) == 3)
        chain.flushCounters()  // nothing new: nothing added
        #expect(chain.config.value("requests_total", labels: ["routed"]) == 3)
        try routedRequest(chain)
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["routed"]) == 4)
    }

    @Test func theTimerAsksForFlushes() async throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        for _ in 0..<20 where !chain.config.schedulerCommits.contains(CounterFlush.eventID) {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(chain.config.schedulerCommits.contains(CounterFlush.eventID))
    }

    @Test func aConfigThatGoesAwayFlushesWhatItHolds() throws {
        let host = FakeFilterConfig()
        do {
            let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig, config: host)
            try routedRequest(chain)
            try routedRequest(chain)
        }  // config_destroy
        #expect(host.value("requests_total", labels: ["routed"]) == 2)
    }
}

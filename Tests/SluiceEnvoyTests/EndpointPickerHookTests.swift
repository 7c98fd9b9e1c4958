// The `sluice_endpoint_picker` load-balancing policy driven through its real exported hooks by
// the fake Envoy: host sets with health and active requests, contexts with the hand-over header
// and a retry's hosts to avoid, and snapshots published the way the background worker will.
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

struct EndpointPickerHookTests {
    static let addresses = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:9004"]

    static func hosts(active: [UInt64] = [0, 0, 0, 0], unhealthy: Set<Int> = []) -> [[FakeLoadBalancer.Host]] {
        [addresses.enumerated().map { FakeLoadBalancer.Host($0.element, healthy: !unhealthy.contains($0.offset), activeRequests: active[$0.offset]) }]
    }

    /// A pool name no other test publishes under (the publication point is process-wide).
    static func uniquePool(_ name: String) -> String { "\(name)-\(UInt64.random(in: 0...UInt64.max))" }

    static func publish(_ pool: String, waiting: [Int], readAt: Int64 = WallClockForTests.now, generation: UInt64 = 1) {
        let endpoints = waiting.map { EndpointState(metrics: ModelServerMetrics(waitingRequests: $0, runningRequests: 0, kvCacheUsage: 0.1), readAtMillis: readAt) }
        ProcessEndpointSnapshots.publish(
            PublishedEndpointPool(pool: pool, addresses: Array(addresses.prefix(waiting.count)), snapshot: EndpointSnapshot(endpoints: endpoints, generation: generation)))
    }

    static func prompt(_ text: String) -> String {
        String(repeating: text, count: 2048 / text.utf8.count + 1)
    }

    static func handOver(_ promptText: String, adapter: String? = nil) -> (String, String) {
        let hashes = PrefixBlockHashes(prompt: Array(promptText.utf8))
        return (EndpointHandOver.headerName, EndpointHandOver.encode(prefix: hashes, adapter: adapter.map { AdapterID($0) }))
    }

    @Test func badConfigsAreRefusedWithTheFieldNamed() {
        let unknown = FakeLoadBalancer(name: "round_robin", config: #"{"pool":"p"}"#, hosts: Self.hosts())
        #expect(!unknown.loaded)
        #expect(!FakeLog.lines(containing: "unknown lb_policy_name 'round_robin'").isEmpty)
        let missing = FakeLoadBalancer(config: #"{"queue_weight":2}"#, hosts: Self.hosts())
        #expect(!missing.loaded)
        #expect(!FakeLog.lines(containing: "pool: is required").isEmpty)
        let range = FakeLoadBalancer(config: #"{"pool":"p","prefix_weight":500}"#, hosts: Self.hosts())
        #expect(!range.loaded)
        #expect(!FakeLog.lines(containing: "prefix_weight: must be").isEmpty)
        let typo = FakeLoadBalancer(config: #"{"pool":"p","prefix_wieght":1}"#, hosts: Self.hosts())
        #expect(!typo.loaded)
    }

    @Test func withoutSnapshotLeastRequestPicksTheIdlestHost() {
        let lb = FakeLoadBalancer(config: #"{"pool":"\#(Self.uniquePool("none"))"}"#, hosts: Self.hosts(active: [5, 2, 7, 3]))
        defer { lb.destroy() }
        #expect(lb.loaded)
        for _ in 0..<5 { #expect(lb.choose() == Self.addresses[1]) }
        #expect(lb.counters["endpoint_picker_picks_least_request_no_snapshot"] == 5)
        // Ties rotate: two idle hosts share the picks.
        lb.priorities = Self.hosts(active: [0, 4, 0, 4])
        let picks = (0..<10).compactMap { _ in lb.choose() }
        #expect(Set(picks) == [Self.addresses[0], Self.addresses[2]])
        // No context (Envoy may pass none) still picks.
        #expect(lb.choose(nil) != nil)
    }

    @Test func retryAvoidanceAndHealthUseTheRightIndexSpaces() {
        // Host 0 is unhealthy, so healthy index i is host i + 1: avoidance and active counts are
        // asked by all-hosts index and the answer is given by healthy index.
        let lb = FakeLoadBalancer(
            config: #"{"pool":"\#(Self.uniquePool("retry"))"}"#, hosts: Self.hosts(active: [0, 1, 5, 5], unhealthy: [0]))
        defer { lb.destroy() }
        #expect(lb.choose() == Self.addresses[1])
        #expect(lb.choose(FakeLBContext(avoid: [Self.addresses[1]], retryCount: 1)) != Self.addresses[1])
        let avoided = lb.choose(FakeLBContext(avoid: [Self.addresses[1], Self.addresses[2]], retryCount: 2))
        #expect(avoided == Self.addresses[3])
        // Every host avoided: one is still chosen rather than none.
        #expect(lb.choose(FakeLBContext(avoid: Set(Self.addresses), retryCount: 3)) != nil)
    }

    @Test func noHealthyHostMeansNoHostAndLowerPrioritiesServeWhenTheFirstIsDown() {
        let lb = FakeLoadBalancer(config: #"{"pool":"\#(Self.uniquePool("down"))"}"#, hosts: Self.hosts(unhealthy: [0, 1, 2, 3]))
        defer { lb.destroy() }
        #expect(lb.choose() == nil)
        #expect(lb.counters["endpoint_picker_no_host"] == 1)
        lb.priorities.append([FakeLoadBalancer.Host("127.0.0.1:9100")])
        #expect(lb.choose() == "127.0.0.1:9100")
    }

    @Test func aFreshSnapshotScoresAndKeepsPrefixAffinity() {
        let pool = Self.uniquePool("scored")
        // A prefix weight of 3 and a threshold of 5, so three picks use the advantage up.
        let lb = FakeLoadBalancer(config: #"{"pool":"\#(pool)","prefix_weight":3,"saturation_queue":5}"#, hosts: Self.hosts())
        defer { lb.destroy() }
        Self.publish(pool, waiting: [0, 0, 0, 0])
        let shared = Self.handOver(Self.prompt("You are a helpful assistant for the billing team. "))
        let first = lb.choose(FakeLBContext(headers: [shared]))
        #expect(first != nil)
        // Same prefix again: the endpoint that got it before wins while its queue (the picks
        // since the snapshot) is short; at three picks its prefix advantage is used up (the
        // guard against piling onto one endpoint), which the scorer's own tests cover.
        for _ in 0..<2 { #expect(lb.choose(FakeLBContext(headers: [shared])) == first) }
        #expect(lb.counters["endpoint_picker_picks_scored"] == 3)
        // A different prefix goes elsewhere: the picks since the snapshot count as queue.
        let other = Self.handOver(Self.prompt("Translate the following legal text into French. "))
        #expect(lb.choose(FakeLBContext(headers: [other])) != first)
        // The picked host becomes saturated in a newer snapshot: the prefix no longer holds it.
        let busy = Self.addresses.firstIndex(of: first ?? "") ?? 0
        Self.publish(pool, waiting: (0..<4).map { $0 == busy ? 9 : 0 }, generation: 2)
        #expect(lb.choose(FakeLBContext(headers: [shared])) != first)
    }

    @Test func snapshotEndpointsAreMatchedToHostsByAddressAcrossMembershipChanges() {
        let pool = Self.uniquePool("addresses")
        // Envoy's least-request would pick host 0 (no active requests); the snapshot says only
        // 127.0.0.1:9003 has room.
        let lb = FakeLoadBalancer(config: #"{"pool":"\#(pool)"}"#, hosts: Self.hosts(active: [0, 4, 4, 4]))
        defer { lb.destroy() }
        Self.publish(pool, waiting: [9, 9, 0, 9])
        #expect(lb.choose() == Self.addresses[2])
        // Hosts reordered and one marked unhealthy by an update: the index map is rebuilt.
        lb.priorities = [Self.hosts(active: [0, 4, 4, 4], unhealthy: [1])[0].reversed()]
        lb.membershipUpdate(added: 0, removed: 0)
        #expect(lb.choose() == Self.addresses[2])
        #expect(lb.counters["endpoint_picker_picks_scored"] == 2)
    }

    @Test func staleMetricsUnknownHostsAndBadHandOversFallBackToLeastRequest() {
        let pool = Self.uniquePool("fallback")
        let lb = FakeLoadBalancer(config: #"{"pool":"\#(pool)","stale_after_ms":500}"#, hosts: Self.hosts(active: [3, 3, 0, 3]))
        defer { lb.destroy() }
        Self.publish(pool, waiting: [0, 0, 0, 0], readAt: WallClockForTests.now - 10_000)
        #expect(lb.choose() == Self.addresses[2])
        #expect(lb.counters["endpoint_picker_picks_least_request_stale_metrics"] == 1)
        // A snapshot that knows only three of the four hosts.
        Self.publish(pool, waiting: [0, 0, 0], generation: 2)
        #expect(lb.choose() == Self.addresses[2])
        #expect(lb.counters["endpoint_picker_picks_least_request_unknown_host"] == 1)
        // A fresh, complete snapshot, and malformed hand-overs: never a trap, least-request.
        Self.publish(pool, waiting: [0, 0, 0, 0], generation: 3)
        for bad in ["zz", ";abc", String(repeating: "f", count: 16) + ";" + String(repeating: "0", count: 16), "", ";;", String(repeating: "a", count: 5000), "é;"] {
            #expect(lb.choose(FakeLBContext(headers: [(EndpointHandOver.headerName, bad)])) == Self.addresses[2])
        }
        // Two copies of the header are ambiguous.
        let good = Self.handOver(Self.prompt("abc "))
        #expect(lb.choose(FakeLBContext(headers: [good, good])) == Self.addresses[2])
        #expect(lb.counters["endpoint_picker_picks_least_request_bad_handover"] == 8)
        #expect(lb.choose(FakeLBContext(headers: [good])) != nil)
        #expect(lb.counters["endpoint_picker_picks_scored"] == 1)
    }
}

/// The gateway filter's side of the hand-over: set for a model that opts in, not for others.
@Suite struct EndpointHandOverFilterTests {
    static let config = #"""
        {"api_keys":[{"name":"demo","key":"sk-sluice-demo"}],
         "models":[{"id":"gpt-4o-mini","route":"openai"},
                   {"id":"llama","route":"pool","endpoint_picking":true},
                   {"id":"sql-lora","route":"pool","endpoint_picking":true,"lora_adapter":true}]}
        """#

    static func handOver(model: String, system: String) throws -> String? {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
        let driver = try #require(
            chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo")]))
        defer { driver.destroy() }
        driver.requestHeaders()
        let body = #"{"model":"\#(model)","messages":[{"role":"system","content":"\#(system)"}]}"#
        driver.requestBody(Array(body.utf8), endOfStream: true)
        #expect(driver.stream.requestHeaders["x-sluice-route"] != nil)
        return driver.stream.requestHeaders[EndpointHandOver.headerName]
    }

    @Test func setForPickedModelsOnly() throws {
        let system = String(repeating: "You answer questions about invoices. ", count: 40)
        #expect(try Self.handOver(model: "gpt-4o-mini", system: system) == nil)
        let plain = try #require(try Self.handOver(model: "llama", system: system))
        let decoded = try #require(EndpointHandOver.decode(Array(plain.utf8)))
        #expect(decoded.adapter == nil && decoded.prefix.count >= 5)
        let adapterValue = try #require(try Self.handOver(model: "sql-lora", system: system))
        let adapter = try #require(EndpointHandOver.decode(Array(adapterValue.utf8)))
        #expect(adapter.adapter == AdapterID("sql-lora"))
        // The model field comes before "messages": the same prompt gives the same blocks.
        #expect(adapter.prefix.count == decoded.prefix.count)
        #expect((0..<decoded.prefix.count).allSatisfy { adapter.prefix[$0] == decoded.prefix[$0] })
    }
}

enum WallClockForTests {
    static var now: Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec / 1_000_000)
    }
}

#if canImport(Glibc)
import Glibc
#endif

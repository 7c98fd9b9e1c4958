// The background worker's lease half driven through its real hooks by the fake Envoy: with
// `leases` on it publishes a book, sends the book's requests to `POST /v1/fleet/leases` with the
// fleet token, applies the answers, resends an unanswered request verbatim, counts its stats, shows
// the lease table on `/sluice/fleet`, and at shutdown returns every slice before Envoy may go.
//
// Part of the serialized `FleetWorkerHookTests` (both publish the process's usage queue). The book
// is withdrawn as soon as the worker is loaded, so filter configs of other suites running at the
// same time keep local quotas.
import Foundation
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FleetWorkerHookTests {
    /// The clocks the module reads: wall milliseconds and monotonic nanoseconds.
    static func clocks() -> (millis: Int64, nanos: Int64) {
        var monotonic = timespec()
        clock_gettime(CLOCK_MONOTONIC, &monotonic)
        return (Int64(Date().timeIntervalSince1970 * 1000), Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec))
    }

    /// The lease callouts waiting for an answer (usage batches of other suites' records may wait too).
    static func leaseCallouts(_ worker: FakeBootstrapExtension) -> [FakeCallout] {
        worker.config.callouts.filter { $0.headers[":path"] == "/v1/fleet/leases" }
    }

    static func grantAnswer(seq: Int64, window: Int64, granted: Int64, held: Int64? = nil) -> [UInt8] {
        Array(
            #"""
            {"seq":\#(seq),"replay":false,"grants":[{"index":0,"scope":"team","name":"payments","dimension":"requests_per_minute",
             "window":\#(window),"granted":\#(granted),"held":\#(held ?? granted),"ttl_ms":10000,"expires_at_ms":1764936010000,
             "limit":100,"consumed":0,"outstanding":\#(granted),"remaining":\#(100 - granted),"window_end_ms":\#((window + 1) * 60_000)}],
             "rejected":[]}
            """#.utf8)
    }

    @Test func leaseRequestsGoToSluicedAndTheirAnswersFillTheSlots() throws {
        let token = try Self.tokenFile()
        let worker = FakeBootstrapExtension(name: "sluice_fleet", config: Self.config(token, #","leases":{"interval_ms":10}"#))
        let book = try #require(ProcessLeaseBook.current, "leases on: the worker publishes a book")
        ProcessLeaseBook.withdraw()
        defer { worker.destroy() }
        #expect(book.envoy == "node-a")
        worker.serverInitialized()
        #expect(worker.config.timers.first?.enabledDelay == 10)

        let key = LeaseKey(.team("payments"), .requestsPerMinute)
        let slot = try #require(book.acquire([(key, 100, .failClosed)])[key])
        var now = Self.clocks()
        let window = LeasePeriod.minute.window(atMillis: now.millis).id
        #expect(slot.admit(1, nowMillis: now.millis, nowNanos: now.nanos) == .denied(.unavailable))
        Self.tick(worker)
        let first = try #require(Self.leaseCallouts(worker).first, "demand makes a lease request")
        #expect(first.cluster == "sluiced_fleet")
        #expect(first.headers[":method"] == "POST")
        #expect(first.headers["authorization"] == "Bearer fleet-token-123")
        guard case .object(let request)? = try? JSONParser.parse(first.body), case .array(let items)? = request["items"],
            case .object(let item)? = items.first
        else {
            Issue.record("the body is not a lease request: \(String(decoding: first.body, as: UTF8.self))")
            return
        }
        #expect(request["envoy"] == .string("node-a"))
        #expect(request["seq"]?.int64Value == 1)
        #expect(item["scope"] == .string("team") && item["name"] == .string("payments"))
        #expect(item["dimension"] == .string("requests_per_minute") && item["limit"]?.int64Value == 100)
        #expect(item["want"]?.int64Value ?? 0 > 0)
        // One at a time: nothing more goes while it is in flight.
        Self.tick(worker)
        #expect(Self.leaseCallouts(worker).count == 1)

        worker.answerCallout(first.id, body: Self.grantAnswer(seq: 1, window: window, granted: 10))
        now = Self.clocks()
        #expect(slot.isValid(nowNanos: now.nanos))
        #expect(slot.remaining(window: window) == 10)
        #expect(worker.config.counters["lease_requests_sent"] == 1)
        #expect(worker.config.counters["lease.fail_closed_denied"] == 1)
        #expect(worker.config.gauges["lease_slices_held"] == 1)
        let page = worker.admin("/sluice/fleet").body
        #expect(page.contains(#""requests_sent":1"#))
        #expect(page.contains(#""name":"payments","dimension":"requests_per_minute","limit":100,"policy":"fail_closed","active":true,"valid":true"#))
        #expect(page.contains(#""remaining":10"#))

        // Spend one; the report goes, sluiced is away: counted, and the same request goes again.
        guard case .admitted(let ticket) = slot.admit(1, nowMillis: now.millis, nowNanos: now.nanos) else {
            Issue.record("a granted slice should admit")
            return
        }
        slot.settle(ticket, actual: 1)
        Self.tick(worker)
        let second = try #require(Self.leaseCallouts(worker).first)
        worker.answerCallout(second.id, status: 503, body: Array("no".utf8))
        #expect(worker.config.counters["lease_requests_failed"] == 1)
        #expect(worker.admin("/sluice/fleet").body.contains("sluiced answered 503"))
        Self.tick(worker)
        let resent = try #require(Self.leaseCallouts(worker).first)
        #expect(resent.body == second.body, "an unanswered request is resent verbatim")
        worker.answerCallout(resent.id, body: Self.grantAnswer(seq: 2, window: window, granted: 0, held: 9))
        #expect(worker.config.counters["lease_requests_sent"] == 2)

        // Shutdown: one last request returns the slice; Envoy may go once it is answered.
        worker.shutdown()
        let last = try #require(Self.leaseCallouts(worker).first, "shutdown returns the slices at once")
        guard case .object(let returning)? = try? JSONParser.parse(last.body), case .array(let returned)? = returning["items"]
        else {
            Issue.record("the last request is not a lease request")
            return
        }
        #expect(returned.contains { $0["returned"]?.int64Value == 9 && $0["want"]?.int64Value == 0 })
        #expect(worker.shutdownDoneCalls == 0, "the return is in flight")
        worker.answerCallout(last.id, body: Array(#"{"seq":3,"replay":false,"grants":[]}"#.utf8))
        Self.acceptAll(worker)
        Self.tick(worker)
        #expect(worker.shutdownDoneCalls == 1)
    }

    @Test func badLeaseSettingsAreRefusedWithTheFieldNamed() {
        let bad = FakeBootstrapExtension(
            name: "sluice_fleet", config: #"{"cluster":"c","token_file":"/t","envoy":"e","leases":{"interval_ms":5}}"#)
        #expect(!bad.loaded)
        #expect(!FakeLog.lines(containing: "leases.interval_ms: must be between 10 and 60000, got 5").isEmpty)
        let unknown = FakeBootstrapExtension(
            name: "sluice_fleet", config: #"{"cluster":"c","token_file":"/t","envoy":"e","leases":{"ttl_ms":5}}"#)
        #expect(!unknown.loaded)
        #expect(!FakeLog.lines(containing: "leases.ttl_ms").isEmpty)
        #expect(ProcessLeaseBook.current == nil)
    }
}

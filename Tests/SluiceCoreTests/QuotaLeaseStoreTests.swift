// `LocalQuotaStore` with a fleet lease book: every limited scope admits against its slots after its
// local counters, settles with the actual usage, releases with zero, and refuses with the local
// quota's 429 (fleet limit reached) or `quota_unavailable` (no lease, fail_closed or the fail_open
// cap used up), rolling back what it reserved. The config's `lease_failure` forms and their errors,
// and the book's slots following the configs that hold them.

import Synchronization
import Testing

@testable import SluiceCore

@Suite struct QuotaLeaseStoreTests {
    /// 2025-12-05 12:00:00 UTC.
    static let noon: Int64 = 1_764_936_000_000
    static var minute: Int64 { LeasePeriod.minute.window(atMillis: noon).id }
    static let second: Int64 = 1_000_000_000

    /// A monotonic clock the test moves.
    final class Clock: Sendable {
        let nanos = Atomic<Int64>(100 * QuotaLeaseStoreTests.second)
        var read: @Sendable () -> Int64 { { [self] in nanos.load(ordering: .relaxed) } }
    }

    static func grant(_ key: LeaseKey, _ amount: Int64, window: Int64 = minute, remaining: Int64 = 0) -> LeaseGrant {
        LeaseGrant(
            key: key, window: window, granted: amount, held: amount, ttlMillis: 10_000, expiresAtMillis: 0, limit: 30,
            consumed: 7, outstanding: amount, remaining: remaining, windowEndMillis: (window + 1) * 60_000)
    }

    /// A store limiting key `k` to `rpm` requests per minute, with leases from `book`.
    static func store(
        _ book: LeaseBook, _ clock: Clock, rpm: Int64 = 30, failure: LeaseFailureConfig = .failClosed
    ) -> LocalQuotaStore {
        LocalQuotaStore(
            limits: [.key("k"): QuotaLimits(requestsPerMinute: rpm)],
            leases: QuotaLeaseOptions(book: book, defaultFailure: failure, monotonicNanos: clock.read))
    }

    static let request = QuotaRequest(key: "k", model: "m", estimate: QuotaEstimate(inputTokens: 10, outputTokens: 10))

    /// Grants `amount` to the slot through the book's own request/answer cycle.
    static func give(_ book: LeaseBook, _ key: LeaseKey, _ amount: Int64, clock: Clock, remaining: Int64 = 0) {
        // The book sends a request only for a scope in demand: ask once (refused: no lease yet).
        let now = clock.nanos.load(ordering: .relaxed)
        if case .admitted(let ticket) = book.slot(key)?.admit(1, nowMillis: noon, nowNanos: now) {
            book.slot(key)?.settle(ticket, actual: 0)
        }
        guard let request = book.nextRequest(nowMillis: noon, nowNanos: now) else {
            Issue.record("no lease request to answer")
            return
        }
        book.apply([grant(key, amount, remaining: remaining)], seq: request.seq, sentAtNanos: now)
    }

    @Test func admitsAgainstTheSliceAndSettlesTheActualUsage() throws {
        let clock = Clock()
        let book = LeaseBook(envoy: "e", boot: "1")
        let store = Self.store(book, clock)
        let key = LeaseKey(.key("k"), .requestsPerMinute)
        let slot = try #require(book.slot(key))
        #expect(slot.limit == 30 && slot.policy == .failClosed && slot.isActive)
        // No lease yet and fail_closed: quota_unavailable, and the local counter gave its reservation back.
        guard case .denied(let denial) = store.admit(Self.request, now: Self.noon) else {
            Issue.record("admitted without a lease")
            return
        }
        #expect(denial.error.status == 429 && denial.error.code == "quota_unavailable")
        #expect(denial.error.message.contains("key k (requests_per_minute)"))
        #expect(denial.error.message.contains("fail_closed"))
        #expect(store.used(.key("k"), .requestsPerMinute, now: Self.noon) == 0)

        Self.give(book, key, 2, clock: clock)
        #expect(slot.remaining(window: Self.minute) == 2)
        guard case .admitted(let first) = store.admit(Self.request, now: Self.noon),
            case .admitted(let second) = store.admit(Self.request, now: Self.noon)
        else {
            Issue.record("a granted slice should admit")
            return
        }
        #expect(slot.remaining(window: Self.minute) == 0)
        // The slice is spent and sluiced had nothing left: the local quota's 429.
        guard case .denied(let limited) = store.admit(Self.request, now: Self.noon) else {
            Issue.record("admitted beyond the slice")
            return
        }
        #expect(limited.error.code == "rate_limit_exceeded" && limited.error.type == "requests")
        #expect(limited.error.message.contains("Limit 30, Used 7"))
        #expect(store.used(.key("k"), .requestsPerMinute, now: Self.noon) == 2)
        // Release gives the reservation back; settle keeps the request spent and reports it.
        store.release(first, now: Self.noon)
        #expect(slot.remaining(window: Self.minute) == 1)
        store.settle(second, actual: TokenUsage(inputTokens: 5, outputTokens: 5), costMicros: 0, now: Self.noon)
        #expect(slot.remaining(window: Self.minute) == 1)
        let report = try #require(book.nextRequest(nowMillis: Self.noon, nowNanos: clock.nanos.load(ordering: .relaxed)))
        #expect(report.items.first { $0.key == key && $0.window == Self.minute }?.spent == 1)
    }

    @Test func failOpenAdmitsUpToItsLocalCapThenRefuses() throws {
        let clock = Clock()
        let book = LeaseBook(envoy: "e", boot: "1")
        // 10 % of 30 requests: 3 per minute on this Envoy while sluiced is away.
        let store = Self.store(book, clock, failure: .failOpen(localCapPercent: 10))
        let slot = try #require(book.slot(LeaseKey(.key("k"), .requestsPerMinute)))
        #expect(slot.policy == .failOpen(localCap: 3))
        for _ in 0..<3 {
            guard case .admitted = store.admit(Self.request, now: Self.noon) else {
                Issue.record("fail_open should admit up to its cap")
                return
            }
        }
        guard case .denied(let denial) = store.admit(Self.request, now: Self.noon) else {
            Issue.record("admitted beyond the fail_open cap")
            return
        }
        #expect(denial.error.code == "quota_unavailable")
        #expect(denial.error.message.contains("fail_open allowance for key k (requests_per_minute: 3 per window)"))
        #expect(slot.counts.failOpenAdmitted == 3 && slot.counts.localCapDenied == 1)
    }

    @Test func aShortSliceWakesTheWorkerAndFailOpenBridgesTheBurst() throws {
        let clock = Clock()
        let key = LeaseKey(.key("k"), .requestsPerMinute)
        // fail_open (cap 3): a burst beyond the slice while sluiced still had more is admitted
        // from the local allowance, and the worker is told to renew now.
        let openBook = LeaseBook(envoy: "e", boot: "1")
        let open = Self.store(openBook, clock, failure: .failOpen(localCapPercent: 10))
        Self.give(openBook, key, 1, clock: clock, remaining: 20)
        let openSlot = try #require(openBook.slot(key))
        let failOpenBefore = openSlot.counts.failOpenAdmitted
        #expect(openBook.takeRenewalWanted(), "a request without a lease wakes the worker")
        #expect(!openBook.takeRenewalWanted(), "taken once")
        var admitted = 0
        for _ in 0..<3 { if case .admitted = open.admit(Self.request, now: Self.noon) { admitted += 1 } }
        #expect(admitted == 3)
        #expect(openSlot.counts.failOpenAdmitted - failOpenBefore == 2)
        #expect(openBook.takeRenewalWanted(), "a short slice wakes the worker")
        // fail_closed: the same burst is refused for a second (the slice is short, not the fleet).
        let closedBook = LeaseBook(envoy: "e", boot: "1")
        let closed = Self.store(closedBook, clock, failure: .failClosed)
        Self.give(closedBook, key, 1, clock: clock, remaining: 20)
        _ = closedBook.takeRenewalWanted()
        guard case .admitted = closed.admit(Self.request, now: Self.noon),
            case .denied(let denial) = closed.admit(Self.request, now: Self.noon)
        else {
            Issue.record("fail_closed admits the slice and refuses beyond it")
            return
        }
        #expect(denial.error.code == "rate_limit_exceeded" && denial.retryAfterSeconds == 1)
        #expect(closedBook.takeRenewalWanted())
    }

    @Test func aLeaseRefusalRollsBackTheOtherScopes() throws {
        let clock = Clock()
        let book = LeaseBook(envoy: "e", boot: "1")
        let store = LocalQuotaStore(
            limits: [.key("k"): QuotaLimits(requestsPerMinute: 30), .team("t"): QuotaLimits(tokensPerMinute: 1_000)],
            leases: QuotaLeaseOptions(book: book, defaultFailure: .failClosed, monotonicNanos: clock.read))
        let keySlot = LeaseKey(.key("k"), .requestsPerMinute)
        Self.give(book, keySlot, 5, clock: clock)
        let request = QuotaRequest(key: "k", team: "t", model: "m", estimate: QuotaEstimate(inputTokens: 10, outputTokens: 10))
        guard case .denied(let denial) = store.admit(request, now: Self.noon) else {
            Issue.record("the team has no lease and is fail_closed")
            return
        }
        #expect(denial.scope == .team("t") && denial.error.code == "quota_unavailable")
        // The key's lease slice and local counter got their reservations back.
        #expect(try #require(book.slot(keySlot)).remaining(window: Self.minute) == 5)
        #expect(store.used(.key("k"), .requestsPerMinute, now: Self.noon) == 0)
        #expect(store.used(.team("t"), .tokensPerMinute, now: Self.noon) == 0)
    }

    @Test func withoutABookTheStoreIsLocalAsBefore() {
        let store = LocalQuotaStore(limits: [.key("k"): QuotaLimits(requestsPerMinute: 2)])
        var admitted = 0
        for _ in 0..<3 { if case .admitted = store.admit(Self.request, now: Self.noon) { admitted += 1 } }
        #expect(admitted == 2)
    }

    @Test func slotsFollowTheConfigsThatHoldThem() throws {
        let clock = Clock()
        let book = LeaseBook(envoy: "e", boot: "1")
        var first: LocalQuotaStore? = Self.store(book, clock, rpm: 30)
        let key = LeaseKey(.key("k"), .requestsPerMinute)
        let slot = try #require(book.slot(key))
        // A second config (a listener, or the next ECDS version) with another limit shares the slot.
        var second: LocalQuotaStore? = Self.store(book, clock, rpm: 60)
        #expect(book.slot(key) === slot && slot.limit == 60)
        first = nil
        #expect(slot.isActive)
        Self.give(book, key, 10, clock: clock)
        _ = second?.admit(Self.request, now: Self.noon)
        second = nil
        _ = (first, second)
        // No config holds it: it asks for nothing more and gives its slice back.
        #expect(!slot.isActive)
        let request = try #require(book.nextRequest(nowMillis: Self.noon, nowNanos: clock.nanos.load(ordering: .relaxed)))
        let item = try #require(request.items.first { $0.key == key && $0.window == Self.minute })
        #expect(item.want == 0 && item.returned == 9)
    }

    @Test func readsLeaseFailurePolicies() throws {
        let config = try GatewayConfig.parse(
            Array(
                #"""
                {"api_keys": [{"name": "a", "key": "sk-a", "team": "t",
                               "limits": {"requests_per_minute": 30, "lease_failure": {"policy": "fail_closed"}}}],
                 "team_limits": {"t": {"tokens_per_minute": 100, "lease_failure": {"policy": "fail_open", "local_cap_percent": 25}}},
                 "quota_lease_failure": {"policy": "fail_open", "local_cap_percent": 2.5}}
                """#.utf8))
        #expect(config.leaseFailure[.key("a")] == .failClosed)
        #expect(config.leaseFailure[.team("t")] == .failOpen(localCapPercent: 25))
        #expect(config.defaultLeaseFailure == .failOpen(localCapPercent: 2.5))
        #expect(try GatewayConfig.parse(Array("{}".utf8)).defaultLeaseFailure == .failOpen(localCapPercent: 10))
        #expect(LeaseFailureConfig.failOpen(localCapPercent: 2.5).policy(limit: 30) == .failOpen(localCap: 1))
        #expect(LeaseFailureConfig.failOpen(localCapPercent: 0.001).policy(limit: 10) == .failOpen(localCap: 1))
    }

    @Test(arguments: [
        (#"{"quota_lease_failure": {"policy": "open"}}"#, #"quota_lease_failure.policy: must be "fail_open" or "fail_closed", got "open""#),
        (#"{"quota_lease_failure": {"policy": "fail_open"}}"#, "quota_lease_failure.local_cap_percent: required with policy \"fail_open\""),
        (#"{"quota_lease_failure": {"policy": "fail_open", "local_cap_percent": 0}}"#, "quota_lease_failure.local_cap_percent: must be above 0"),
        (#"{"quota_lease_failure": {"policy": "fail_open", "local_cap_percent": 101}}"#, "quota_lease_failure.local_cap_percent: must be between 0"),
        (#"{"quota_lease_failure": {"policy": "fail_closed", "local_cap_percent": 5}}"#, "quota_lease_failure.local_cap_percent: applies only to policy \"fail_open\""),
        (#"{"quota_lease_failure": {"policy": "fail_closed", "cap": 5}}"#, "cap"),
        (#"{"team_limits": {"t": {"lease_failure": "fail_closed"}}}"#, "team_limits.t.lease_failure"),
    ])
    func rejectsBadLeaseFailurePolicies(json: String, message: String) {
        do {
            _ = try GatewayConfig.parse(Array(json.utf8))
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }
}

// The module's lease book: admission against a granted slice (also from many threads), the
// expiry with its margin, the fail_open / fail_closed policies and their 429s, and the worker's
// requests: spent reported once, returns, asks sized by the recent rate, a pending request resent
// verbatim until answered.

import Dispatch
import Synchronization
import Testing

@testable import SluiceCore

@Suite struct LeaseBookTests {
    static let key = LeaseKey(.team("payments"), .costPerDay)
    /// 2025-12-05 12:00:00 UTC.
    static let noon: Int64 = 1_764_936_000_000
    static var today: Int64 { LeasePeriod.day.window(atMillis: noon).id }
    static let second: Int64 = 1_000_000_000

    /// A grant as sluiced would answer it.
    static func grant(_ amount: Int64, window: Int64 = today, ttl: Int64 = 10_000, remaining: Int64 = 1_000_000) -> LeaseGrant {
        LeaseGrant(
            key: key, window: window, granted: amount, held: amount, ttlMillis: ttl, expiresAtMillis: 0, limit: 10_000_000,
            consumed: 0, outstanding: amount, remaining: remaining, windowEndMillis: (window + 1) * 86_400_000)
    }

    static func book(_ policy: LeaseFailurePolicy, limit: Int64 = 10_000_000, settings: LeaseBookSettings = LeaseBookSettings())
        -> (LeaseBook, LeaseSlot)
    {
        let slot = LeaseSlot(key: key, limit: limit, policy: policy)
        return (LeaseBook(envoy: "envoy-a", boot: "1", slots: [slot], settings: settings), slot)
    }

    @Test func packingKeepsTagAndSignedAmount() {
        for (tag, amount) in [(0, 0), (5, -1), ((1 << 22) - 1, LeaseSlot.maxAmount), (12345, -LeaseSlot.maxAmount), (7, 42)] as [(Int64, Int64)] {
            let (t, a) = LeaseSlot.unpack(LeaseSlot.pack(tag: tag, amount: amount))
            #expect(t == tag)
            #expect(a == amount)
        }
        #expect(LeaseSlot.unpack(LeaseSlot.pack(tag: 3, amount: Int64.max)).amount == LeaseSlot.maxAmount)
        #expect(LeaseSlot.isNewer(1, than: (1 << 22) - 1))
        #expect(!LeaseSlot.isNewer(5, than: 6))
    }

    @Test func withoutALeaseFailClosedRefusesWithItsOwnMessage() {
        let (_, slot) = Self.book(.failClosed)
        let result = slot.admit(100, nowMillis: Self.noon, nowNanos: 5 * Self.second)
        #expect(result == .denied(.unavailable))
        #expect(slot.counts.failClosedDenied == 1)
        let error = LeaseDenial.unavailable.unavailableError(Self.key)
        #expect(error?.status == 429)
        #expect(error?.code == "quota_unavailable")
        #expect(
            error?.message
                == "The quota service is unreachable and this gateway's lease for team payments (cost_micro_usd_per_day) has expired; the limit is fail_closed, so requests are refused until the quota service answers again.")
        #expect(LeaseDenial.unavailable.statName == "lease.fail_closed_denied")
    }

    @Test func failOpenAdmitsUpToTheLocalCapPerWindow() {
        let (_, slot) = Self.book(.failOpen(localCap: 1_000))
        var admitted: Int64 = 0
        for _ in 0..<30 {
            if case .admitted(let ticket) = slot.admit(100, nowMillis: Self.noon, nowNanos: 0) {
                #expect(ticket.failOpen)
                admitted += ticket.amount
            }
        }
        #expect(admitted == 1_000)
        #expect(slot.admit(1, nowMillis: Self.noon, nowNanos: 0) == .denied(.localCapReached(cap: 1_000)))
        #expect(slot.counts.failOpenAdmitted == 10)
        #expect(
            LeaseDenial.localCapReached(cap: 1_000).unavailableError(Self.key)?.message
                == "The quota service is unreachable and this gateway's fail_open allowance for team payments (cost_micro_usd_per_day: 1000 per window) is used up; requests are refused until the quota service answers again.")
        // The next day has its own allowance.
        if case .admitted = slot.admit(1_000, nowMillis: Self.noon + 86_400_000, nowNanos: 0) {} else {
            Issue.record("the next window should admit again")
        }
    }

    @Test func aGrantAdmitsUntilSpentThenTheLimitAnswers() {
        let (book, slot) = Self.book(.failClosed)
        let request = book.nextRequest(nowMillis: Self.noon, nowNanos: 0)
        #expect(request == nil)  // no demand, no lease: nothing to say yet
        _ = slot.admit(100, nowMillis: Self.noon, nowNanos: 0)  // refused, but it is demand
        let ask = book.nextRequest(nowMillis: Self.noon, nowNanos: Self.second)
        #expect(ask?.seq == 1)
        #expect(ask?.items.first?.want ?? 0 >= 100)
        book.apply([Self.grant(250, remaining: 0)], seq: 1, sentAtNanos: Self.second)
        var tickets: [LeaseTicket] = []
        for _ in 0..<3 {
            if case .admitted(let ticket) = slot.admit(100, nowMillis: Self.noon, nowNanos: 2 * Self.second) { tickets.append(ticket) }
        }
        #expect(tickets.count == 2)
        #expect(slot.remaining(window: Self.today) == 50)
        // sluiced had nothing left: retry when the day ends.
        #expect(
            slot.admit(100, nowMillis: Self.noon, nowNanos: 2 * Self.second)
                == .denied(.limitReached(limit: 10_000_000, consumed: 0, retryAfterMillis: 43_200_000)))
        // Settling below the estimate gives the difference back to the slice and reports the actual.
        slot.settle(tickets[0], actual: 60)
        slot.settle(tickets[1], actual: 0)
        #expect(slot.remaining(window: Self.today) == 190)
        let report = book.nextRequest(nowMillis: Self.noon, nowNanos: 3 * Self.second)
        #expect(report?.items.first?.spent == 60)
    }

    @Test func theLeaseEndsAMarginBeforeItsExpiryTimedFromTheSend() {
        let (book, slot) = Self.book(.failClosed, settings: LeaseBookSettings(marginMillis: 1_000))
        _ = slot.admit(1, nowMillis: Self.noon, nowNanos: 0)
        let ask = book.nextRequest(nowMillis: Self.noon, nowNanos: 0)
        book.apply([Self.grant(1_000)], seq: ask?.seq ?? 0, sentAtNanos: 100 * Self.second)
        #expect(slot.isValid(nowNanos: 109 * Self.second - 1))
        #expect(!slot.isValid(nowNanos: 109 * Self.second))
        #expect(slot.admit(1, nowMillis: Self.noon, nowNanos: 109 * Self.second) == .denied(.unavailable))
    }

    @Test func anUnansweredRequestIsResentVerbatimAndSpendWaitsInTheBook() {
        let (book, slot) = Self.book(.failOpen(localCap: 10_000))
        guard case .admitted(let ticket) = slot.admit(500, nowMillis: Self.noon, nowNanos: 0) else {
            Issue.record("fail_open should admit")
            return
        }
        slot.settle(ticket, actual: 400)
        let first = book.nextRequest(nowMillis: Self.noon, nowNanos: Self.second)
        #expect(first?.items.first?.spent == 400)
        // No answer: the same request again, even after more spend.
        guard case .admitted(let second) = slot.admit(100, nowMillis: Self.noon, nowNanos: 2 * Self.second) else {
            Issue.record("fail_open should admit")
            return
        }
        slot.settle(second, actual: 100)
        let retry = book.nextRequest(nowMillis: Self.noon, nowNanos: 3 * Self.second)
        #expect(retry == first)
        // An answer to another seq is not this request's.
        book.apply([Self.grant(10)], seq: 99, sentAtNanos: 3 * Self.second)
        #expect(book.nextRequest(nowMillis: Self.noon, nowNanos: 3 * Self.second) == first)
        book.apply([Self.grant(1_000)], seq: first?.seq ?? 0, sentAtNanos: 3 * Self.second)
        let next = book.nextRequest(nowMillis: Self.noon, nowNanos: 4 * Self.second)
        #expect(next?.seq == 2)
        #expect(next?.items.first?.spent == 100)
    }

    @Test func asksFollowTheRateAndExcessIsReturned() {
        let settings = LeaseBookSettings(horizonMillis: 3_000, floorFraction: 0)
        let (book, slot) = Self.book(.failClosed, settings: settings)
        // Prime: one sample of zero so the rate is measured over a known interval.
        _ = book.nextRequest(nowMillis: Self.noon, nowNanos: 0)
        // 1000 units per second of demand.
        _ = slot.admit(1_000, nowMillis: Self.noon, nowNanos: Self.second / 2)
        let ask = book.nextRequest(nowMillis: Self.noon, nowNanos: Self.second)
        // rate = 0.5 × 1000/s: 3 s ahead is 1500.
        #expect(ask?.items.first?.want == 1_500)
        book.apply([Self.grant(100_000)], seq: ask?.seq ?? 0, sentAtNanos: Self.second)
        // No demand for a second: the rate halves to 250/s, target 750, keep 1500, return the rest.
        let back = book.nextRequest(nowMillis: Self.noon, nowNanos: 2 * Self.second)
        #expect(back?.items.first?.returned == 98_500)  // 100 000 − 1500
        #expect(back?.items.first?.want == 0)
        #expect(slot.remaining(window: Self.today) == 1_500)
        book.apply([], seq: back?.seq ?? 0, sentAtNanos: 2 * Self.second)
        let drain = book.nextRequest(nowMillis: Self.noon, nowNanos: 3 * Self.second, draining: true)
        #expect(drain?.items.first?.returned == 1_500)
        #expect(drain?.items.first?.want == 0)
    }

    @Test func eightThreadsAdmitExactlyTheSlice() {
        let (book, slot) = Self.book(.failClosed)
        _ = slot.admit(1, nowMillis: Self.noon, nowNanos: 0)
        let ask = book.nextRequest(nowMillis: Self.noon, nowNanos: 0)
        book.apply([Self.grant(20_000)], seq: ask?.seq ?? 0, sentAtNanos: 0)
        let admitted = Atomic<Int64>(0)
        let settled = Atomic<Int64>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            var mine: Int64 = 0
            for i in 0..<5_000 {
                if case .admitted(let ticket) = slot.admit(1, nowMillis: Self.noon, nowNanos: Self.second) {
                    mine += 1
                    // Half settle at the estimate, half release: the slice gets those back.
                    if (i + thread) % 2 == 0 {
                        slot.settle(ticket, actual: 1)
                        settled.add(1, ordering: .relaxed)
                    } else {
                        slot.settle(ticket, actual: 0)
                    }
                }
            }
            admitted.add(mine, ordering: .relaxed)
        }
        // Everything released came back and was admitted again: exactly 20 000 were settled at 1
        // or the demand ran out first (40 000 attempts).
        #expect(slot.remaining(window: Self.today) == 20_000 - settled.load(ordering: .relaxed))
        #expect(settled.load(ordering: .relaxed) <= 20_000)
        let report = book.nextRequest(nowMillis: Self.noon, nowNanos: 2 * Self.second)
        #expect(report?.items.first(where: { $0.window == Self.today })?.spent == settled.load(ordering: .relaxed))
        #expect(admitted.load(ordering: .relaxed) >= settled.load(ordering: .relaxed))
    }

    @Test func theNextMinuteIsAskedAheadAndTheOldOneReportedAfterTheRollover() {
        let key = LeaseKey(.key("alice"), .requestsPerMinute)
        let slot = LeaseSlot(key: key, limit: 600, policy: .failClosed)
        let book = LeaseBook(envoy: "e", boot: "1", slots: [slot])
        let minute = LeasePeriod.minute.window(atMillis: Self.noon).id
        func grant(_ amount: Int64, _ window: Int64) -> LeaseGrant {
            LeaseGrant(
                key: key, window: window, granted: amount, held: amount, ttlMillis: 10_000, expiresAtMillis: 0, limit: 600,
                consumed: 0, outstanding: amount, remaining: 600, windowEndMillis: (window + 1) * 60_000)
        }
        // Busy at 10 requests a second from the minute's 50th second.
        _ = book.nextRequest(nowMillis: Self.noon + 50_000, nowNanos: 50 * Self.second)
        _ = slot.admit(10, nowMillis: Self.noon + 50_500, nowNanos: 50 * Self.second + Self.second / 2)
        let first = book.nextRequest(nowMillis: Self.noon + 51_000, nowNanos: 51 * Self.second)
        book.apply([grant(100, minute)], seq: first?.seq ?? 0, sentAtNanos: 51 * Self.second)
        var tickets: [LeaseTicket] = []
        for _ in 0..<8 {
            if case .admitted(let ticket) = slot.admit(1, nowMillis: Self.noon + 58_000, nowNanos: 58 * Self.second) {
                tickets.append(ticket)
            }
        }
        // Within the horizon (3 s) of the next minute: an item for it asks ahead.
        let ahead = book.nextRequest(nowMillis: Self.noon + 58_000, nowNanos: 58 * Self.second)
        let next = ahead?.items.first { $0.window == minute + 1 }
        #expect((next?.want ?? 0) > 0)
        // Demand slowed to about 1 a second: the current minute keeps twice its 3 s need (20)
        // and gives the other 72 back.
        #expect(ahead?.items.first { $0.window == minute }?.returned == 72)
        book.apply([grant(50, minute + 1)], seq: ahead?.seq ?? 0, sentAtNanos: 58 * Self.second)
        // After the rollover the new minute's slice is there; the old minute's requests settle
        // into the old minute's report.
        guard case .admitted(let late) = slot.admit(5, nowMillis: Self.noon + 60_100, nowNanos: 60 * Self.second) else {
            Issue.record("the next minute's slice should admit")
            return
        }
        #expect(late.window == minute + 1)
        for ticket in tickets { slot.settle(ticket, actual: 1) }
        slot.settle(late, actual: 5)
        let report = book.nextRequest(nowMillis: Self.noon + 61_000, nowNanos: 61 * Self.second)
        let old = report?.items.first { $0.window == minute }
        #expect(old?.spent == 8)
        // The old minute's rest (20) goes back; nothing more is asked for it.
        #expect(old?.returned == 20)
        #expect(old?.want == 0)
        #expect(report?.items.first { $0.window == minute + 1 }?.spent == 5)
    }

    @Test func aSliceRunningLowWakesTheWorkerOnlyWhileTheFleetHasMore() throws {
        let book = LeaseBook(envoy: "envoy-a", boot: "1")
        let slot = try #require(book.acquire([(Self.key, 10_000_000, .failClosed)])[Self.key])
        let now = 5 * Self.second
        slot.apply(Self.grant(10), sentAtNanos: now, settings: book.settings)
        // Four admitted since the worker's last sample, six left: the slice outlasts the interval.
        for _ in 0..<4 { _ = slot.admit(1, nowMillis: Self.noon, nowNanos: now) }
        #expect(!book.takeRenewalWanted())
        // The fifth: as much demanded since the last request as is left — renew now.
        _ = slot.admit(1, nowMillis: Self.noon, nowNanos: now)
        #expect(book.takeRenewalWanted())
        // A request samples the demand: the count starts again.
        _ = book.nextRequest(nowMillis: Self.noon, nowNanos: now)
        _ = slot.admit(1, nowMillis: Self.noon, nowNanos: now)
        #expect(!book.takeRenewalWanted())
        // When sluiced had nothing more to give, running low wakes nobody.
        let full = try #require(book.acquire([(LeaseKey(.team("full"), .costPerDay), 10_000_000, .failClosed)])[LeaseKey(.team("full"), .costPerDay)])
        var grant = Self.grant(2, remaining: 0)
        grant.key = full.key
        full.apply(grant, sentAtNanos: now, settings: book.settings)
        _ = full.admit(1, nowMillis: Self.noon, nowNanos: now)
        _ = full.admit(1, nowMillis: Self.noon, nowNanos: now)
        #expect(!book.takeRenewalWanted())
    }

    @Test func answersAreReadWithEveryNumberRangeChecked() throws {
        let request = LeaseBook.Request(
            seq: 7, items: [LeaseItem(key: Self.key, window: Self.today, limit: 5_000_000, spent: 12, returned: 3, want: 40, held: 60)])
        let body = String(decoding: LeaseWire.requestBody(request, envoy: "gw-1", boot: "b\"1"), as: UTF8.self)
        #expect(
            body
                == #"{"envoy":"gw-1","boot":"b\"1","seq":7,"items":[{"scope":"team","name":"payments","dimension":"cost_micro_usd_per_day","window":\#(Self.today),"limit":5000000,"spent":12,"returned":3,"want":40,"held":60}]}"#)
        func grantJSON(held: String = "100", ttl: String = "10000") -> String {
            #"{"index":0,"scope":"team","name":"payments","dimension":"cost_micro_usd_per_day","window":\#(Self.today),"granted":40,"held":\#(held),"ttl_ms":\#(ttl),"expires_at_ms":1764936010000,"limit":10000000,"consumed":7,"outstanding":100,"remaining":4999893,"window_end_ms":1764979200000}"#
        }
        let good = grantJSON()
        let negative = grantJSON(held: "-1")
        let hugeTTL = grantJSON(ttl: "1e12")
        let text = #"{"seq":7,"replay":false,"grants":[\#(good),\#(negative),\#(hugeTTL)],"rejected":[{"index":1,"error":"want: bad"}]}"#
        let answer = try LeaseWire.readAnswer(Array(text.utf8), seq: 7).get()
        #expect(answer.grants == [Self.grant(40, ttl: 10_000, remaining: 4_999_893).with(held: 100, consumed: 7, outstanding: 100, expires: 1_764_936_010_000)])
        #expect(
            answer.problems == [
                "grants[1].held: not an integer between 0 and 1000000000000000",
                "grants[2].ttl_ms: not an integer between 0 and 3600000", "items[1]: want: bad",
            ])
        #expect(throws: LeaseWire.AnswerError.self) { try LeaseWire.readAnswer(Array(text.utf8), seq: 8).get() }
        #expect(throws: LeaseWire.AnswerError.self) { try LeaseWire.readAnswer(Array("[]".utf8), seq: 7).get() }
    }
}

extension LeaseGrant {
    func with(held: Int64, consumed: Int64, outstanding: Int64, expires: Int64) -> LeaseGrant {
        var copy = self
        copy.held = held
        copy.consumed = consumed
        copy.outstanding = outstanding
        copy.expiresAtMillis = expires
        return copy
    }
}

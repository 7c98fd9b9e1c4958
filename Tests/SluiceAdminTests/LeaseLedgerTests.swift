// sluiced's lease ledger: grant sizing (fair share, never beyond limit − consumed − outstanding),
// returns, replays, expiry reclaim, window rollover and the next window's lookahead.
import SluiceAdmin
import SluiceCore
import Testing

let teamDay = LeaseKey(.team("payments"), .costPerDay)
let keyRPM = LeaseKey(.key("alice"), .requestsPerMinute)
/// 2025-12-05 12:00:00 UTC: mid-day and the start of a minute.
let noon: Int64 = 1_764_936_000_000
let envoyA = LeaseHolder(envoy: "envoy-a", boot: "1")
let envoyB = LeaseHolder(envoy: "envoy-b", boot: "1")
let envoyC = LeaseHolder(envoy: "envoy-c", boot: "1")

func day(_ millis: Int64) -> Int64 { LeasePeriod.day.window(atMillis: millis).id }
func minute(_ millis: Int64) -> Int64 { LeasePeriod.minute.window(atMillis: millis).id }

@Suite("Lease ledger")
struct LeaseLedgerTests {
    @Test("a lone Envoy gets what it wants, up to what the limit leaves")
    func loneGrant() {
        var ledger = LeaseLedger()
        let first = ledger.apply(
            holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: day(noon), limit: 1_000, want: 300)], nowMillis: noon)
        #expect(first.rejected.isEmpty)
        #expect(first.grants[0].granted == 300)
        #expect(first.grants[0].held == 300)
        #expect(first.grants[0].remaining == 700)
        #expect(first.grants[0].ttlMillis == 10_000)
        let second = ledger.apply(
            holder: envoyA, seq: 2, items: [LeaseItem(key: teamDay, window: day(noon), limit: 1_000, spent: 250, want: 5_000)],
            nowMillis: noon + 1_000)
        // consumed 250, held 50 after the spend: 700 left to grant.
        #expect(second.grants[0].granted == 700)
        #expect(second.grants[0].held == 750)
        #expect(second.grants[0].consumed == 250)
        #expect(second.grants[0].remaining == 0)
        let third = ledger.apply(
            holder: envoyA, seq: 3, items: [LeaseItem(key: teamDay, window: day(noon), limit: 1_000, want: 1)], nowMillis: noon + 2_000)
        #expect(third.grants[0].granted == 0)
    }

    @Test("several Envoys share what remains: no grant beyond an equal share, none beyond the limit")
    func fairShare() {
        var ledger = LeaseLedger()
        let w = day(noon)
        // B asks first, so it is active when A asks.
        _ = ledger.apply(holder: envoyB, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 900, want: 100)], nowMillis: noon)
        let a = ledger.apply(holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 900, want: 10_000)], nowMillis: noon)
        // 800 available, 2 active: at most 400.
        #expect(a.grants[0].granted == 400)
        let c = ledger.apply(holder: envoyC, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 900, want: 10_000)], nowMillis: noon)
        // 400 available, 3 active: ceil(400 / 3).
        #expect(c.grants[0].granted == 134)
        for round in 0..<20 {
            for holder in [envoyA, envoyB, envoyC] {
                let answer = ledger.apply(
                    holder: holder, seq: Int64(2 + round), items: [LeaseItem(key: teamDay, window: w, limit: 900, want: 10_000)],
                    nowMillis: noon + 1)
                #expect(answer.grants[0].consumed + answer.grants[0].outstanding <= 900)
            }
        }
        #expect(ledger.account(teamDay, window: w)?.outstanding == 900)
    }

    @Test("returns free the slice for others; a return never exceeds what is held")
    func returns() {
        var ledger = LeaseLedger()
        let w = day(noon)
        _ = ledger.apply(holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 100, want: 100)], nowMillis: noon)
        let back = ledger.apply(
            holder: envoyA, seq: 2, items: [LeaseItem(key: teamDay, window: w, limit: 100, spent: 30, returned: 500)], nowMillis: noon)
        #expect(back.grants[0].held == 0)
        #expect(back.grants[0].consumed == 30)
        #expect(ledger.totals.returned(.costPerDay) == 70)
        let b = ledger.apply(holder: envoyB, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 100, want: 100)], nowMillis: noon)
        #expect(b.grants[0].granted == 70)
    }

    @Test("a replayed seq applies no spend or return twice, and still serves the want")
    func replay() {
        var ledger = LeaseLedger()
        let w = day(noon)
        let item = LeaseItem(key: teamDay, window: w, limit: 1_000, spent: 40, want: 10)
        _ = ledger.apply(holder: envoyA, seq: 7, items: [item], nowMillis: noon)
        let again = ledger.apply(holder: envoyA, seq: 7, items: [item], nowMillis: noon)
        #expect(again.replay)
        #expect(again.grants[0].consumed == 40)
        // A restarted Envoy (new boot) starts its seq again and is not a replay.
        let reborn = ledger.apply(
            holder: LeaseHolder(envoy: "envoy-a", boot: "2"), seq: 1, items: [item], nowMillis: noon)
        #expect(!reborn.replay)
        #expect(reborn.grants[0].consumed == 80)
    }

    @Test("a holder past its expiry loses its slice; contact renews it")
    func expiry() {
        var ledger = LeaseLedger(settings: LeaseLedgerSettings(ttlMillis: 5_000))
        let w = day(noon)
        _ = ledger.apply(holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 100, want: 60)], nowMillis: noon)
        _ = ledger.apply(holder: envoyB, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 100, want: 20)], nowMillis: noon)
        // B keeps in touch (an empty item renews); A goes silent.
        _ = ledger.apply(holder: envoyB, seq: 2, items: [LeaseItem(key: teamDay, window: w, limit: 100)], nowMillis: noon + 4_000)
        ledger.expire(nowMillis: noon + 4_999)
        #expect(ledger.held(teamDay, window: w, by: envoyA) == 60)
        ledger.expire(nowMillis: noon + 5_000)
        #expect(ledger.held(teamDay, window: w, by: envoyA) == 0)
        #expect(ledger.held(teamDay, window: w, by: envoyB) == 20)
        #expect(ledger.totals.reclaimed(.costPerDay) == 60)
        #expect(ledger.totals.reclaimedLeases == 1)
        let c = ledger.apply(holder: envoyC, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 100, want: 80)], nowMillis: noon + 5_000)
        // A is no longer active (its slice expired, its last ask is older than activeMillis? no:
        // 5 s < 10 s, so it still counts for the share): 80 available, 3 active.
        #expect(c.grants[0].granted == 27)
        #expect(ledger.outstandingUnits == 47)
    }

    @Test("windows: a new minute starts from zero; the last one still takes reports; older ones are refused")
    func rollover() {
        var ledger = LeaseLedger()
        let m = minute(noon)
        _ = ledger.apply(holder: envoyA, seq: 1, items: [LeaseItem(key: keyRPM, window: m, limit: 60, want: 60)], nowMillis: noon)
        let next = noon + 60_000
        let answer = ledger.apply(
            holder: envoyA, seq: 2,
            items: [
                LeaseItem(key: keyRPM, window: m, limit: 60, spent: 55, returned: 5),
                LeaseItem(key: keyRPM, window: m + 1, limit: 60, want: 30),
                LeaseItem(key: keyRPM, window: m - 1, limit: 60, spent: 3),
                LeaseItem(key: keyRPM, window: m + 2, limit: 60, want: 3),
            ], nowMillis: next)
        #expect(answer.grants.count == 2)
        #expect(answer.grants[0].consumed == 55)
        #expect(answer.grants[0].held == 0)
        #expect(answer.grants[0].granted == 0)
        #expect(answer.grants[1].granted == 30)
        #expect(answer.grants[1].windowEndMillis == next + 60_000)
        #expect(
            answer.rejected == [
                LeaseItemProblem(index: 2, error: "window: \(m - 1) has ended; sluiced keeps the current minute \(m + 1) and the one before"),
                LeaseItemProblem(index: 3, error: "window: \(m + 2) is after sluiced's current minute \(m + 1) (is the Envoy's clock ahead?)"),
            ])
        ledger.expire(nowMillis: next + 60_000)
        #expect(ledger.account(keyRPM, window: m) == nil)
    }

    @Test("the next window takes asks within the lookahead, not before")
    func lookahead() {
        var ledger = LeaseLedger(settings: LeaseLedgerSettings(lookaheadMillis: 5_000))
        let m = minute(noon)
        let early = ledger.apply(
            holder: envoyA, seq: 1, items: [LeaseItem(key: keyRPM, window: m + 1, limit: 60, want: 10)], nowMillis: noon + 54_999)
        #expect(early.grants.isEmpty)
        #expect(early.rejected.count == 1)
        let ahead = ledger.apply(
            holder: envoyA, seq: 2, items: [LeaseItem(key: keyRPM, window: m + 1, limit: 60, want: 10)], nowMillis: noon + 55_000)
        #expect(ahead.grants.first?.granted == 10)
    }
}

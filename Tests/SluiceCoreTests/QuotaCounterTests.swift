// Rate counters (GCRA), budget counters and the UTC calendar they rely on; time is always passed in.

import Testing

@testable import SluiceCore

@Suite struct QuotaCounterTests {
    static let second: Int64 = 1_000_000_000
    static let t0: Int64 = 1_750_000_000_000 * 1_000_000  // some instant in 2025, in nanoseconds

    @Test func aFullBurstThenRefillAtTheLimitRate() {
        let counter = RateCounter(limit: 600)  // one request per 100 ms
        for _ in 0..<600 { #expect(counter.reserve(1, nowNanos: Self.t0) == .reserved(cost: 100_000_000)) }
        #expect(counter.reserve(1, nowNanos: Self.t0) == .denied(used: 600, retryAfterNanos: 100_000_000))
        #expect(counter.status(nowNanos: Self.t0) == RateLimitStatus(limit: 600, remaining: 0, resetMillis: 60_000))
        // 99 ms later: still no room; 100 ms later: exactly one request's worth.
        #expect(counter.reserve(1, nowNanos: Self.t0 + 99_000_000) == .denied(used: 600, retryAfterNanos: 1_000_000))
        #expect(counter.reserve(1, nowNanos: Self.t0 + 100_000_000) == .reserved(cost: 100_000_000))
        #expect(counter.reserve(1, nowNanos: Self.t0 + 100_000_000) != .reserved(cost: 100_000_000))
        // A minute of silence empties the bucket.
        #expect(counter.used(nowNanos: Self.t0 + 61 * Self.second) == 0)
        #expect(counter.status(nowNanos: Self.t0 + 61 * Self.second).resetMillis == 0)
    }

    @Test func remainingAndResetAfterOneRequest() {
        let counter = RateCounter(limit: 5000)
        _ = counter.reserve(1, nowNanos: Self.t0)
        // OpenAI reports exactly this after one request under 5000 RPM: reset 12ms.
        #expect(counter.status(nowNanos: Self.t0) == RateLimitStatus(limit: 5000, remaining: 4999, resetMillis: 12))
        #expect(counter.status(nowNanos: Self.t0 + 5_000_000).resetMillis == 7)
        #expect(
            counter.status(nowNanos: Self.t0 + 12_000_000)
                == RateLimitStatus(limit: 5000, remaining: 5000, resetMillis: 0))
    }

    @Test func remainingIsWhatAReservationWouldAdmit() {
        // After a full burst, half a unit refills in 50 ms: a rounded used count said 1 remaining
        // while the next request was still refused.
        let counter = RateCounter(limit: 600)
        for _ in 0..<600 { _ = counter.reserve(1, nowNanos: Self.t0) }
        let halfway = Self.t0 + 60_000_000
        #expect(counter.status(nowNanos: halfway).remaining == 0)
        #expect(counter.reserve(1, nowNanos: halfway) != .reserved(cost: 100_000_000))
        // And for limits whose unit cost is rounded (7 per minute), at many instants.
        let odd = RateCounter(limit: 7)
        for step in 0..<200 {
            let now = Self.t0 + Int64(step) * 1_300_000_000
            let remaining = odd.status(nowNanos: now).remaining
            if remaining > 0 {
                let result = odd.reserve(remaining, nowNanos: now)
                guard case .reserved = result else {
                    Issue.record("step \(step): status said \(remaining) remaining, reserve answered \(result)")
                    continue
                }
                #expect(odd.status(nowNanos: now).remaining == 0)
            } else if case .reserved = odd.reserve(1, nowNanos: now) {
                Issue.record("step \(step): status said 0 remaining, yet one unit was admitted")
            }
        }
    }

    @Test func partialRefillIsProportional() {
        let counter = RateCounter(limit: 100_000)  // tokens: 600 µs each
        #expect(counter.reserve(90_000, nowNanos: Self.t0) == .reserved(cost: 54 * Self.second))
        #expect(counter.used(nowNanos: Self.t0) == 90_000)
        #expect(counter.used(nowNanos: Self.t0 + 6 * Self.second) == 80_000)
        // 30000 more do not fit before 12 s have passed (80000 + 30000 - 100000 = 10000 tokens = 6 s).
        #expect(
            counter.reserve(30_000, nowNanos: Self.t0 + 6 * Self.second)
                == .denied(used: 80_000, retryAfterNanos: 6 * Self.second))
        #expect(counter.reserve(30_000, nowNanos: Self.t0 + 12 * Self.second) == .reserved(cost: 18 * Self.second))
        #expect(counter.used(nowNanos: Self.t0 + 12 * Self.second) == 100_000)
    }

    @Test func largerThanTheLimitIsTooLargeAndZeroAlwaysFits() {
        let counter = RateCounter(limit: 1000)
        #expect(counter.reserve(1001, nowNanos: Self.t0) == .tooLarge)
        #expect(counter.reserve(1000, nowNanos: Self.t0) == .reserved(cost: 60 * Self.second))
        #expect(counter.reserve(0, nowNanos: Self.t0) == .reserved(cost: 0))
        #expect(counter.reserve(-5, nowNanos: Self.t0) == .reserved(cost: 0))
    }

    @Test func settleChargesTheActualAndReleaseGivesBack() {
        let counter = RateCounter(limit: 100_000)
        guard case .reserved(let a) = counter.reserve(1000, nowNanos: Self.t0),
            case .reserved(let b) = counter.reserve(2000, nowNanos: Self.t0)
        else {
            Issue.record("reservations refused")
            return
        }
        #expect(counter.used(nowNanos: Self.t0) == 3000)
        counter.settle(reservedCost: a, actual: 700, nowNanos: Self.t0)
        #expect(counter.used(nowNanos: Self.t0) == 2700)
        counter.settle(reservedCost: b, actual: 0, nowNanos: Self.t0)
        #expect(counter.used(nowNanos: Self.t0) == 700)
        // Usage above the estimate is charged even past the limit, and then holds new requests back.
        guard case .reserved(let c) = counter.reserve(99_000, nowNanos: Self.t0) else {
            Issue.record("refused")
            return
        }
        counter.settle(reservedCost: c, actual: 109_300, nowNanos: Self.t0)
        #expect(counter.used(nowNanos: Self.t0) == 110_000)
        #expect(counter.status(nowNanos: Self.t0).remaining == 0)
        #expect(counter.reserve(1, nowNanos: Self.t0) == .denied(used: 110_000, retryAfterNanos: 6_000_600_000))
    }

    @Test func releasingAfterTheDebtDrainedGivesNoCredit() {
        let counter = RateCounter(limit: 1000)
        guard case .reserved(let cost) = counter.reserve(500, nowNanos: Self.t0) else {
            Issue.record("refused")
            return
        }
        let later = Self.t0 + 61 * Self.second
        counter.settle(reservedCost: cost, actual: 0, nowNanos: later)
        #expect(counter.used(nowNanos: later) == 0)
        #expect(counter.reserve(1000, nowNanos: later) == .reserved(cost: 60 * Self.second))
        #expect(counter.reserve(1, nowNanos: later) != .reserved(cost: 60_000_000))
        // Half drained: releasing the whole reservation only empties what is left.
        let counter2 = RateCounter(limit: 1000)
        guard case .reserved(let cost2) = counter2.reserve(500, nowNanos: Self.t0) else { return }
        counter2.settle(reservedCost: cost2, actual: 0, nowNanos: Self.t0 + 15 * Self.second)
        #expect(counter2.used(nowNanos: Self.t0 + 15 * Self.second) == 0)
    }

    @Test func awkwardLimitsNeverOverAdmit() {
        for limit: Int64 in [7, 7000, 999_983, 3_333_333_333, QuotaLimits.maxTokensPerMinute] {
            let counter = RateCounter(limit: limit)
            var admitted: Int64 = 0
            var reservations: Int64 = 0
            let step = max(1, limit / 97)
            while case .reserved = counter.reserve(step, nowNanos: Self.t0) {
                admitted += step
                reservations += 1
            }
            #expect(admitted <= limit)
            #expect(admitted > limit - 2 * step)
            // Each reservation's cost is rounded up by under 1 ns; "used" shows at most that drift.
            let used = counter.used(nowNanos: Self.t0)
            #expect(used >= admitted)
            #expect(used <= admitted + reservations * limit / RateCounter.windowNanos + 1)
        }
    }

    /// Extreme amounts, times and usage through every public entry point; in an exit test so a
    /// trap fails this test alone instead of the whole suite.
    @Test func hostileAmountsAndTimesDoNotTrap() async {
        await #expect(processExitsWith: .success) {
            let extremes: [Int64] = [Int64.min, Int64.min + 1, -1, 0, 1, 1 << 40, 1 << 62, Int64.max - 1, Int64.max]
            for limit in extremes {
                let counter = RateCounter(limit: limit)
                let budget = BudgetCounter(period: limit % 2 == 0 ? .day : .month)
                for amount in extremes {
                    for now in extremes {
                        _ = counter.reserve(amount, nowNanos: now)
                        counter.settle(reservedCost: amount, actual: now, nowNanos: now)
                        counter.adjust(by: amount, nowNanos: now)
                        _ = counter.status(nowNanos: now)
                        _ = counter.used(nowNanos: now)
                        _ = counter.debtNanos(nowNanos: now)
                        _ = counter.cost(of: amount)
                        _ = budget.reserve(amount, limitMicros: limit, nowMillis: now)
                        budget.settle(window: limit, reserved: amount, actual: now, nowMillis: now)
                        _ = budget.spent(nowMillis: now)
                    }
                    _ = QuotaDuration.format(millis: amount)
                    _ = QuotaDuration.retryAfterSeconds(millis: amount)
                    _ = Dollars.format(micros: amount)
                    _ = UTCCalendar.civil(fromDays: amount)
                    _ = UTCCalendar.civil(ofMillis: amount)
                    _ = UTCCalendar.month(ofMillis: amount)
                    _ = UTCCalendar.startOfNextDay(afterMillis: amount)
                    _ = UTCCalendar.startOfNextMonth(afterMillis: amount)
                    _ = UTCCalendar.days(fromCivil: CivilDate(year: amount, month: limit, day: amount))
                    _ = PriceTable.micros(fromDollars: Double(amount) * 1e6)
                }
            }
            let store = LocalQuotaStore(limits: [
                .key("k"): QuotaLimits(
                    requestsPerMinute: 1, tokensPerMinute: 1, inputTokensPerMinute: 1, outputTokensPerMinute: 1,
                    budgetMicrosPerDay: 0, budgetMicrosPerMonth: 1),
                .model("m"): QuotaLimits(tokensPerMinute: QuotaLimits.maxTokensPerMinute),
            ])
            let price = ModelPrice(
                inputMicrosPerMillion: Int64.max, cachedInputMicrosPerMillion: Int64.min,
                cacheWriteMicrosPerMillion: 1, outputMicrosPerMillion: ModelPrice.maxMicrosPerMillion)
            for value in [Int.min, -1, 0, 1, Int.max] {
                let usage = TokenUsage(
                    inputTokens: value, outputTokens: value, cachedInputTokens: ~value, cacheWriteInputTokens: value,
                    reasoningTokens: value)
                _ = price.cost(usage)
                let estimate = QuotaEstimate(
                    bodyByteCount: value, maxTokens: value, defaultMaxTokens: value, price: price)
                for now in [Int64.min, 0, Int64.max] {
                    for key in ["k", "other"] {
                        let request = QuotaRequest(key: key, team: "t", model: "m", estimate: estimate)
                        switch store.admit(request, now: now) {
                        case .admitted(let ticket):
                            store.settle(ticket, actual: usage, costMicros: Int64(value), now: now)
                            store.release(ticket, now: now)
                        case .denied(let denial):
                            _ = denial.headers.fields
                            _ = denial.error.body(for: .openAI)
                        }
                        _ = store.rateLimitHeaders(for: request, now: now).fields
                    }
                }
            }
        }
    }
}

@Suite struct QuotaBudgetTests {
    static func millis(_ year: Int64, _ month: Int64, _ day: Int64, hour: Int64 = 0) -> Int64 {
        UTCCalendar.days(fromCivil: CivilDate(year: year, month: month, day: day)) * UTCCalendar.millisPerDay
            + hour * 3_600_000
    }

    @Test func civilRoundTripsAndKnownDates() {
        #expect(UTCCalendar.civil(fromDays: 0) == CivilDate(year: 1970, month: 1, day: 1))
        #expect(UTCCalendar.civil(fromDays: -1) == CivilDate(year: 1969, month: 12, day: 31))
        #expect(UTCCalendar.civil(fromDays: 11016) == CivilDate(year: 2000, month: 2, day: 29))
        #expect(UTCCalendar.civil(ofMillis: 1_709_164_800_000) == CivilDate(year: 2024, month: 2, day: 29))
        #expect(UTCCalendar.civil(ofMillis: 1_735_689_599_999) == CivilDate(year: 2024, month: 12, day: 31))
        #expect(UTCCalendar.civil(ofMillis: 1_735_689_600_000) == CivilDate(year: 2025, month: 1, day: 1))
        #expect(UTCCalendar.day(ofMillis: -1) == -1)
        var previous = UTCCalendar.civil(fromDays: -800_000)
        for days in Int64(-799_999)...Int64(800_000) {
            let date = UTCCalendar.civil(fromDays: days)
            if UTCCalendar.days(fromCivil: date) != days {
                Issue.record("\(date) does not map back to day \(days)")
                break
            }
            // Consecutive days: either the next day of the month, or the 1st of the next month.
            let nextDay = date.day == previous.day + 1 && date.month == previous.month && date.year == previous.year
            let nextMonth =
                date.day == 1
                && (date.month == previous.month + 1 && date.year == previous.year
                    || date.month == 1 && previous.month == 12 && date.year == previous.year + 1)
            if !(nextDay || nextMonth) {
                Issue.record("\(previous) -> \(date)")
                break
            }
            previous = date
        }
    }

    @Test(arguments: [
        (Int64(2024), Int64(2), Int64(29)), (2023, 2, 28), (2000, 2, 29), (1900, 2, 28), (2100, 2, 28),
        (2400, 2, 29), (2025, 4, 30), (2025, 12, 31),
    ])
    func lastDayOfFebruaryAndMonths(year: Int64, month: Int64, lastDay: Int64) {
        let date = CivilDate(year: year, month: month, day: lastDay)
        let first = CivilDate(year: month == 12 ? year + 1 : year, month: month == 12 ? 1 : month + 1, day: 1)
        let days = UTCCalendar.days(fromCivil: date)
        #expect(UTCCalendar.civil(fromDays: days) == date)
        #expect(UTCCalendar.civil(fromDays: days + 1) == first)
        // Budget windows only cover 1970...2262 (nanoseconds in an Int64).
        guard year >= 1970, year < 2262 else { return }
        let end = UTCCalendar.startOfNextMonth(afterMillis: Self.millis(year, month, lastDay, hour: 23))
        #expect(UTCCalendar.civil(ofMillis: end) == first)
        #expect(UTCCalendar.civil(ofMillis: end - 1) == date)
        #expect(end == UTCCalendar.days(fromCivil: first) * UTCCalendar.millisPerDay)
    }

    @Test func dailyBudgetResetsAtUTCMidnight() {
        let counter = BudgetCounter(period: .day)
        let evening = Self.millis(2024, 2, 28, hour: 23)
        guard case .reserved(let window) = counter.reserve(9_000_000, limitMicros: 10_000_000, nowMillis: evening)
        else {
            Issue.record("refused")
            return
        }
        #expect(
            counter.reserve(2_000_000, limitMicros: 10_000_000, nowMillis: evening)
                == .denied(spentMicros: 9_000_000, retryAfterMillis: 3_600_000))
        // 2024 is a leap year: the next day is Feb 29, a fresh window.
        let leapDay = Self.millis(2024, 2, 29)
        #expect(counter.spent(nowMillis: leapDay) == 0)
        #expect(counter.reserve(2_000_000, limitMicros: 10_000_000, nowMillis: leapDay).isReserved)
        #expect(counter.spent(nowMillis: leapDay) == 2_000_000)
        // Yesterday's reservation settles after midnight: its estimate went with its window, the
        // actual spend lands today.
        counter.settle(window: window, reserved: 9_000_000, actual: 500_000, nowMillis: leapDay + 1000)
        #expect(counter.spent(nowMillis: leapDay + 1000) == 2_500_000)
    }

    @Test func monthlyBudgetRollsFromDecemberToJanuary() {
        let counter = BudgetCounter(period: .month)
        let newYearsEve = Self.millis(2024, 12, 31, hour: 23)
        guard case .reserved(let window) = counter.reserve(150, limitMicros: 200, nowMillis: newYearsEve) else {
            Issue.record("refused")
            return
        }
        counter.settle(window: window, reserved: 150, actual: 200, nowMillis: newYearsEve)
        #expect(counter.spent(nowMillis: newYearsEve) == 200)
        #expect(
            counter.reserve(0, limitMicros: 200, nowMillis: newYearsEve)
                == .denied(spentMicros: 200, retryAfterMillis: 3_600_000))
        let january = Self.millis(2025, 1, 1)
        #expect(counter.spent(nowMillis: january) == 0)
        #expect(counter.reserve(200, limitMicros: 200, nowMillis: january).isReserved)
        #expect(BudgetPeriod.month.window(atMillis: january).id == 55 * 12)
    }

    @Test func aLaggingWorkerDoesNotReopenTheOldWindow() {
        let counter = BudgetCounter(period: .day)
        let midnight = Self.millis(2025, 3, 1)
        _ = counter.reserve(100, limitMicros: 1000, nowMillis: midnight + 5)
        // Another worker's clock read is a few ms older: it charges the new day, not a fresh old one.
        guard case .reserved(let window) = counter.reserve(100, limitMicros: 1000, nowMillis: midnight - 3) else {
            Issue.record("refused")
            return
        }
        #expect(window == UTCCalendar.day(ofMillis: midnight))
        #expect(counter.spent(nowMillis: midnight + 10) == 200)
    }

    @Test func releaseReturnsTheSpendExactlyAndNeverBelowZero() {
        let counter = BudgetCounter(period: .day)
        let now = Self.millis(2025, 6, 1, hour: 12)
        guard case .reserved(let window) = counter.reserve(700, limitMicros: 1000, nowMillis: now) else { return }
        counter.settle(window: window, reserved: 700, actual: 0, nowMillis: now)
        #expect(counter.spent(nowMillis: now) == 0)
        counter.settle(window: window, reserved: 700, actual: 0, nowMillis: now)
        #expect(counter.spent(nowMillis: now) == 0)
        #expect(
            counter.reserve(1, limitMicros: 0, nowMillis: now) == .denied(spentMicros: 0, retryAfterMillis: 43_200_000))
        counter.settle(window: window, reserved: 0, actual: Int64.max, nowMillis: now)
        #expect(counter.spent(nowMillis: now) == BudgetCounter.maxSpentMicros)
        _ = counter.reserve(Int64.min, limitMicros: Int64.max, nowMillis: Int64.min)
        _ = counter.reserve(Int64.max, limitMicros: Int64.min, nowMillis: Int64.max)
    }
}

extension BudgetReservation {
    var isReserved: Bool {
        if case .reserved = self { return true }
        return false
    }
}

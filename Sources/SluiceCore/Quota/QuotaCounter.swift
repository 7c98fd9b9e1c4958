// Lock-free per-minute rate counters shared by every Envoy worker thread of one process.
//
// Choice of algorithm: a GCRA ("generic cell rate algorithm", the continuous token bucket of
// Envoy's AtomicTokenBucketImpl) rather than a fixed or a two-window sliding counter, because
// - it is what OpenAI's headers describe: `x-ratelimit-reset-requests: 12ms` after one request
//   under a 5000 RPM limit is exactly 60 s / 5000, the time for the bucket to refill to its
//   initial state; a fixed window would say "until the minute ends", a sliding approximation
//   cannot say anything exact;
// - "remaining" and "reset" are exact functions of one number, so headers need no extra state;
// - there is no burst of 2× the limit at a window edge (a fixed window allows that within a
//   millisecond; here 2× needs a whole minute: a full bucket plus one minute of refill);
// - the whole state is ONE `Atomic<Int64>`, updated with a compare-and-exchange loop: no lock,
//   no window id to pack, no ordering between two words to get right.
//
// State: the theoretical arrival time `tat` in nanoseconds since the epoch. Each unit (request or
// token) costs `window / limit` of time; the bucket's debt at `now` is `max(0, tat - now)` and
// `used = ceil(debt × limit / window)`. A reservation of `n` units succeeds when the debt after it
// stays within one window. Nanoseconds keep the cost of a unit exact for every limit that divides
// 6×10¹⁰ (all the round numbers people configure); other limits round each cost up by under a
// nanosecond, which only ever errs towards admitting less (the last unit of a full burst may wait
// a few nanoseconds, reported as 1ms).
//
// Memory ordering: each counter is one self-contained atomic word and no other memory is published
// through it, so relaxed ordering suffices; all read-modify-writes of one atomic are totally ordered.

import Synchronization

/// Outcome of a rate reservation.
public enum RateReservation: Sendable, Equatable {
    /// Reserved; `cost` (nanoseconds of the window) is what `adjust` must later give back or correct.
    case reserved(cost: Int64)
    /// Over the limit now: `used` units are in the bucket; room comes back after `retryAfterNanos`.
    case denied(used: Int64, retryAfterNanos: Int64)
    /// Larger than the limit itself: no amount of waiting helps.
    case tooLarge
}

/// The snapshot of one rate counter that `x-ratelimit-*` headers report.
public struct RateLimitStatus: Sendable, Equatable {
    public var limit: Int64
    public var remaining: Int64
    /// Time until the bucket is back to its initial (empty) state.
    public var resetMillis: Int64

    public init(limit: Int64, remaining: Int64, resetMillis: Int64) {
        self.limit = limit
        self.remaining = remaining
        self.resetMillis = resetMillis
    }
}

/// A per-minute rate limit (GCRA) on one atomic word.
public final class RateCounter: Sendable {
    /// The rate window: every limit is "per minute".
    public static let windowNanos: Int64 = 60_000_000_000
    /// Cap on any single cost so that `tat + cost` cannot overflow (about 73 years of debt).
    static let maxCost: Int64 = 1 << 61
    /// Cap on amounts taken from provider-reported usage (about 10¹² tokens).
    static let maxAmount: Int64 = 1 << 40

    public let limit: Int64
    private let theoreticalArrival = Atomic<Int64>(0)

    /// A counter allowing `limit` units per minute (at least 1).
    public init(limit: Int64) {
        self.limit = max(1, limit)
    }

    /// The share of the window that `amount` units occupy: `ceil(amount × window / limit)` nanoseconds.
    public func cost(of amount: Int64) -> Int64 {
        guard amount > 0 else { return 0 }
        let units = UInt64(min(amount, Self.maxAmount))
        let product = units.multipliedFullWidth(by: UInt64(Self.windowNanos))
        let divisor = UInt64(limit)
        guard product.high < divisor else { return Self.maxCost }
        let (quotient, remainder) = divisor.dividingFullWidth(product)
        let rounded = quotient.addingReportingOverflow(remainder > 0 ? 1 : 0)
        guard !rounded.overflow, rounded.partialValue < UInt64(Self.maxCost) else { return Self.maxCost }
        return Int64(rounded.partialValue)
    }

    /// Reserves `amount` units at `nowNanos` if the bucket has room; zero always succeeds.
    public func reserve(_ amount: Int64, nowNanos: Int64) -> RateReservation {
        guard amount > 0 else { return .reserved(cost: 0) }
        let nowNanos = max(0, nowNanos)
        guard amount <= limit else { return .tooLarge }
        let cost = cost(of: amount)
        var current = theoreticalArrival.load(ordering: .relaxed)
        while true {
            let next = Self.saturatingAdd(max(current, nowNanos), cost)
            let debt = next - nowNanos  // next >= nowNanos >= 0: cannot overflow
            if debt > Self.windowNanos {
                // Rounded up: "Used 599.01, Requested 1, Limit 600" must not read as if it fitted.
                return .denied(
                    used: used(tat: current, nowNanos: nowNanos, roundingUp: true),
                    retryAfterNanos: debt - Self.windowNanos)
            }
            let (exchanged, original) = theoreticalArrival.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return .reserved(cost: cost) }
            current = original
        }
    }

    /// Replaces a reservation of `reservedCost` by the actual `amount` (0 releases it).
    ///
    /// A correction upwards is charged from `nowNanos` even if the bucket is full (usage already
    /// happened); one downwards never takes the bucket below empty, so debt that has already
    /// drained is not credited twice.
    public func settle(reservedCost: Int64, actual amount: Int64, nowNanos: Int64) {
        adjust(by: cost(of: amount) - min(max(0, reservedCost), Self.maxCost), nowNanos: nowNanos)
    }

    /// Moves the bucket by `delta` nanoseconds of debt (positive charges, negative releases).
    public func adjust(by delta: Int64, nowNanos: Int64) {
        guard delta != 0 else { return }
        let nowNanos = max(0, nowNanos)
        var current = theoreticalArrival.load(ordering: .relaxed)
        while true {
            let next =
                delta > 0
                ? Self.saturatingAdd(max(current, nowNanos), delta)
                : max(Self.saturatingAdd(current, delta), min(current, nowNanos))
            if next == current { return }
            let (exchanged, original) = theoreticalArrival.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Units in the bucket at `nowNanos` (rounded up).
    public func used(nowNanos: Int64) -> Int64 {
        used(tat: theoreticalArrival.load(ordering: .relaxed), nowNanos: max(0, nowNanos))
    }

    /// Nanoseconds of debt at `nowNanos`: the time until the bucket is empty again.
    public func debtNanos(nowNanos: Int64) -> Int64 {
        max(0, theoreticalArrival.load(ordering: .relaxed) - max(0, nowNanos))
    }

    /// Limit, remaining and reset at `nowNanos`, as the `x-ratelimit-*` headers report them.
    public func status(nowNanos: Int64) -> RateLimitStatus {
        let nowNanos = max(0, nowNanos)
        let tat = theoreticalArrival.load(ordering: .relaxed)
        let debt = max(0, tat - nowNanos)
        return RateLimitStatus(
            limit: limit, remaining: units(fittingIn: max(0, Self.windowNanos - debt)),
            resetMillis: QuotaDuration.millis(ceilingNanos: debt))
    }

    /// How many units a reservation could take now: the largest `n` with `cost(of: n) <= room`,
    /// i.e. `floor(room × limit / window)`. "Remaining" must mean what `reserve` would admit; a
    /// rounded used count reported 1 remaining right after a 429 once half a unit had refilled.
    private func units(fittingIn room: Int64) -> Int64 {
        guard room > 0 else { return 0 }
        let product = UInt64(room).multipliedFullWidth(by: UInt64(limit))
        let window = UInt64(Self.windowNanos)
        guard product.high < window else { return limit }
        let (quotient, _) = window.dividingFullWidth(product)
        return Int64(min(quotient, UInt64(limit)))
    }

    /// `debt × limit / window`, by default rounded to the nearest unit: costs are rounded up per
    /// reservation, so rounding up again here would report a unit more than was reserved.
    private func used(tat: Int64, nowNanos: Int64, roundingUp: Bool = false) -> Int64 {
        let debt = tat - nowNanos  // tat >= 0 and nowNanos >= 0: cannot overflow
        guard debt > 0 else { return 0 }
        let product = UInt64(debt).multipliedFullWidth(by: UInt64(limit))
        let window = UInt64(Self.windowNanos)
        guard product.high < window else { return Int64.max }
        let (quotient, remainder) = window.dividingFullWidth(product)
        let roundUp = roundingUp ? remainder > 0 : remainder >= window / 2
        let rounded = quotient.addingReportingOverflow(roundUp ? 1 : 0)
        guard !rounded.overflow, rounded.partialValue <= UInt64(Int64.max) else { return Int64.max }
        return Int64(rounded.partialValue)
    }

    static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int64.max : Int64.min) : sum
    }
}

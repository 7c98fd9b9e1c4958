// Lock-free dollar budgets per UTC day or calendar month, shared by every worker thread.
//
// Unlike the per-minute rates, a budget is a calendar quantity ("$10 per day" resets at UTC
// midnight), so it is a fixed window. Window id and spend are packed into ONE `Atomic<UInt64>`
// and updated with a compare-and-exchange loop: the first thread to see a new window starts it
// from zero in the same exchange that charges its own reservation, so no update is ever lost to a
// rollover race. The window id never moves backwards: a worker whose `now` is a hair behind
// another's keeps charging the newer window instead of resurrecting the old one.
//
// Layout: high 20 bits = window id (days since 1970 reach 2^20 in the year 4840; `now` is clamped to
// 2262), low 44 bits = micro-dollars spent (saturating at about $17.5 million, above any budget we
// accept).

import Synchronization

/// The calendar window a budget resets on.
public enum BudgetPeriod: Sendable, Equatable {
    /// A UTC day.
    case day
    /// A calendar month in UTC.
    case month

    /// The window holding `millis` and the first instant of the next one.
    public func window(atMillis millis: Int64) -> (id: Int64, endMillis: Int64) {
        let millis = min(max(0, millis), UTCCalendar.maxMillis)
        switch self {
        case .day:
            let day = UTCCalendar.day(ofMillis: millis)
            return (day, (day + 1) * UTCCalendar.millisPerDay)
        case .month:
            return (UTCCalendar.month(ofMillis: millis), UTCCalendar.startOfNextMonth(afterMillis: millis))
        }
    }
}

/// Outcome of a budget reservation.
public enum BudgetReservation: Sendable, Equatable {
    /// Reserved in window `window`; settle with the same id.
    case reserved(window: Int64)
    /// Over budget: `spentMicros` already spent in this window, which ends in `retryAfterMillis`.
    case denied(spentMicros: Int64, retryAfterMillis: Int64)
}

/// A dollar spend (micro-dollars) per UTC day or calendar month, on one atomic word.
///
/// The limit is passed to `reserve` rather than stored, so the spend survives a config reload
/// that changes the budget: the new config snapshot keeps the same counter.
public final class BudgetCounter: Sendable {
    static let spentBits: UInt64 = 44
    /// The largest spend the counter holds (2^44 − 1 micro-dollars).
    public static let maxSpentMicros = Int64((1 << spentBits) - 1)

    public let period: BudgetPeriod
    private let state = Atomic<UInt64>(0)

    public init(period: BudgetPeriod) {
        self.period = period
    }

    /// Reserves `amount` micro-dollars at `nowMillis` under a budget of `limitMicros`.
    /// A spent budget refuses even a zero estimate.
    public func reserve(_ amount: Int64, limitMicros: Int64, nowMillis: Int64) -> BudgetReservation {
        let amount = Self.clamp(amount)
        let limitMicros = Self.clamp(limitMicros)
        let (window, end) = period.window(atMillis: nowMillis)
        var current = state.load(ordering: .relaxed)
        while true {
            let (storedWindow, storedSpent) = Self.unpack(current)
            let effective = max(storedWindow, window)
            let spent = storedWindow == effective ? storedSpent : 0
            if spent >= limitMicros || amount > limitMicros - spent {
                return .denied(spentMicros: spent, retryAfterMillis: max(1, end - min(max(0, nowMillis), end)))
            }
            let next = Self.pack(window: effective, spent: spent + amount)
            if next == current { return .reserved(window: effective) }
            let (exchanged, original) = state.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return .reserved(window: effective) }
            current = original
        }
    }

    /// Replaces a reservation of `reserved` micro-dollars made in `window` by the `actual` spend
    /// (0 releases it). If the window has rolled over since, the reservation went with it and the
    /// actual spend is charged to the current window, where it happened.
    public func settle(window: Int64, reserved: Int64, actual: Int64, nowMillis: Int64) {
        let reserved = Self.clamp(reserved)
        let actual = Self.clamp(actual)
        let nowWindow = period.window(atMillis: nowMillis).id
        var current = state.load(ordering: .relaxed)
        while true {
            let (storedWindow, storedSpent) = Self.unpack(current)
            let effective = max(storedWindow, nowWindow)
            let base = storedWindow == effective ? storedSpent : 0
            let spent = effective == window ? base - reserved + actual : base + actual
            let next = Self.pack(window: effective, spent: Self.clamp(spent))
            if next == current { return }
            let (exchanged, original) = state.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Micro-dollars spent in the window holding `nowMillis`.
    public func spent(nowMillis: Int64) -> Int64 {
        let (storedWindow, storedSpent) = Self.unpack(state.load(ordering: .relaxed))
        return storedWindow >= period.window(atMillis: nowMillis).id ? storedSpent : 0
    }

    private static func clamp(_ micros: Int64) -> Int64 { min(max(0, micros), maxSpentMicros) }

    private static func pack(window: Int64, spent: Int64) -> UInt64 {
        (UInt64(truncatingIfNeeded: window) << spentBits) | UInt64(truncatingIfNeeded: spent)
    }

    private static func unpack(_ word: UInt64) -> (window: Int64, spent: Int64) {
        (Int64(word >> spentBits), Int64(word & UInt64(maxSpentMicros)))
    }
}

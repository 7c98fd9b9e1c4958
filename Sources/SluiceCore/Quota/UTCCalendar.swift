// UTC calendar arithmetic for budget windows (a UTC day, a calendar month), without Foundation.
// The conversions are Howard Hinnant's `days_from_civil` / `civil_from_days`: exact for the
// proleptic Gregorian calendar, branch-light, and total over every day count we can be handed.

/// A date in the proleptic Gregorian calendar.
public struct CivilDate: Sendable, Equatable, CustomStringConvertible {
    public var year: Int64
    /// 1...12
    public var month: Int64
    /// 1...31
    public var day: Int64

    public init(year: Int64, month: Int64, day: Int64) {
        self.year = year
        self.month = month
        self.day = day
    }

    public var description: String {
        func pad(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(pad(month))-\(pad(day))"
    }
}

/// Days, months and their boundaries in UTC, from milliseconds since the Unix epoch.
public enum UTCCalendar {
    public static let millisPerDay: Int64 = 86_400_000

    /// The latest instant the quota code handles: nanoseconds since the epoch must fit an `Int64`
    /// (the year 2262). Times are clamped to `0...maxMillis` so no window arithmetic can overflow.
    public static let maxMillis: Int64 = Int64.max / 1_000_000

    /// Days since 1970-01-01 of the instant `millis` (floored, so instants before the epoch fall on earlier days).
    public static func day(ofMillis millis: Int64) -> Int64 {
        let (quotient, remainder) = millis.quotientAndRemainder(dividingBy: millisPerDay)
        return remainder < 0 ? quotient - 1 : quotient
    }

    /// Day counts are clamped to ±10¹² (about 2.7 billion years) so the arithmetic cannot overflow.
    static let dayRange: ClosedRange<Int64> = -1_000_000_000_000...1_000_000_000_000

    /// The civil date of the day `days` after 1970-01-01 (Hinnant's `civil_from_days`).
    public static func civil(fromDays days: Int64) -> CivilDate {
        let days = min(max(days, dayRange.lowerBound), dayRange.upperBound)
        // Shift the epoch to 0000-03-01 so that leap days sit at the end of each (March-based) year.
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365
        let marchMonth = (5 * dayOfYear + 2) / 153  // 0...11, March = 0
        let day = dayOfYear - (153 * marchMonth + 2) / 5 + 1
        let month = marchMonth < 10 ? marchMonth + 3 : marchMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return CivilDate(year: year, month: month, day: day)
    }

    /// Days since 1970-01-01 of a civil date (Hinnant's `days_from_civil`). Out-of-range fields are
    /// clamped (month to 1...12, day to 1...31, year to ±10⁹) rather than trapping.
    public static func days(fromCivil civil: CivilDate) -> Int64 {
        let date = CivilDate(
            year: min(max(civil.year, -1_000_000_000), 1_000_000_000), month: min(max(civil.month, 1), 12),
            day: min(max(civil.day, 1), 31))
        let year = date.month <= 2 ? date.year - 1 : date.year
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400  // 0...399
        let marchMonth = date.month > 2 ? date.month - 3 : date.month + 9  // 0...11
        let dayOfYear = (153 * marchMonth + 2) / 5 + date.day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The civil date of the instant `millis`.
    public static func civil(ofMillis millis: Int64) -> CivilDate { civil(fromDays: day(ofMillis: millis)) }

    /// Months since January 1970 of the instant `millis` (January 1970 = 0).
    public static func month(ofMillis millis: Int64) -> Int64 {
        let date = civil(ofMillis: millis)
        return (date.year - 1970) * 12 + (date.month - 1)
    }

    /// The first instant of the UTC day after the one holding `millis` (clamped to `0...maxMillis`).
    public static func startOfNextDay(afterMillis millis: Int64) -> Int64 {
        (day(ofMillis: min(max(0, millis), maxMillis)) + 1) * millisPerDay
    }

    /// The first instant of the calendar month after the one holding `millis` (clamped to
    /// `0...maxMillis`); December rolls to January.
    public static func startOfNextMonth(afterMillis millis: Int64) -> Int64 {
        let date = civil(ofMillis: min(max(0, millis), maxMillis))
        let next =
            date.month == 12
            ? CivilDate(year: date.year + 1, month: 1, day: 1)
            : CivilDate(year: date.year, month: date.month + 1, day: 1)
        return days(fromCivil: next) * millisPerDay
    }
}

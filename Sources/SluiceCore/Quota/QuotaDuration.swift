// Durations as OpenAI prints them in `x-ratelimit-reset-*` headers and in "Please try again in …":
// Go's `time.Duration.String()` at millisecond resolution — `0s`, `20ms`, `1s`, `1.146s`, `59.5s`,
// `6m0s`, `1h0m0s`. Observed values: `12ms`, `9ms`, `1s`, `6m0s` (OpenAI's rate-limit guide and
// responses quoted on its community forum).

/// Formatting of millisecond durations the way OpenAI's headers and messages show them.
public enum QuotaDuration {
    /// Go-style duration text for `millis` (negative values print as `0s`).
    public static func format(millis: Int64) -> String {
        guard millis > 0 else { return "0s" }
        if millis < 1000 { return "\(millis)ms" }
        let hours = millis / 3_600_000
        let minutes = (millis / 60_000) % 60
        let secondsMillis = millis % 60_000
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        text += "\(secondsMillis / 1000)"
        var fraction = secondsMillis % 1000
        if fraction > 0 {
            var digits = 3
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let raw = "\(fraction)"
            text += "." + String(repeating: "0", count: digits - raw.count) + raw
        }
        return text + "s"
    }

    /// Whole seconds for `Retry-After`, rounded up so a client never retries too early.
    public static func retryAfterSeconds(millis: Int64) -> Int64 {
        guard millis > 0 else { return 0 }
        return millis / 1000 + (millis % 1000 == 0 ? 0 : 1)
    }

    /// Nanoseconds rounded up to whole milliseconds.
    static func millis(ceilingNanos nanos: Int64) -> Int64 {
        guard nanos > 0 else { return 0 }
        return nanos / 1_000_000 + (nanos % 1_000_000 == 0 ? 0 : 1)
    }
}

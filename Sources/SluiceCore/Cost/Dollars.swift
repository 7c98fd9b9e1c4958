// Micro-dollar amounts as short decimal strings for headers, metadata and messages: "0.000123",
// "1.5", "10", "0". Integer arithmetic only, so the text is exactly the stored amount.

/// Formatting of micro-dollar amounts.
public enum Dollars {
    /// `micros` as dollars with at most six decimals and no trailing zeros.
    public static func format(micros: Int64) -> String {
        let magnitude = micros.magnitude
        let whole = magnitude / 1_000_000
        var fraction = magnitude % 1_000_000
        var text = micros < 0 ? "-\(whole)" : "\(whole)"
        guard fraction > 0 else { return text }
        var digits = 6
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let raw = String(fraction)
        text += "." + String(repeating: "0", count: digits - raw.count) + raw
        return text
    }
}

// Appends compact JSON to a caller-owned byte buffer.
//
// The writer is meant for the request path as well as config time: it appends into `bytes`, which the caller can
// reuse with reserved capacity, and writes integers and escapes without creating intermediate strings.

// MARK: - Writer

/// Writes compact JSON into a byte array, inserting commas automatically.
///
/// Call the methods in document order: `beginObject()`, then `key(_:)` and a value for each member, then
/// `endObject()`. The writer tracks only whether the next element needs a comma: each container's first element
/// never does and every later one does, and a closed container is itself a completed element of its parent, so
/// no per-level stack is needed. Misuse (a value without a key inside an object, unbalanced ends) produces
/// invalid JSON rather than a trap; callers that assemble JSON from untrusted structure should validate it.
///
/// Top-level values are not separated by commas, so several documents can be written back to back with a
/// separator of the caller's choice (NDJSON, SSE frames).
public struct JSONWriter: Sendable {
    /// The output; the writer only ever appends to it.
    public var bytes: [UInt8]

    /// Whether the next element in the current container must be preceded by a comma.
    private var needsComma = false
    /// The number of open containers, used only to keep top-level values free of commas.
    private var depth = 0

    /// Creates a writer that appends to `bytes`.
    public init(bytes: [UInt8] = []) {
        self.bytes = bytes
    }

    /// Creates a writer with an empty buffer of at least `capacity` bytes.
    public init(reservingCapacity capacity: Int) {
        self.bytes = []
        bytes.reserveCapacity(max(capacity, 0))
    }

    // MARK: Containers

    /// Writes `{`.
    public mutating func beginObject() {
        open(JSONByte.openBrace)
    }

    /// Writes `}`.
    public mutating func endObject() {
        close(JSONByte.closeBrace)
    }

    /// Writes `[`.
    public mutating func beginArray() {
        open(JSONByte.openBracket)
    }

    /// Writes `]`.
    public mutating func endArray() {
        close(JSONByte.closeBracket)
    }

    /// Writes an object member name and the ':' that follows it; the next call writes the member's value.
    public mutating func key(_ name: String) {
        separate()
        Self.appendEscaped(name, to: &bytes)
        bytes.append(JSONByte.colon)
        // The value that follows belongs to this member, so it takes no comma of its own.
        needsComma = false
    }

    /// Writes a member name given as JSON string bytes (quotes included, escaped as JSON requires, for example a
    /// name copied from a validated document) and the ':' that follows it.
    public mutating func key(json name: some Collection<UInt8>) {
        separate()
        bytes.append(contentsOf: name)
        bytes.append(JSONByte.colon)
        needsComma = false
    }

    // MARK: Scalars

    /// Writes a string, escaping as JSON requires.
    public mutating func string(_ value: String) {
        separate()
        Self.appendEscaped(value, to: &bytes)
        needsComma = true
    }

    /// Writes a signed integer.
    public mutating func int(_ value: Int64) {
        separate()
        if value < 0 { bytes.append(JSONByte.minus) }
        Self.appendDigits(value.magnitude, to: &bytes)
        needsComma = true
    }

    /// Writes a signed integer.
    public mutating func int(_ value: Int) {
        int(Int64(value))
    }

    /// Writes an unsigned integer.
    public mutating func uint(_ value: UInt64) {
        separate()
        Self.appendDigits(value, to: &bytes)
        needsComma = true
    }

    /// Writes a finite double in its shortest round-trip form, or `null` for infinities and NaN, which JSON
    /// cannot express.
    public mutating func double(_ value: Double) {
        guard value.isFinite else {
            null()
            return
        }
        separate()
        // Swift's description of a finite Double ("1.0", "1e+20", "-0.0") is valid JSON number syntax.
        bytes.append(contentsOf: value.description.utf8)
        needsComma = true
    }

    /// Writes a number exactly as its source text.
    public mutating func number(_ value: JSONNumber) {
        separate()
        bytes.append(contentsOf: value.text.utf8)
        needsComma = true
    }

    /// Writes `true` or `false`.
    public mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? JSONLexer.trueBytes : JSONLexer.falseBytes)
        needsComma = true
    }

    /// Writes `null`.
    public mutating func null() {
        separate()
        bytes.append(contentsOf: JSONLexer.nullBytes)
        needsComma = true
    }

    /// Writes bytes that are already one complete, valid JSON value (for example a range found by `JSONScanner`),
    /// copying them verbatim.
    public mutating func raw(_ json: some Collection<UInt8>) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    /// Starts a value the caller appends to `bytes` itself (one complete, valid JSON value, for example a string
    /// copied piece by piece from another document); `endRawValue()` marks it written.
    public mutating func beginRawValue() {
        separate()
    }

    /// Ends a value begun with `beginRawValue()`.
    public mutating func endRawValue() {
        needsComma = true
    }

    // MARK: Trees

    /// Writes a whole `JSONValue`, iteratively, so deep trees cannot exhaust the stack.
    public mutating func value(_ value: JSONValue) {
        /// A container being written and the index of its next child.
        enum Frame {
            case array([JSONValue], next: Int)
            case object(JSONObject, next: Int)
        }
        var stack: [Frame] = []

        /// Writes a scalar, or opens a container and pushes it.
        func start(_ value: JSONValue, _ writer: inout JSONWriter, _ stack: inout [Frame]) {
            switch value {
            case .null: writer.null()
            case .bool(let flag): writer.bool(flag)
            case .number(let number): writer.number(number)
            case .string(let text): writer.string(text)
            case .array(let elements):
                writer.beginArray()
                stack.append(.array(elements, next: 0))
            case .object(let object):
                writer.beginObject()
                stack.append(.object(object, next: 0))
            }
        }

        start(value, &self, &stack)
        while let top = stack.indices.last {
            switch stack[top] {
            case .array(let elements, let next):
                if next < elements.count {
                    stack[top] = .array(elements, next: next + 1)
                    start(elements[next], &self, &stack)
                } else {
                    endArray()
                    stack.removeLast()
                }
            case .object(let object, let next):
                if next < object.members.count {
                    stack[top] = .object(object, next: next + 1)
                    key(object.members[next].key)
                    start(object.members[next].value, &self, &stack)
                } else {
                    endObject()
                    stack.removeLast()
                }
            }
        }
    }

    // MARK: Escaping

    /// The JSON string literal for `text`, including the quotes.
    public static func escaped(_ text: String) -> [UInt8] {
        var output: [UInt8] = []
        appendEscaped(text, to: &output)
        return output
    }

    /// Appends the JSON string literal for `text`, including the quotes.
    ///
    /// Escapes '"', '\\' and the C0 controls (short forms for \b \f \n \r \t, `\u00XX` otherwise); everything
    /// else, including '/', DEL and all non-ASCII text, passes through as UTF-8.
    public static func appendEscaped(_ text: String, to output: inout [UInt8]) {
        var text = text
        // Free for native strings (always the case on Linux); it lets us read the bytes as a span.
        text.makeContiguousUTF8()
        let utf8 = text.utf8.span
        // Most strings (member names above all) need no escapes: then they go in with one capacity check.
        var plain = true
        for index in utf8.indices {
            let byte = utf8[index]
            if byte < 0x20 || byte == JSONByte.quote || byte == JSONByte.backslash {
                plain = false
                break
            }
        }
        if plain {
            output.append(addingCapacity: utf8.count + 2) { span in
                span.append(JSONByte.quote)
                for index in utf8.indices { span.append(utf8[index]) }
                span.append(JSONByte.quote)
            }
            return
        }
        // Reserving for the unescaped length avoids most regrowth while appending.
        output.reserveCapacity(output.count + utf8.count + 2)
        output.append(JSONByte.quote)
        for index in utf8.indices { appendEscaped(byte: utf8[index], to: &output) }
        output.append(JSONByte.quote)
    }

    /// Appends one byte of string content as `appendEscaped(_:to:)` writes it (escaped if JSON requires).
    @inline(__always)
    public static func appendEscaped(byte: UInt8, to output: inout [UInt8]) {
        switch byte {
        case JSONByte.quote, JSONByte.backslash:
            output.append(JSONByte.backslash)
            output.append(byte)
        case 0x08: appendShortEscape(UInt8(ascii: "b"), to: &output)
        case 0x0C: appendShortEscape(UInt8(ascii: "f"), to: &output)
        case 0x0A: appendShortEscape(UInt8(ascii: "n"), to: &output)
        case 0x0D: appendShortEscape(UInt8(ascii: "r"), to: &output)
        case 0x09: appendShortEscape(UInt8(ascii: "t"), to: &output)
        case 0..<0x20:
            output.append(JSONByte.backslash)
            output.append(JSONByte.lowerU)
            output.append(JSONByte.zero)
            output.append(JSONByte.zero)
            output.append(hexDigit(byte >> 4))
            output.append(hexDigit(byte & 0x0F))
        default:
            output.append(byte)
        }
    }

    // MARK: Private

    private static func appendShortEscape(_ letter: UInt8, to output: inout [UInt8]) {
        output.append(JSONByte.backslash)
        output.append(letter)
    }

    /// A lowercase hex digit for a value below 16.
    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? JSONByte.zero &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }

    /// Appends the decimal digits of `value` without creating a string.
    static func appendDigits(_ value: UInt64, to output: inout [UInt8]) {
        // The largest power of ten not above `value`; `divisor * 10` is only formed when it is <= value, so it
        // cannot overflow.
        var divisor: UInt64 = 1
        while value / divisor >= 10 {
            divisor *= 10
        }
        var remainder = value
        while divisor > 0 {
            output.append(JSONByte.zero &+ UInt8(truncatingIfNeeded: remainder / divisor))
            remainder %= divisor
            divisor /= 10
        }
    }

    /// Writes a comma if the previous element needs one.
    private mutating func separate() {
        if needsComma && depth > 0 {
            bytes.append(JSONByte.comma)
        }
    }

    private mutating func open(_ bracket: UInt8) {
        separate()
        bytes.append(bracket)
        // Each open writes a byte, so the depth is bounded by the array's size and cannot overflow.
        depth += 1
        needsComma = false
    }

    private mutating func close(_ bracket: UInt8) {
        bytes.append(bracket)
        depth = max(depth - 1, 0)
        needsComma = true
    }
}

// MARK: - Serialisation

extension JSONValue {
    /// The compact JSON encoding of this value (no whitespace, members in order).
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }
}

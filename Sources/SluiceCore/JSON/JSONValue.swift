// An immutable JSON document model for config-time use.
//
// Request bodies never go through this type: the per-request path uses `JSONScanner` to find the few members it
// needs and copies everything else through untouched. `JSONValue` is for configuration, fixtures and tests, where
// clarity matters more than allocations.

// MARK: - JSONKind

/// The six kinds of JSON value, without their contents.
public enum JSONKind: Sendable, Hashable, CustomStringConvertible {
    case null
    case boolean
    case number
    case string
    case array
    case object

    /// The JSON Schema name of the kind: "null", "boolean", "number", "string", "array" or "object".
    public var name: String {
        switch self {
        case .null: "null"
        case .boolean: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public var description: String { name }
}

// MARK: - JSONValue

/// A parsed JSON value.
///
/// Equality is structural and exact: objects compare member by member in order, and numbers compare by their
/// source text (`1.0` is not equal to `1`). This keeps equality cheap and predictable for config diffing.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The kind of this value.
    public var kind: JSONKind {
        switch self {
        case .null: .null
        case .bool: .boolean
        case .number: .number
        case .string: .string
        case .array: .array
        case .object: .object
        }
    }

    /// The JSON Schema name of this value's kind, for error messages ("expected string, got number").
    public var typeName: String { kind.name }

    /// Whether this value is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The string, if this value is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The boolean, if this value is `true` or `false`.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The number, if this value is a number.
    public var numberValue: JSONNumber? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The number as an `Int64`, if this value is an integer number that fits.
    public var int64Value: Int64? { numberValue?.int64 }

    /// The number as a finite `Double`, if this value is a number within `Double`'s range.
    public var doubleValue: Double? { numberValue?.double }

    /// The elements, if this value is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, if this value is an object.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The member named `key`, if this value is an object that has one.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .number(JSONNumber(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    /// Creates a number from a float literal; a literal that overflows to infinity becomes `null`.
    public init(floatLiteral value: Double) {
        if let number = JSONNumber(value) {
            self = .number(number)
        } else {
            self = .null
        }
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
}

// MARK: - JSONNumber

/// A JSON number that keeps its exact source text.
///
/// Keeping the text means no precision is lost between parsing and re-serialising, and the caller decides which
/// numeric type it needs: `int64` and `uint64` only answer for integers written without fraction or exponent.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number exactly as written in the source, always valid RFC 8259 number syntax.
    public let text: String

    /// Creates a number from JSON number text, or returns nil if `text` is not valid RFC 8259 number syntax.
    public init?(_ text: String) {
        var text = text
        text.makeContiguousUTF8()
        let bytes = text.utf8.span
        guard !bytes.isEmpty,
            let lexed = try? JSONLexer.number(bytes, at: 0),
            lexed.end == bytes.count
        else { return nil }
        self.text = text
    }

    /// Creates a number from text the caller has already validated as a JSON number.
    init(validatedText text: String) {
        self.text = text
    }

    /// Creates an integer number.
    public init(_ value: Int64) { self.text = String(value) }

    /// Creates an integer number.
    public init(_ value: Int) { self.text = String(value) }

    /// Creates a non-negative integer number.
    public init(_ value: UInt64) { self.text = String(value) }

    /// Creates a number from a finite `Double`, or returns nil for infinities and NaN, which JSON cannot express.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        // Swift's shortest round-trip description of a finite Double ("1.0", "1e+20", "5e-324") is valid JSON.
        self.text = value.description
    }

    public var description: String { text }

    /// Whether the text is an integer: no fraction and no exponent.
    public var isInteger: Bool {
        !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
    }

    /// The value as an `Int64`, if the text is an integer (no fraction or exponent) within `Int64`'s range.
    public var int64: Int64? {
        guard let (negative, magnitude) = Self.integerParts(text.utf8) else { return nil }
        return Self.int64(negative: negative, magnitude: magnitude)
    }

    /// The value as a `UInt64`, if the text is a non-negative integer (no fraction or exponent) that fits.
    ///
    /// `-0` counts as zero.
    public var uint64: UInt64? {
        guard let (negative, magnitude) = Self.integerParts(text.utf8) else { return nil }
        if negative && magnitude != 0 { return nil }
        return magnitude
    }

    /// The value as a `Double`, or nil if it overflows to infinity. Values below the smallest subnormal round to 0.
    public var double: Double? {
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    // MARK: Integer conversion shared with JSONScanner

    /// Splits integer text `-?[0-9]+` into sign and magnitude, or returns nil for other text or a magnitude
    /// beyond `UInt64`.
    static func integerParts(_ digits: some Collection<UInt8>) -> (negative: Bool, magnitude: UInt64)? {
        var negative = false
        var magnitude: UInt64 = 0
        var sawDigit = false
        for (index, byte) in digits.enumerated() {
            if index == 0 && byte == UInt8(ascii: "-") {
                negative = true
                continue
            }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            magnitude = sum
            sawDigit = true
        }
        return sawDigit ? (negative, magnitude) : nil
    }

    /// Combines sign and magnitude into an `Int64` if it fits, including `Int64.min`.
    static func int64(negative: Bool, magnitude: UInt64) -> Int64? {
        if negative {
            // -(2^63) fits although +(2^63) does not, so compare against the magnitude of Int64.min.
            guard magnitude <= Int64.min.magnitude else { return nil }
            return magnitude == Int64.min.magnitude ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}

// MARK: - JSONObject

/// A JSON object that preserves member order.
///
/// Lookup is a linear search: config objects are small, and order preservation matters more (error messages,
/// re-serialisation that matches the source). The parser guarantees unique keys; an object built by hand with
/// repeated keys answers lookups with the first match.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// One member of an object.
    public typealias Member = (key: String, value: JSONValue)

    /// The members in source order.
    public let members: [Member]

    /// Creates an object from members in order.
    public init(_ members: [Member] = []) {
        self.members = members
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.members = elements.map { (key: $0.0, value: $0.1) }
    }

    /// The value of the first member named `key`, or nil if there is none.
    public subscript(key: String) -> JSONValue? {
        for member in members where member.key == key {
            return member.value
        }
        return nil
    }

    /// The member names in source order.
    public var keys: [String] { members.map(\.key) }

    /// The number of members.
    public var count: Int { members.count }

    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (left, right) in zip(lhs.members, rhs.members) where left.key != right.key || left.value != right.value {
            return false
        }
        return true
    }
}

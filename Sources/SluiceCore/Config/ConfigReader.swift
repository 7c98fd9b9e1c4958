// Reads a parsed JSON config with a path for every error, and rejects fields it does not know:
// a typo in a config must fail loudly at load time, never be silently ignored.

/// A config problem, with the JSON path of the offending field.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON path such as `api_keys[1].key` ("" for the document itself).
    public var path: String
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// "api_keys[1].key: expected a string, got number".
    public var message: String { path.isEmpty ? problem : "\(path): \(problem)" }
    public var description: String { message }
}

/// A cursor over one JSON object of the config. Every field read is remembered so that
/// `finish()` can reject the ones nobody asked for.
public struct ConfigObject {
    public let path: String
    private let object: JSONObject
    private var consumed: Set<String> = []

    public init(_ value: JSONValue, path: String) throws(ConfigError) {
        guard case .object(let object) = value else {
            throw ConfigError(path: path, problem: "expected an object, got \(value.typeName)")
        }
        self.object = object
        self.path = path
    }

    public func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private mutating func take(_ key: String) -> JSONValue? {
        consumed.insert(key)
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        return value
    }

    // MARK: - Scalars

    public mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard let value = take(key) else { return nil }
        guard case .string(let string) = value else {
            throw ConfigError(path: childPath(key), problem: "expected a string, got \(value.typeName)")
        }
        return string
    }

    public mutating func string(_ key: String) throws(ConfigError) -> String {
        guard let string = try optionalString(key) else {
            throw ConfigError(path: childPath(key), problem: "is required")
        }
        return string
    }

    /// A string that must not be empty.
    public mutating func nonEmptyString(_ key: String) throws(ConfigError) -> String {
        let value = try string(key)
        guard !value.isEmpty else { throw ConfigError(path: childPath(key), problem: "must not be empty") }
        return value
    }

    /// An HTTP header name (an RFC 9110 token), lower-cased as Envoy keeps names (absent = nil).
    public mutating func optionalHeaderName(_ key: String) throws(ConfigError) -> String? {
        guard let name = try optionalString(key)?.lowercased() else { return nil }
        guard !name.isEmpty, name.utf8.allSatisfy(HTTPToken.isTokenByte) else {
            throw ConfigError(path: childPath(key), problem: "must be an HTTP header name")
        }
        return name
    }

    public mutating func optionalBool(_ key: String) throws(ConfigError) -> Bool? {
        guard let value = take(key) else { return nil }
        guard case .bool(let bool) = value else {
            throw ConfigError(path: childPath(key), problem: "expected a boolean, got \(value.typeName)")
        }
        return bool
    }

    /// An integer within `range` (absent = nil).
    ///
    /// Envoy's YAML → protobuf `Struct` conversion hands large integers over as strings
    /// (`tokens_per_minute: 1000000000000` arrives as `"1000000000000"`) and Struct numbers are
    /// doubles (`1e+12`), so an integer may come as integer text, as a number with an exponent or
    /// `.0`, or as a string holding either. Fractions, values outside `range` and values beyond
    /// `Int64` are refused with the field named; nothing converts a value that does not fit.
    public mutating func optionalInt(_ key: String, in range: ClosedRange<Int64>) throws(ConfigError) -> Int64? {
        guard let value = take(key) else { return nil }
        let number: JSONNumber
        switch value {
        case .number(let parsed):
            number = parsed
        case .string(let text):
            guard let parsed = JSONNumber(text.trimmingASCIISpaces) else {
                throw ConfigError(path: childPath(key), problem: "expected an integer, got string \"\(text.prefix(40))\"")
            }
            number = parsed
        default:
            throw ConfigError(path: childPath(key), problem: "expected an integer, got \(value.typeName)")
        }
        let outOfRange = ConfigError(
            path: childPath(key), problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(number.text.prefix(40))")
        if let int = number.int64 {
            guard range.contains(int) else { throw outOfRange }
            return int
        }
        if number.isInteger { throw outOfRange }  // integer text beyond Int64
        // An exponent or a fraction: an integer only if the value is whole; exact below 2^53.
        guard let double = number.double else { throw outOfRange }
        guard double == double.rounded(.towardZero) else {
            throw ConfigError(path: childPath(key), problem: "expected an integer, got \(number.text.prefix(40))")
        }
        guard double.magnitude <= 9_007_199_254_740_992, range.contains(Int64(double)) else { throw outOfRange }
        return Int64(double)
    }

    public mutating func optionalDouble(_ key: String, in range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let value = take(key) else { return nil }
        let parsed: Double?
        switch value {
        case .number(let number):
            parsed = number.double
        case .string(let text):
            // Envoy's YAML loader turns some decimals (`3.0`) into strings on the way to a
            // protobuf Struct; a string that is a plain decimal number is that number.
            parsed = JSONNumber(text)?.double
        default:
            parsed = nil
        }
        guard let double = parsed, double.isFinite else {
            throw ConfigError(path: childPath(key), problem: "expected a number, got \(value.typeName)")
        }
        guard range.contains(double) else {
            throw ConfigError(
                path: childPath(key), problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(double)")
        }
        return double
    }

    // MARK: - Containers

    /// Calls `body` with a reader for each element of the array `key` (absent = no elements).
    public mutating func forEachObject(
        _ key: String, _ body: (inout ConfigObject) throws(ConfigError) -> Void
    ) throws(ConfigError) {
        guard let value = take(key) else { return }
        guard case .array(let elements) = value else {
            throw ConfigError(path: childPath(key), problem: "expected an array, got \(value.typeName)")
        }
        for (index, element) in elements.enumerated() {
            var reader = try ConfigObject(element, path: "\(childPath(key))[\(index)]")
            try body(&reader)
            try reader.finish()
        }
    }

    /// An array of strings (absent = nil).
    public mutating func optionalStringArray(_ key: String) throws(ConfigError) -> [String]? {
        guard let value = take(key) else { return nil }
        guard case .array(let elements) = value else {
            throw ConfigError(path: childPath(key), problem: "expected an array of strings, got \(value.typeName)")
        }
        var result: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let string) = element else {
                throw ConfigError(
                    path: "\(childPath(key))[\(index)]", problem: "expected a string, got \(element.typeName)")
            }
            result.append(string)
        }
        return result
    }

    /// A nested object (absent = nil); the caller must `finish()` it.
    public mutating func optionalObject(_ key: String) throws(ConfigError) -> ConfigObject? {
        guard let value = take(key) else { return nil }
        return try ConfigObject(value, path: childPath(key))
    }

    /// Keys nobody has read yet (for maps with free-form keys, such as header matchers).
    public var remainingKeys: [String] { object.keys.filter { !consumed.contains($0) } }

    /// Rejects every field that no accessor asked for.
    public func finish() throws(ConfigError) {
        for key in object.keys where !consumed.contains(key) {
            throw ConfigError(path: childPath(key), problem: "unknown field")
        }
    }
}

extension String {
    /// The string without leading and trailing ASCII spaces and tabs (YAML leaves none, but a
    /// hand-written JSON string may).
    fileprivate var trimmingASCIISpaces: String {
        let utf8 = self.utf8
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }), let last = utf8.lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(Substring(utf8[first...last]))
    }
}

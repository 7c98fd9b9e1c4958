// Strict RFC 8259 parsing into `JSONValue`, for config time.
//
// The grammar itself lives in `JSONTokenizer` (JSONScanner.swift), which `JSONScanner` shares, so the DOM parser
// and the allocation-free request scanner cannot disagree about what valid JSON is. This file adds the limits, the
// error type and the iterative DOM builder on top.

// MARK: - Limits

/// Resource limits applied while parsing or scanning untrusted JSON.
public struct JSONLimits: Sendable, Hashable {
    /// The deepest supported nesting; larger `maxDepth` values are clamped to it.
    ///
    /// The tokenizer tracks open containers in a fixed inline bit stack so scanning never allocates; 1024 levels
    /// is far beyond any legitimate request or config.
    public static let maxSupportedDepth = 1024

    /// The maximum number of nested arrays and objects; `[[1]]` has depth 2. Clamped to `0...1024`.
    public var maxDepth: Int

    /// The maximum document size in bytes.
    public var maxBytes: Int

    /// The maximum size of one string or key, counted in encoded bytes between the quotes; nil means no limit
    /// beyond `maxBytes`.
    public var maxStringBytes: Int?

    /// Creates limits; the defaults suit request bodies and config documents.
    public init(maxDepth: Int = 64, maxBytes: Int = 16 * 1024 * 1024, maxStringBytes: Int? = nil) {
        self.maxDepth = maxDepth
        self.maxBytes = maxBytes
        self.maxStringBytes = maxStringBytes
    }

    /// `maxDepth` clamped to what the tokenizer supports.
    var effectiveMaxDepth: Int { min(max(maxDepth, 0), Self.maxSupportedDepth) }

    /// `maxStringBytes` with nil meaning unlimited.
    var effectiveMaxStringBytes: Int { maxStringBytes.map { max($0, 0) } ?? Int.max }
}

// MARK: - Errors

/// Why a JSON document was rejected, and where.
///
/// `offset` is the byte offset of the first byte that cannot be accepted, or the document length when the input
/// ends early. Errors about a whole token (a duplicate key, a string over the length limit, a lone surrogate
/// escape) point at the token's first byte.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The rule a document broke. Tests and callers compare kinds, not messages.
    public enum Kind: Sendable, Equatable {
        /// The input ended inside a value, or was empty.
        case unexpectedEndOfInput
        /// A value was expected but the byte cannot start one.
        case expectedValue
        /// An object member name was expected.
        case expectedKey
        /// A ':' was expected after an object member name.
        case expectedColon
        /// A ',' or '}' was expected after an object member.
        case expectedCommaOrObjectEnd
        /// A ',' or ']' was expected after an array element.
        case expectedCommaOrArrayEnd
        /// A ',' was followed by '}' or ']'.
        case trailingComma
        /// Bytes other than whitespace follow the top-level value.
        case trailingCharacters
        /// A misspelt `true`, `false` or `null`.
        case invalidLiteral
        /// A number that breaks the RFC 8259 grammar, such as `1.`, `-` or `1e`.
        case invalidNumber
        /// A number with a superfluous leading zero, such as `01` or `-00`.
        case leadingZero
        /// A raw control character (U+0000 to U+001F) inside a string.
        case controlCharacterInString
        /// A backslash followed by a character that is not a JSON escape.
        case invalidEscape
        /// A `\u` escape without four hex digits.
        case invalidUnicodeEscape
        /// A `\u` escape of a UTF-16 surrogate that is not part of a high-low pair.
        case loneSurrogate
        /// Bytes in a string that are not well-formed UTF-8.
        case invalidUTF8
        /// The same member name appears twice in one object (names are compared after unescaping).
        case duplicateKey(String)
        /// Nesting deeper than `JSONLimits.maxDepth`.
        case tooDeep
        /// A document longer than `JSONLimits.maxBytes`.
        case tooLarge
        /// A string or key longer than `JSONLimits.maxStringBytes`.
        case stringTooLong
    }

    /// The rule that was broken.
    public var kind: Kind

    /// The byte offset of the problem; see the type's documentation.
    public var offset: Int

    /// Creates an error.
    public init(_ kind: Kind, at offset: Int) {
        self.kind = kind
        self.offset = offset
    }

    /// A one-line message, e.g. "invalid JSON at byte 17: expected ',' or '}'".
    public var description: String {
        "invalid JSON at byte \(offset): \(kind.message)"
    }
}

extension JSONParseError.Kind {
    /// The human-readable part of the error message.
    public var message: String {
        switch self {
        case .unexpectedEndOfInput: "unexpected end of input"
        case .expectedValue: "expected a value"
        case .expectedKey: "expected a string key"
        case .expectedColon: "expected ':'"
        case .expectedCommaOrObjectEnd: "expected ',' or '}'"
        case .expectedCommaOrArrayEnd: "expected ',' or ']'"
        case .trailingComma: "trailing comma"
        case .trailingCharacters: "unexpected data after the top-level value"
        case .invalidLiteral: "invalid literal"
        case .invalidNumber: "invalid number"
        case .leadingZero: "leading zeros are not allowed"
        case .controlCharacterInString: "unescaped control character in string"
        case .invalidEscape: "invalid escape sequence"
        case .invalidUnicodeEscape: "invalid \\u escape"
        case .loneSurrogate: "unpaired UTF-16 surrogate in \\u escape"
        case .invalidUTF8: "invalid UTF-8 in string"
        case .duplicateKey(let key): "duplicate key \"\(Self.abbreviated(key))\""
        case .tooDeep: "nesting exceeds the depth limit"
        case .tooLarge: "document exceeds the size limit"
        case .stringTooLong: "string exceeds the length limit"
        }
    }

    /// Keeps messages one short line even for pathological keys.
    private static func abbreviated(_ key: String) -> String {
        key.count <= 64 ? key : String(key.prefix(64)) + "…"
    }
}

// MARK: - Parser

/// Strict RFC 8259 parser producing a `JSONValue` tree.
///
/// Strict means: no comments, no trailing commas, no leading zeros, no raw control characters in strings, no
/// invalid UTF-8, no unpaired surrogate escapes, no byte-order mark, nothing after the top-level value, and no
/// duplicate member names. Parsing is iterative, so nesting depth is bounded by `JSONLimits.maxDepth` rather
/// than by the thread's stack.
public enum JSONParser {
    /// Parses a complete JSON document.
    /// - Parameters:
    ///   - bytes: The UTF-8 encoded document.
    ///   - limits: Size and depth limits.
    /// - Returns: The top-level value.
    /// - Throws: `JSONParseError` describing the first problem found.
    public static func parse(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(JSONParseError) -> JSONValue {
        try parse(bytes.span, limits: limits)
    }

    /// Parses a complete JSON document held in a string.
    /// - Throws: `JSONParseError` describing the first problem found.
    public static func parse(_ text: String, limits: JSONLimits = JSONLimits()) throws(JSONParseError) -> JSONValue {
        var text = text
        // Native Swift strings are already contiguous UTF-8, so this is free and lets us borrow the bytes.
        text.makeContiguousUTF8()
        return try parse(text.utf8.span, limits: limits)
    }

    /// Parses a complete JSON document from borrowed bytes, without copying them first.
    /// - Throws: `JSONParseError` describing the first problem found.
    public static func parse(_ bytes: Span<UInt8>, limits: JSONLimits = JSONLimits()) throws(JSONParseError)
        -> JSONValue
    {
        var tokenizer = JSONTokenizer(limits: limits)
        var builder = DOMBuilder()
        while let token = try tokenizer.next(in: bytes) {
            try builder.consume(token, in: bytes)
        }
        // The tokenizer only finishes after a complete top-level value, so a result is always there; the guard
        // keeps this total without a force unwrap.
        guard let result = builder.result else {
            throw JSONParseError(.unexpectedEndOfInput, at: bytes.count)
        }
        return result
    }
}

// MARK: - DOM builder

/// Turns the tokenizer's flat token stream into a `JSONValue` tree with an explicit stack.
private struct DOMBuilder {
    /// A container under construction.
    struct Frame {
        var isObject: Bool
        var elements: [JSONValue] = []
        var members: [JSONObject.Member] = []
        /// Member names for duplicate detection, built only once an object outgrows a linear search.
        var keyIndex: Set<String> = []
        var pendingKey = ""
    }

    /// Objects up to this many members check for duplicates by linear search, avoiding a `Set` per object.
    static let linearKeySearchLimit = 8

    var stack: [Frame] = []
    var result: JSONValue?
    /// Reused for decoding every string, so escapes cost no per-string scratch allocation.
    var scratch: [UInt8] = []

    mutating func consume(_ token: JSONToken, in bytes: Span<UInt8>) throws(JSONParseError) {
        switch token.kind {
        case .beginObject:
            stack.append(Frame(isObject: true))
        case .beginArray:
            stack.append(Frame(isObject: false))
        case .endObject, .endArray:
            guard let frame = stack.popLast() else { return }
            attach(frame.isObject ? .object(JSONObject(frame.members)) : .array(frame.elements))
        case .key:
            let key = decode(token, in: bytes)
            try checkUnique(key, at: token.range.lowerBound)
        case .string:
            attach(.string(decode(token, in: bytes)))
        case .number:
            attach(.number(JSONNumber(validatedText: JSONLexer.text(bytes, token.range))))
        case .true:
            attach(.bool(true))
        case .false:
            attach(.bool(false))
        case .null:
            attach(.null)
        }
    }

    private mutating func decode(_ token: JSONToken, in bytes: Span<UInt8>) -> String {
        JSONLexer.decodeString(bytes, content: token.contentRange, hasEscapes: token.hasEscapes, scratch: &scratch)
    }

    /// Records `key` as the pending member name of the innermost object, rejecting a repeat.
    private mutating func checkUnique(_ key: String, at offset: Int) throws(JSONParseError) {
        guard let top = stack.indices.last else { return }
        if stack[top].members.count < Self.linearKeySearchLimit {
            if stack[top].members.contains(where: { $0.key == key }) {
                throw JSONParseError(.duplicateKey(key), at: offset)
            }
        } else {
            if stack[top].keyIndex.isEmpty {
                stack[top].keyIndex = Set(stack[top].members.map(\.key))
            }
            guard stack[top].keyIndex.insert(key).inserted else {
                throw JSONParseError(.duplicateKey(key), at: offset)
            }
        }
        stack[top].pendingKey = key
    }

    /// Adds a finished value to the innermost container, or makes it the result at the top level.
    private mutating func attach(_ value: JSONValue) {
        guard let top = stack.indices.last else {
            result = value
            return
        }
        if stack[top].isObject {
            stack[top].members.append((key: stack[top].pendingKey, value: value))
            // Keep the index in step once it exists, so later duplicates are still caught.
            if !stack[top].keyIndex.isEmpty {
                stack[top].keyIndex.insert(stack[top].pendingKey)
            }
        } else {
            stack[top].elements.append(value)
        }
    }
}

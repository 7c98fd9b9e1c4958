// Allocation-free validation and lookup of top-level members in a JSON request body.
//
// Three layers live here, from the bottom up:
//  - `JSONLexer`: the lexical rules (strings, escapes, UTF-8, numbers, literals) as total functions over a Span.
//  - `JSONTokenizer`: an iterative state machine that turns a document into tokens and enforces the grammar and
//    the limits. It is the single definition of "valid JSON" shared with `JSONParser`.
//  - `JSONScanner`: the per-request API. It runs the tokenizer once, validating the whole body, and remembers
//    where the wanted top-level members are. Nothing in the loop creates an Array or a String.
//
// Every index into the bytes is checked against `count` first; Span subscripts are bounds-checked, so a mistake
// here would trap rather than read out of bounds, and the tests fuzz these paths for that reason.

// MARK: - Byte constants

/// ASCII bytes the grammar cares about, named for readability.
enum JSONByte {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let lowerU = UInt8(ascii: "u")

    static func isDigit(_ byte: UInt8) -> Bool { byte >= zero && byte <= nine }

    /// JSON's four whitespace bytes: space, tab, line feed, carriage return.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// The value of a hex digit, or nil.
    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte &- UInt8(ascii: "a")) &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte &- UInt8(ascii: "A")) &+ 10
        default: nil
        }
    }
}

// MARK: - Lexer

/// The lexical rules of RFC 8259 as total functions over borrowed bytes.
///
/// Each `lex…` function starts at a known-valid first byte and returns the offset just past the token, or throws
/// with the offset of the first byte it cannot accept. Offsets never exceed `bytes.count`, and all additions are
/// of 1 to 4 to an index already below `count`, so none can overflow.
enum JSONLexer {
    static let trueBytes: [UInt8] = Array("true".utf8)
    static let falseBytes: [UInt8] = Array("false".utf8)
    static let nullBytes: [UInt8] = Array("null".utf8)

    /// Lexes a string starting at its opening quote.
    /// - Returns: The offset just past the closing quote, and whether the content has any backslash escape.
    static func string(_ bytes: Span<UInt8>, at start: Int, maxContentBytes: Int) throws(JSONParseError)
        -> (end: Int, hasEscapes: Bool)
    {
        let count = bytes.count
        var index = start + 1
        var hasEscapes = false
        while index < count {
            // Eight bytes at a time while all are plain printable ASCII (long prompts are mostly that); a word
            // with anything else goes through the byte-wise rules below, then words again.
            while index + 8 <= count {
                let special = specialBytes(word(bytes, at: index))
                guard special == 0 else {
                    // Skip the plain bytes before the first special one.
                    index += special.trailingZeroBitCount / 8
                    break
                }
                index += 8
            }
            let wordEnd = index + 8
            while index < count && index < wordEnd {
                let byte = bytes[index]
                if byte == JSONByte.quote {
                    if index - start - 1 > maxContentBytes {
                        throw JSONParseError(.stringTooLong, at: start)
                    }
                    return (index + 1, hasEscapes)
                } else if byte == JSONByte.backslash {
                    hasEscapes = true
                    index = try escape(bytes, at: index)
                } else if byte < 0x20 {
                    throw JSONParseError(.controlCharacterInString, at: index)
                } else if byte < 0x80 {
                    index += 1
                } else {
                    index = try utf8Sequence(bytes, at: index)
                }
            }
        }
        throw JSONParseError(.unexpectedEndOfInput, at: count)
    }

    /// The eight bytes at `index` as a little-endian word (one load); the caller has checked
    /// `index + 8 <= bytes.count`.
    @inline(__always)
    static func word(_ bytes: Span<UInt8>, at index: Int) -> UInt64 {
        let eight = bytes.extracting(index..<(index + 8))
        var word: UInt64 = 0
        for offset in 0..<8 { word |= UInt64(eight[offset]) << UInt64(offset * 8) }
        return word
    }

    /// A mask with the high bit set in each byte of `word` that is not printable ASCII other than '"' and '\\'
    /// (below 0x20, at or above 0x80, a quote or a backslash), from the "has a byte less than n" word tests. Only
    /// the lowest set bit is exact (a borrow can mark bytes above it), which is all the callers use: zero means
    /// eight plain bytes, and `trailingZeroBitCount / 8` is the offset of the first special one.
    @inline(__always)
    static func specialBytes(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let below0x20 = (word &- ones &* 0x20) & ~word
        return (word | below0x20) & highs | bytes(of: word, equalTo: JSONByte.quote)
            | bytes(of: word, equalTo: JSONByte.backslash)
    }

    /// A mask with the high bit set in the bytes of `word` equal to `byte` (the "has zero byte" test on
    /// `word ^ byte * 0x01…01`); only its lowest set bit is exact, which is what the callers use.
    @inline(__always)
    static func bytes(of word: UInt64, equalTo byte: UInt8) -> UInt64 {
        let x = word ^ (UInt64(byte) &* 0x0101_0101_0101_0101)
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
    }

    /// Lexes one escape sequence starting at its backslash; returns the offset just past it.
    static func escape(_ bytes: Span<UInt8>, at start: Int) throws(JSONParseError) -> Int {
        let count = bytes.count
        let kindIndex = start + 1
        guard kindIndex < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
        switch bytes[kindIndex] {
        case JSONByte.quote, JSONByte.backslash, JSONByte.slash,
            UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return kindIndex + 1
        case JSONByte.lowerU:
            let (unit, afterFirst) = try hex4(bytes, at: kindIndex + 1)
            if (0xDC00...0xDFFF).contains(unit) {
                throw JSONParseError(.loneSurrogate, at: start)
            }
            guard (0xD800...0xDBFF).contains(unit) else { return afterFirst }
            // A high surrogate must be followed immediately by a `\u` low surrogate.
            guard afterFirst < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
            guard bytes[afterFirst] == JSONByte.backslash else { throw JSONParseError(.loneSurrogate, at: start) }
            guard afterFirst + 1 < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
            guard bytes[afterFirst + 1] == JSONByte.lowerU else { throw JSONParseError(.loneSurrogate, at: start) }
            let (low, afterSecond) = try hex4(bytes, at: afterFirst + 2)
            guard (0xDC00...0xDFFF).contains(low) else { throw JSONParseError(.loneSurrogate, at: start) }
            return afterSecond
        default:
            throw JSONParseError(.invalidEscape, at: kindIndex)
        }
    }

    /// Reads the four hex digits of a `\u` escape.
    static func hex4(_ bytes: Span<UInt8>, at start: Int) throws(JSONParseError) -> (value: UInt32, end: Int) {
        var value: UInt32 = 0
        var index = start
        for _ in 0..<4 {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
            guard let digit = JSONByte.hexValue(bytes[index]) else {
                throw JSONParseError(.invalidUnicodeEscape, at: index)
            }
            value = value << 4 | digit
            index += 1
        }
        return (value, index)
    }

    /// Validates one multi-byte UTF-8 sequence starting at a byte >= 0x80 (Unicode Table 3-7: no overlongs, no
    /// surrogates, nothing above U+10FFFF); returns the offset just past it.
    static func utf8Sequence(_ bytes: Span<UInt8>, at start: Int) throws(JSONParseError) -> Int {
        let lead = bytes[start]
        var continuationCount: Int
        // The allowed range of the second byte; later bytes are always 0x80...0xBF.
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: continuationCount = 1
        case 0xE0: continuationCount = 2; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: continuationCount = 2
        case 0xED: continuationCount = 2; secondHigh = 0x9F
        case 0xF0: continuationCount = 3; secondLow = 0x90
        case 0xF1...0xF3: continuationCount = 3
        case 0xF4: continuationCount = 3; secondHigh = 0x8F
        default: throw JSONParseError(.invalidUTF8, at: start)
        }
        var index = start + 1
        while continuationCount > 0 {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
            let byte = bytes[index]
            let low: UInt8 = index == start + 1 ? secondLow : 0x80
            let high: UInt8 = index == start + 1 ? secondHigh : 0xBF
            guard byte >= low && byte <= high else { throw JSONParseError(.invalidUTF8, at: start) }
            index += 1
            continuationCount -= 1
        }
        return index
    }

    /// Lexes a number starting at its '-' or first digit.
    /// - Returns: The offset just past the number, and whether it has no fraction or exponent.
    static func number(_ bytes: Span<UInt8>, at start: Int) throws(JSONParseError) -> (end: Int, isInteger: Bool) {
        let count = bytes.count
        var index = start
        if index < count && bytes[index] == JSONByte.minus { index += 1 }
        guard index < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
        if bytes[index] == JSONByte.zero {
            index += 1
            if index < count && JSONByte.isDigit(bytes[index]) { throw JSONParseError(.leadingZero, at: index) }
        } else if JSONByte.isDigit(bytes[index]) {
            index = digits(bytes, from: index)
        } else {
            throw JSONParseError(.invalidNumber, at: index)
        }
        var isInteger = true
        if index < count && bytes[index] == JSONByte.dot {
            isInteger = false
            index = try requiredDigits(bytes, from: index + 1)
        }
        if index < count && (bytes[index] == JSONByte.lowerE || bytes[index] == JSONByte.upperE) {
            isInteger = false
            index += 1
            if index < count && (bytes[index] == JSONByte.plus || bytes[index] == JSONByte.minus) { index += 1 }
            index = try requiredDigits(bytes, from: index)
        }
        return (index, isInteger)
    }

    /// Skips one or more digits, throwing if there is none.
    private static func requiredDigits(_ bytes: Span<UInt8>, from start: Int) throws(JSONParseError) -> Int {
        guard start < bytes.count else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
        guard JSONByte.isDigit(bytes[start]) else { throw JSONParseError(.invalidNumber, at: start) }
        return digits(bytes, from: start)
    }

    /// Skips zero or more digits.
    private static func digits(_ bytes: Span<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.count && JSONByte.isDigit(bytes[index]) { index += 1 }
        return index
    }

    /// Lexes `true`, `false` or `null`, whose spelling is `literal`; returns the offset just past it.
    static func literal(_ bytes: Span<UInt8>, at start: Int, _ literal: [UInt8]) throws(JSONParseError) -> Int {
        var index = start
        for expected in literal {
            guard index < bytes.count else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
            guard bytes[index] == expected else { throw JSONParseError(.invalidLiteral, at: index) }
            index += 1
        }
        return index
    }

    // MARK: Decoding

    /// Calls `body` with each byte of the UTF-8 encoding of a string's content, resolving escapes.
    ///
    /// The content is expected to be lexically valid already, but the function stays total on any input: it
    /// stops and returns false at anything malformed, or when `body` returns false.
    /// - Returns: True if every byte was delivered.
    static func forEachDecodedByte(
        _ bytes: Span<UInt8>,
        content: Range<Int>,
        _ body: (UInt8) -> Bool
    ) -> Bool {
        guard content.lowerBound >= 0, content.upperBound <= bytes.count else { return false }
        let end = content.upperBound
        var index = content.lowerBound
        while index < end {
            let byte = bytes[index]
            guard byte == JSONByte.backslash else {
                guard body(byte) else { return false }
                index += 1
                continue
            }
            guard index + 1 < end else { return false }
            let decoded: UInt8
            switch bytes[index + 1] {
            case JSONByte.quote: decoded = JSONByte.quote
            case JSONByte.backslash: decoded = JSONByte.backslash
            case JSONByte.slash: decoded = JSONByte.slash
            case UInt8(ascii: "b"): decoded = 0x08
            case UInt8(ascii: "f"): decoded = 0x0C
            case UInt8(ascii: "n"): decoded = 0x0A
            case UInt8(ascii: "r"): decoded = 0x0D
            case UInt8(ascii: "t"): decoded = 0x09
            case JSONByte.lowerU:
                guard let (scalar, next) = unicodeEscape(bytes, at: index, end: end) else { return false }
                guard encodeUTF8(scalar, body) else { return false }
                index = next
                continue
            default:
                return false
            }
            guard body(decoded) else { return false }
            index += 2
        }
        return true
    }

    /// Decodes the `\uXXXX` escape (or surrogate pair) whose backslash is at `start`, within `..<end`.
    private static func unicodeEscape(_ bytes: Span<UInt8>, at start: Int, end: Int) -> (UInt32, Int)? {
        guard start + 6 <= end, let high = try? hex4(bytes, at: start + 2) else { return nil }
        if (0xDC00...0xDFFF).contains(high.value) { return nil }
        guard (0xD800...0xDBFF).contains(high.value) else { return (high.value, high.end) }
        let second = high.end
        guard second + 6 <= end,
            bytes[second] == JSONByte.backslash,
            bytes[second + 1] == JSONByte.lowerU,
            let low = try? hex4(bytes, at: second + 2),
            (0xDC00...0xDFFF).contains(low.value)
        else { return nil }
        let scalar = 0x10000 + ((high.value - 0xD800) << 10) + (low.value - 0xDC00)
        return (scalar, low.end)
    }

    /// Calls `body` with the UTF-8 bytes of a scalar value (at most U+10FFFF, never a surrogate).
    private static func encodeUTF8(_ scalar: UInt32, _ body: (UInt8) -> Bool) -> Bool {
        switch scalar {
        case 0..<0x80:
            return body(UInt8(scalar))
        case 0x80..<0x800:
            return body(UInt8(0xC0 | scalar >> 6)) && body(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            return body(UInt8(0xE0 | scalar >> 12)) && body(UInt8(0x80 | scalar >> 6 & 0x3F))
                && body(UInt8(0x80 | scalar & 0x3F))
        case 0x10000...0x10FFFF:
            return body(UInt8(0xF0 | scalar >> 18)) && body(UInt8(0x80 | scalar >> 12 & 0x3F))
                && body(UInt8(0x80 | scalar >> 6 & 0x3F)) && body(UInt8(0x80 | scalar & 0x3F))
        default:
            return false
        }
    }

    /// Decodes a string's content into a `String`, reusing `scratch` for escaped content.
    static func decodeString(
        _ bytes: Span<UInt8>,
        content: Range<Int>,
        hasEscapes: Bool,
        scratch: inout [UInt8]
    ) -> String {
        scratch.removeAll(keepingCapacity: true)
        guard content.lowerBound >= 0, content.upperBound <= bytes.count else { return "" }
        if !hasEscapes, let utf8 = try? UTF8Span(validating: bytes.extracting(content)) {
            return String(copying: utf8)
        }
        scratch.reserveCapacity(content.count)
        _ = forEachDecodedByte(bytes, content: content) { byte in
            scratch.append(byte)
            return true
        }
        // Lexed content is valid UTF-8 and escapes decode to whole scalars, so nothing is ever repaired here.
        return String(decoding: scratch, as: UTF8.self)
    }

    /// The raw bytes in `range` as a string (used for number text, which is ASCII).
    static func text(_ bytes: Span<UInt8>, _ range: Range<Int>) -> String {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return "" }
        if let utf8 = try? UTF8Span(validating: bytes.extracting(range)) {
            return String(copying: utf8)
        }
        return ""
    }

    /// Whether a string's content, after unescaping, equals the UTF-8 bytes of `key`.
    static func decodedContent(
        _ bytes: Span<UInt8>,
        _ content: Range<Int>,
        hasEscapes: Bool,
        equals key: Span<UInt8>
    ) -> Bool {
        guard content.lowerBound >= 0, content.upperBound <= bytes.count else { return false }
        if !hasEscapes {
            guard content.count == key.count else { return false }
            var keyIndex = 0
            for index in content {
                guard bytes[index] == key[keyIndex] else { return false }
                keyIndex += 1
            }
            return true
        }
        // Decoding never lengthens content and shrinks it at most sixfold (`\u0041` is one byte), so lengths
        // outside that window cannot match; otherwise compare while decoding.
        guard key.count <= content.count, key.count >= content.count / 6 else { return false }
        var keyIndex = 0
        let complete = forEachDecodedByte(bytes, content: content) { byte in
            guard keyIndex < key.count, key[keyIndex] == byte else { return false }
            keyIndex += 1
            return true
        }
        return complete && keyIndex == key.count
    }
}

// MARK: - Tokens

/// One syntactic element of a JSON document.
struct JSONToken {
    enum Kind: UInt8 {
        case beginObject, endObject, beginArray, endArray, key, string, number, `true`, `false`, null
    }

    var kind: Kind
    /// The token's bytes: one byte for brackets; strings and keys include their quotes.
    var range: Range<Int>
    /// Nesting depth of the enclosing container: 0 for the top-level value, 1 for members of the top-level
    /// object. A container's begin and end tokens carry the depth of the container that holds them.
    var depth: Int
    /// Strings and keys only: whether the content contains a backslash escape.
    var hasEscapes = false

    /// A string's or key's content, without the quotes.
    var contentRange: Range<Int> {
        let lower = range.lowerBound + 1
        let upper = max(range.upperBound - 1, lower)
        return lower..<upper
    }
}

// MARK: - Tokenizer

/// An iterative, allocation-free JSON tokenizer that enforces the full grammar and the limits.
///
/// The stack of open containers is a fixed inline bit set (1 = object, 0 = array), so depth costs one bit per
/// level and no heap. Call `next(in:)` until it returns nil; the document is valid exactly when that happens
/// without a throw.
struct JSONTokenizer {
    private enum State: UInt8 {
        /// Before the top-level value.
        case start
        /// After '{': a key or '}'.
        case objectFirstKey
        /// After ',' in an object: a key (a '}' here is a trailing comma).
        case objectNextKey
        /// After a key: ':' and then a value.
        case afterKey
        /// After '[': a value or ']'.
        case arrayFirstValue
        /// After ',' in an array: a value (a ']' here is a trailing comma).
        case arrayNextValue
        /// After a complete value: ',' or the end of the container, or the end of the document.
        case afterValue
        /// The document was complete and only whitespace followed.
        case done
    }

    private static let wordsInStack = JSONLimits.maxSupportedDepth / 64

    private let maxDepth: Int
    private let maxBytes: Int
    private let maxStringBytes: Int
    private var state = State.start
    private var position = 0
    /// The number of open containers.
    private(set) var depth = 0
    private var objectBits = InlineArray<16, UInt64>(repeating: 0)

    init(limits: JSONLimits) {
        maxDepth = limits.effectiveMaxDepth
        maxBytes = limits.maxBytes
        maxStringBytes = limits.effectiveMaxStringBytes
    }

    /// Returns the next token, or nil once a complete document has been read and only whitespace follows.
    /// - Throws: `JSONParseError` at the first violation; the tokenizer must not be used after a throw.
    mutating func next(in bytes: Span<UInt8>) throws(JSONParseError) -> JSONToken? {
        if state == .start && bytes.count > maxBytes {
            throw JSONParseError(.tooLarge, at: max(maxBytes, 0))
        }
        let count = bytes.count
        // Loops only to skip a ',' before lexing the next element; every other path returns or throws.
        while true {
            skipWhitespace(bytes)
            switch state {
            case .start:
                return try value(bytes)
            case .afterKey:
                guard position < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
                guard bytes[position] == JSONByte.colon else { throw JSONParseError(.expectedColon, at: position) }
                position += 1
                skipWhitespace(bytes)
                return try value(bytes)
            case .objectFirstKey, .objectNextKey:
                guard position < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
                let byte = bytes[position]
                if byte == JSONByte.quote {
                    return try key(bytes)
                }
                if byte == JSONByte.closeBrace {
                    if state == .objectNextKey { throw JSONParseError(.trailingComma, at: position) }
                    return closeContainer(.endObject)
                }
                throw JSONParseError(.expectedKey, at: position)
            case .arrayFirstValue, .arrayNextValue:
                guard position < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
                if bytes[position] == JSONByte.closeBracket {
                    if state == .arrayNextValue { throw JSONParseError(.trailingComma, at: position) }
                    return closeContainer(.endArray)
                }
                return try value(bytes)
            case .afterValue:
                if depth == 0 {
                    guard position >= count else { throw JSONParseError(.trailingCharacters, at: position) }
                    state = .done
                    return nil
                }
                guard position < count else { throw JSONParseError(.unexpectedEndOfInput, at: count) }
                let byte = bytes[position]
                if innermostIsObject {
                    if byte == JSONByte.comma {
                        position += 1
                        state = .objectNextKey
                        continue
                    }
                    if byte == JSONByte.closeBrace { return closeContainer(.endObject) }
                    throw JSONParseError(.expectedCommaOrObjectEnd, at: position)
                } else {
                    if byte == JSONByte.comma {
                        position += 1
                        state = .arrayNextValue
                        continue
                    }
                    if byte == JSONByte.closeBracket { return closeContainer(.endArray) }
                    throw JSONParseError(.expectedCommaOrArrayEnd, at: position)
                }
            case .done:
                return nil
            }
        }
    }

    // MARK: Steps

    private mutating func skipWhitespace(_ bytes: Span<UInt8>) {
        while position < bytes.count && JSONByte.isWhitespace(bytes[position]) {
            position += 1
        }
    }

    /// Lexes the value starting at `position`.
    private mutating func value(_ bytes: Span<UInt8>) throws(JSONParseError) -> JSONToken {
        guard position < bytes.count else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
        let start = position
        let kind: JSONToken.Kind
        var hasEscapes = false
        switch bytes[start] {
        case JSONByte.openBrace:
            return try openContainer(isObject: true)
        case JSONByte.openBracket:
            return try openContainer(isObject: false)
        case JSONByte.quote:
            let lexed = try JSONLexer.string(bytes, at: start, maxContentBytes: maxStringBytes)
            position = lexed.end
            hasEscapes = lexed.hasEscapes
            kind = .string
        case JSONByte.minus, JSONByte.zero...JSONByte.nine:
            position = try JSONLexer.number(bytes, at: start).end
            kind = .number
        case UInt8(ascii: "t"):
            position = try JSONLexer.literal(bytes, at: start, JSONLexer.trueBytes)
            kind = .true
        case UInt8(ascii: "f"):
            position = try JSONLexer.literal(bytes, at: start, JSONLexer.falseBytes)
            kind = .false
        case UInt8(ascii: "n"):
            position = try JSONLexer.literal(bytes, at: start, JSONLexer.nullBytes)
            kind = .null
        default:
            throw JSONParseError(.expectedValue, at: start)
        }
        state = .afterValue
        return JSONToken(kind: kind, range: start..<position, depth: depth, hasEscapes: hasEscapes)
    }

    /// Lexes an object member name starting at its quote; the ':' is consumed with the value.
    private mutating func key(_ bytes: Span<UInt8>) throws(JSONParseError) -> JSONToken {
        let start = position
        let lexed = try JSONLexer.string(bytes, at: start, maxContentBytes: maxStringBytes)
        position = lexed.end
        state = .afterKey
        return JSONToken(kind: .key, range: start..<position, depth: depth, hasEscapes: lexed.hasEscapes)
    }

    private mutating func openContainer(isObject: Bool) throws(JSONParseError) -> JSONToken {
        guard depth < maxDepth else { throw JSONParseError(.tooDeep, at: position) }
        // depth < maxDepth <= 1024, so the word index is below 16.
        let word = depth >> 6
        let bit = UInt64(1) << UInt64(depth & 63)
        if isObject {
            objectBits[word] |= bit
        } else {
            objectBits[word] &= ~bit
        }
        let token = JSONToken(
            kind: isObject ? .beginObject : .beginArray,
            range: position..<(position + 1),
            depth: depth
        )
        depth += 1
        position += 1
        state = isObject ? .objectFirstKey : .arrayFirstValue
        return token
    }

    /// Closes the innermost container; the caller has checked the closing byte matches it.
    private mutating func closeContainer(_ kind: JSONToken.Kind) -> JSONToken {
        depth = max(depth - 1, 0)
        let token = JSONToken(kind: kind, range: position..<(position + 1), depth: depth)
        position += 1
        state = .afterValue
        return token
    }

    /// Whether the innermost open container is an object; only meaningful when `depth > 0`.
    private var innermostIsObject: Bool {
        let level = depth - 1
        guard level >= 0, level < JSONLimits.maxSupportedDepth else { return false }
        return objectBits[level >> 6] & (UInt64(1) << UInt64(level & 63)) != 0
    }
}

// MARK: - Scanner

/// Validates a JSON request body and locates its top-level members without building a tree.
///
/// One pass validates the whole document with exactly the rules of `JSONParser` (it shares the tokenizer), so a
/// malformed body is always an error, never a partial answer. Keys are matched after unescaping, so
/// `"mod\u0065l"` is found as `model`; keys and string values inside nested containers are never mistaken for
/// top-level members. The scan itself creates no arrays or strings.
///
/// One deliberate difference from `JSONParser`: detecting every duplicate key needs memory proportional to the
/// number of keys, so the scanner only rejects a duplicate of the member it was asked to find (the case that
/// matters for routing: two `model` members must not let us route on one while the upstream reads the other).
/// `forEachTopLevelMember` reports repeats and leaves the policy to the caller.
public struct JSONScanner: Sendable {
    /// A top-level object member found by `forEachTopLevelMember(_:)`.
    public struct Member: Sendable, Equatable {
        /// The member name's bytes between the quotes, still escaped.
        public var keyContent: Range<Int>
        /// Whether the member name contains a backslash escape.
        public var keyHasEscapes: Bool
        /// The value's raw bytes, from its first byte to just past its last.
        public var value: Range<Int>
        /// Whether the value is a string with a backslash escape.
        public var valueHasEscapes = false
    }

    /// The document.
    public let bytes: [UInt8]
    /// The limits applied while scanning.
    public let limits: JSONLimits

    /// Creates a scanner over a request body; nothing is read until a method is called.
    public init(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) {
        self.bytes = bytes
        self.limits = limits
    }

    // MARK: Whole-document operations

    /// Validates the whole document.
    /// - Returns: The kind of the top-level value.
    /// - Throws: `JSONParseError` at the first problem, exactly as `JSONParser` would report it (duplicate keys
    ///   aside; see the type's documentation).
    @discardableResult
    public func validate() throws(JSONParseError) -> JSONKind {
        try Self.validate(bytes.span, limits: limits)
    }

    /// Validates the whole document and finds the top-level member named `key`.
    /// - Parameter key: The member name, compared with each top-level name after unescaping.
    /// - Returns: The byte range of the member's raw value, or nil if the top-level value is not an object or has
    ///   no such member.
    /// - Throws: `JSONParseError` if the document is invalid, or `.duplicateKey` if `key` appears twice at the
    ///   top level.
    public func findTopLevel(_ key: String) throws(JSONParseError) -> Range<Int>? {
        try Self.findTopLevel(key, in: bytes.span, limits: limits)
    }

    /// Validates the whole document and finds the top-level member whose UTF-8 name is `key`.
    /// - Throws: See the `String` overload.
    public func findTopLevel(_ key: [UInt8]) throws(JSONParseError) -> Range<Int>? {
        try Self.findTopLevel(utf8: key.span, in: bytes.span, limits: limits)
    }

    /// Validates the whole document, calling `body` for each member of the top-level object in order.
    ///
    /// Use this to pick up several members in one pass. `body` runs during the scan, so record what it reports
    /// and use it only if this method returns without throwing. Repeated names are reported as they occur.
    /// - Throws: `JSONParseError` if the document is invalid.
    public func forEachTopLevelMember(_ body: (Member) -> Void) throws(JSONParseError) {
        try Self.forEachTopLevelMember(in: bytes.span, limits: limits, body)
    }

    // MARK: Reading values

    /// Whether `member`'s name, after unescaping, is `key`.
    public func key(of member: Member, equals key: String) -> Bool {
        Self.key(of: member, equals: key, in: bytes.span)
    }

    /// Decodes the JSON string whose raw bytes (including quotes) are `range`, or returns nil if they are not
    /// exactly one valid JSON string.
    public func stringValue(at range: Range<Int>) -> String? {
        guard let content = Self.stringContent(at: range, in: bytes.span) else { return nil }
        if !content.hasEscapes {
            // The common case: one copy straight from the body, and none at all for names up to 15 bytes.
            return String(decoding: bytes[content.range], as: UTF8.self)
        }
        var scratch: [UInt8] = []
        return JSONLexer.decodeString(bytes.span, content: content.range, hasEscapes: true, scratch: &scratch)
    }

    /// The boolean whose raw bytes are `range`, or nil if they are not exactly `true` or `false`.
    public func boolValue(at range: Range<Int>) -> Bool? {
        Self.boolValue(at: range, in: bytes.span)
    }

    /// The integer whose raw bytes are `range`, or nil if they are not a JSON integer (no fraction or exponent)
    /// within `Int64`'s range.
    public func int64Value(at range: Range<Int>) -> Int64? {
        Self.int64Value(at: range, in: bytes.span)
    }

    /// The number whose raw bytes are `range` as a finite `Double`, or nil if they are not a JSON number or it
    /// overflows. Creates a temporary string only for numbers longer than 15 bytes.
    public func doubleValue(at range: Range<Int>) -> Double? {
        Self.doubleValue(at: range, in: bytes.span)
    }

    /// Whether the raw bytes in `range` are exactly `null`.
    public func isNull(at range: Range<Int>) -> Bool {
        Self.isNull(at: range, in: bytes.span)
    }

    /// The kind of the value starting at `range.lowerBound`, judged by its first byte (the range is assumed to
    /// come from this scanner), or nil if the range is empty or out of bounds.
    public func kind(at range: Range<Int>) -> JSONKind? {
        Self.kind(at: range, in: bytes.span)
    }
}

// MARK: - Scanner over borrowed bytes

extension JSONScanner {
    /// Validates a document in borrowed bytes; see `validate()`.
    @discardableResult
    public static func validate(_ bytes: Span<UInt8>, limits: JSONLimits = JSONLimits()) throws(JSONParseError)
        -> JSONKind
    {
        var tokenizer = JSONTokenizer(limits: limits)
        var topLevel = JSONKind.null
        while let token = try tokenizer.next(in: bytes) {
            if token.depth == 0 {
                topLevel = kind(of: token.kind)
            }
        }
        return topLevel
    }

    /// Finds the top-level member named `key` in borrowed bytes; see `findTopLevel(_:)`.
    public static func findTopLevel(
        _ key: String,
        in bytes: Span<UInt8>,
        limits: JSONLimits = JSONLimits()
    ) throws(JSONParseError) -> Range<Int>? {
        var key = key
        // Free for native strings (always the case on Linux); it lets us borrow the key's bytes.
        key.makeContiguousUTF8()
        return try findTopLevel(utf8: key.utf8.span, in: bytes, limits: limits)
    }

    /// Finds the top-level member whose UTF-8 name is `key`; the core of every `findTopLevel` overload.
    static func findTopLevel(
        utf8 key: Span<UInt8>,
        in bytes: Span<UInt8>,
        limits: JSONLimits
    ) throws(JSONParseError) -> Range<Int>? {
        var tokenizer = JSONTokenizer(limits: limits)
        var found: Range<Int>?
        /// Set by a matching top-level key until its value's first token arrives.
        var awaitingValue = false
        /// The start of a matching container value, until its end token arrives.
        var containerStart: Int?
        while let token = try tokenizer.next(in: bytes) {
            guard token.depth == 1 else { continue }
            switch token.kind {
            case .key:
                guard JSONLexer.decodedContent(bytes, token.contentRange, hasEscapes: token.hasEscapes, equals: key)
                else { continue }
                if found != nil || containerStart != nil {
                    throw duplicateKeyError(bytes, token)
                }
                awaitingValue = true
            case .beginObject, .beginArray:
                if awaitingValue {
                    containerStart = token.range.lowerBound
                    awaitingValue = false
                }
            case .endObject, .endArray:
                if let start = containerStart {
                    found = start..<token.range.upperBound
                    containerStart = nil
                }
            case .string, .number, .true, .false, .null:
                if awaitingValue {
                    found = token.range
                    awaitingValue = false
                }
            }
        }
        return found
    }

    /// Calls `body` for each top-level member in borrowed bytes; see `forEachTopLevelMember(_:)`.
    /// - Returns: The kind of the top-level value (`body` is only called for an object).
    @discardableResult
    public static func forEachTopLevelMember(
        in bytes: Span<UInt8>,
        limits: JSONLimits = JSONLimits(),
        _ body: (Member) -> Void
    ) throws(JSONParseError) -> JSONKind {
        var tokenizer = JSONTokenizer(limits: limits)
        var topLevel = JSONKind.null
        var pendingKey: JSONToken?
        var containerStart = 0
        while let token = try tokenizer.next(in: bytes) {
            if token.depth == 0 {
                topLevel = kind(of: token.kind)
                continue
            }
            guard token.depth == 1 else { continue }
            switch token.kind {
            case .key:
                pendingKey = token
            case .beginObject, .beginArray:
                containerStart = token.range.lowerBound
            case .endObject, .endArray:
                if let key = pendingKey {
                    let value = containerStart..<token.range.upperBound
                    body(Member(keyContent: key.contentRange, keyHasEscapes: key.hasEscapes, value: value))
                    pendingKey = nil
                }
            case .string, .number, .true, .false, .null:
                if let key = pendingKey {
                    body(
                        Member(
                            keyContent: key.contentRange, keyHasEscapes: key.hasEscapes, value: token.range,
                            valueHasEscapes: token.hasEscapes))
                    pendingKey = nil
                }
            }
        }
        return topLevel
    }

    /// Whether `member`'s name, after unescaping, is `key`; `bytes` must be the scanned document.
    public static func key(of member: Member, equals key: String, in bytes: Span<UInt8>) -> Bool {
        var key = key
        key.makeContiguousUTF8()
        return JSONLexer.decodedContent(bytes, member.keyContent, hasEscapes: member.keyHasEscapes,
                                        equals: key.utf8.span)
    }

    /// Decodes the JSON string whose raw bytes (including quotes) are `range`; see `stringValue(at:)`.
    public static func stringValue(at range: Range<Int>, in bytes: Span<UInt8>) -> String? {
        guard let content = stringContent(at: range, in: bytes) else { return nil }
        var scratch: [UInt8] = []
        return JSONLexer.decodeString(bytes, content: content.range, hasEscapes: content.hasEscapes,
                                      scratch: &scratch)
    }

    /// The boolean whose raw bytes are `range`; see `boolValue(at:)`.
    public static func boolValue(at range: Range<Int>, in bytes: Span<UInt8>) -> Bool? {
        if matches(bytes, range, JSONLexer.trueBytes) { return true }
        if matches(bytes, range, JSONLexer.falseBytes) { return false }
        return nil
    }

    /// The integer whose raw bytes are `range`; see `int64Value(at:)`.
    public static func int64Value(at range: Range<Int>, in bytes: Span<UInt8>) -> Int64? {
        guard isNumber(bytes, range, integerOnly: true) else { return nil }
        var negative = false
        var magnitude: UInt64 = 0
        for index in range {
            let byte = bytes[index]
            if byte == JSONByte.minus {
                negative = true
                continue
            }
            let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte &- JSONByte.zero))
            guard !overflow1 && !overflow2 else { return nil }
            magnitude = sum
        }
        return JSONNumber.int64(negative: negative, magnitude: magnitude)
    }

    /// The number whose raw bytes are `range`; see `doubleValue(at:)`.
    public static func doubleValue(at range: Range<Int>, in bytes: Span<UInt8>) -> Double? {
        guard isNumber(bytes, range, integerOnly: false) else { return nil }
        guard let value = Double(JSONLexer.text(bytes, range)), value.isFinite else { return nil }
        return value
    }

    /// Whether the raw bytes in `range` are exactly `null`.
    public static func isNull(at range: Range<Int>, in bytes: Span<UInt8>) -> Bool {
        matches(bytes, range, JSONLexer.nullBytes)
    }

    /// The kind of the value starting at `range.lowerBound`; see `kind(at:)`.
    public static func kind(at range: Range<Int>, in bytes: Span<UInt8>) -> JSONKind? {
        guard !range.isEmpty, range.lowerBound >= 0, range.lowerBound < bytes.count else { return nil }
        return kind(ofFirstByte: bytes[range.lowerBound])
    }

    /// The kind of a value that starts with `byte`, or nil if no value starts so.
    @inline(__always)
    static func kind(ofFirstByte byte: UInt8) -> JSONKind? {
        switch byte {
        case JSONByte.openBrace: return .object
        case JSONByte.openBracket: return .array
        case JSONByte.quote: return .string
        case JSONByte.minus, JSONByte.zero...JSONByte.nine: return .number
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .boolean
        case UInt8(ascii: "n"): return .null
        default: return nil
        }
    }

    // MARK: Helpers

    private static func kind(of token: JSONToken.Kind) -> JSONKind {
        switch token {
        case .beginObject, .endObject, .key: .object
        case .beginArray, .endArray: .array
        case .string: .string
        case .number: .number
        case .true, .false: .boolean
        case .null: .null
        }
    }

    /// Builds the duplicate-key error off the hot path; the message needs the decoded name.
    @inline(never)
    private static func duplicateKeyError(_ bytes: Span<UInt8>, _ token: JSONToken) -> JSONParseError {
        var scratch: [UInt8] = []
        let name = JSONLexer.decodeString(bytes, content: token.contentRange, hasEscapes: token.hasEscapes,
                                          scratch: &scratch)
        return JSONParseError(.duplicateKey(name), at: token.range.lowerBound)
    }

    /// Validates that the bytes in `range`, on their own, are exactly one JSON string, and returns its content
    /// range.
    private static func stringContent(at range: Range<Int>, in bytes: Span<UInt8>)
        -> (range: Range<Int>, hasEscapes: Bool)?
    {
        // The bounds are checked before `extracting`, which would trap on a range outside the span.
        guard range.count >= 2, range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        let value = bytes.extracting(range)
        guard value[0] == JSONByte.quote,
            let lexed = try? JSONLexer.string(value, at: 0, maxContentBytes: Int.max),
            lexed.end == value.count
        else { return nil }
        return ((range.lowerBound + 1)..<(range.upperBound - 1), lexed.hasEscapes)
    }

    /// Validates that the bytes in `range`, on their own, are exactly one JSON number, optionally an integer.
    private static func isNumber(_ bytes: Span<UInt8>, _ range: Range<Int>, integerOnly: Bool) -> Bool {
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound <= bytes.count else { return false }
        let value = bytes.extracting(range)
        guard let lexed = try? JSONLexer.number(value, at: 0), lexed.end == value.count else { return false }
        return lexed.isInteger || !integerOnly
    }

    /// Whether the bytes in `range` are exactly `expected`.
    private static func matches(_ bytes: Span<UInt8>, _ range: Range<Int>, _ expected: [UInt8]) -> Bool {
        guard range.count == expected.count, range.lowerBound >= 0, range.upperBound <= bytes.count else {
            return false
        }
        var index = range.lowerBound
        for byte in expected {
            guard bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }
}

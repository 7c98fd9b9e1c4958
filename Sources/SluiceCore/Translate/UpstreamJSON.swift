// Reading an upstream's JSON (a provider's answer, one stream event) by byte ranges, without a tree.
//
// A translator validates the whole document once (`scanTopLevel`, the tokenizer `JSONParser` uses, so the
// same bytes are refused with the same error), then walks only the containers it needs, by range. A walk over
// validated bytes only has to find where each value ends: strings are skipped to their closing quote (eight bytes
// at a time), containers by counting brackets outside strings, so nothing is lexed twice. Every index is still
// checked, so a walk over bytes that are not valid JSON ends early instead of trapping.
// Strings go from the source into the output without becoming a `String`:
// content without escapes is copied as is (the lexer has already refused raw control characters, so it needs
// no escaping), and escaped content is decoded and re-escaped byte by byte exactly as `JSONWriter` escapes a
// `String`, so the output is byte for byte what decoding and re-encoding would give.
//
// Duplicate member names: `JSONParser` refuses them anywhere in a document; a scan cannot remember every name
// without memory per object. Here the last occurrence of a member a translator reads wins (as JavaScript's and
// Python's parsers do), and members it does not read are passed over. Either way the metered usage is the
// usage the client is shown, since both come from the same read.

/// Range-based readers and copiers for untrusted upstream JSON.
enum UpstreamJSON {
    /// A value found by a scan: its raw bytes and, for a string, whether its content has a backslash escape.
    struct Value: Equatable {
        var range: Range<Int>
        var hasEscapes: Bool
    }

    /// A member of an object found by a scan.
    struct Member {
        /// The name's bytes between the quotes, still escaped.
        var keyContent: Range<Int>
        var keyHasEscapes: Bool
        var value: Value

        /// Whether the name, after unescaping, is `name`.
        func key(_ name: String, in bytes: Span<UInt8>) -> Bool {
            JSONLexer.decodedContent(bytes, keyContent, hasEscapes: keyHasEscapes, equals: name.utf8.span)
        }
    }

    // MARK: - Walking

    /// Validates the whole document and calls `body` for each member of the top-level object, in order.
    /// - Returns: The kind of the top-level value (`body` is only called for an object).
    /// - Throws: `JSONParseError` exactly as `JSONParser.parse` would, duplicate names aside.
    @discardableResult
    static func scanTopLevel(_ bytes: Span<UInt8>, _ body: (Member) -> Void) throws(JSONParseError) -> JSONKind {
        try forEachChild(bytes, offset: 0, member: body, element: { _ in })
    }

    /// Calls `body` for each member of the object at `value` (nothing if it is absent or not an object).
    /// `bytes` must be the validated document `value` was found in.
    static func forEachMember(of value: Value?, in bytes: Span<UInt8>, _ body: (Member) -> Void) {
        guard let value, kind(of: value, in: bytes) == .object else { return }
        let end = min(value.range.upperBound, bytes.count)
        var cursor = value.range.lowerBound + 1
        while let keyStart = nextChild(from: cursor, before: end, in: bytes), bytes[keyStart] == JSONByte.quote {
            let key = stringEnd(from: keyStart, before: end, in: bytes)
            guard key.end - 1 > keyStart else { return }
            var index = skipWhitespace(from: key.end, before: end, in: bytes)
            guard index < end, bytes[index] == JSONByte.colon else { return }
            index = skipWhitespace(from: index + 1, before: end, in: bytes)
            guard index < end else { return }
            let found = valueEnd(from: index, before: end, in: bytes)
            body(
                Member(
                    keyContent: (keyStart + 1)..<(key.end - 1), keyHasEscapes: key.hasEscapes,
                    value: Value(range: index..<found.end, hasEscapes: found.hasEscapes)))
            cursor = found.end
        }
    }

    /// Calls `body` for each element of the array at `value` (nothing if it is absent or not an array).
    static func forEachElement(of value: Value?, in bytes: Span<UInt8>, _ body: (Value) -> Void) {
        guard let value, kind(of: value, in: bytes) == .array else { return }
        let end = min(value.range.upperBound, bytes.count)
        var cursor = value.range.lowerBound + 1
        while let start = nextChild(from: cursor, before: end, in: bytes) {
            let found = valueEnd(from: start, before: end, in: bytes)
            body(Value(range: start..<found.end, hasEscapes: found.hasEscapes))
            cursor = found.end
        }
    }

    /// The member `name` of the object at `value` (the last one, if repeated), or nil.
    static func member(_ name: String, of value: Value?, in bytes: Span<UInt8>) -> Value? {
        var found: Value?
        forEachMember(of: value, in: bytes) { member in
            if member.key(name, in: bytes) { found = member.value }
        }
        return found
    }

    /// The validating pass: every token of the document, reporting the top-level object's members.
    private static func forEachChild(
        _ bytes: Span<UInt8>, offset: Int, member: (Member) -> Void, element: (Value) -> Void
    ) throws(JSONParseError) -> JSONKind {
        var tokenizer = JSONTokenizer(limits: JSONLimits())
        var topLevel = JSONKind.null
        var pendingKey: JSONToken?
        var containerStart = 0
        while let token = try tokenizer.next(in: bytes) {
            if token.depth == 0 {
                switch token.kind {
                case .beginObject: topLevel = .object
                case .beginArray: topLevel = .array
                case .string: topLevel = .string
                case .number: topLevel = .number
                case .true, .false: topLevel = .boolean
                case .null, .key, .endObject, .endArray: break
                }
                continue
            }
            guard token.depth == 1 else { continue }
            let found: Value
            switch token.kind {
            case .key:
                pendingKey = token
                continue
            case .beginObject, .beginArray:
                containerStart = token.range.lowerBound
                continue
            case .endObject, .endArray:
                found = Value(range: (offset + containerStart)..<(offset + token.range.upperBound), hasEscapes: false)
            case .string, .number, .true, .false, .null:
                found = Value(
                    range: (offset + token.range.lowerBound)..<(offset + token.range.upperBound),
                    hasEscapes: token.hasEscapes)
            }
            if let key = pendingKey {
                let content = key.contentRange
                member(
                    Member(
                        keyContent: (offset + content.lowerBound)..<(offset + content.upperBound),
                        keyHasEscapes: key.hasEscapes, value: found))
                pendingKey = nil
            } else {
                element(found)
            }
        }
        return topLevel
    }

    // MARK: - Skipping over validated bytes

    /// The start of the next member or element at or after `cursor` (past a separating comma), or nil at the
    /// container's end.
    private static func nextChild(from cursor: Int, before end: Int, in bytes: Span<UInt8>) -> Int? {
        var index = skipWhitespace(from: cursor, before: end, in: bytes)
        if index < end, bytes[index] == JSONByte.comma { index = skipWhitespace(from: index + 1, before: end, in: bytes) }
        guard index < end else { return nil }
        let byte = bytes[index]
        return byte == JSONByte.closeBrace || byte == JSONByte.closeBracket ? nil : index
    }

    private static func skipWhitespace(from start: Int, before end: Int, in bytes: Span<UInt8>) -> Int {
        var index = max(start, 0)
        while index < end && JSONByte.isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    /// Just past the value that starts at `start`, and whether it is a string with escapes.
    private static func valueEnd(from start: Int, before end: Int, in bytes: Span<UInt8>) -> (end: Int, hasEscapes: Bool) {
        guard start >= 0, start < end else { return (end, false) }
        switch bytes[start] {
        case JSONByte.quote:
            return stringEnd(from: start, before: end, in: bytes)
        case JSONByte.openBrace, JSONByte.openBracket:
            var depth = 0
            var index = start
            while index < end {
                switch bytes[index] {
                case JSONByte.quote:
                    index = stringEnd(from: index, before: end, in: bytes).end
                    continue
                case JSONByte.openBrace, JSONByte.openBracket:
                    depth += 1
                case JSONByte.closeBrace, JSONByte.closeBracket:
                    depth -= 1
                    if depth == 0 { return (index + 1, false) }
                default:
                    break
                }
                index += 1
            }
            return (end, false)
        default:
            // A number or a literal runs to the next delimiter.
            var index = start + 1
            while index < end {
                let byte = bytes[index]
                if byte == JSONByte.comma || byte == JSONByte.closeBrace || byte == JSONByte.closeBracket
                    || JSONByte.isWhitespace(byte)
                {
                    break
                }
                index += 1
            }
            return (index, false)
        }
    }

    /// Just past the string whose opening quote is at `start`, and whether its content has a backslash.
    private static func stringEnd(from start: Int, before end: Int, in bytes: Span<UInt8>) -> (end: Int, hasEscapes: Bool) {
        var hasEscapes = false
        var index = start + 1
        while index < end {
            // Eight bytes at a time while none is a quote or a backslash (answers are long strings).
            while index + 8 <= end {
                let word = JSONLexer.word(bytes, at: index)
                if hasByte(word, JSONByte.quote) || hasByte(word, JSONByte.backslash) { break }
                index += 8
            }
            let wordEnd = index + 8
            while index < end && index < wordEnd {
                let byte = bytes[index]
                if byte == JSONByte.quote { return (index + 1, hasEscapes) }
                if byte == JSONByte.backslash {
                    hasEscapes = true
                    index += 2
                } else {
                    index += 1
                }
            }
        }
        return (end, hasEscapes)
    }

    /// Whether any byte of `word` is `byte` (the "has a zero byte" test on `word ^ byte * 0x0101…01`).
    @inline(__always)
    private static func hasByte(_ word: UInt64, _ byte: UInt8) -> Bool {
        let x = word ^ (UInt64(byte) &* 0x0101_0101_0101_0101)
        return (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080 != 0
    }

    // MARK: - Reading scalars

    /// The kind of `value`, judged by its first byte.
    static func kind(of value: Value?, in bytes: Span<UInt8>) -> JSONKind? {
        guard let value else { return nil }
        return JSONScanner.kind(at: value.range, in: bytes)
    }

    /// Whether `value` is a string.
    static func isString(_ value: Value?, in bytes: Span<UInt8>) -> Bool {
        kind(of: value, in: bytes) == .string
    }

    /// The string's content (without the quotes), if `value` is a string.
    static func stringContent(_ value: Value?, in bytes: Span<UInt8>) -> Range<Int>? {
        guard let value, value.range.count >= 2, value.range.upperBound <= bytes.count, isString(value, in: bytes) else {
            return nil
        }
        return (value.range.lowerBound + 1)..<(value.range.upperBound - 1)
    }

    /// Whether `value` is a string whose content, unescaped, is `text`.
    static func string(_ value: Value?, equals text: String, in bytes: Span<UInt8>) -> Bool {
        guard let value, let content = stringContent(value, in: bytes) else { return false }
        return JSONLexer.decodedContent(bytes, content, hasEscapes: value.hasEscapes, equals: text.utf8.span)
    }

    /// Whether `value` is a string with at least one character (escapes never decode to nothing).
    static func isNonEmptyString(_ value: Value?, in bytes: Span<UInt8>) -> Bool {
        guard let content = stringContent(value, in: bytes) else { return false }
        return !content.isEmpty
    }

    /// The string, decoded, if `value` is one. For short, enum-like values (stop reasons): text that is copied
    /// into the output goes through `appendStringContent` instead.
    static func string(_ value: Value?, in bytes: Span<UInt8>) -> String? {
        guard let value, isString(value, in: bytes) else { return nil }
        return JSONScanner.stringValue(at: value.range, in: bytes)
    }

    /// The integer, if `value` is a JSON integer within `Int64`.
    static func int64(_ value: Value?, in bytes: Span<UInt8>) -> Int64? {
        guard let value else { return nil }
        return JSONScanner.int64Value(at: value.range, in: bytes)
    }

    /// The boolean, if `value` is `true` or `false`.
    static func bool(_ value: Value?, in bytes: Span<UInt8>) -> Bool? {
        guard let value else { return nil }
        return JSONScanner.boolValue(at: value.range, in: bytes)
    }

    /// Whether `value` is present and not `null` (usage counts: `null` means "not reported").
    static func isPresent(_ value: Value?, in bytes: Span<UInt8>) -> Bool {
        guard let kind = kind(of: value, in: bytes) else { return false }
        return kind != .null
    }

    /// The string pieces one OpenAI text member joins (text blocks, thinking blocks, parts), counted on a first
    /// pass so that the usual single piece is copied without another pass over its container.
    struct TextPieces {
        /// The number of string pieces.
        private(set) var count = 0
        /// The first string piece.
        private(set) var first: Value?
        /// Whether the joined text is empty (no piece, or only empty ones).
        private(set) var isEmpty = true

        /// Counts `value` if it is a string; anything else is not a piece.
        mutating func add(_ value: Value?, in bytes: Span<UInt8>) {
            guard let value, let content = stringContent(value, in: bytes) else { return }
            count += 1
            if first == nil { first = value }
            if !content.isEmpty { isEmpty = false }
        }

        /// Writes the joined text as a string value: the single piece straight from the source, or, for several
        /// pieces, each piece `forEachPiece` reports (a second pass over the container) in order.
        func write(from source: [UInt8], to writer: inout JSONWriter, _ forEachPiece: ((Value) -> Void) -> Void) {
            guard count > 1 else {
                writeString(first, from: source, or: "", to: &writer)
                return
            }
            writer.beginRawValue()
            writer.bytes.append(JSONByte.quote)
            forEachPiece { piece in appendStringContent(piece, from: source, to: &writer.bytes) }
            writer.bytes.append(JSONByte.quote)
            writer.endRawValue()
        }
    }

    // MARK: - Copying into the output

    /// Appends the content of the string `value` (no quotes), escaped as `JSONWriter` escapes a `String`.
    /// Does nothing if `value` is not a string of `source`.
    static func appendStringContent(_ value: Value, from source: [UInt8], to output: inout [UInt8]) {
        let bytes = source.span
        guard let content = stringContent(value, in: bytes) else { return }
        if !value.hasEscapes {
            // Lexed content without a backslash has no quote and no control byte: nothing to escape.
            output.append(contentsOf: source[content])
            return
        }
        _ = JSONLexer.forEachDecodedByte(bytes, content: content) { byte in
            JSONWriter.appendEscaped(byte: byte, to: &output)
            return true
        }
    }

    /// Writes the string `value` as a JSON string value, or `fallback` when `value` is not a string.
    static func writeString(
        _ value: Value?, from source: [UInt8], prefix: String = "", or fallback: String, to writer: inout JSONWriter
    ) {
        guard let value, isString(value, in: source.span) else {
            writer.string(fallback)
            return
        }
        writer.beginRawValue()
        writer.bytes.append(JSONByte.quote)
        writer.bytes.append(contentsOf: prefix.utf8)
        appendStringContent(value, from: source, to: &writer.bytes)
        writer.bytes.append(JSONByte.quote)
        writer.endRawValue()
    }

    /// Writes `value` in compact form (no whitespace, strings escaped canonically, numbers as written): what
    /// serialising its parsed tree would write.
    static func writeCompact(_ value: Value, from source: [UInt8], to writer: inout JSONWriter) {
        writer.beginRawValue()
        appendCompact(value, from: source, asStringContent: false, to: &writer.bytes)
        writer.endRawValue()
    }

    /// Writes `value`'s compact form as a JSON string (OpenAI carries tool arguments as a string of JSON).
    static func writeCompactAsString(_ value: Value, from source: [UInt8], to writer: inout JSONWriter) {
        writer.beginRawValue()
        writer.bytes.append(JSONByte.quote)
        appendCompact(value, from: source, asStringContent: true, to: &writer.bytes)
        writer.bytes.append(JSONByte.quote)
        writer.endRawValue()
    }

    /// Appends the compact form of `value`; with `asStringContent`, escaped once more to sit inside a string.
    static func appendCompact(_ value: Value, from source: [UInt8], asStringContent: Bool, to output: inout [UInt8]) {
        let bytes = source.span
        guard value.range.lowerBound >= 0, value.range.upperBound <= bytes.count, !value.range.isEmpty else { return }
        let offset = value.range.lowerBound
        let part = bytes.extracting(value.range)
        var tokenizer = JSONTokenizer(limits: JSONLimits())
        /// Whether the previous token ended a value, so the next element needs a comma first.
        var afterValue = false
        /// Appends a byte of the compact form, escaped again when the form goes inside a string.
        func emit(_ byte: UInt8, _ output: inout [UInt8]) {
            if asStringContent { JSONWriter.appendEscaped(byte: byte, to: &output) } else { output.append(byte) }
        }
        func emitString(_ token: JSONToken, _ output: inout [UInt8]) {
            emit(JSONByte.quote, &output)
            let content = token.contentRange
            let absolute = (offset + content.lowerBound)..<(offset + content.upperBound)
            if !token.hasEscapes {
                // No quote, backslash or control byte: nothing to escape, even twice.
                output.append(contentsOf: source[absolute])
            } else {
                _ = JSONLexer.forEachDecodedByte(bytes, content: absolute) { byte in
                    if asStringContent {
                        appendEscapedTwice(byte, to: &output)
                    } else {
                        JSONWriter.appendEscaped(byte: byte, to: &output)
                    }
                    return true
                }
            }
            emit(JSONByte.quote, &output)
        }
        while let token = try? tokenizer.next(in: part) {
            switch token.kind {
            case .endObject, .endArray:
                emit(token.kind == .endObject ? JSONByte.closeBrace : JSONByte.closeBracket, &output)
                afterValue = true
            case .key:
                if afterValue { emit(JSONByte.comma, &output) }
                emitString(token, &output)
                emit(JSONByte.colon, &output)
                afterValue = false
            case .beginObject, .beginArray:
                if afterValue { emit(JSONByte.comma, &output) }
                emit(token.kind == .beginObject ? JSONByte.openBrace : JSONByte.openBracket, &output)
                afterValue = false
            case .string:
                if afterValue { emit(JSONByte.comma, &output) }
                emitString(token, &output)
                afterValue = true
            case .number, .true, .false, .null:
                if afterValue { emit(JSONByte.comma, &output) }
                // Numbers and literals hold no byte that needs escaping, even inside a string.
                output.append(contentsOf: source[(offset + token.range.lowerBound)..<(offset + token.range.upperBound)])
                afterValue = true
            }
        }
    }

    /// Appends `byte` as it appears in a string of JSON that itself sits inside a JSON string: its escape
    /// sequence (if JSON needs one), with that sequence's backslash and quote escaped again.
    private static func appendEscapedTwice(_ byte: UInt8, to output: inout [UInt8]) {
        switch byte {
        case JSONByte.quote, JSONByte.backslash:
            // `\"` -> `\\\"`: the inner backslash and the byte itself, each escaped.
            output.append(JSONByte.backslash)
            output.append(JSONByte.backslash)
            output.append(JSONByte.backslash)
            output.append(byte)
        case 0..<0x20:
            // `\n`, `\u001f`: only the leading backslash needs escaping again.
            output.append(JSONByte.backslash)
            JSONWriter.appendEscaped(byte: byte, to: &output)
        default:
            output.append(byte)
        }
    }
}

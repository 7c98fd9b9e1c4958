// Reading an upstream's JSON (a provider's answer, one stream event) by byte ranges, without a tree.
//
// A translator validates the whole document once (`scanTopLevel`, the tokenizer `JSONParser` uses, so the
// same bytes are refused with the same error), then walks only the containers it needs, by range, with the
// navigation the request side uses too (`JSONNavigation`): nothing is lexed twice, and a walk over bytes that are
// not valid JSON ends early instead of trapping.
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
        try JSONScanner.forEachTopLevelMember(in: bytes) { member in
            body(
                Member(
                    keyContent: member.keyContent, keyHasEscapes: member.keyHasEscapes,
                    value: Value(range: member.value, hasEscapes: member.valueHasEscapes)))
        }
    }

    /// Calls `body` for each member of the object at `value` (nothing if it is absent or not an object).
    /// `bytes` must be the validated document `value` was found in.
    static func forEachMember(of value: Value?, in bytes: Span<UInt8>, _ body: (Member) -> Void) {
        guard let value, kind(of: value, in: bytes) == .object else { return }
        var cursor = value.range.lowerBound + 1
        while let member = JSONNavigation.nextMember(from: cursor, before: value.range.upperBound, in: bytes) {
            body(
                Member(
                    keyContent: member.keyContent, keyHasEscapes: member.keyHasEscapes,
                    value: Value(range: member.value, hasEscapes: member.valueHasEscapes)))
            cursor = member.value.upperBound
        }
    }

    /// Calls `body` for each element of the array at `value` (nothing if it is absent or not an array).
    static func forEachElement(of value: Value?, in bytes: Span<UInt8>, _ body: (Value) -> Void) {
        guard let value, kind(of: value, in: bytes) == .array else { return }
        var cursor = value.range.lowerBound + 1
        while let element = JSONNavigation.nextElement(from: cursor, before: value.range.upperBound, in: bytes) {
            body(Value(range: element.range, hasEscapes: element.hasEscapes))
            cursor = element.range.upperBound
        }
    }

    /// The first element of the array at `value` (a hub answer's or chunk's first choice), or nil if it is
    /// absent, not an array or empty. Reads no further than that element.
    static func firstElement(of value: Value?, in bytes: Span<UInt8>) -> Value? {
        guard let value, kind(of: value, in: bytes) == .array,
            let first = JSONNavigation.nextElement(
                from: value.range.lowerBound + 1, before: value.range.upperBound, in: bytes)
        else { return nil }
        return Value(range: first.range, hasEscapes: first.hasEscapes)
    }

    /// The member `name` of the object at `value` (the last one, if repeated), or nil.
    static func member(_ name: String, of value: Value?, in bytes: Span<UInt8>) -> Value? {
        var found: Value?
        forEachMember(of: value, in: bytes) { member in
            if member.key(name, in: bytes) { found = member.value }
        }
        return found
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
        guard let value else { return nil }
        return JSONNavigation.stringContent(value.range, in: bytes)
    }

    /// Whether `value` is a string whose content, unescaped, is `text`.
    static func string(_ value: Value?, equals text: String, in bytes: Span<UInt8>) -> Bool {
        guard let value else { return false }
        var text = text
        text.makeContiguousUTF8()
        return JSONNavigation.string(value.range, in: bytes, hasEscapes: value.hasEscapes, equals: text.utf8.span)
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

    /// The string, decoded, if `value` is one of at most 15 bytes (a `String` that small is kept without an
    /// allocation): for enum-like values such as finish reasons, where a longer one is none of those known.
    static func shortString(_ value: Value?, in bytes: Span<UInt8>) -> String? {
        guard let content = stringContent(value, in: bytes), content.count <= 15 else { return nil }
        return string(value, in: bytes)
    }

    /// The integer, if `value` is a JSON integer within `Int64`.
    static func int64(_ value: Value?, in bytes: Span<UInt8>) -> Int64? {
        guard let value else { return nil }
        return JSONScanner.int64Value(at: value.range, in: bytes)
    }

    /// The number as a finite `Double`, if `value` is a number.
    static func double(_ value: Value?, in bytes: Span<UInt8>) -> Double? {
        guard let value else { return nil }
        return JSONScanner.doubleValue(at: value.range, in: bytes)
    }

    /// The top-level value of a document `scanTopLevel` validated (from its first byte to the end).
    static func root(of bytes: Span<UInt8>) -> Value {
        Value(range: JSONNavigation.skipWhitespace(from: 0, before: bytes.count, in: bytes)..<bytes.count, hasEscapes: false)
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
        guard let content = stringContent(value, in: source.span) else { return }
        JSONNavigation.appendCanonicalContent(content, hasEscapes: value.hasEscapes, of: source, to: &output)
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
        JSONNavigation.appendCompact(
            value.range, of: source, strings: .canonical, asStringContent: asStringContent, to: &output)
    }
}

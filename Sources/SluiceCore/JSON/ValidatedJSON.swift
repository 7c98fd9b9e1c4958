// A request body validated once with `JSONParser`'s exact rules, then read in place by byte ranges.
//
// The request translators (OpenAI chat -> Anthropic, Gemini, Bedrock Converse) used to parse the body into a
// `JSONValue` tree and serialise parts of it again. This file gives them what they need without the tree:
//  - `JSONValidator`: one pass of the shared tokenizer (`JSONTokenizer`) plus duplicate-key detection, so a body
//    is accepted or refused exactly as `JSONParser.parse` would, with the same error and offset.
//  - `ValidatedJSON`: navigation over the validated bytes (value ends, object members, array elements, a few
//    named members at once; the steps are `JSONNavigation`'s, shared with `UpstreamJSON`) and scalar readers. Values are `Range<Int>`s into the body; copying one into the
//    output is a `memcpy` of valid JSON.
//
// Navigation relies on validation having succeeded, but stays total: every index is checked against the count,
// and on bytes that are not valid JSON it returns short or empty answers instead of trapping.

// MARK: - Validation

/// Validates documents with `JSONParser`'s rules (duplicate member names included), keeping its key buffer
/// between documents so a request's body and the JSON strings inside it share one allocation.
struct JSONValidator {
    /// Duplicate member names: rejected (the parser's rule), or allowed (for bytes serialised from a `JSONValue`,
    /// whose lookups take the first member of a name, as `JSONObject`'s subscript does).
    enum DuplicateKeys { case reject, allow }

    /// Objects with more names than this are indexed by a seeded hash instead of searched linearly, so a huge
    /// object costs linear time even when its names were chosen to collide under FNV.
    static let linearSearchLimit = 32

    let limits: JSONLimits
    let duplicateKeys: DuplicateKeys
    /// The names of every open object, each object's run preceded by a marker (a key with a negative range)
    /// whose `hash` holds the index of the enclosing object's marker.
    private var entries: [JSONStringKey] = []
    /// Seeded-hash indexes of the open objects that outgrew the linear search, innermost last.
    private var largeObjects: [(marker: Int, index: [Int: Int])] = []

    init(limits: JSONLimits = JSONLimits(), duplicateKeys: DuplicateKeys = .reject) {
        self.limits = limits
        self.duplicateKeys = duplicateKeys
    }

    /// Validates `bytes` as one JSON document.
    /// - Throws: the `JSONParseError` `JSONParser.parse(bytes, limits:)` would throw.
    mutating func validate(_ bytes: [UInt8]) throws(JSONParseError) -> ValidatedJSON {
        try validate(bytes, capturing: JSONKeys<0>()).document
    }

    /// Validates `bytes` and, in the same pass, finds the top-level members named in `keys` (what
    /// `ValidatedJSON.fields(of: root, keys)` would find, without a second pass over the document).
    mutating func validate<let count: Int>(_ bytes: [UInt8], capturing keys: JSONKeys<count>)
        throws(JSONParseError) -> (document: ValidatedJSON, rootFields: JSONFields<count>)
    {
        let span = bytes.span
        var tokenizer = JSONTokenizer(limits: limits)
        var start = -1
        var end = 0
        entries.removeAll(keepingCapacity: true)
        largeObjects.removeAll(keepingCapacity: true)
        var marker = -1
        var rootFields = JSONFields<count>()
        /// The position in `keys` of the top-level member whose value comes next, and of the container value
        /// being read (with its start).
        var pendingField = -1
        var containerField = -1
        var containerStart = 0
        var longStrings: [Range<Int>] = []
        while let token = try tokenizer.next(in: span) {
            if start < 0 { start = token.range.lowerBound }
            end = token.range.upperBound
            if token.kind == .string, token.range.count >= ValidatedJSON.longStringBytes { longStrings.append(token.range) }
            if count > 0, token.depth == 1 {
                switch token.kind {
                case .key:
                    pendingField = keys.position(of: token.contentRange, hasEscapes: token.hasEscapes, in: span)
                case .beginObject, .beginArray:
                    containerField = pendingField
                    containerStart = token.range.lowerBound
                    pendingField = -1
                case .endObject, .endArray:
                    if containerField >= 0 { rootFields.record(containerStart..<token.range.upperBound, at: containerField) }
                    containerField = -1
                default:
                    if pendingField >= 0 { rootFields.record(token.range, at: pendingField) }
                    pendingField = -1
                }
            }
            guard duplicateKeys == .reject else { continue }
            switch token.kind {
            case .beginObject:
                if entries.capacity == 0 { entries.reserveCapacity(32) }
                entries.append(
                    JSONStringKey(hash: UInt64(bitPattern: Int64(marker)), content: -1..<(-1), hasEscapes: false,
                                  nonASCII: false))
                marker = entries.count - 1
            case .endObject:
                guard marker >= 0, marker < entries.count else { break }
                if let last = largeObjects.last, last.marker == marker { largeObjects.removeLast() }
                let enclosing = Int(Int64(bitPattern: entries[marker].hash))
                entries.removeSubrange(marker...)
                marker = enclosing
            case .key:
                try register(token, in: span, marker: marker)
            default:
                break
            }
        }
        guard start >= 0 else { throw JSONParseError(.unexpectedEndOfInput, at: bytes.count) }
        return (ValidatedJSON(bytes: bytes, root: start..<end, longStrings: longStrings), rootFields)
    }

    /// Adds a member name to the innermost object, rejecting a repeat (names compare as `String`s).
    private mutating func register(_ token: JSONToken, in span: Span<UInt8>, marker: Int) throws(JSONParseError) {
        guard marker >= 0 else { return }
        let key = JSONStringKey(span, token.contentRange, hasEscapes: token.hasEscapes)
        let first = marker + 1
        let count = entries.count - first
        if count < Self.linearSearchLimit {
            for index in first..<entries.count where entries[index].equals(key, in: span) {
                throw Self.duplicate(span, token)
            }
        } else {
            if largeObjects.last?.marker != marker {
                var index: [Int: Int] = [:]
                index.reserveCapacity(count * 2)
                for position in first..<entries.count {
                    let seeded = entries[position].seededHash(in: span)
                    if index[seeded] == nil { index[seeded] = position }
                }
                largeObjects.append((marker, index))
            }
            let seeded = key.seededHash(in: span)
            if let candidate = largeObjects[largeObjects.count - 1].index[seeded] {
                if entries[candidate].equals(key, in: span) { throw Self.duplicate(span, token) }
                // Two names with one 64-bit seeded hash: only a linear search is exact.
                for index in first..<entries.count where entries[index].equals(key, in: span) {
                    throw Self.duplicate(span, token)
                }
            } else {
                largeObjects[largeObjects.count - 1].index[seeded] = entries.count
            }
        }
        entries.append(key)
    }

    @inline(never)
    private static func duplicate(_ span: Span<UInt8>, _ token: JSONToken) -> JSONParseError {
        var scratch: [UInt8] = []
        let name = JSONLexer.decodeString(span, content: token.contentRange, hasEscapes: token.hasEscapes,
                                          scratch: &scratch)
        return JSONParseError(.duplicateKey(name), at: token.range.lowerBound)
    }
}

// MARK: - Comparing strings in place

/// A string's content in a document, with what it takes to compare it with another one as `String`s compare:
/// by decoded text, and for non-ASCII text by canonical equivalence ("e\u0301" is "\u00e9", and U+212A KELVIN
/// SIGN is "K"), which `JSONParser`'s duplicate check and `[String: …]` lookups both follow.
struct JSONStringKey {
    /// FNV-1a of the decoded bytes: cheap, and enough to compare a few dozen names.
    var hash: UInt64
    /// The content between the quotes, still escaped.
    var content: Range<Int>
    var hasEscapes: Bool
    /// Whether the decoded text has a non-ASCII scalar (then `String` decides equality).
    var nonASCII: Bool

    init(hash: UInt64, content: Range<Int>, hasEscapes: Bool, nonASCII: Bool) {
        self.hash = hash
        self.content = content
        self.hasEscapes = hasEscapes
        self.nonASCII = nonASCII
    }

    init(_ span: Span<UInt8>, _ content: Range<Int>, hasEscapes: Bool) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var high: UInt8 = 0
        if content.lowerBound >= 0, content.upperBound <= span.count {
            if !hasEscapes {
                for index in content {
                    let byte = span[index]
                    high |= byte
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                }
            } else {
                _ = JSONLexer.forEachDecodedByte(span, content: content) { byte in
                    high |= byte
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                    return true
                }
            }
        }
        self.init(hash: hash, content: content, hasEscapes: hasEscapes, nonASCII: high >= 0x80)
    }

    /// Whether both strings are equal as `String`s.
    func equals(_ other: JSONStringKey, in span: Span<UInt8>) -> Bool {
        if nonASCII || other.nonASCII {
            return decoded(span) == other.decoded(span)
        }
        guard hash == other.hash else { return false }
        if !hasEscapes {
            return JSONLexer.decodedContent(span, other.content, hasEscapes: other.hasEscapes,
                                            equals: span.extracting(content))
        }
        if !other.hasEscapes {
            return JSONLexer.decodedContent(span, content, hasEscapes: true, equals: span.extracting(other.content))
        }
        return decoded(span) == other.decoded(span)
    }

    /// `String`'s per-process seeded hash of the decoded text, which equal strings share.
    func seededHash(in span: Span<UInt8>) -> Int {
        decoded(span).hashValue
    }

    func decoded(_ span: Span<UInt8>) -> String {
        guard content.lowerBound >= 0, content.upperBound <= span.count else { return "" }
        var scratch: [UInt8] = []
        return JSONLexer.decodeString(span, content: content, hasEscapes: hasEscapes, scratch: &scratch)
    }
}

/// Distinct strings of one document (tool call ids, tool names), each with a value, found as a
/// `[String: Value]` would find them: linear search while small, a seeded hash index beyond.
struct JSONStringTable<Value> {
    private(set) var keys: [JSONStringKey] = []
    private(set) var values: [Value] = []
    /// Seeded hash -> first entry with it, built once the table outgrows a linear search.
    private var index: [Int: Int] = [:]

    var count: Int { keys.count }

    /// The position of the string equal to `key`, if present.
    func position(of key: JSONStringKey, in span: Span<UInt8>) -> Int? {
        if keys.count <= JSONValidator.linearSearchLimit {
            for position in keys.indices where keys[position].equals(key, in: span) { return position }
            return nil
        }
        guard let candidate = index[key.seededHash(in: span)] else { return nil }
        if keys[candidate].equals(key, in: span) { return candidate }
        // Two strings with one 64-bit seeded hash: only a linear search is exact.
        for position in keys.indices where keys[position].equals(key, in: span) { return position }
        return nil
    }

    func value(at position: Int) -> Value? {
        values.indices.contains(position) ? values[position] : nil
    }

    /// Sets the value of `key`, adding it if absent (`table[key] = value`).
    mutating func set(_ key: JSONStringKey, _ value: Value, in span: Span<UInt8>) {
        if let position = position(of: key, in: span) {
            values[position] = value
        } else {
            append(key, value, in: span)
        }
    }

    /// Adds `key` with `value` unless an equal string is present; returns whether it was added.
    @discardableResult
    mutating func insert(_ key: JSONStringKey, _ value: Value, in span: Span<UInt8>) -> Bool {
        guard position(of: key, in: span) == nil else { return false }
        append(key, value, in: span)
        return true
    }

    private mutating func append(_ key: JSONStringKey, _ value: Value, in span: Span<UInt8>) {
        keys.append(key)
        values.append(value)
        if keys.count == JSONValidator.linearSearchLimit + 1 {
            for position in keys.indices {
                let seeded = keys[position].seededHash(in: span)
                if index[seeded] == nil { index[seeded] = position }
            }
        } else if keys.count > JSONValidator.linearSearchLimit {
            let seeded = key.seededHash(in: span)
            if index[seeded] == nil { index[seeded] = keys.count - 1 }
        }
    }
}

// MARK: - Reading

/// Names of the object members a reader wants, looked up together in one pass (`ValidatedJSON.fields`).
struct JSONKeys<let count: Int>: Sendable {
    let names: [[UInt8]]
    /// Bit n is set when a name is n bytes long (n < 64): most members a reader does not want are passed over
    /// by their length alone.
    let lengths: UInt64

    init(_ names: String...) {
        self.init(names)
    }

    init(_ names: [String]) {
        self.names = names.prefix(count).map { Array($0.utf8) }
        lengths = self.names.reduce(0) { $1.count < 64 ? $0 | 1 << UInt64($1.count) : $0 }
    }

    /// The position of the name whose content (still escaped) is `content` in `document`, or -1.
    func position(of content: Range<Int>, in document: ValidatedJSON) -> Int {
        position(of: content, hasEscapes: nil, in: document.bytes.span)
    }

    /// The position of a name, comparing after unescaping; `hasEscapes` nil means "look".
    func position(of content: Range<Int>, hasEscapes: Bool?, in span: Span<UInt8>) -> Int {
        guard content.lowerBound >= 0, content.upperBound <= span.count else { return -1 }
        if content.count < 64 && lengths & 1 << UInt64(content.count) != 0 {
            for position in names.indices {
                let name = names[position]
                guard name.count == content.count else { continue }
                var equal = true
                var offset = 0
                for index in content {
                    if span[index] != name[offset] {
                        equal = false
                        break
                    }
                    offset += 1
                }
                if equal { return position }
            }
        }
        // An escaped name decodes to fewer bytes than it takes, so only an escaped one needs another look.
        var escaped = hasEscapes ?? false
        if hasEscapes == nil {
            for index in content where span[index] == JSONByte.backslash {
                escaped = true
                break
            }
        }
        guard escaped else { return -1 }
        for position in names.indices {
            let name = names[position]
            if JSONLexer.decodedContent(span, content, hasEscapes: true, equals: name.span) { return position }
        }
        return -1
    }
}

/// The values of the members named by a `JSONKeys`, by position; nil when absent.
struct JSONFields<let count: Int> {
    fileprivate var values = InlineArray<count, Range<Int>>(repeating: 0..<0)

    /// Records `value` at `position` unless a value is there already (the first of repeated names counts).
    mutating func record(_ value: Range<Int>, at position: Int) {
        guard position >= 0, position < count, values[position].isEmpty else { return }
        values[position] = value
    }

    subscript(_ position: Int) -> Range<Int>? {
        guard position >= 0, position < count else { return nil }
        let value = values[position]
        return value.isEmpty ? nil : value
    }
}

/// A validated JSON document read in place.
struct ValidatedJSON {
    /// The document.
    let bytes: [UInt8]
    /// The top-level value.
    let root: Range<Int>
    /// The string values of at least `longStringBytes` bytes, in document order: readers skip over strings
    /// (to reach the next member), and for long ones the validator already found where they end.
    let longStrings: [Range<Int>]

    /// Strings this long are remembered by the validator; shorter ones are quicker to skip than to look up.
    static let longStringBytes = 64

    init(bytes: [UInt8], root: Range<Int>, longStrings: [Range<Int>] = []) {
        self.bytes = bytes
        self.root = root
        self.longStrings = longStrings
    }

    /// One object member: the name with its quotes, and the value.
    struct Member {
        var key: Range<Int>
        var value: Range<Int>
        var keyContent: Range<Int> { (key.lowerBound + 1)..<max(key.lowerBound + 1, key.upperBound - 1) }
    }

    // MARK: Navigation (`JSONNavigation`, with the long strings the validator found)

    /// The offset just past the value that starts at `start`.
    func valueEnd(from start: Int) -> Int {
        JSONNavigation.valueEnd(from: start, before: bytes.count, in: bytes.span, longStrings: longStrings).end
    }

    /// The offset just past the string whose opening quote is at `start`.
    func stringEnd(from start: Int) -> Int {
        JSONNavigation.stringEnd(from: start, before: bytes.count, in: bytes.span, longStrings: longStrings).end
    }

    func skipWhitespace(from start: Int) -> Int {
        JSONNavigation.skipWhitespace(from: start, before: bytes.count, in: bytes.span)
    }

    /// The members of the object `object`, in order (none if it is not an object).
    func members(of object: Range<Int>?) -> Members {
        guard let object, kind(object) == .object else { return Members(document: self, position: 0, end: 0) }
        return Members(document: self, position: object.lowerBound + 1, end: object.upperBound)
    }

    /// The elements of the array `array`, in order (none if it is not an array).
    func elements(of array: Range<Int>?) -> Elements {
        guard let array, kind(array) == .array else { return Elements(document: self, position: 0, end: 0) }
        return Elements(document: self, position: array.lowerBound + 1, end: array.upperBound)
    }

    struct Members: Sequence, IteratorProtocol {
        let document: ValidatedJSON
        var position: Int
        let end: Int

        mutating func next() -> Member? {
            let bytes = document.bytes
            guard
                let member = JSONNavigation.nextMember(
                    from: position, before: end, in: bytes.span, longStrings: document.longStrings)
            else {
                position = end
                return nil
            }
            position = member.value.upperBound
            return Member(key: member.key, value: member.value)
        }
    }

    struct Elements: Sequence, IteratorProtocol {
        let document: ValidatedJSON
        var position: Int
        let end: Int

        mutating func next() -> Range<Int>? {
            let bytes = document.bytes
            guard
                let element = JSONNavigation.nextElement(
                    from: position, before: end, in: bytes.span, longStrings: document.longStrings)
            else {
                position = end
                return nil
            }
            position = element.range.upperBound
            return element.range
        }
    }

    /// The values of the members named in `keys`, found in one pass over `object`. With repeated names (possible
    /// only when duplicates were allowed) the first one counts, as in `JSONObject`.
    func fields<let count: Int>(of object: Range<Int>?, _ keys: JSONKeys<count>) -> JSONFields<count> {
        guard let object, kind(object) == .object else { return JSONFields() }
        return scanFields(objectAt: object.lowerBound, keys).fields
    }

    /// `fields(of:_:)` for the object whose `{` is at `start`, and the offset just past its `}`.
    func scanFields<let count: Int>(objectAt start: Int, _ keys: JSONKeys<count>)
        -> (fields: JSONFields<count>, end: Int)
    {
        var fields = JSONFields<count>()
        let span = bytes.span
        let total = bytes.count
        var index = start + 1
        while let member = JSONNavigation.nextMember(from: index, before: total, in: span, longStrings: longStrings) {
            let matched = keys.position(of: member.keyContent, hasEscapes: member.keyHasEscapes, in: span)
            if matched >= 0, matched < count, fields.values[matched].isEmpty {
                fields.values[matched] = member.value
            }
            index = member.value.upperBound
        }
        // Just past the closing brace, or the document's end when the object does not close.
        index = JSONNavigation.skipWhitespace(from: index, before: total, in: span)
        guard index < total, bytes[index] == JSONByte.closeBrace else { return (fields, total) }
        return (fields, index + 1)
    }

    /// The elements of the array `array`, each with the members named in `keys` when it is an object: each
    /// element is scanned once (`elements(of:)` then `fields(of:_:)` would skip it twice).
    func objects<let count: Int>(in array: Range<Int>?, _ keys: JSONKeys<count>) -> ObjectElements<count> {
        guard let array, kind(array) == .array else {
            return ObjectElements(document: self, keys: keys, position: 0, end: 0)
        }
        return ObjectElements(document: self, keys: keys, position: array.lowerBound + 1, end: array.upperBound)
    }

    struct ObjectElements<let count: Int>: Sequence, IteratorProtocol {
        let document: ValidatedJSON
        let keys: JSONKeys<count>
        var position: Int
        let end: Int

        mutating func next() -> (range: Range<Int>, fields: JSONFields<count>)? {
            let document = self.document
            let bytes = document.bytes
            let span = bytes.span
            guard let index = JSONNavigation.nextChild(from: position, before: end, in: span) else {
                position = end
                return nil
            }
            if span[index] == JSONByte.openBrace {
                let (fields, objectEnd) = document.scanFields(objectAt: index, keys)
                position = Swift.min(objectEnd, end)
                return (index..<position, fields)
            }
            let valueEnd = JSONNavigation.valueEnd(
                from: index, before: end, in: span, longStrings: document.longStrings
            ).end
            guard index < valueEnd else {
                position = end
                return nil
            }
            position = valueEnd
            return (index..<valueEnd, JSONFields())
        }
    }

    // MARK: Kinds and scalars

    /// The kind of the value `range`, from its first byte.
    func kind(_ range: Range<Int>?) -> JSONKind? {
        guard let range, !range.isEmpty, range.lowerBound >= 0, range.lowerBound < bytes.count else { return nil }
        return JSONScanner.kind(ofFirstByte: bytes[range.lowerBound])
    }

    /// Whether `range` is absent or `null` (the translators treat both alike almost everywhere).
    func isAbsentOrNull(_ range: Range<Int>?) -> Bool {
        guard let range else { return true }
        return kind(range) == .null
    }

    func isString(_ range: Range<Int>?) -> Bool { kind(range) == .string }
    func isObject(_ range: Range<Int>?) -> Bool { kind(range) == .object }
    func isArray(_ range: Range<Int>?) -> Bool { kind(range) == .array }

    /// The content (between the quotes, still escaped) of the string `range`, or nil if it is not a string.
    func stringContent(_ range: Range<Int>?) -> Range<Int>? {
        guard let range else { return nil }
        return JSONNavigation.stringContent(range, in: bytes.span)
    }

    /// Whether the string `range` is exactly `literal` after unescaping.
    func string(_ range: Range<Int>?, is literal: String) -> Bool {
        guard let range else { return false }
        var literal = literal
        literal.makeContiguousUTF8()
        return JSONNavigation.string(range, in: bytes.span, hasEscapes: nil, equals: literal.utf8.span)
    }

    /// Whether the string `range` is empty (an escape never decodes to nothing).
    func isEmptyString(_ range: Range<Int>) -> Bool { range.count == 2 }

    /// The decoded string `range`, or nil if it is not a string. Allocates for more than 15 bytes: for error
    /// messages and rare paths.
    func decodedString(_ range: Range<Int>?) -> String? {
        guard let content = stringContent(range) else { return nil }
        var scratch: [UInt8] = []
        return JSONLexer.decodeString(bytes.span, content: content, hasEscapes: containsBackslash(content),
                                      scratch: &scratch)
    }

    /// Appends the decoded bytes of the string `range` to `output`; false if it is not a string.
    func appendDecoded(_ range: Range<Int>, to output: inout [UInt8]) -> Bool {
        guard let content = stringContent(range) else { return false }
        return JSONNavigation.appendDecoded(content, of: bytes, to: &output)
    }

    /// `true` or `false`, or nil for anything else.
    func bool(_ range: Range<Int>?) -> Bool? {
        guard let range else { return nil }
        return JSONScanner.boolValue(at: range, in: bytes.span)
    }

    /// An integer without fraction or exponent within `Int64`, as `JSONNumber.int64` reads it.
    func int64(_ range: Range<Int>?) -> Int64? {
        guard let range else { return nil }
        return JSONScanner.int64Value(at: range, in: bytes.span)
    }

    /// A number as a finite `Double`, as `JSONNumber.double` reads it.
    func double(_ range: Range<Int>?) -> Double? {
        guard let range else { return nil }
        return JSONScanner.doubleValue(at: range, in: bytes.span)
    }

    /// Writes the value `range` as one value of `writer`, without the whitespace between its tokens (strings are
    /// copied as they are, escapes included). For values copied where a line break would end a frame (SSE
    /// `data:` lines) or that are kept for every answer.
    func writeCompact(_ range: Range<Int>, to writer: inout JSONWriter) {
        writer.beginRawValue()
        JSONNavigation.appendCompact(range, of: bytes, strings: .asWritten, longStrings: longStrings, to: &writer.bytes)
        writer.endRawValue()
    }

    /// Writes the value `range` as serialising its parsed tree would: without whitespace, strings decoded and
    /// escaped again as `JSONWriter` escapes a `String`, numbers as written (translations whose output must be
    /// byte for byte what they wrote when they built a tree).
    func writeCanonical(_ range: Range<Int>, to writer: inout JSONWriter) {
        writer.beginRawValue()
        // Without `longStrings`: their ends are known but not whether they have escapes, and a string without
        // any is copied as it is, not decoded and escaped again byte by byte (4 µs for a 1 KiB prompt).
        JSONNavigation.appendCompact(range, of: bytes, strings: .canonical, to: &writer.bytes)
        writer.endRawValue()
    }

    /// Writes `writeCanonical`'s text of the value `range` as a JSON string (OpenAI carries tool arguments as a
    /// string of JSON).
    func writeCanonicalAsString(_ range: Range<Int>, to writer: inout JSONWriter) {
        writer.beginRawValue()
        writer.bytes.append(JSONByte.quote)
        JSONNavigation.appendCompact(range, of: bytes, strings: .canonical, asStringContent: true, to: &writer.bytes)
        writer.bytes.append(JSONByte.quote)
        writer.endRawValue()
    }

    /// Appends the content of the string `range` (no quotes), escaped as `JSONWriter` escapes a `String`: for a
    /// string joined from several (or a prefix and a value). Nothing if `range` is not a string.
    func appendCanonicalContent(ofString range: Range<Int>, to output: inout [UInt8]) {
        guard let content = stringContent(range) else { return }
        let hasEscapes = JSONNavigation.stringEnd(from: range.lowerBound, before: range.upperBound, in: bytes.span).hasEscapes
        JSONNavigation.appendCanonicalContent(content, hasEscapes: hasEscapes, of: bytes, to: &output)
    }

    /// The bytes of `range` (a complete JSON value when it came from navigation).
    func slice(_ range: Range<Int>) -> ArraySlice<UInt8> {
        let lower = min(max(range.lowerBound, 0), bytes.count)
        let upper = min(max(range.upperBound, lower), bytes.count)
        return bytes[lower..<upper]
    }

    func containsBackslash(_ content: Range<Int>) -> Bool {
        JSONNavigation.containsBackslash(content, in: bytes.span)
    }
}

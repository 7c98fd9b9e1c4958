// Navigation over validated JSON bytes: the one implementation behind both readers that work by byte range,
// `ValidatedJSON` (client requests, validated by `JSONValidator` with `JSONParser`'s rules) and `UpstreamJSON`
// (upstream answers and stream events, validated by `UpstreamJSON.scanTopLevel`, duplicate names allowed).
//
// After validation a reader only has to find where each value ends: strings are skipped to their closing quote
// (eight bytes at a time), containers by counting brackets outside strings, numbers and literals to the next
// delimiter, so nothing is lexed twice. The functions stay total: every index is checked against the end they
// are given (and the span), so a walk over bytes that are not valid JSON ends early instead of trapping.

enum JSONNavigation {
    /// One object member found by `nextMember`.
    struct Member {
        /// The name with its quotes.
        var key: Range<Int>
        var keyHasEscapes: Bool
        /// The value's bytes, and for a string whether its content has a backslash escape.
        var value: Range<Int>
        var valueHasEscapes: Bool

        /// The name's bytes between the quotes, still escaped.
        var keyContent: Range<Int> { (key.lowerBound + 1)..<max(key.lowerBound + 1, key.upperBound - 1) }
    }

    // MARK: Skipping

    /// The first offset at or after `start` (and before `end`) that is not JSON whitespace.
    @inline(__always)
    static func skipWhitespace(from start: Int, before end: Int, in bytes: Span<UInt8>) -> Int {
        skip(from: start, within: min(end, bytes.count), bytes)
    }

    // The steps below take an `end` already clamped to the span (`within`): the entry points clamp once, not
    // every step of a member. Indices are still checked against it.

    @inline(__always)
    private static func skip(from start: Int, within end: Int, _ bytes: Span<UInt8>) -> Int {
        var index = max(start, 0)
        while index < end && JSONByte.isWhitespace(bytes[index]) { index += 1 }
        return index
    }

    /// Just past the string whose opening quote is at `start`, and whether its content has a backslash (or, for
    /// one of `longStrings`, may have one); `end` when the string does not close before it. `longStrings` are strings whose ends a validator already
    /// found, sorted by start (`ValidatedJSON.longStrings`): a binary search there is quicker than a long skip.
    static func stringEnd(
        from start: Int, before end: Int, in bytes: Span<UInt8>, longStrings: [Range<Int>] = []
    ) -> (end: Int, hasEscapes: Bool) {
        stringEnd(from: start, within: min(end, bytes.count), bytes, longStrings)
    }

    private static func stringEnd(
        from start: Int, within end: Int, _ bytes: Span<UInt8>, _ longStrings: [Range<Int>]
    ) -> (end: Int, hasEscapes: Bool) {
        guard start >= 0 else { return (end, false) }
        if !longStrings.isEmpty {
            var low = 0
            var high = longStrings.count
            while low < high {
                let middle = (low + high) / 2
                let candidate = longStrings[middle]
                if candidate.lowerBound == start {
                    // Not looked at again, so it may have escapes: readers that care decode it (which is exact
                    // either way) or look for a backslash themselves.
                    return (min(candidate.upperBound, end), true)
                }
                if candidate.lowerBound < start { low = middle + 1 } else { high = middle }
            }
        }
        var hasEscapes = false
        var index = start + 1
        while index < end {
            // Eight bytes at a time while none of them is a quote or a backslash (prompts and answers are long
            // strings); a word with one jumps to it, goes byte by byte to the word's end, then words again.
            while index + 8 <= end {
                let word = JSONLexer.word(bytes, at: index)
                let special = JSONLexer.bytes(of: word, equalTo: JSONByte.quote)
                    | JSONLexer.bytes(of: word, equalTo: JSONByte.backslash)
                guard special == 0 else {
                    index += special.trailingZeroBitCount / 8
                    break
                }
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

    /// Just past the value that starts at `start` (`end` if it does not end before it), and whether it is a
    /// string with escapes.
    static func valueEnd(
        from start: Int, before end: Int, in bytes: Span<UInt8>, longStrings: [Range<Int>] = []
    ) -> (end: Int, hasEscapes: Bool) {
        valueEnd(from: start, within: min(end, bytes.count), bytes, longStrings)
    }

    private static func valueEnd(
        from start: Int, within end: Int, _ bytes: Span<UInt8>, _ longStrings: [Range<Int>]
    ) -> (end: Int, hasEscapes: Bool) {
        guard start >= 0, start < end else { return (end, false) }
        switch bytes[start] {
        case JSONByte.quote:
            return stringEnd(from: start, within: end, bytes, longStrings)
        case JSONByte.openBrace, JSONByte.openBracket:
            var depth = 0
            var index = start
            while index < end {
                switch bytes[index] {
                case JSONByte.quote:
                    index = stringEnd(from: index, within: end, bytes, longStrings).end
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

    // MARK: Members and elements

    /// The first offset of the next member or element at or after `cursor` (past a separating comma), or nil at
    /// the container's end (its closing bracket, or `end`).
    @inline(__always)
    static func nextChild(from cursor: Int, before end: Int, in bytes: Span<UInt8>) -> Int? {
        nextChild(from: cursor, within: min(end, bytes.count), bytes)
    }

    @inline(__always)
    private static func nextChild(from cursor: Int, within end: Int, _ bytes: Span<UInt8>) -> Int? {
        var index = skip(from: cursor, within: end, bytes)
        if index < end, bytes[index] == JSONByte.comma { index = skip(from: index + 1, within: end, bytes) }
        guard index < end else { return nil }
        let byte = bytes[index]
        return byte == JSONByte.closeBrace || byte == JSONByte.closeBracket ? nil : index
    }

    /// The object member at or after `cursor` (a container's first byte after `{`, or just past the previous
    /// member's value), or nil at the object's end or at bytes that are not a member.
    static func nextMember(
        from cursor: Int, before end: Int, in bytes: Span<UInt8>, longStrings: [Range<Int>] = []
    ) -> Member? {
        let end = min(end, bytes.count)
        guard let keyStart = nextChild(from: cursor, within: end, bytes), bytes[keyStart] == JSONByte.quote else {
            return nil
        }
        let key = stringEnd(from: keyStart, within: end, bytes, longStrings)
        guard key.end - 1 > keyStart else { return nil }
        var index = skip(from: key.end, within: end, bytes)
        guard index < end, bytes[index] == JSONByte.colon else { return nil }
        index = skip(from: index + 1, within: end, bytes)
        guard index < end else { return nil }
        let value = valueEnd(from: index, within: end, bytes, longStrings)
        guard index < value.end else { return nil }
        return Member(
            key: keyStart..<key.end, keyHasEscapes: key.hasEscapes, value: index..<value.end,
            valueHasEscapes: value.hasEscapes)
    }

    /// The array element at or after `cursor`, and whether it is a string with escapes; nil at the array's end.
    static func nextElement(
        from cursor: Int, before end: Int, in bytes: Span<UInt8>, longStrings: [Range<Int>] = []
    ) -> (range: Range<Int>, hasEscapes: Bool)? {
        let end = min(end, bytes.count)
        guard let start = nextChild(from: cursor, within: end, bytes) else { return nil }
        let value = valueEnd(from: start, within: end, bytes, longStrings)
        guard start < value.end else { return nil }
        return (start..<value.end, value.hasEscapes)
    }

    // MARK: Strings

    /// The content (between the quotes, still escaped) of the string `range`, or nil if it is not a string.
    static func stringContent(_ range: Range<Int>, in bytes: Span<UInt8>) -> Range<Int>? {
        guard range.count >= 2, range.upperBound <= bytes.count, JSONScanner.kind(at: range, in: bytes) == .string
        else { return nil }
        return (range.lowerBound + 1)..<(range.upperBound - 1)
    }

    /// Whether the string `range` is exactly `literal` after unescaping; `hasEscapes` nil means "look".
    static func string(_ range: Range<Int>, in bytes: Span<UInt8>, hasEscapes: Bool?, equals literal: Span<UInt8>)
        -> Bool
    {
        guard let content = stringContent(range, in: bytes) else { return false }
        // An escape always decodes to fewer bytes than it takes, so an escaped string can only equal a longer
        // raw one, and one as long is equal byte for byte, without a backslash, or not at all.
        if content.count == literal.count {
            var position = 0
            for index in content {
                let byte = bytes[index]
                guard byte == literal[position], byte != JSONByte.backslash else { return false }
                position += 1
            }
            return true
        }
        guard content.count > literal.count, hasEscapes ?? true else { return false }
        return JSONLexer.decodedContent(bytes, content, hasEscapes: true, equals: literal)
    }

    /// Appends the decoded bytes of the string content `content` (between the quotes) to `output`; false at an
    /// escape that does not decode (never after validation). Runs without escapes are copied whole (no reserve
    /// here: callers append delta after delta to one buffer, which must keep growing geometrically).
    @discardableResult
    static func appendDecoded(_ content: Range<Int>, of source: [UInt8], to output: inout [UInt8]) -> Bool {
        let bytes = source.span
        guard content.lowerBound >= 0, content.upperBound <= bytes.count else { return false }
        var index = content.lowerBound
        while index < content.upperBound {
            var run = index
            while run < content.upperBound && bytes[run] != JSONByte.backslash { run += 1 }
            if run > index { output.append(contentsOf: source[index..<run]) }
            guard run < content.upperBound else { break }
            // `\uXXXX\uXXXX` (a surrogate pair) is the longest escape; the lexer has checked every escape.
            var escapeEnd = run + 2
            if run + 1 < content.upperBound, bytes[run + 1] == JSONByte.lowerU {
                escapeEnd = run + 6
                if escapeEnd + 1 < content.upperBound, bytes[escapeEnd] == JSONByte.backslash,
                    bytes[escapeEnd + 1] == JSONByte.lowerU, let high = JSONByte.hexValue(bytes[run + 2]), high == 0xD
                {
                    escapeEnd += 6
                }
            }
            escapeEnd = min(escapeEnd, content.upperBound)
            let decoded = JSONLexer.forEachDecodedByte(bytes, content: run..<escapeEnd) { byte in
                output.append(byte)
                return true
            }
            guard decoded else { return false }
            index = escapeEnd
        }
        return true
    }

    /// Appends string content `content` (between the quotes, still escaped) as `JSONWriter` escapes a `String`:
    /// what decoding it and writing the `String` again gives. Content without a backslash is copied as it is
    /// (lexed content has no quote and no control byte, so nothing in it needs escaping).
    static func appendCanonicalContent(
        _ content: Range<Int>, hasEscapes: Bool, of source: [UInt8], to output: inout [UInt8]
    ) {
        let bytes = source.span
        guard content.lowerBound >= 0, content.upperBound <= bytes.count, content.lowerBound <= content.upperBound
        else { return }
        guard hasEscapes else {
            output.append(contentsOf: source[content])
            return
        }
        _ = JSONLexer.forEachDecodedByte(bytes, content: content) { byte in
            JSONWriter.appendEscaped(byte: byte, to: &output)
            return true
        }
    }

    static func containsBackslash(_ range: Range<Int>, in bytes: Span<UInt8>) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return false }
        for index in range where bytes[index] == JSONByte.backslash { return true }
        return false
    }

    // MARK: Compact writing

    /// How `appendCompact` writes strings.
    enum CompactStrings {
        /// As they are in the source, escapes included (request parts for an upstream, which parses them).
        case asWritten
        /// Decoded and escaped again as `JSONWriter` escapes a `String`: what serialising the parsed tree would
        /// write (answers to clients, byte for byte as before translation worked by range).
        case canonical
    }

    /// Appends the value `range` without the whitespace between its tokens. With `asStringContent` the compact
    /// form is escaped once more, to sit inside a JSON string (OpenAI carries tool arguments as a string of JSON).
    static func appendCompact(
        _ range: Range<Int>, of source: [UInt8], strings: CompactStrings, asStringContent: Bool = false,
        longStrings: [Range<Int>] = [], to output: inout [UInt8]
    ) {
        let bytes = source.span
        let lower = min(max(range.lowerBound, 0), bytes.count)
        let upper = min(max(range.upperBound, lower), bytes.count)
        var index = lower
        while index < upper {
            let byte = bytes[index]
            if byte == JSONByte.quote {
                let string = stringEnd(from: index, within: upper, bytes, longStrings)
                guard string.end > index else { break }
                appendString(index..<string.end, hasEscapes: string.hasEscapes, of: source, strings: strings,
                             asStringContent: asStringContent, to: &output)
                index = string.end
            } else {
                // Structure, numbers and literals hold no byte that needs escaping, even inside a string.
                if !JSONByte.isWhitespace(byte) { output.append(byte) }
                index += 1
            }
        }
    }

    private static func appendString(
        _ range: Range<Int>, hasEscapes: Bool, of source: [UInt8], strings: CompactStrings, asStringContent: Bool,
        to output: inout [UInt8]
    ) {
        let bytes = source.span
        if !asStringContent && (!hasEscapes || strings == .asWritten) {
            output.append(contentsOf: source[range])
            return
        }
        guard range.count >= 2 else { return }
        let content = (range.lowerBound + 1)..<(range.upperBound - 1)
        if asStringContent { output.append(JSONByte.backslash) }
        output.append(JSONByte.quote)
        if !hasEscapes {
            // No quote, backslash or control byte: nothing to escape, even twice.
            output.append(contentsOf: source[content])
        } else if strings == .asWritten {
            for index in content { JSONWriter.appendEscaped(byte: bytes[index], to: &output) }
        } else {
            _ = JSONLexer.forEachDecodedByte(bytes, content: content) { byte in
                if asStringContent {
                    appendEscapedTwice(byte, to: &output)
                } else {
                    JSONWriter.appendEscaped(byte: byte, to: &output)
                }
                return true
            }
        }
        if asStringContent { output.append(JSONByte.backslash) }
        output.append(JSONByte.quote)
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

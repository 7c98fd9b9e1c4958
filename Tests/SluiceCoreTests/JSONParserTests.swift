import SluiceCore
import Testing

// MARK: - Shared fixtures

/// Test inputs shared by the parser, scanner and writer suites.
enum JSONFixtures {
    /// A realistic OpenAI chat/completions request touching every JSON feature: nesting, escapes, surrogate pairs,
    /// raw non-ASCII, numbers of every shape, literals, and a decoy "model" inside a nested object.
    static let chatRequest = #"""
        {"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant. Answer in \"plain\" \#
        text.\n"},{"role":"user","content":[{"type":"text","text":"What's in this image? Résumé ✓ 😀 \#
        \u00e9\ud83d\ude00 tab\there \/ slash"},\#
        {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]},\#
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":\#
        "get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":\#
        "{\"temp\":21.5}"}],"temperature":0.7,"top_p":1,"max_tokens":1024,"stream":true,"stream_options":\#
        {"include_usage":true},"stop":["\n\n","END"],"n":1,"presence_penalty":-0.5,"frequency_penalty":0,\#
        "logit_bias":{"50256":-100},"user":"user-123","tools":[{"type":"function","function":{"name":"get_weather",\#
        "description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},\#
        "required":["city"]}}}],"tool_choice":"auto","seed":42,"logprobs":false,"response_format":{"type":\#
        "json_object"},"metadata":{"model":"decoy"},"big":1.5e300,"tiny":-2.5E-300}
        """#

    static var chatRequestBytes: [UInt8] { Array(chatRequest.utf8) }

    /// A number value from text; invalid text shows up as a mismatching string rather than a crash.
    static func number(_ text: String) -> JSONValue {
        JSONNumber(text).map(JSONValue.number) ?? .string("invalid number text \(text)")
    }

    /// One invalid document and the error every validator must report for it.
    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var input: [UInt8]
        var kind: JSONParseError.Kind
        var offset: Int

        init(_ text: String, _ kind: JSONParseError.Kind, at offset: Int) {
            self.input = Array(text.utf8)
            self.kind = kind
            self.offset = offset
        }

        init(bytes: [UInt8], _ kind: JSONParseError.Kind, at offset: Int) {
            self.input = bytes
            self.kind = kind
            self.offset = offset
        }

        var testDescription: String {
            let text = String(decoding: input.prefix(40), as: UTF8.self)
            return "\(kind) at \(offset): \(text.debugDescription)"
        }
    }

    static let quote = UInt8(ascii: "\"")

    /// Every rejection rule, with the offset of the first byte that cannot be accepted.
    static let errorCases: [ErrorCase] = [
        // Structure and end of input.
        ErrorCase("", .unexpectedEndOfInput, at: 0),
        ErrorCase("   ", .unexpectedEndOfInput, at: 3),
        ErrorCase("{", .unexpectedEndOfInput, at: 1),
        ErrorCase(#"{"a":"#, .unexpectedEndOfInput, at: 5),
        ErrorCase("[1,", .unexpectedEndOfInput, at: 3),
        ErrorCase(#"{"a":1,}"#, .trailingComma, at: 7),
        ErrorCase("[1,]", .trailingComma, at: 3),
        ErrorCase("[1 2]", .expectedCommaOrArrayEnd, at: 3),
        ErrorCase("[1}", .expectedCommaOrArrayEnd, at: 2),
        ErrorCase(#"{"a":1 "b":2}"#, .expectedCommaOrObjectEnd, at: 7),
        ErrorCase(#"{"a":1]"#, .expectedCommaOrObjectEnd, at: 6),
        ErrorCase(#"{"a" 1}"#, .expectedColon, at: 5),
        ErrorCase("{1:2}", .expectedKey, at: 1),
        ErrorCase("{,}", .expectedKey, at: 1),
        ErrorCase("{'a':1}", .expectedKey, at: 1),
        ErrorCase("[,1]", .expectedValue, at: 1),
        ErrorCase(#"{"a":}"#, .expectedValue, at: 5),
        ErrorCase(#"{"a":1}x"#, .trailingCharacters, at: 7),
        ErrorCase("1 2", .trailingCharacters, at: 2),
        ErrorCase("[] []", .trailingCharacters, at: 3),
        ErrorCase("// comment\n{}", .expectedValue, at: 0),
        ErrorCase("'a'", .expectedValue, at: 0),
        ErrorCase("NaN", .expectedValue, at: 0),
        ErrorCase(bytes: [0xEF, 0xBB, 0xBF, UInt8(ascii: "{"), UInt8(ascii: "}")], .expectedValue, at: 0),
        // Literals.
        ErrorCase("tru", .unexpectedEndOfInput, at: 3),
        ErrorCase("trux", .invalidLiteral, at: 3),
        ErrorCase("nul1", .invalidLiteral, at: 3),
        ErrorCase("fals", .unexpectedEndOfInput, at: 4),
        ErrorCase("True", .expectedValue, at: 0),
        ErrorCase("[nulll]", .expectedCommaOrArrayEnd, at: 5),
        // Numbers.
        ErrorCase("01", .leadingZero, at: 1),
        ErrorCase("-01", .leadingZero, at: 2),
        ErrorCase("[00]", .leadingZero, at: 2),
        ErrorCase("1.", .unexpectedEndOfInput, at: 2),
        ErrorCase("[1.]", .invalidNumber, at: 3),
        ErrorCase("1.e5", .invalidNumber, at: 2),
        ErrorCase("-", .unexpectedEndOfInput, at: 1),
        ErrorCase("-a", .invalidNumber, at: 1),
        ErrorCase("[-]", .invalidNumber, at: 2),
        ErrorCase("1e", .unexpectedEndOfInput, at: 2),
        ErrorCase("1e+", .unexpectedEndOfInput, at: 3),
        ErrorCase("[1e]", .invalidNumber, at: 3),
        ErrorCase("[1e+-2]", .invalidNumber, at: 4),
        ErrorCase(".5", .expectedValue, at: 0),
        ErrorCase("+1", .expectedValue, at: 0),
        ErrorCase("0x10", .trailingCharacters, at: 1),
        ErrorCase("1.5.3", .trailingCharacters, at: 3),
        // Strings.
        ErrorCase(#""abc"#, .unexpectedEndOfInput, at: 4),
        ErrorCase("\"a\u{01}b\"", .controlCharacterInString, at: 2),
        ErrorCase("\"a\nb\"", .controlCharacterInString, at: 2),
        ErrorCase("[\"\u{0}\"]", .controlCharacterInString, at: 2),
        ErrorCase(#""\x""#, .invalidEscape, at: 2),
        ErrorCase(#""\'""#, .invalidEscape, at: 2),
        ErrorCase(#""\"#, .unexpectedEndOfInput, at: 2),
        ErrorCase(#""\u12G4""#, .invalidUnicodeEscape, at: 5),
        ErrorCase(#""\u12""#, .invalidUnicodeEscape, at: 5),
        ErrorCase(#""\u12"#, .unexpectedEndOfInput, at: 5),
        ErrorCase(#""\uD800""#, .loneSurrogate, at: 1),
        ErrorCase(#""\udc00""#, .loneSurrogate, at: 1),
        ErrorCase(#""\uD800\u0041""#, .loneSurrogate, at: 1),
        ErrorCase(#""\uD800x""#, .loneSurrogate, at: 1),
        ErrorCase(#""\uD800\n""#, .loneSurrogate, at: 1),
        ErrorCase(#""ok\uD83D\uD83D""#, .loneSurrogate, at: 3),
        ErrorCase(#""\uD800"#, .unexpectedEndOfInput, at: 7),
        ErrorCase(#""\uD800\"#, .unexpectedEndOfInput, at: 8),
        ErrorCase(#""\uD800\uDC0"#, .unexpectedEndOfInput, at: 12),
        // UTF-8 (Unicode Table 3-7).
        ErrorCase(bytes: [quote, 0xFF, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xC0, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xC1, 0xBF, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xE0, 0x80, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xED, 0xA0, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xF0, 0x80, 0x80, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xF4, 0x90, 0x80, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0xF5, 0x80, 0x80, 0x80, quote], .invalidUTF8, at: 1),
        ErrorCase(bytes: [quote, 0x61, 0xE2, 0x82, quote], .invalidUTF8, at: 2),
        ErrorCase(bytes: [quote, 0xE2, 0x82], .unexpectedEndOfInput, at: 3),
        ErrorCase(bytes: [UInt8(ascii: "["), 0xC3, 0xA9, UInt8(ascii: "]")], .expectedValue, at: 1),
        // Duplicate keys, compared after unescaping, at any depth.
        ErrorCase(#"{"a":1,"a":2}"#, .duplicateKey("a"), at: 7),
        ErrorCase(#"{"a":1,"\u0061":2}"#, .duplicateKey("a"), at: 7),
        ErrorCase(#"[{"x":{"é":1,"\u00e9":2}}]"#, .duplicateKey("é"), at: 14),
        ErrorCase(
            #"{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":10}"#,
            .duplicateKey("k3"),
            at: 71
        ),
    ]
}

// MARK: - Valid documents

@Suite("JSONParser")
struct JSONParserTests {
    @Test(arguments: [
        ("null", JSONValue.null),
        ("true", true),
        ("false", false),
        ("0", .number(JSONNumber(0))),
        ("-0", JSONFixtures.number("-0")),
        ("1.5e10", JSONFixtures.number("1.5e10")),
        ("-12.25E-3", JSONFixtures.number("-12.25E-3")),
        (#""""#, ""),
        (#""hello""#, "hello"),
        ("[]", []),
        ("{}", [:]),
        ("[1,[2,[3,[]]]]", [1, [2, [3, []]]]),
        (#"{"a":{"b":{"c":null}},"d":[true,false]}"#, ["a": ["b": ["c": nil]], "d": [true, false]]),
        (" \t\n\r{ \"a\" : [ 1 , 2 ] , \"b\" : { } }\r\n ", ["a": [1, 2], "b": [:]]),
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{08}\u{0C}\n\r\t"),
        (#""\u0000\u001f\u0041\u00e9\u20AC""#, "\u{0}\u{1F}Aé€"),
        (#""\ud83d\ude00 \uD834\uDD1E""#, "😀 𝄞"),
        (#""Résumé ✓ 😀""#, "Résumé ✓ 😀"),
        (#""\u2028\u2029""#, "\u{2028}\u{2029}"),
        ("\"\u{7F}\"", "\u{7F}"),
    ] as [(String, JSONValue)])
    func parsesValidDocuments(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(text) == expected)
        #expect(try JSONParser.parse(Array(text.utf8)) == expected)
        let bytes = Array(text.utf8)
        #expect(try JSONParser.parse(bytes.span) == expected)
    }

    @Test func chatRequestParses() throws {
        let value = try JSONParser.parse(JSONFixtures.chatRequestBytes)
        let object = try #require(value.objectValue)
        #expect(object["model"]?.stringValue == "gpt-4o")
        #expect(object["stream"]?.boolValue == true)
        #expect(object["max_tokens"]?.int64Value == 1024)
        #expect(object["temperature"]?.doubleValue == 0.7)
        #expect(object["metadata"]?["model"]?.stringValue == "decoy")
        #expect(object.keys.first == "model")
        #expect(object.keys.last == "tiny")
        let messages = try #require(object["messages"]?.arrayValue)
        #expect(messages.count == 4)
        #expect(messages[0]["content"]?.stringValue == "You are a helpful assistant. Answer in \"plain\" text.\n")
        let text = messages[1]["content"]?.arrayValue?.first?["text"]?.stringValue
        #expect(text == "What's in this image? Résumé ✓ 😀 é😀 tab\there / slash")
        #expect(messages[2]["content"] == .null)
    }

    @Test func accessorsAndTypeNames() {
        let values: [(JSONValue, String)] = [
            (nil, "null"), (true, "boolean"), (1, "number"), ("s", "string"), ([], "array"), ([:], "object"),
        ]
        for (value, name) in values {
            #expect(value.typeName == name)
            #expect(value.kind.name == name)
        }
        let value: JSONValue = ["s": "x", "b": true, "a": [1], "o": ["k": nil]]
        #expect(value["s"]?.stringValue == "x")
        #expect(value["s"]?.boolValue == nil)
        #expect(value["b"]?.boolValue == true)
        #expect(value["a"]?.arrayValue == [1])
        #expect(value["o"]?.objectValue?.keys == ["k"])
        #expect(value["o"]?["k"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value.objectValue?.keys == ["s", "b", "a", "o"])
        #expect(JSONValue.string("x")["s"] == nil)
    }

    // MARK: Numbers

    @Test(arguments: [
        ("0", 0, 0, 0.0),
        ("-0", 0, 0, -0.0),
        ("-12", -12, nil, -12.0),
        ("9223372036854775807", Int64.max, 9_223_372_036_854_775_807, 9.223372036854775807e18),
        ("-9223372036854775808", Int64.min, nil, -9.223372036854775808e18),
        ("9223372036854775808", nil, 9_223_372_036_854_775_808, 9.223372036854775808e18),
        ("18446744073709551615", nil, UInt64.max, 1.8446744073709551615e19),
        ("18446744073709551616", nil, nil, 1.8446744073709551616e19),
        ("1.5", nil, nil, 1.5),
        ("1e3", nil, nil, 1000.0),
        ("1E+2", nil, nil, 100.0),
        ("1e400", nil, nil, nil),
        ("-1e400", nil, nil, nil),
        ("1e-400", nil, nil, 0.0),
    ] as [(String, Int64?, UInt64?, Double?)])
    func numberConversions(text: String, int64: Int64?, uint64: UInt64?, double: Double?) throws {
        let number = try #require(JSONNumber(text))
        #expect(number.text == text)
        #expect(number.int64 == int64)
        #expect(number.uint64 == uint64)
        #expect(number.double == double)
        #expect(try JSONParser.parse(text) == .number(number))
    }

    @Test(arguments: ["", "01", "1.", ".1", "+1", "1 ", " 1", "1e", "0x1", "NaN", "inf", "--1", "1.0.0", "١"])
    func invalidNumberTextIsRejected(text: String) {
        #expect(JSONNumber(text) == nil)
    }

    @Test func numbersFromSwiftValues() {
        #expect(JSONNumber(Int64.min).text == "-9223372036854775808")
        #expect(JSONNumber(UInt64.max).text == "18446744073709551615")
        #expect(JSONNumber(42).int64 == 42)
        #expect(JSONNumber(Double.infinity) == nil)
        #expect(JSONNumber(Double.nan) == nil)
        // Every finite description must itself be valid JSON number text.
        let values = [0.0, -0.0, 1.0, 0.1, 1e20, 1e-7, -123.456]
        for value in values + [Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude] {
            let number = JSONNumber(value)
            #expect(number != nil, "\(value)")
            #expect(number.flatMap { JSONNumber($0.text) } != nil, "\(value)")
            #expect(number?.double == value)
        }
    }

    // MARK: Round trips

    @Test(arguments: [
        "null", "true", "[]", "{}", "-0", "1.5e300", #""\u0000""#, #"{"a":[1,{"b":null}],"c":"é😀"}"#,
        #"[[[[[]]]],{"":{"":""}}]"#,
    ])
    func compactDocumentsSerialiseToThemselves(text: String) throws {
        let value = try JSONParser.parse(text)
        #expect(String(decoding: value.serialized(), as: UTF8.self) == text)
    }

    @Test func chatRequestRoundTrips() throws {
        let value = try JSONParser.parse(JSONFixtures.chatRequestBytes)
        let serialized = value.serialized()
        let reparsed = try JSONParser.parse(serialized)
        #expect(reparsed == value)
        // Serialising again is a fixed point.
        #expect(reparsed.serialized() == serialized)
    }

    // MARK: Errors

    @Test(arguments: JSONFixtures.errorCases)
    func rejectsInvalidDocuments(errorCase: JSONFixtures.ErrorCase) {
        #expect(throws: JSONParseError(errorCase.kind, at: errorCase.offset)) {
            try JSONParser.parse(errorCase.input)
        }
    }

    @Test func errorDescriptionNamesOffsetAndRule() {
        let text = #"{"model":"x" "a":1}"#
        do throws(JSONParseError) {
            _ = try JSONParser.parse(text)
            Issue.record("expected an error")
        } catch {
            #expect(error.kind == .expectedCommaOrObjectEnd)
            #expect(error.offset == 13)
            #expect(error.description == "invalid JSON at byte 13: expected ',' or '}'")
        }
        let duplicate = JSONParseError(.duplicateKey("model"), at: 20)
        #expect(duplicate.description == #"invalid JSON at byte 20: duplicate key "model""#)
    }

    // MARK: Limits

    @Test func depthLimitIsEnforcedWithoutRecursion() {
        // Far deeper than any stack could take if parsing recursed.
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 200_000)
        #expect(throws: JSONParseError(.tooDeep, at: 64)) { try JSONParser.parse(deep) }
        let deepObjects = Array(String(repeating: #"{"a":"#, count: 100).utf8)
        #expect(throws: JSONParseError(.tooDeep, at: 64 * 5)) { try JSONParser.parse(deepObjects) }
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let atLimit = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONParser.parse(atLimit) }
        let overLimit = "[" + atLimit + "]"
        #expect(throws: JSONParseError(.tooDeep, at: 64)) { try JSONParser.parse(overLimit) }
        // Depth counts containers only: a scalar at the limit is fine.
        let scalarInside = String(repeating: "[", count: 64) + "1" + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONParser.parse(scalarInside) }
    }

    @Test func customDepthLimits() {
        #expect(throws: JSONParseError(.tooDeep, at: 0)) { try JSONParser.parse("[]", limits: .init(maxDepth: 0)) }
        #expect(throws: Never.self) { try JSONParser.parse("1", limits: .init(maxDepth: 0)) }
        #expect(throws: JSONParseError(.tooDeep, at: 6)) {
            try JSONParser.parse(#"{"a":[[]]}"#, limits: .init(maxDepth: 2))
        }
        // Limits above the supported maximum are clamped to 1024.
        let limits = JSONLimits(maxDepth: 1_000_000)
        let at1024 = String(repeating: "[", count: 1024) + String(repeating: "]", count: 1024)
        #expect(throws: Never.self) { try JSONParser.parse(at1024, limits: limits) }
        #expect(throws: JSONParseError(.tooDeep, at: 1024)) { try JSONParser.parse("[" + at1024 + "]", limits: limits) }
    }

    @Test func sizeLimits() {
        #expect(throws: JSONParseError(.tooLarge, at: 5)) {
            try JSONParser.parse("[1, 2, 3]", limits: .init(maxBytes: 5))
        }
        #expect(throws: Never.self) { try JSONParser.parse("[1,2]", limits: .init(maxBytes: 5)) }
        let strings = JSONLimits(maxStringBytes: 3)
        #expect(throws: Never.self) { try JSONParser.parse(#"{"abc":"xyz"}"#, limits: strings) }
        #expect(throws: JSONParseError(.stringTooLong, at: 1)) { try JSONParser.parse(#"["abcd"]"#, limits: strings) }
        #expect(throws: JSONParseError(.stringTooLong, at: 1)) { try JSONParser.parse(#"{"abcd":1}"#, limits: strings) }
        // The limit counts encoded bytes: one escape is six bytes.
        #expect(throws: JSONParseError(.stringTooLong, at: 0)) { try JSONParser.parse(#""\u0041""#, limits: strings) }
    }

    @Test func duplicateDetectionSwitchesToAnIndexForLargeObjects() throws {
        // Beyond the linear-search threshold, unique keys must still be accepted and repeats still caught.
        let members = (0..<50).map { "\"k\($0)\":\($0)" }
        let unique = "{" + members.joined(separator: ",") + "}"
        let value = try JSONParser.parse(unique)
        #expect(value.objectValue?.count == 50)
        #expect(value["k49"]?.int64Value == 49)
        let repeated = "{" + (members + ["\"k0\":0"]).joined(separator: ",") + "}"
        #expect(throws: JSONParseError(.duplicateKey("k0"), at: unique.utf8.count)) { try JSONParser.parse(repeated) }
        let repeatedLast = "{" + (members + ["\"k49\":0"]).joined(separator: ",") + "}"
        #expect(throws: JSONParseError(.duplicateKey("k49"), at: unique.utf8.count)) {
            try JSONParser.parse(repeatedLast)
        }
    }
}

// MARK: - Fuzzing

/// SplitMix64: a tiny, fast, seedable generator, so fuzz failures reproduce exactly.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random structural mutations of a JSON document, and the parser/scanner agreement check.
enum JSONFuzz {
    /// Bytes likely to change a document's meaning rather than just a string's content.
    static let interestingBytes: [UInt8] =
        Array(#"{}[]",:\0123456789-+.eEtrufalsn/u "#.utf8)
        + [0x00, 0x09, 0x0A, 0x1F, 0x7F, 0x80, 0xBF, 0xC3, 0xED, 0xF4, 0xFF]

    static func mutate(_ input: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        let mutations = Int.random(in: 1...4, using: &rng)
        for _ in 0..<mutations {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[position] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:
                bytes[position] = interestingBytes.randomElement(using: &rng) ?? 0
            case 2:
                bytes.insert(interestingBytes.randomElement(using: &rng) ?? 0, at: position)
            case 3 where !bytes.isEmpty:
                bytes.remove(at: position)
            case 4:
                bytes.removeSubrange(position..<bytes.count)
            case 5 where !bytes.isEmpty:
                // Copy a slice elsewhere: duplicates keys and unbalances brackets in realistic ways.
                let end = min(bytes.count, position + Int.random(in: 1...24, using: &rng))
                let slice = Array(bytes[position..<end])
                bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &rng))
            case 6 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int.random(in: 1...16, using: &rng))
                bytes.removeSubrange(position..<end)
            default:
                bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
            }
        }
        return bytes
    }

    /// Runs parser and scanner on one input and describes any disagreement, or returns nil if they agree.
    static func disagreement(_ input: [UInt8]) -> String? {
        let parsed: Result<JSONValue, JSONParseError>
        do throws(JSONParseError) {
            parsed = .success(try JSONParser.parse(input))
        } catch {
            parsed = .failure(error)
        }
        let scanner = JSONScanner(input)
        let scanned: Result<Range<Int>?, JSONParseError>
        do throws(JSONParseError) {
            scanned = .success(try scanner.findTopLevel("model"))
        } catch {
            scanned = .failure(error)
        }
        // Exercise the value readers on whatever was found: they must never trap.
        if case .success(let range?) = scanned {
            _ = scanner.stringValue(at: range)
            _ = scanner.int64Value(at: range)
            _ = scanner.doubleValue(at: range)
            _ = scanner.boolValue(at: range)
        }

        switch (parsed, scanned) {
        case (.success(let value), .success(let range)):
            let expected = value.objectValue?["model"]
            guard let range else {
                return expected == nil ? nil : "scanner missed model"
            }
            let found = try? JSONParser.parse(Array(input[range]))
            if found != expected {
                return "scanner found \(String(describing: found)), parser \(String(describing: expected))"
            }
            return membersDisagreement(scanner, value)
        case (.success, .failure(let error)):
            return "parser accepted, scanner threw \(error)"
        case (.failure(let parserError), .success):
            // Only duplicate keys are the parser's alone to reject (see JSONScanner's documentation).
            if case .duplicateKey = parserError.kind { return nil }
            return "parser threw \(parserError), scanner accepted"
        case (.failure(let parserError), .failure(let scannerError)):
            if case .duplicateKey = parserError.kind {
                // The scanner goes on past a duplicate elsewhere, so it can only fail later, or on `model` itself.
                guard scannerError.offset >= parserError.offset else {
                    return "scanner \(scannerError) before parser \(parserError)"
                }
                return nil
            }
            return parserError == scannerError ? nil : "parser \(parserError), scanner \(scannerError)"
        }
    }

    /// For a valid document, checks `forEachTopLevelMember` against the tree.
    private static func membersDisagreement(_ scanner: JSONScanner, _ value: JSONValue) -> String? {
        var members: [JSONScanner.Member] = []
        do {
            try scanner.forEachTopLevelMember { members.append($0) }
        } catch {
            return "forEachTopLevelMember threw \(error) on a valid document"
        }
        let expected = value.objectValue?.members ?? []
        guard members.count == expected.count else { return "member count \(members.count) != \(expected.count)" }
        for (member, (key, value)) in zip(members, expected) {
            guard scanner.key(of: member, equals: key) else { return "member key mismatch for \(key)" }
            guard (try? JSONParser.parse(Array(scanner.bytes[member.value]))) == value else {
                return "member value mismatch for \(key)"
            }
        }
        return nil
    }

    /// Mutates the chat request `iterations` times and returns the first few disagreements.
    static func run(iterations: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        let original = JSONFixtures.chatRequestBytes
        var failures: [String] = []
        var current = original
        for iteration in 0..<iterations {
            // Mostly mutate the original; sometimes keep mutating a mutant to reach deeper damage.
            if Int.random(in: 0..<4, using: &rng) != 0 { current = original }
            current = mutate(current, using: &rng)
            if let problem = disagreement(current) {
                failures.append("iteration \(iteration): \(problem) for \(String(decoding: current, as: UTF8.self))")
                if failures.count >= 5 { break }
            }
        }
        return failures
    }
}

@Suite("JSONFuzz")
struct JSONFuzzTests {
    /// 20 000 mutations of a real request: the parser and scanner must never trap and must agree.
    ///
    /// Runs in an exit test so a trap fails this test alone rather than taking down the whole suite.
    @Test func parserAndScannerAgreeOnMutatedRequests() async {
        await #expect(processExitsWith: .success) {
            let failures = JSONFuzz.run(iterations: 20_000, seed: 0x5EED_0F_F1CE)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }

    @Test func parserAndScannerAgreeOnEveryTruncation() {
        let bytes = JSONFixtures.chatRequestBytes
        for length in 0...bytes.count {
            let problem = JSONFuzz.disagreement(Array(bytes.prefix(length)))
            #expect(problem == nil, "length \(length): \(problem ?? "")")
        }
    }

    @Test func theUnmutatedRequestIsAccepted() {
        #expect(JSONFuzz.disagreement(JSONFixtures.chatRequestBytes) == nil)
        #expect(throws: Never.self) { try JSONParser.parse(JSONFixtures.chatRequestBytes) }
    }
}

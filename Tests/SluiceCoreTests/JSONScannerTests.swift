import SluiceCore
import Testing

@Suite("JSONScanner")
struct JSONScannerTests {
    /// The raw text of the value the scanner finds for `key`, or nil if it finds none.
    private func rawValue(_ key: String, in text: String) throws(JSONParseError) -> String? {
        let scanner = JSONScanner(Array(text.utf8))
        guard let range = try scanner.findTopLevel(key) else { return nil }
        return String(decoding: scanner.bytes[range], as: UTF8.self)
    }

    // MARK: Finding members

    @Test func findsTheTopLevelMemberNotANestedOne() throws {
        let scanner = JSONScanner(Array(#"{"messages":[{"model":"x"}],"model":"gpt-4o"}"#.utf8))
        let range = try #require(try scanner.findTopLevel("model"))
        #expect(scanner.stringValue(at: range) == "gpt-4o")
        #expect(range == 36..<44)
    }

    @Test func ignoresKeysInsideStringValues() throws {
        #expect(try rawValue("model", in: #"{"prompt":"\"model\":\"evil\"","model":"good"}"#) == #""good""#)
        #expect(try rawValue("model", in: #"{"prompt":"model","other":"\"model\""}"#) == nil)
        #expect(try rawValue("model", in: #"{"model_name":"x","models":["model"]}"#) == nil)
    }

    @Test func ignoresNestedMembers() throws {
        #expect(try rawValue("model", in: #"{"a":{"model":"x"},"b":[{"model":"y"}]}"#) == nil)
        #expect(try rawValue("model", in: #"[{"model":"x"}]"#) == nil)
        #expect(try rawValue("model", in: #""model""#) == nil)
        #expect(try rawValue("model", in: "{}") == nil)
    }

    @Test func matchesEscapedKeysAfterUnescaping() throws {
        #expect(try rawValue("model", in: #"{"mod\u0065l":"gpt-4o"}"#) == #""gpt-4o""#)
        #expect(try rawValue("model", in: #"{"\u006D\u006f\u0064\u0065\u006C":1}"#) == "1")
        #expect(try rawValue("é😀", in: #"{"\u00e9\ud83d\ude00":true}"#) == "true")
        #expect(try rawValue("a\"b", in: #"{"a\"b":null}"#) == "null")
        // Prefixes and extensions of the key must not match.
        #expect(try rawValue("model", in: #"{"mode":1,"model\u0073":2,"mod\u0065":3}"#) == nil)
    }

    @Test func returnsWholeContainerValues() throws {
        let text = #"{"tools":[1,{"a":[2]}],"meta":{"x":{}},"empty":[]}"#
        #expect(try rawValue("tools", in: text) == #"[1,{"a":[2]}]"#)
        #expect(try rawValue("meta", in: text) == #"{"x":{}}"#)
        #expect(try rawValue("empty", in: text) == "[]")
    }

    @Test func missingKeyIsNil() throws {
        #expect(try rawValue("model", in: JSONFixtures.chatRequest.replacing(#""model":"gpt-4o","#, with: "")) == nil)
        #expect(try rawValue("absent", in: JSONFixtures.chatRequest) == nil)
        #expect(try rawValue("", in: #"{"":1}"#) == "1")
    }

    @Test func findsMembersOfTheChatRequest() throws {
        let scanner = JSONScanner(JSONFixtures.chatRequestBytes)
        let model = try #require(try scanner.findTopLevel("model"))
        #expect(scanner.stringValue(at: model) == "gpt-4o")
        let stream = try #require(try scanner.findTopLevel("stream"))
        #expect(scanner.boolValue(at: stream) == true)
        let maxTokens = try #require(try scanner.findTopLevel(Array("max_tokens".utf8)))
        #expect(scanner.int64Value(at: maxTokens) == 1024)
        let temperature = try #require(try scanner.findTopLevel("temperature"))
        #expect(scanner.doubleValue(at: temperature) == 0.7)
        #expect(scanner.int64Value(at: temperature) == nil)
        #expect(scanner.kind(at: try #require(try scanner.findTopLevel("messages"))) == .array)
        #expect(scanner.kind(at: try #require(try scanner.findTopLevel("metadata"))) == .object)
        #expect(try scanner.validate() == .object)
    }

    @Test func spanEntryPointsMatchTheArrayOnes() throws {
        let bytes = JSONFixtures.chatRequestBytes
        let scanner = JSONScanner(bytes)
        let range = try JSONScanner.findTopLevel("model", in: bytes.span)
        #expect(range == (try scanner.findTopLevel("model")))
        let found = try #require(range)
        #expect(JSONScanner.stringValue(at: found, in: bytes.span) == "gpt-4o")
        #expect(try JSONScanner.validate(bytes.span) == .object)
        var count = 0
        try JSONScanner.forEachTopLevelMember(in: bytes.span) { _ in count += 1 }
        #expect(count == 21)
    }

    // MARK: Duplicates

    @Test func duplicateOfTheRequestedKeyIsAnError() {
        #expect(throws: JSONParseError(.duplicateKey("model"), at: 13)) {
            try rawValue("model", in: #"{"model":"a","model":"b"}"#)
        }
        #expect(throws: JSONParseError(.duplicateKey("model"), at: 13)) {
            try rawValue("model", in: #"{"model":"a","m\u006fdel":"b"}"#)
        }
        #expect(throws: JSONParseError(.duplicateKey("model"), at: 17)) {
            try rawValue("model", in: #"{"model":[1,2,3],"model":{}}"#)
        }
    }

    @Test func otherDuplicatesAreLeftToTheCaller() throws {
        // Rejecting every duplicate would need memory per key; see JSONScanner's documentation.
        #expect(try rawValue("model", in: #"{"a":1,"a":2,"model":"x"}"#) == #""x""#)
        #expect(try rawValue("model", in: #"{"model":{"a":1,"a":2}}"#) == #"{"a":1,"a":2}"#)
    }

    // MARK: Visiting members

    @Test func visitsEveryTopLevelMemberInOrder() throws {
        let text = #"{"a":1,"b\u0021":"two","c":[3,{"d":4}],"e":{"f":null},"g":true}"#
        let scanner = JSONScanner(Array(text.utf8))
        var seen: [(String, String)] = []
        try scanner.forEachTopLevelMember { member in
            let key = scanner.stringValue(at: (member.keyContent.lowerBound - 1)..<(member.keyContent.upperBound + 1))
            seen.append((key ?? "?", String(decoding: scanner.bytes[member.value], as: UTF8.self)))
        }
        let expected = [
            ("a", "1"), ("b!", #""two""#), ("c", #"[3,{"d":4}]"#), ("e", #"{"f":null}"#), ("g", "true"),
        ]
        #expect(seen.map(\.0) == expected.map(\.0))
        #expect(seen.map(\.1) == expected.map(\.1))
    }

    @Test func memberKeysCompareAfterUnescaping() throws {
        let scanner = JSONScanner(Array(#"{"mod\u0065l":1,"stream":2}"#.utf8))
        var members: [JSONScanner.Member] = []
        try scanner.forEachTopLevelMember { members.append($0) }
        #expect(members.count == 2)
        #expect(scanner.key(of: members[0], equals: "model"))
        #expect(!scanner.key(of: members[0], equals: "mode"))
        #expect(members[0].keyHasEscapes)
        #expect(scanner.key(of: members[1], equals: "stream"))
        #expect(!members[1].keyHasEscapes)
    }

    @Test func nonObjectDocumentsHaveNoMembers() throws {
        var count = 0
        try JSONScanner(Array("[1,2]".utf8)).forEachTopLevelMember { _ in count += 1 }
        #expect(count == 0)
    }

    // MARK: Malformed documents

    @Test func malformedBodiesThrowEvenAfterTheKeyWasFound() {
        #expect(throws: JSONParseError(.trailingComma, at: 18)) { try rawValue("model", in: #"{"model":"gpt-4o",}"#) }
        #expect(throws: JSONParseError(.unexpectedEndOfInput, at: 17)) {
            try rawValue("model", in: #"{"model":"gpt-4o""#)
        }
        #expect(throws: JSONParseError(.trailingCharacters, at: 18)) {
            try rawValue("model", in: #"{"model":"gpt-4o"}{"model":"other"}"#)
        }
        let invalidUTF8 = Array(#"{"model":"gpt-4o","x":""#.utf8) + [0xFF] + Array(#""}"#.utf8)
        #expect(throws: JSONParseError(.invalidUTF8, at: 23)) { try JSONScanner(invalidUTF8).findTopLevel("model") }
    }

    @Test(arguments: JSONFixtures.errorCases)
    func reportsTheSameErrorsAsTheParser(errorCase: JSONFixtures.ErrorCase) {
        // Duplicate keys are the parser's alone to reject, unless the duplicate is the requested key.
        if case .duplicateKey = errorCase.kind {
            #expect(throws: Never.self) { try JSONScanner(errorCase.input).validate() }
            return
        }
        let expected = JSONParseError(errorCase.kind, at: errorCase.offset)
        #expect(throws: expected) { try JSONScanner(errorCase.input).validate() }
        #expect(throws: expected) { try JSONScanner(errorCase.input).findTopLevel("a") }
    }

    @Test func depthAndSizeLimits() {
        let deep = [UInt8](repeating: UInt8(ascii: "["), count: 200_000)
        #expect(throws: JSONParseError(.tooDeep, at: 64)) { try JSONScanner(deep).findTopLevel("model") }
        let brackets = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        let nested = Array((#"{"model":"# + brackets + "}").utf8)
        #expect(throws: JSONParseError(.tooDeep, at: 72)) { try JSONScanner(nested).findTopLevel("model") }
        #expect(throws: Never.self) { try JSONScanner(nested, limits: .init(maxDepth: 100)).findTopLevel("model") }
        let big = JSONFixtures.chatRequestBytes
        #expect(throws: JSONParseError(.tooLarge, at: 100)) {
            try JSONScanner(big, limits: .init(maxBytes: 100)).findTopLevel("model")
        }
        #expect(throws: JSONParseError(.stringTooLong, at: 9)) {
            try JSONScanner(Array(#"{"model":"gpt-4o"}"#.utf8), limits: .init(maxStringBytes: 5)).findTopLevel("model")
        }
    }

    // MARK: Reading values

    @Test func stringValuesDecodeEscapes() throws {
        let text = #"{"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","plain":"résumé","empty":""}"#
        let scanner = JSONScanner(Array(text.utf8))
        #expect(scanner.stringValue(at: try #require(try scanner.findTopLevel("s"))) == "a\"b\\c/d\né😀")
        #expect(scanner.stringValue(at: try #require(try scanner.findTopLevel("plain"))) == "résumé")
        #expect(scanner.stringValue(at: try #require(try scanner.findTopLevel("empty"))) == "")
    }

    @Test func valueReadersRejectRangesThatAreNotExactlyOneValue() {
        let text = #"{"a":"x","b":"y","n":12,"f":true}"#
        let scanner = JSONScanner(Array(text.utf8))
        #expect(scanner.stringValue(at: 5..<8) == "x")
        #expect(scanner.stringValue(at: 5..<16) == nil)  // "x","b":"y" spans several tokens
        #expect(scanner.stringValue(at: 5..<7) == nil)
        #expect(scanner.stringValue(at: 0..<1000) == nil)
        #expect(scanner.stringValue(at: -3..<2) == nil)
        #expect(scanner.stringValue(at: 21..<23) == nil)  // a number
        #expect(scanner.int64Value(at: 21..<23) == 12)
        #expect(scanner.int64Value(at: 21..<22) == 1)
        #expect(scanner.int64Value(at: 20..<23) == nil)
        #expect(scanner.boolValue(at: 28..<32) == true)
        #expect(scanner.boolValue(at: 28..<31) == nil)
        #expect(scanner.isNull(at: 28..<32) == false)
        #expect(scanner.kind(at: 0..<0) == nil)
        #expect(scanner.kind(at: 99..<100) == nil)
    }

    @Test(arguments: [
        ("0", 0), ("-0", 0), ("42", 42), ("-42", -42),
        ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
        ("9223372036854775808", nil), ("-9223372036854775809", nil), ("99999999999999999999999", nil),
        ("1.0", nil), ("1e2", nil), ("true", nil), ("\"1\"", nil),
    ] as [(String, Int64?)])
    func int64Values(text: String, expected: Int64?) throws {
        let scanner = JSONScanner(Array("{\"v\":\(text)}".utf8))
        let range = try #require(try scanner.findTopLevel("v"))
        #expect(scanner.int64Value(at: range) == expected)
    }

    @Test func boolNullAndDoubleValues() throws {
        let scanner = JSONScanner(Array(#"{"t":true,"f":false,"n":null,"d":-2.5e-3,"h":1e400}"#.utf8))
        #expect(scanner.boolValue(at: try #require(try scanner.findTopLevel("t"))) == true)
        #expect(scanner.boolValue(at: try #require(try scanner.findTopLevel("f"))) == false)
        #expect(scanner.boolValue(at: try #require(try scanner.findTopLevel("n"))) == nil)
        #expect(scanner.isNull(at: try #require(try scanner.findTopLevel("n"))))
        #expect(scanner.doubleValue(at: try #require(try scanner.findTopLevel("d"))) == -2.5e-3)
        #expect(scanner.doubleValue(at: try #require(try scanner.findTopLevel("h"))) == nil)
        #expect(scanner.kind(at: try #require(try scanner.findTopLevel("t"))) == .boolean)
        #expect(scanner.kind(at: try #require(try scanner.findTopLevel("n"))) == .null)
        #expect(scanner.kind(at: try #require(try scanner.findTopLevel("d"))) == .number)
    }

    @Test func validateReportsTheTopLevelKind() throws {
        #expect(try JSONScanner(Array("  \"s\" ".utf8)).validate() == .string)
        #expect(try JSONScanner(Array("[{}]".utf8)).validate() == .array)
        #expect(try JSONScanner(Array("-1".utf8)).validate() == .number)
        #expect(try JSONScanner(Array("null".utf8)).validate() == .null)
        #expect(try JSONScanner(Array("false".utf8)).validate() == .boolean)
    }
}

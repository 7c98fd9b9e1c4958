// The in-place reading the request translators rely on: JSONValidator refuses exactly what JSONParser refuses
// (duplicate names compared as Strings compare them), ValidatedJSON finds members past escapes and long
// strings, and the byte entry points translate as the tree-based path did.

import Testing

@testable import SluiceCore

@Suite struct OpenAIChatRequestReaderTests {
    static let documents: [String] = [
        #"{"a":1,"b":2}"#,
        #"{"a":1,"a":2}"#,
        #"{"a":1,"\u0061":2}"#,
        // Canonically equivalent names are one name to JSONParser (NFC and NFD, and U+212A KELVIN SIGN is "K").
        #"{"é":1,"é":2}"#,
        #"{"\u00e9":1,"e\u0301":2}"#,
        #"{"K":1,"\u212a":2}"#,
        #"{"k":1,"\u212a":2}"#,
        #"{"x":{"a":1},"y":{"a":1}}"#,
        #"{"x":[{"a":1,"b":{"a":2}}],"x":3}"#,
        #"{"a":1,"a":2,"b":}"#,
        #"{"a":1,"b":}"#,
        #"[{"a":1},{"a":1}]"#,
        "{\"a\":\"\u{1}\"}",
        #"{"a":"\ud800"}"#,
        "",
        "  null ",
        #"{"a":1} x"#,
    ]

    /// Objects past the linear search: duplicates found through the seeded index, at the same offset.
    static func largeObject(duplicate: String?) -> String {
        var members = (0..<40).map { #""k\#($0)":\#($0)"# }
        if let duplicate { members.append(#""\#(duplicate)":0"#) }
        return "{" + members.joined(separator: ",") + "}"
    }

    @Test(arguments: documents + [largeObject(duplicate: nil), largeObject(duplicate: "k7"), largeObject(duplicate: #"k\u0033"#)])
    func validatorRefusesWhatTheParserRefuses(document: String) {
        let bytes = Array(document.utf8)
        var validator = JSONValidator()
        let validated = Result { () throws(JSONParseError) in _ = try validator.validate(bytes) }
        let parsed = Result { () throws(JSONParseError) in _ = try JSONParser.parse(bytes) }
        switch (validated, parsed) {
        case (.success, .success): break
        case (.failure(let mine), .failure(let parser)): #expect(mine == parser)
        default: Issue.record("validator \(validated), parser \(parsed)")
        }
    }

    @Test func repeatedNamesCanBeAllowedAndTheFirstCounts() throws {
        var validator = JSONValidator(duplicateKeys: .allow)
        let document = try validator.validate(Array(#"{"a":1,"a":2}"#.utf8))
        let fields = document.fields(of: document.root, JSONKeys<1>("a"))
        #expect(fields[0].map { Array(document.slice($0)) } == Array("1".utf8))
    }

    @Test func membersAreFoundPastEscapesAndLongStrings() throws {
        let long = String(repeating: "x\\\"y ", count: 40)
        let body = Array(#"{"skip":"\#(long)","mess\u0061ges":[{"role":"user","content":"\#(long)"},7,{"role":"tool"}],"n":1}"#.utf8)
        var validator = JSONValidator()
        let (document, root) = try validator.validate(body, capturing: JSONKeys<2>("messages", "n"))
        #expect(root[1].map { Array(document.slice($0)) } == Array("1".utf8))
        let elements = Array(document.objects(in: root[0], OpenAIChatMessage.keys))
        #expect(elements.count == 3)
        #expect(elements.map { document.kind($0.range) } == [.object, .number, .object])
        #expect(document.string(OpenAIChatMessage(elements[0].fields).role, is: "user"))
        #expect(document.decodedString(OpenAIChatMessage(elements[0].fields).content) == long.replacing("\\\"", with: "\""))
        #expect(document.string(OpenAIChatMessage(elements[2].fields).role, is: "tool"))
        // The same members as a tree gives.
        let tree = try JSONParser.parse(body)
        #expect(document.decodedString(document.member("content", of: elements[0].range))
            == tree["messages"]?.item(0)?["content"]?.stringValue)
    }

    @Test func anthropicTranslatesBytesAsTheTreeDid() throws {
        let context = TranslationContext(upstreamModel: "claude-x", requestModel: "c", defaultMaxTokens: 100)
        let bodies = try [AnthropicFixtures.bytes("request-full.openai.json")] + [
            #"{"messages":[{"role":"user","content":"a"},{"role":"system","content":"s"},{"role":"user","content":"b"}]}"#,
            #"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}"#,
            #"{"messages":[{"role":"user","content":"only"}],"stream":true}"#,
        ].map { Array($0.utf8) }
        for body in bodies {
            let fromBytes = try JSONParser.parse(AnthropicTranslator.request(fromOpenAIChat: body, context: context))
            let fromTree = try JSONParser.parse(
                AnthropicTranslator.request(fromOpenAIChat: try JSONParser.parse(body), context: context))
            #expect(AnthropicFixtures.sorted(fromBytes) == AnthropicFixtures.sorted(fromTree))
        }
        // A user turn that is one string stays a string; a second block makes it a list.
        let merged = try JSONParser.parse(AnthropicTranslator.request(fromOpenAIChat: bodies[2], context: context))
        #expect(merged["messages"]?.item(0)?["content"]?.arrayValue?.count == 2)
        let single = try JSONParser.parse(AnthropicTranslator.request(fromOpenAIChat: bodies[3], context: context))
        #expect(single["messages"]?.item(0)?["content"] == "only")
    }

    /// An OpenAI client's body is refused with the hub path's words, for every translated backend.
    @Test(arguments: [BackendSchema.anthropic, .gemini, .bedrockConverse])
    func exchangeKeepsTheHubPathErrors(schema: BackendSchema) throws {
        let backend = BackendConfig(name: "b", schema: schema, credential: .value("k"))
        var attempt = ProviderAttempt(
            backend: backend, clientAPI: .openAI, endpoint: .chatCompletions, requestModel: "m", stream: false,
            includeUsage: false, created: 1, requestID: "r")
        let body = Array(#"{"messages":[{"role":"user","content":"x"}],"temperature":0.5,"temperature":1}"#.utf8)
        #expect(throws: TranslateError.invalidBody(
            "We could not parse the JSON body of your request: invalid JSON at byte 62: duplicate key \"temperature\"."))
        {
            _ = try schema.adapter.translateRequest(body, attempt: &attempt)
        }
        let valid = Array(#"{"messages":[{"role":"user","content":"x"}]}"#.utf8)
        #expect(try !schema.adapter.translateRequest(valid, attempt: &attempt).isEmpty)
    }
}

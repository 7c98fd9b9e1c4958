// The shared OpenAI writers and the range readers behind the response translators: what they copy from an
// upstream body is byte for byte what parsing it into a tree and writing that tree would give, and every
// provider's answer carries the one usage shape, which the OpenAI usage reader reads back as metered.

import Foundation
import Testing

@testable import SluiceCore

@Suite struct OpenAIWritersTests {
    static let context = TranslationContext(
        upstreamModel: "m", requestModel: "client-model", created: 1_700_000_000, fallbackResponseID: "req-1")

    // MARK: - Copying from the source equals decoding and re-encoding

    /// Documents whose strings need every kind of escape, nested containers, numbers as written.
    static let documents: [String] = [
        #"{"a":"plain","b":"quote \" backslash \\ slash \/ tab \t nl \n","c":"\u00e9\u0041\u001f\ud83d\ude00"}"#,
        #"{"k\u0065y":[1,-2.5e3,0,true,false,null,{"x":{}},[],[[]]],"e":"é — 😀","ctl":"\b\f\r"}"#,
        #"  { "spaced" : [ 1 , { "deep" : [ "v" ] } ] , "n" : 12.000 }  "#,
        #"{"input":{"city":"Paris \"x\"","units":["c"],"q":"\\n is not a newline"}}"#,
        #"["top", "level", {"arr": "ay"}]"#,
    ]

    @Test(arguments: documents)
    func compactCopyEqualsSerialisedTree(text: String) throws {
        let source = Array(text.utf8)
        let bytes = source.span
        var values: [UpstreamJSON.Value] = []
        func collect(_ value: UpstreamJSON.Value) {
            values.append(value)
            UpstreamJSON.forEachMember(of: value, in: bytes) { collect($0.value) }
            UpstreamJSON.forEachElement(of: value, in: bytes) { collect($0) }
        }
        // The whole document (its members and elements with it), whitespace around it left out.
        try UpstreamJSON.scanTopLevel(bytes) { _ in }
        let start = try #require(source.firstIndex { $0 != 0x20 })
        let end = try #require(source.lastIndex { $0 != 0x20 })
        collect(UpstreamJSON.Value(range: start..<(end + 1), hasEscapes: false))
        #expect(values.count > 3)
        for value in values {
            let tree = try JSONParser.parse(Array(source[value.range]))
            let serialised = tree.serialized()

            var compact = JSONWriter()
            UpstreamJSON.writeCompact(value, from: source, to: &compact)
            #expect(compact.bytes == serialised, "\(String(decoding: source[value.range], as: UTF8.self))")

            var asString = JSONWriter()
            UpstreamJSON.writeCompactAsString(value, from: source, to: &asString)
            #expect(asString.bytes == JSONWriter.escaped(String(decoding: serialised, as: UTF8.self)))

            if case .string(let decoded) = tree {
                var copied = JSONWriter()
                UpstreamJSON.writeString(value, from: source, or: "not a string", to: &copied)
                #expect(copied.bytes == JSONWriter.escaped(decoded))
                let read = UpstreamJSON.string(value, in: bytes)
                let equal = UpstreamJSON.string(value, equals: decoded, in: bytes)
                #expect(read == decoded)
                #expect(equal)
            }
        }
    }

    @Test func invalidDocumentsFailAsTheParserDoes() {
        for text in [#"{"a":1,}"#, #"{"a":"\x"}"#, "[" + String(repeating: "[", count: 70) + "]", "", "{} x"] {
            let source = Array(text.utf8)
            var scanError: JSONParseError?
            do { try UpstreamJSON.scanTopLevel(source.span) { _ in } } catch { scanError = error }
            var parseError: JSONParseError?
            do { _ = try JSONParser.parse(source) } catch { parseError = error }
            #expect(scanError != nil && scanError == parseError, "\(text)")
        }
    }

    /// A scan cannot remember every name; the last occurrence of a member a translator reads wins.
    @Test func repeatedMembersTheLastWins() throws {
        let body = Array(
            #"{"id":"a","content":[{"type":"text","text":"one"}],"content":[{"type":"text","text":"two"}],"usage":{"input_tokens":1,"output_tokens":2,"output_tokens":3}}"#
                .utf8)
        let translated = try AnthropicTranslator.response(toOpenAIChat: body, context: Self.context)
        let tree = try JSONParser.parse(translated.body)
        #expect(tree["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue == "two")
        #expect(translated.usage == TokenUsage(inputTokens: 1, outputTokens: 3))
    }

    // MARK: - One usage shape, read back as metered

    static let cacheWriteUsage = TokenUsage(
        inputTokens: 132, outputTokens: 57, cachedInputTokens: 100, cacheWriteInputTokens: 20)

    /// Each translated answer (non-streamed and streamed) against the usage it meters.
    static func translatedAnswers() throws -> [(what: String, body: [UInt8], usage: TokenUsage, reasoning: Bool)] {
        var answers: [(String, [UInt8], TokenUsage, Bool)] = []
        let anthropic = try AnthropicTranslator.response(
            toOpenAIChat: AnthropicFixtures.bytes("response-full.anthropic.json"), context: context)
        answers.append(("anthropic", anthropic.body, anthropic.usage, false))
        let bedrock = try BedrockConverse.chatCompletion(fromConverse: BedrockFixtures.bytes("response.json"), context: context)
        answers.append(("bedrock", bedrock.body, bedrock.usage, false))
        let gemini = try Gemini.chatCompletion(
            fromGeminiResponse: GeminiFixtureSupport.load("gemini/full.response.gemini.json"), context: context)
        answers.append(("gemini", gemini.body, gemini.usage, true))

        var streamed = context
        streamed.includeUsage = true
        var anthropicStream = AnthropicToOpenAIStream(context: streamed)
        var sse = anthropicStream.feed(try AnthropicFixtures.bytes("stream-thinking.anthropic.sse"))
        sse += anthropicStream.finish()
        answers.append(("anthropic stream", usageChunk(sse), anthropicStream.usage, false))
        var geminiStream = GeminiStream(context: streamed)
        sse = geminiStream.feed(try GeminiFixtureSupport.load("gemini/stream.gemini.sse"))
        sse += geminiStream.finish()
        answers.append(("gemini stream", usageChunk(sse), geminiStream.usage, true))
        return answers
    }

    /// The data of the stream's usage chunk (the event before `[DONE]`).
    static func usageChunk(_ sse: [UInt8]) -> [UInt8] {
        let events = String(decoding: sse, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }
        guard events.count >= 2 else { return [] }
        return Array(events[events.count - 2].dropFirst("data: ".count).utf8)
    }

    @Test func everyAnswerCarriesTheOneUsageShapeAndReadsBackAsMetered() throws {
        for answer in try Self.translatedAnswers() {
            let tree = try JSONParser.parse(answer.body)
            let usage = try #require(tree["usage"]?.objectValue, "\(answer.what)")
            var expected = ["prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"]
            if answer.reasoning { expected.append("completion_tokens_details") }
            #expect(usage.members.map(\.key) == expected, "\(answer.what)")
            let details = try #require(usage["prompt_tokens_details"]?.objectValue)
            #expect(details.members.map(\.key).first == "cached_tokens")
            #expect((details["cache_write_tokens"] != nil) == (answer.usage.cacheWriteInputTokens > 0), "\(answer.what)")
            #expect(OpenAICompatible.usage(fromResponse: answer.body) == answer.usage, "\(answer.what)")
        }
    }

    @Test func usageWriterShape() {
        var writer = JSONWriter()
        OpenAIUsageWriter.write(Self.cacheWriteUsage, reasoningReported: false, to: &writer)
        #expect(
            String(decoding: writer.bytes, as: UTF8.self)
                == #"{"prompt_tokens":132,"completion_tokens":57,"total_tokens":189,"prompt_tokens_details":{"cached_tokens":100,"cache_write_tokens":20}}"#
        )
        writer = JSONWriter()
        OpenAIUsageWriter.write(TokenUsage(inputTokens: 3, outputTokens: 9, reasoningTokens: 4), reasoningReported: true, to: &writer)
        #expect(
            String(decoding: writer.bytes, as: UTF8.self)
                == #"{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":4}}"#
        )
    }

    // MARK: - Chunks

    @Test func chunkWriterFramesAndIDChange() {
        var chunks = OpenAIChunkWriter(id: "fallback", created: 7, model: "m\"x")
        var out: [UInt8] = []
        chunks.appendDelta(to: &out, role: true) { writer in
            writer.key("content")
            writer.string("hi")
        }
        let source = Array(#"{"id":"msg_\u0031"}"#.utf8)
        var id: UpstreamJSON.Value?
        _ = try? UpstreamJSON.scanTopLevel(source.span) { id = $0.value }
        if let id { chunks.setID(id, from: source, idPrefix: "chatcmpl-") }
        chunks.appendDelta(to: &out, index: 2, role: false, finishReason: "stop") { _ in }
        chunks.appendUsage(TokenUsage(inputTokens: 1), reasoningReported: false, to: &out)
        OpenAIChunkWriter.appendDone(to: &out)
        #expect(
            String(decoding: out, as: UTF8.self) == """
                data: {"id":"fallback","object":"chat.completion.chunk","created":7,"model":"m\\"x","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}

                data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"m\\"x","choices":[{"index":2,"delta":{},"finish_reason":"stop"}]}

                data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":7,"model":"m\\"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1,"prompt_tokens_details":{"cached_tokens":0}}}

                data: [DONE]


                """)
    }

    // MARK: - Usage of a passed-through Anthropic answer

    @Test func anthropicUsageOfResponseIsTheTranslationsUsage() throws {
        let body = try AnthropicFixtures.bytes("response-full.anthropic.json")
        let translated = try AnthropicTranslator.response(toOpenAIChat: body, context: Self.context)
        #expect(AnthropicTranslator.usage(ofResponse: body) == translated.usage)
        for invalid in ["", "[]", #"{"type":"error","error":{"message":"x"},"usage":{"input_tokens":5}}"#,
            #"{"content":{},"usage":{"input_tokens":5}}"#]
        {
            #expect(AnthropicTranslator.usage(ofResponse: Array(invalid.utf8)) == TokenUsage(), "\(invalid)")
        }
    }
}

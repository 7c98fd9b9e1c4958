import Testing

@testable import SluiceCore

@Suite struct AnthropicStreamTests {
    static let context = TranslationContext(
        upstreamModel: "claude-x", requestModel: "claude-sonnet", stream: true, includeUsage: true,
        created: 1_700_000_000)

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var usage: TokenUsage
        var finishReason: String?
        var errorCode: String?
        var testDescription: String { name }
    }

    static let cases = [
        Case(
            name: "stream-text", usage: TokenUsage(inputTokens: 30, outputTokens: 15, cachedInputTokens: 5),
            finishReason: "stop"),
        Case(name: "stream-tools", usage: TokenUsage(inputTokens: 100, outputTokens: 40), finishReason: "tool_calls"),
        Case(
            name: "stream-thinking", usage: TokenUsage(inputTokens: 310, outputTokens: 7, cacheWriteInputTokens: 300),
            finishReason: "length"),
        Case(
            name: "stream-error", usage: TokenUsage(inputTokens: 9, outputTokens: 1), finishReason: nil,
            errorCode: "overloaded_error"),
    ]

    static func translate(_ input: [UInt8], cuts: [Int], context: TranslationContext = context)
        -> ([UInt8], AnthropicToOpenAIStream)
    {
        AnthropicFixtures.run(
            { AnthropicToOpenAIStream(context: context) }, input, cuts: cuts, feed: { $0.feed($1) },
            finish: { $0.finish() })
    }

    @Test(arguments: cases)
    func matchesGoldenAtEveryByteSplit(testCase: Case) throws {
        let input = try AnthropicFixtures.bytes("\(testCase.name).anthropic.sse")
        let (whole, stream) = Self.translate(input, cuts: [])
        try AnthropicFixtures.expectBytes(whole, match: "\(testCase.name).openai.sse")
        #expect(stream.usage == testCase.usage)
        #expect(stream.finishReason == testCase.finishReason)
        #expect(stream.error?.code == testCase.errorCode)
        for split in 0...input.count {
            #expect(Self.translate(input, cuts: [split]).0 == whole, "split at \(split)")
        }
        #expect(Self.translate(input, cuts: Array(0...input.count)).0 == whole, "byte by byte")
        var random = SplitMix64(seed: 0xA11CE)
        for _ in 0..<50 {
            let cuts = (0..<Int.random(in: 1...8, using: &random)).map { _ in
                Int.random(in: 0...input.count, using: &random)
            }
            #expect(Self.translate(input, cuts: cuts.sorted()).0 == whole, "cuts \(cuts)")
        }
    }

    @Test func streamShapeInvariants() throws {
        let input = try AnthropicFixtures.bytes("stream-tools.anthropic.sse")
        let events = AnthropicFixtures.events(Self.translate(input, cuts: []).0)
        #expect(events.last?.data == Array("[DONE]".utf8))
        let chunks = events.dropLast().compactMap { try? JSONParser.parse($0.data) }
        #expect(chunks.first?["choices"]?.item(0)?["delta"]?["role"] == "assistant")
        #expect(chunks.filter { $0["choices"]?.item(0)?["delta"]?["role"] != nil }.count == 1)
        #expect(chunks.allSatisfy { $0["id"] == "msg_tools" && $0["model"] == "claude-sonnet" })
        var arguments: [Int64: String] = [:]
        for chunk in chunks {
            for call in chunk["choices"]?.item(0)?["delta"]?["tool_calls"]?.arrayValue ?? [] {
                let index = call["index"]?.int64Value ?? -1
                arguments[index, default: ""] += call["function"]?["arguments"]?.stringValue ?? ""
            }
        }
        #expect(arguments == [0: #"{"city": "Paris"}"#, 1: "{}"])
        #expect(chunks.last?["choices"] == [])
        #expect(chunks.last?["usage"]?["total_tokens"] == 140)
    }

    @Test func noUsageChunkWithoutIncludeUsage() throws {
        var context = Self.context
        context.includeUsage = false
        let input = try AnthropicFixtures.bytes("stream-text.anthropic.sse")
        let (out, stream) = Self.translate(input, cuts: [], context: context)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("\"usage\""))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(stream.usage.outputTokens == 15)
    }

    @Test func truncatedStreamEndsWithAnError() throws {
        let input = try AnthropicFixtures.bytes("stream-text.anthropic.sse")
        let cut = Array(input.prefix(600))
        let (out, stream) = Self.translate(cut, cuts: [])
        #expect(stream.error?.code == "upstream_stream_truncated")
        #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
    }

    @Test func missingMessageStopStillCompletesAfterMessageDelta() {
        let input = Array(
            """
            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}
            """.utf8)
        let (out, stream) = Self.translate(input, cuts: [])
        #expect(stream.error == nil)
        #expect(stream.finishReason == "stop")
        #expect(String(decoding: out, as: UTF8.self).contains("\"finish_reason\":\"stop\""))
    }

    @Test func garbageEventIsAnErrorFrame() {
        let (out, stream) = Self.translate(Array("data: not json\n\n".utf8), cuts: [])
        #expect(stream.error?.code == "bad_upstream_response")
        let events = AnthropicFixtures.events(out)
        #expect(events.count == 2)
        #expect((try? JSONParser.parse(events[0].data))?["error"]?["code"] == "bad_upstream_response")
    }

    @Test func oversizedEventIsAnErrorFrame() {
        var stream = AnthropicToOpenAIStream(context: Self.context, maxEventBytes: 64)
        let out = stream.feed(Array(("data: " + String(repeating: "x", count: 100)).utf8))
        #expect(stream.error?.code == "bad_upstream_response")
        #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
        #expect(stream.feed(Array("data: {}\n\n".utf8)).isEmpty)
        #expect(stream.finish().isEmpty)
    }

    @Test func bedrockStyleJSONEvents() throws {
        var stream = AnthropicToOpenAIStream(context: Self.context)
        let input = try AnthropicFixtures.bytes("stream-text.anthropic.sse")
        var out: [UInt8] = []
        for event in AnthropicFixtures.events(input) { out += stream.feedEvent(json: event.data) }
        out += stream.finish()
        #expect(out == Self.translate(input, cuts: []).0)
    }
}

import Testing

@testable import SluiceCore

@Suite struct AnthropicResponseTests {
    static let context = TranslationContext(
        upstreamModel: "claude-sonnet-4-5-20250929", requestModel: "claude-sonnet", created: 1_700_000_000)

    @Test func fullResponseMatchesGolden() throws {
        let (body, usage) = try AnthropicTranslator.response(
            toOpenAIChat: try AnthropicFixtures.bytes("response-full.anthropic.json"), context: Self.context)
        try AnthropicFixtures.expectJSON(body, matches: "response-full.openai.json")
        #expect(
            usage == TokenUsage(inputTokens: 132, outputTokens: 57, cachedInputTokens: 100, cacheWriteInputTokens: 20))
        let value = try JSONParser.parse(body)
        let message = value["choices"]?.item(0)?["message"]
        #expect(message?["content"] == "Checking the weather in Paris.")
        #expect(message?["tool_calls"]?.item(0)?["function"]?["arguments"] == #"{"city":"Paris","units":["c"]}"#)
    }

    /// Thinking blocks reach the hub in its shape, member by member: a member an upstream repeats is
    /// read once (the last, as every by-range reader takes it), never copied twice into the answer,
    /// and members that are not strings or not the block's own are left out. (Found by the
    /// `response` fuzz target: the blocks were copied whole.)
    @Test func thinkingBlocksAreWrittenInTheHubsShapeNotCopied() throws {
        let body = #"""
            {"id":"m","type":"message","stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2},
             "content":[
              {"type":"thinking","thinking":"first","signature":"s1","thinking":"second","extra":{"a":1,"a":2}},
              {"data":"REDACTED==","type":"redacte==","type":"redacted_thinking","signature":7},
              {"type":"thinking","thinking":5,"signature":"s3"},
              {"type":"text","text":"ok"}]}
            """#
        let (out, usage) = try AnthropicTranslator.response(toOpenAIChat: Array(body.utf8), context: Self.context)
        #expect(usage.outputTokens == 2)
        let message = try JSONParser.parse(out)["choices"]?.item(0)?["message"]
        #expect(message?["reasoning_content"] == "second")
        #expect(message?["thinking_blocks"] == .array([
            .object(JSONObject([("type", "thinking"), ("thinking", "second"), ("signature", "s1")])),
            .object(JSONObject([("type", "redacted_thinking"), ("data", "REDACTED==")])),
            .object(JSONObject([("type", "thinking"), ("signature", "s3")])),
        ]))
    }

    @Test(arguments: [
        ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
        ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("something_new", "stop"),
    ])
    func stopReasons(stop: String, finish: String) throws {
        let body = #"{"id":"m","type":"message","content":[],"stop_reason":"\#(stop)","usage":{"input_tokens":1}}"#
        let (out, _) = try AnthropicTranslator.response(toOpenAIChat: Array(body.utf8), context: Self.context)
        let value = try JSONParser.parse(out)
        #expect(value["choices"]?.item(0)?["finish_reason"]?.stringValue == finish)
        #expect(value["choices"]?.item(0)?["message"]?["content"] == "")
    }

    @Test(arguments: ["", "<html>503</html>", "[]", #"{"type":"error","error":{"type":"x","message":"m"}}"#, "{}"])
    func malformedSuccessBodiesAreBadGateway(body: String) {
        #expect(throws: TranslateError.self) {
            _ = try AnthropicTranslator.response(toOpenAIChat: Array(body.utf8), context: Self.context)
        }
    }

    @Test func anthropicErrorBodyKeepsStatusTypeAndMessage() {
        let body = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        let error = AnthropicTranslator.error(status: 529, body: Array(body.utf8))
        #expect(
            error
                == GatewayError(status: 529, type: "overloaded_error", code: "overloaded_error", message: "Overloaded"))
        let rendered = try? JSONParser.parse(error.body(for: .openAI))
        #expect(rendered?["error"]?["code"] == "overloaded_error")
        #expect(rendered?["error"]?["message"] == "Overloaded")
    }

    @Test func htmlErrorBodyIsWrappedFaithfully() {
        let error = AnthropicTranslator.error(
            status: 503, body: Array("<html>\n<b>Service Unavailable</b>\n</html>\n".utf8))
        #expect(error.status == 503)
        #expect(error.type == "api_error")
        #expect(error.message == "Anthropic returned HTTP 503: <html> <b>Service Unavailable</b> </html>")
        let empty = AnthropicTranslator.error(status: 504, body: [])
        #expect(empty.message.contains("empty body"))
        let huge = AnthropicTranslator.error(status: 502, body: Array(repeating: UInt8(ascii: "x"), count: 10_000))
        #expect(huge.message.utf8.count < 2200)
        #expect(AnthropicTranslator.error(status: 200, body: []).status == 502)
        #expect(AnthropicTranslator.error(status: 429, body: Array("slow down".utf8)).type == "rate_limit_error")
    }
}

// Responses clients: the OpenAI Responses API translated to the hub and back (request, response, stream).
// Golden files live in Fixtures/responses; SLUICE_UPDATE_FIXTURES=1 rewrites the expected ones for review.
// Tests/IntegrationTests/test_responses_sdk_shapes.py parses the same goldens with the official SDK.

import Foundation
import Testing

@testable import SluiceCore

enum ResponsesFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/responses")

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            throw AnthropicFixtures.FixtureMissing(name: name)
        }
        return [UInt8](data)
    }

    static func json(_ name: String) throws -> JSONValue { try JSONParser.parse(try bytes(name)) }

    static func expectJSON(_ actual: [UInt8], matches name: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        let value = try JSONParser.parse(actual)
        if AnthropicFixtures.updating {
            try Data(AnthropicFixtures.pretty(value).utf8).write(to: directory.appendingPathComponent(name))
            return
        }
        let expected = try json(name)
        #expect(
            AnthropicFixtures.sorted(value) == AnthropicFixtures.sorted(expected),
            "\(name):\n\(AnthropicFixtures.pretty(value))", sourceLocation: sourceLocation)
    }

    static func expectBytes(_ actual: [UInt8], match name: String, sourceLocation: SourceLocation = #_sourceLocation)
        throws
    {
        if AnthropicFixtures.updating {
            try Data(actual).write(to: directory.appendingPathComponent(name))
            return
        }
        #expect(
            actual == (try bytes(name)), "\(name):\n\(String(decoding: actual, as: UTF8.self))",
            sourceLocation: sourceLocation)
    }
}

@Suite struct ResponsesTests {
    static let context = TranslationContext(
        upstreamModel: "claude-sonnet", requestModel: "claude-sonnet", stream: true, includeUsage: true,
        created: 1_700_000_000, fallbackResponseID: "chatcmpl-fallback")

    static func request(_ json: String) throws -> (hub: JSONValue, echo: ResponsesEcho) {
        try ResponsesTranslator.openAIRequest(fromResponses: try JSONParser.parse(json))
    }

    static func translateStream(_ input: [UInt8], cuts: [Int], echo: ResponsesEcho = ResponsesEcho())
        -> ([UInt8], OpenAIToResponsesStream)
    {
        AnthropicFixtures.run(
            { OpenAIToResponsesStream(echo: echo, context: context) }, input, cuts: cuts,
            feed: { $0.feed($1) }, finish: { $0.finish() })
    }

    // MARK: - Requests

    @Test func fullRequestMatchesGolden() throws {
        let request = try ResponsesTranslator.openAIRequest(
            fromResponses: try ResponsesFixtures.json("request-full.responses.json"))
        try ResponsesFixtures.expectJSON(request.hub.serialized(), matches: "request-full.hub.json")
    }

    /// The hub request is one every backend translator takes: the full fixture goes on to Anthropic,
    /// Gemini and Bedrock Converse bodies (the chain a Responses client's request will follow).
    @Test func fullHubRequestReachesEveryTranslatedBackend() throws {
        let hub = try ResponsesTranslator.openAIRequest(
            fromResponses: try ResponsesFixtures.json("request-full.responses.json")
        ).hub.serialized()
        _ = try AnthropicTranslator.request(fromOpenAIChat: hub, context: Self.context)
        _ = try Gemini.request(fromOpenAIChat: hub, context: Self.context)
        // Bedrock needs inline images, and turns a json_schema format into a forced tool that cannot be
        // combined with other tools: its request inlines the image and leaves the format out.
        var text = String(decoding: try ResponsesFixtures.bytes("request-full.responses.json"), as: UTF8.self)
        text = text.replacingOccurrences(of: "https://example.com/paris.png", with: "data:image/png;base64,iVBORw0KGgo=")
        var root = try JSONParser.parse(text).objectValue?.members ?? []
        root.removeAll { $0.key == "text" }
        let bedrockHub = try ResponsesTranslator.openAIRequest(fromResponses: .object(JSONObject(root))).hub.serialized()
        _ = try BedrockConverse.request(fromOpenAIChat: bedrockHub, context: Self.context)
    }

    @Test func stringInputIsOneUserMessage() throws {
        let hub = try Self.request(#"{"model":"m","input":"Hello"}"#).hub
        #expect(hub == ["model": "m", "messages": [["role": "user", "content": "Hello"]]])
    }

    @Test func instructionsLeadAndEasyMessagesNeedNoType() throws {
        let hub = try Self.request(
            #"{"model":"m","instructions":"Be brief.","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"system","content":[{"type":"input_text","text":"c"}]}]}"#
        ).hub
        #expect(
            hub["messages"]
                == [
                    ["role": "system", "content": "Be brief."], ["role": "user", "content": "a"],
                    ["role": "assistant", "content": "b"], ["role": "system", "content": "c"],
                ])
    }

    @Test func functionCallsJoinTheAssistantTurnAndOutputsBecomeToolMessages() throws {
        let hub = try Self.request(
            #"{"model":"m","input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},{"type":"function_call_output","call_id":"c1","output":"42"}]}"#
        ).hub
        let call: JSONValue = [
            "id": "c1", "type": "function", "function": ["name": "f", "arguments": #"{"a":1}"#],
        ]
        #expect(
            hub["messages"]
                == [
                    ["role": "user", "content": "q"], ["role": "assistant", "content": nil, "tool_calls": [call]],
                    ["role": "tool", "tool_call_id": "c1", "content": "42"],
                ])
    }

    @Test func textFormatsAndReasoningMapToTheHub() throws {
        #expect(
            try Self.request(#"{"model":"m","input":"x","text":{"format":{"type":"json_object"}}}"#).hub[
                "response_format"] == ["type": "json_object"])
        #expect(
            try Self.request(#"{"model":"m","input":"x","text":{"format":{"type":"text"}}}"#).hub.objectValue?.keys
                == ["model", "messages"])
        #expect(
            try Self.request(#"{"model":"m","input":"x","reasoning":{"effort":"high"}}"#).hub["reasoning_effort"]
                == "high")
        #expect(try Self.request(#"{"model":"m","input":"x","tool_choice":"required"}"#).hub["tool_choice"] == "required")
        // store is ignored for translated backends, and non-streaming requests ask for no stream options.
        let plain = try Self.request(#"{"model":"m","input":"x","store":true,"stream":false}"#).hub
        #expect(plain.objectValue?.keys == ["model", "messages"])
    }

    @Test(arguments: [
        (#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#, "previous_response_id", "keeps no state"),
        (#"{"model":"m","input":"x","conversation":"conv_1"}"#, "conversation", "keeps no state"),
        (#"{"model":"m","input":"x","background":true}"#, "background", "Background"),
        (#"{"model":"m","input":"x","prompt":{"id":"pmpt_1"}}"#, "prompt", "Stored prompts"),
        (#"{"model":"m","input":"x","tools":[{"type":"web_search"}]}"#, "tools[0].type", "'web_search'"),
        (#"{"model":"m","input":"x","tools":[{"type":"file_search","vector_store_ids":[]}]}"#, "tools[0].type", "'file_search'"),
        (#"{"model":"m","input":"x","tool_choice":{"type":"web_search_preview"}}"#, "tool_choice.type", "function"),
        (
            #"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}"#,
            "input[0].content[0].file_id", "file_id"
        ),
        (
            #"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"file-1"}]}]}"#,
            "input[0].content[0]", "file_data"
        ),
        (
            #"{"model":"m","input":[{"role":"assistant","content":[{"type":"input_image","image_url":"https://x"}]}]}"#,
            "input[0].content[0]", "user messages"
        ),
        (#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#, "input[0]", "keeps no state"),
        (#"{"model":"m","input":[{"type":"web_search_call","id":"ws_1"}]}"#, "input[0].type", "'web_search_call'"),
        (
            #"{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"x"}]}]}"#,
            "input[0].output[0]", "only carry text"
        ),
        (#"{"model":"m","input":[{"role":"tool","content":"x"}]}"#, "input[0].role", "'developer'"),
        (#"{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}"#, "input[0].call_id", "call_id"),
        (#"{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]}"#, "input[0].arguments", "string"),
        (#"{"model":"m","input":[]}"#, "input", "at least one"),
        (#"{"model":"m"}"#, "input", "'input'"),
        (#"{"input":"x"}"#, "model", "'model'"),
        (#"{"model":"m","input":"x","instructions":["a"]}"#, "instructions", "string"),
        (#"{"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}"#, "text.format.name", "name"),
        (#"{"model":"m","input":"x","text":{"format":{"type":"yaml"}}}"#, "text.format.type", "json_schema"),
        (#"{"model":"m","input":"x","reasoning":{"effort":"extreme"}}"#, "reasoning.effort", "minimal"),
        (#"{"model":"m","input":"x","stream":"yes"}"#, "stream", "boolean"),
        (#"{"model":"m","input":"x","stop":["a","b","c","d","e"]}"#, "stop", "up to 4"),
        (#"{"model":"m","input":"x","metadata":"m"}"#, "metadata", "object"),
        (#"{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":"x"}]}"#, "tools[0].parameters", "Schema"),
    ])
    func refusedRequestsNameTheField(json: String, param: String, phrase: String) throws {
        do {
            _ = try Self.request(json)
            Issue.record("expected an error for \(json)")
        } catch let error as TranslateError {
            #expect(error.status == 400)
            #expect(error.param == param, "\(json)")
            #expect(error.message.contains(phrase), "\(error.message)")
        }
    }

    @Test(arguments: [
        #"{"model":"m","input":"x","max_output_tokens":0}"#,
        #"{"model":"m","input":"x","max_output_tokens":-1}"#,
        #"{"model":"m","input":"x","max_output_tokens":1.5}"#,
        #"{"model":"m","input":"x","max_output_tokens":1e300}"#,
        #"{"model":"m","input":"x","max_output_tokens":100000001}"#,
        #"{"model":"m","input":"x","max_output_tokens":99999999999999999999999}"#,
        #"{"model":"m","input":"x","max_output_tokens":"512"}"#,
        #"{"model":"m","input":"x","temperature":2.5}"#,
        #"{"model":"m","input":"x","temperature":-0.1}"#,
        #"{"model":"m","input":"x","temperature":1e999}"#,
        #"{"model":"m","input":"x","top_p":1.01}"#,
        #"{"model":"m","input":"x","top_p":"1"}"#,
    ])
    func absurdNumbersAreRefused(json: String) throws {
        do {
            _ = try Self.request(json)
            Issue.record("expected an error for \(json)")
        } catch let error as TranslateError {
            #expect(error.status == 400 && error.code == "invalid_request_body")
            #expect(["max_output_tokens", "temperature", "top_p"].contains(error.param ?? ""))
        }
    }

    @Test func numbersInRangePass() throws {
        let hub = try Self.request(
            #"{"model":"m","input":"x","max_output_tokens":100000000,"temperature":2,"top_p":0}"#
        ).hub
        #expect(hub["max_completion_tokens"] == 100_000_000 && hub["temperature"] == 2 && hub["top_p"] == 0)
    }

    // MARK: - Responses

    @Test func hubResponseMatchesGolden() throws {
        let echo = try ResponsesTranslator.openAIRequest(
            fromResponses: try ResponsesFixtures.json("request-full.responses.json")
        ).echo
        let body = try ResponsesTranslator.responsesResponse(
            fromOpenAIChat: try ResponsesFixtures.bytes("hub-response.openai.json"), echo: echo, context: Self.context)
        try ResponsesFixtures.expectJSON(body, matches: "response-full.responses.json")
    }

    @Test func lengthFinishIsIncomplete() throws {
        let body = try ResponsesTranslator.responsesResponse(
            fromOpenAIChat: try ResponsesFixtures.bytes("hub-response-length.openai.json"), echo: ResponsesEcho(),
            context: Self.context)
        try ResponsesFixtures.expectJSON(body, matches: "response-length.responses.json")
        let parsed = try JSONParser.parse(body)
        #expect(parsed["status"] == "incomplete")
        #expect(parsed["incomplete_details"] == ["reason": "max_output_tokens"])
    }

    @Test func contentFilterAndHostileCountsAndIDs() throws {
        let body = try ResponsesTranslator.responsesResponse(
            fromOpenAIChat: Array(
                #"{"id":"x\"/<y>","created":-5,"choices":[{"message":{"content":null,"refusal":"No."},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":1e300,"completion_tokens":-3}}"#
                    .utf8), echo: ResponsesEcho(), context: Self.context)
        let parsed = try JSONParser.parse(body)
        #expect(parsed["id"] == "resp_x___y_")
        #expect(parsed["created_at"] == 1_700_000_000)
        #expect(parsed["incomplete_details"] == ["reason": "content_filter"])
        #expect(parsed["output"]?.item(0)?["content"]?.item(0)?["text"] == "No.")
        #expect(parsed["usage"]?["input_tokens"] == .number(JSONNumber(TokenUsage.maxCount)))
        #expect(parsed["usage"]?["output_tokens"] == 0)
    }

    @Test(arguments: ["", "[]", #"{"choices":[]}"#, #"{"choices":[{"message":"x"}]}"#])
    func notAChatCompletionIsBadGateway(body: String) {
        do {
            _ = try ResponsesTranslator.responsesResponse(
                fromOpenAIChat: Array(body.utf8), echo: ResponsesEcho(), context: Self.context)
            Issue.record("expected an error for \(body)")
        } catch {
            #expect(error.status == 502 && error.code == "bad_upstream_response")
        }
    }

    @Test func toolCallRoundTripsThroughInputItems() throws {
        // A function_call the client got back is sent again as an input item with its output: the hub
        // sees the same call id on the assistant call and on the tool message.
        let body = try ResponsesTranslator.responsesResponse(
            fromOpenAIChat: try ResponsesFixtures.bytes("hub-response.openai.json"), echo: ResponsesEcho(),
            context: Self.context)
        guard let call = try JSONParser.parse(body)["output"]?.arrayValue?.first(where: { $0["type"] == "function_call" }),
            let members = call.objectValue?.members
        else {
            Issue.record("no function_call item")
            return
        }
        let replay = JSONValue.object(JSONObject(members.filter { $0.key != "status" && $0.key != "id" }))
        let input: JSONValue = [
            "model": "m",
            "input": [["role": "user", "content": "q"], replay, ["type": "function_call_output", "call_id": "call_9", "output": "ok"]],
        ]
        let hub = try ResponsesTranslator.openAIRequest(fromResponses: input).hub
        #expect(hub["messages"]?.item(1)?["tool_calls"]?.item(0)?["id"] == "call_9")
        #expect(hub["messages"]?.item(1)?["tool_calls"]?.item(0)?["function"]?["arguments"] == #"{"city":"Lyon"}"#)
        #expect(hub["messages"]?.item(2)?["tool_call_id"] == "call_9")
    }

    /// A requested reasoning summary turns Anthropic's extended thinking on (its answers carry reasoning only then).
    @Test func reasoningSummariesTurnThinkingOnWhereTheBackendNeedsIt() throws {
        let claude = ResponsesTranslationOptions(thinkingForSummaries: true, defaultMaxTokens: 4096)
        func hub(_ json: String, _ options: ResponsesTranslationOptions = claude) throws -> JSONValue {
            try ResponsesTranslator.openAIRequest(fromResponses: try JSONParser.parse(json), options: options).hub
        }
        let thinking = { (budget: Int64) -> JSONValue in ["type": "enabled", "budget_tokens": .number(JSONNumber(budget))] }
        let asked = try hub(#"{"model":"m","input":"x","temperature":0.3,"top_p":0.5,"reasoning":{"effort":"high","summary":"auto"}}"#)
        #expect(asked["thinking"] == thinking(2048) && asked["reasoning_effort"] == "high")
        #expect(try hub(#"{"model":"m","input":"x","max_output_tokens":9000,"reasoning":{"effort":"high","summary":"auto"}}"#)["thinking"] == thinking(4096))
        // Anthropic refuses sampling changes with thinking on.
        #expect(asked["temperature"] == nil && asked["top_p"] == nil)
        #expect(try hub(#"{"model":"m","input":"x","reasoning":{"summary":"concise"}}"#)["thinking"] == thinking(2048))
        #expect(try hub(#"{"model":"m","input":"x","reasoning":{"effort":"low","summary":"detailed"}}"#)["thinking"] == thinking(1024))
        // At most half of max_output_tokens, which bounds reasoning and text together; none below Anthropic's minimum.
        #expect(try hub(#"{"model":"m","input":"x","max_output_tokens":3000,"reasoning":{"effort":"high","summary":"auto"}}"#)["thinking"] == thinking(1500))
        #expect(try hub(#"{"model":"m","input":"x","max_output_tokens":2047,"reasoning":{"summary":"auto"}}"#)["thinking"] == nil)
        #expect(try hub(#"{"model":"m","input":"x","reasoning":{"summary":"auto"}}"#, ResponsesTranslationOptions(thinkingForSummaries: true, defaultMaxTokens: 3000))["thinking"] == thinking(1500))
        // No summary asked, minimal effort, a forced tool, the middle of a tool loop, or a backend that needs none.
        for json in [
            #"{"model":"m","input":"x","temperature":0.3,"reasoning":{"effort":"high"}}"#,
            #"{"model":"m","input":"x","reasoning":{"effort":"minimal","summary":"auto"}}"#,
            #"{"model":"m","input":"x","tool_choice":"required","tools":[{"type":"function","name":"f"}],"reasoning":{"summary":"auto"}}"#,
            #"{"model":"m","input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"1"}],"reasoning":{"summary":"auto"}}"#,
        ] {
            let translated = try hub(json)
            #expect(translated["thinking"] == nil, "\(json)")
        }
        let afterLoop = try hub(#"{"model":"m","input":[{"role":"user","content":"q"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"1"},{"role":"user","content":"next"}],"reasoning":{"summary":"auto"}}"#)
        #expect(afterLoop["thinking"] == thinking(2048))
        let openAIShaped = try hub(#"{"model":"m","input":"x","temperature":0.3,"reasoning":{"summary":"auto"}}"#, ResponsesTranslationOptions())
        #expect(openAIShaped["thinking"] == nil && openAIShaped["temperature"] == 0.3)
        #expect(throws: TranslateError.self) { try hub(#"{"model":"m","input":"x","reasoning":{"summary":"verbose"}}"#) }
    }

    // MARK: - Streams

    @Test func streamMatchesGolden() throws {
        let echo = try Self.request(#"{"model":"claude-sonnet","input":"x","tools":[{"type":"function","name":"get_weather"}]}"#).echo
        let (out, stream) = Self.translateStream(try ResponsesFixtures.bytes("hub-stream.openai.sse"), cuts: [], echo: echo)
        try ResponsesFixtures.expectBytes(out, match: "stream.responses.sse")
        #expect(stream.usage == TokenUsage(inputTokens: 20, outputTokens: 9, reasoningTokens: 3))
        #expect(stream.finishReason == "tool_calls" && stream.error == nil)
        let events = AnthropicFixtures.events(out)
        // Every event names its type twice (SSE and JSON) and numbers itself from 0 without gaps.
        for (index, event) in events.enumerated() {
            let data = try JSONParser.parse(event.data)
            #expect(data["type"]?.stringValue == event.name)
            #expect(data["sequence_number"] == .number(JSONNumber(index)))
        }
        #expect(events.first?.name == "response.created" && events.last?.name == "response.completed")
        let completed = try JSONParser.parse(events.last?.data ?? [])
        #expect(completed["response"]?["output"]?.arrayValue?.count == 4)
        #expect(completed["response"]?["usage"]?["total_tokens"] == 29)
    }

    @Test func streamErrorEndsFailed() throws {
        let (out, stream) = Self.translateStream(try ResponsesFixtures.bytes("hub-stream-error.openai.sse"), cuts: [])
        try ResponsesFixtures.expectBytes(out, match: "stream-error.responses.sse")
        #expect(stream.error?.code == "rate_limit_exceeded" && stream.error?.status == 429)
    }

    @Test func truncatedStreamEndsFailed() throws {
        let whole = try ResponsesFixtures.bytes("hub-stream-short.openai.sse")
        let cut = Array(whole.prefix(whole.count - 40))  // before the finish reason: mid-JSON
        let (out, stream) = Self.translateStream(cut, cuts: [])
        #expect(AnthropicFixtures.events(out).last?.name == "response.failed")
        #expect(stream.error?.code == "server_error")
    }

    @Test func lengthStreamEndsIncomplete() throws {
        let input = Array(
            ("data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}\n\n"
                + "data: [DONE]\n\n").utf8)
        let (out, _) = Self.translateStream(input, cuts: [])
        let last = try JSONParser.parse(AnthropicFixtures.events(out).last?.data ?? [])
        #expect(last["type"] == "response.incomplete")
        #expect(last["response"]?["incomplete_details"]?["reason"] == "max_output_tokens")
    }

    @Test(arguments: ["hub-stream-short.openai.sse", "hub-stream.openai.sse", "hub-stream-error.openai.sse"])
    func streamSplitAnywhereGivesTheSameEvents(name: String) throws {
        let input = try ResponsesFixtures.bytes(name)
        let (whole, _) = Self.translateStream(input, cuts: [])
        for split in 0...input.count {
            #expect(Self.translateStream(input, cuts: [split]).0 == whole, "split at \(split)")
        }
        // Byte by byte, too.
        #expect(Self.translateStream(input, cuts: Array(0...input.count)).0 == whole)
    }

    @Test func hostileStreamNumbersAreBounded() throws {
        let input = Array(
            ("data: {\"id\":\"c\",\"created\":99999999999999,\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":1e300,\"id\":\"t\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
                + "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1e300,\"completion_tokens\":-4,\"prompt_tokens_details\":{\"cached_tokens\":\"9\"}}}\n\n"
                + "data: [DONE]\n\n").utf8)
        let (out, stream) = Self.translateStream(input, cuts: [])
        #expect(stream.usage.inputTokens == TokenUsage.maxCount && stream.usage.outputTokens == 0)
        #expect(stream.usage.cachedInputTokens == 0 && stream.usage.isClamped)
        let last = try JSONParser.parse(AnthropicFixtures.events(out).last?.data ?? [])
        #expect(last["response"]?["created_at"] == 1_700_000_000)
        #expect(last["response"]?["output"]?.item(0)?["call_id"] == "t")
    }

    @Test func oversizedEventFails() {
        var stream = OpenAIToResponsesStream(echo: ResponsesEcho(), context: Self.context, maxEventBytes: 64)
        let out = stream.feed(Array("data: {\"choices\":[{\"delta\":{\"content\":\"\(String(repeating: "a", count: 100))\"}}]}\n\n".utf8))
        #expect(AnthropicFixtures.events(out).last?.name == "response.failed")
        #expect(stream.feed(Array("data: [DONE]\n\n".utf8)).isEmpty)
    }
}

// Anthropic-in: Anthropic clients through the OpenAI hub, and round trips through both directions.

import Testing

@testable import SluiceCore

@Suite struct AnthropicInTests {
    static let context = TranslationContext(
        upstreamModel: "claude-sonnet", requestModel: "claude-sonnet", stream: true, includeUsage: true,
        created: 1_700_000_000)

    @Test func fullRequestMatchesGolden() throws {
        let hub = try AnthropicTranslator.openAIRequest(
            fromAnthropic: try AnthropicFixtures.json("in-full.anthropic.json"))
        try AnthropicFixtures.expectJSON(hub.serialized(), matches: "in-full.openai.json")
    }

    @Test func requestRoundTripsThroughTheHub() throws {
        let original = try AnthropicFixtures.json("in-full.anthropic.json")
        let hub = try AnthropicTranslator.openAIRequest(fromAnthropic: original)
        let back = try JSONParser.parse(AnthropicTranslator.request(fromOpenAIChat: hub, context: Self.context))
        // The only loss: a custom tool's explicit `"type": "custom"` (the default) is not carried.
        var expected = AnthropicFixtures.sorted(original)
        if case .object(let root) = expected, var tools = root["tools"]?.arrayValue, tools.count == 2,
            let tool = tools[1].objectValue
        {
            tools[1] = .object(JSONObject(tool.members.filter { $0.key != "type" }))
            expected = .object(
                JSONObject(root.members.map { $0.key == "tools" ? (key: "tools", value: .array(tools)) : $0 }))
        }
        #expect(AnthropicFixtures.sorted(back) == expected, "\(AnthropicFixtures.pretty(back))")
    }

    @Test func openAIRequestRoundTripsThroughAnthropic() throws {
        // OpenAI -> Anthropic -> OpenAI -> Anthropic is stable after the first step.
        let anthropic = try JSONParser.parse(
            AnthropicTranslator.request(
                fromOpenAIChat: try AnthropicFixtures.json("request-full.openai.json"), context: Self.context))
        let hub = try AnthropicTranslator.openAIRequest(fromAnthropic: anthropic)
        let again = try JSONParser.parse(AnthropicTranslator.request(fromOpenAIChat: hub, context: Self.context))
        #expect(
            AnthropicFixtures.sorted(again) == AnthropicFixtures.sorted(anthropic), "\(AnthropicFixtures.pretty(again))"
        )
    }

    @Test(arguments: [
        (
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"server_tool_use","id":"x"}]}]}"#,
            "messages[0].content[0]"
        ),
        (#"{"model":"m","messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}"#, "tools[0].type"),
        (
            #"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]}"#,
            "messages[0].content[0].content[0]"
        ),
        (#"{"model":"m","messages":[{"role":"system","content":"x"}]}"#, "messages[0].role"),
        (#"{"messages":[]}"#, "model"),
    ])
    func unsupportedAnthropicInputNamesTheField(json: String, param: String) throws {
        do {
            _ = try AnthropicTranslator.openAIRequest(fromAnthropic: try JSONParser.parse(json))
            Issue.record("expected an error")
        } catch let error as TranslateError {
            #expect(error.status == 400)
            #expect(error.param == param)
        }
    }

    @Test func hubResponseMatchesGolden() throws {
        let body = try AnthropicTranslator.anthropicResponse(
            fromOpenAIChat: try AnthropicFixtures.bytes("hub-response.openai.json"), context: Self.context)
        try AnthropicFixtures.expectJSON(body, matches: "hub-response.anthropic.json")
    }

    @Test func responseRoundTripsThroughTheHub() throws {
        let original = try AnthropicFixtures.json("response-full.anthropic.json")
        let (hub, _) = try AnthropicTranslator.response(
            toOpenAIChat: original.serialized(), context: Self.context)
        let back = try JSONParser.parse(
            AnthropicTranslator.anthropicResponse(fromOpenAIChat: hub, context: Self.context))
        #expect(back["id"] == original["id"])
        #expect(back["stop_reason"] == original["stop_reason"])
        #expect(back["usage"]?["input_tokens"] == 12)
        #expect(back["usage"]?["cache_read_input_tokens"] == 100)
        #expect(back["usage"]?["cache_creation_input_tokens"] == 20)
        #expect(back["usage"]?["output_tokens"] == 57)
        let blocks = back["content"]?.arrayValue ?? []
        let originalBlocks = original["content"]?.arrayValue ?? []
        // Two adjacent text blocks come back as one; everything else block for block.
        #expect(blocks.count == originalBlocks.count - 1)
        #expect(AnthropicFixtures.sorted(blocks[0]) == AnthropicFixtures.sorted(originalBlocks[0]))
        #expect(AnthropicFixtures.sorted(blocks[1]) == AnthropicFixtures.sorted(originalBlocks[1]))
        #expect(blocks[2] == ["type": "text", "text": "Checking the weather in Paris."])
        #expect(AnthropicFixtures.sorted(blocks[3]) == AnthropicFixtures.sorted(originalBlocks[4]))
        #expect(AnthropicFixtures.sorted(blocks[4]) == AnthropicFixtures.sorted(originalBlocks[5]))
    }

    static func toAnthropic(_ input: [UInt8], cuts: [Int]) -> ([UInt8], OpenAIToAnthropicStream) {
        AnthropicFixtures.run(
            { OpenAIToAnthropicStream(context: context) }, input, cuts: cuts, feed: { $0.feed($1) },
            finish: { $0.finish() })
    }

    @Test func hubStreamMatchesGoldenAtEveryByteSplit() throws {
        let input = try AnthropicFixtures.bytes("hub-stream.openai.sse")
        let (whole, stream) = Self.toAnthropic(input, cuts: [])
        try AnthropicFixtures.expectBytes(whole, match: "hub-stream.anthropic.sse")
        #expect(stream.usage == TokenUsage(inputTokens: 50, outputTokens: 20, cachedInputTokens: 10))
        #expect(stream.stopReason == "tool_use")
        for split in 0...input.count {
            #expect(Self.toAnthropic(input, cuts: [split]).0 == whole, "split at \(split)")
        }
        var random = SplitMix64(seed: 0xBEEF)
        for _ in 0..<50 {
            let cuts = (0..<Int.random(in: 1...8, using: &random)).map { _ in
                Int.random(in: 0...input.count, using: &random)
            }
            #expect(Self.toAnthropic(input, cuts: cuts.sorted()).0 == whole)
        }
        let message = Self.accumulate(whole)
        #expect(
            message["content"]?.arrayValue?.map { $0["type"]?.stringValue } == [
                "thinking", "text", "tool_use", "tool_use",
            ])
        #expect(message["content"]?.item(2)?["input"] == #"{"q":"x"}"#)
    }

    @Test(arguments: ["stream-text", "stream-tools", "stream-thinking", "stream-error"])
    func streamRoundTripsThroughTheHub(name: String) throws {
        let original = try AnthropicFixtures.bytes("\(name).anthropic.sse")
        var toHub = AnthropicToOpenAIStream(context: Self.context)
        let hub = toHub.feed(original) + toHub.finish()
        let (back, _) = Self.toAnthropic(hub, cuts: [])
        var expected = Self.accumulate(original)
        var actual = Self.accumulate(back)
        // The model is the client's; after an error the hub has no usage chunk to carry the counts.
        let ignored: Set<String> = name == "stream-error" ? ["model", "usage"] : ["model"]
        expected = Self.without(ignored, expected)
        actual = Self.without(ignored, actual)
        #expect(actual == expected, "\(AnthropicFixtures.pretty(actual))")
    }

    static func without(_ keys: Set<String>, _ value: JSONValue) -> JSONValue {
        guard let object = value.objectValue else { return value }
        return .object(JSONObject(object.members.filter { !keys.contains($0.key) }))
    }

    /// Rebuilds the final message from Anthropic stream events, the way the Anthropic SDKs do.
    static func accumulate(_ sse: [UInt8]) -> JSONValue {
        var id: JSONValue = .null
        var model: JSONValue = .null
        var blocks: [[String: String]] = []
        var stopReason: JSONValue = .null
        var usage: [String: Int64] = [:]
        var error: JSONValue = .null
        events: for event in AnthropicFixtures.events(sse) {
            guard let data = try? JSONParser.parse(event.data) else { continue }
            switch data["type"]?.stringValue {
            case "message_start":
                id = data["message"]?["id"] ?? .null
                model = data["message"]?["model"] ?? .null
                for member in data["message"]?["usage"]?.objectValue?.members ?? [] {
                    if let count = member.value.int64Value, count > 0 { usage[member.key] = count }
                }
            case "content_block_start":
                var block: [String: String] = [:]
                for member in data["content_block"]?.objectValue?.members ?? [] {
                    block[member.key] = member.value.stringValue ?? ""
                }
                block["input"] = ""
                blocks.append(block)
            case "content_block_delta":
                guard let index = data["index"]?.int64Value, index >= 0, Int(index) < blocks.count else { continue }
                let delta = data["delta"]
                switch delta?["type"]?.stringValue {
                case "text_delta": blocks[Int(index)]["text", default: ""] += delta?["text"]?.stringValue ?? ""
                case "thinking_delta":
                    blocks[Int(index)]["thinking", default: ""] += delta?["thinking"]?.stringValue ?? ""
                case "signature_delta": blocks[Int(index)]["signature"] = delta?["signature"]?.stringValue
                case "input_json_delta":
                    blocks[Int(index)]["input", default: ""] += delta?["partial_json"]?.stringValue ?? ""
                default: break
                }
            case "message_delta":
                stopReason = data["delta"]?["stop_reason"] ?? stopReason
                for member in data["usage"]?.objectValue?.members ?? [] {
                    if let count = member.value.int64Value, count > 0 { usage[member.key] = count }
                }
            case "error":
                // The SDKs throw here: nothing after the error reaches the caller.
                error = data["error"] ?? .null
                break events
            default: break
            }
        }
        let content: [JSONValue] = blocks.map { block in
            var block = block
            if block["type"] == "tool_use", let input = block["input"] {
                // Compare tool input by value: the hub may re-chunk the partial JSON.
                block["input"] = String(decoding: ((try? JSONParser.parse(input)) ?? .null).serialized(), as: UTF8.self)
            } else {
                block["input"] = nil
            }
            return .object(JSONObject(block.sorted { $0.key < $1.key }.map { (key: $0.key, value: .string($0.value)) }))
        }
        let usageValue = JSONValue.object(
            JSONObject(usage.sorted { $0.key < $1.key }.map { (key: $0.key, value: .number(JSONNumber($0.value))) }))
        return [
            "id": id, "model": model, "content": .array(content), "stop_reason": stopReason, "usage": usageValue,
            "error": error,
        ]
    }
}

import Testing

@testable import SluiceCore

@Suite struct AnthropicRequestTests {
    static let context = TranslationContext(
        upstreamModel: "claude-sonnet-4-5-20250929", requestModel: "claude-sonnet", defaultMaxTokens: 8192)

    static func translate(
        _ json: String, flavor: AnthropicTranslator.Flavor = .native
    ) throws -> JSONValue {
        let body = try AnthropicTranslator.request(
            fromOpenAIChat: try JSONParser.parse(json), context: context, flavor: flavor)
        return try JSONParser.parse(body)
    }

    static func error(_ json: String) throws -> TranslateError? {
        do {
            _ = try AnthropicTranslator.request(fromOpenAIChat: try JSONParser.parse(json), context: context)
            return nil
        } catch let error as TranslateError {
            return error
        }
    }

    @Test func fullRequestMatchesGolden() throws {
        let body = try AnthropicTranslator.request(
            fromOpenAIChat: try AnthropicFixtures.json("request-full.openai.json"), context: Self.context)
        try AnthropicFixtures.expectJSON(body, matches: "request-full.anthropic.json")
    }

    @Test func minimalRequestGetsDefaultMaxTokensAndStringContent() throws {
        let value = try Self.translate(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(value["max_tokens"] == 8192)
        #expect(value["model"] == "claude-sonnet-4-5-20250929")
        #expect(value["messages"] == [["role": "user", "content": "hi"]])
        #expect(value["stream"] == nil)
        #expect(value["system"] == nil)
    }

    @Test func temperatureAboveOneIsClampedAndBelowKept() throws {
        let hot = try Self.translate(#"{"messages":[{"role":"user","content":"x"}],"temperature":2}"#)
        #expect(hot["temperature"] == 1)
        let cool = try Self.translate(#"{"messages":[{"role":"user","content":"x"}],"temperature":0.25}"#)
        #expect(cool["temperature"]?.doubleValue == 0.25)
    }

    @Test func consecutiveToolMessagesAndUserMergeIntoOneTurn() throws {
        let value = try Self.translate(
            """
            {"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"t1","content":"r1"},{"role":"tool","tool_call_id":"t2","content":"r2"},
            {"role":"user","content":"next"}]}
            """)
        let messages = value["messages"]?.arrayValue ?? []
        #expect(messages.count == 3)
        #expect(messages.map { $0["role"]?.stringValue } == ["user", "assistant", "user"])
        #expect(messages[0]["content"]?.arrayValue?.count == 2)
        let last = messages[2]["content"]?.arrayValue ?? []
        #expect(last.map { $0["type"]?.stringValue } == ["tool_result", "tool_result", "text"])
        #expect(last[1]["tool_use_id"] == "t2")
    }

    @Test func parallelToolCallsFalseWithoutToolChoice() throws {
        let value = try Self.translate(
            """
            {"messages":[{"role":"user","content":"x"}],"parallel_tool_calls":false,
            "tools":[{"type":"function","function":{"name":"f"}}]}
            """)
        #expect(value["tool_choice"] == ["type": "auto", "disable_parallel_tool_use": true])
        #expect(value["tools"]?.item(0)?["input_schema"] == ["type": "object", "properties": [:]])
    }

    @Test func toolChoiceWithoutToolsIsDropped() throws {
        let value = try Self.translate(#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"none"}"#)
        #expect(value["tool_choice"] == nil)
    }

    @Test(arguments: [
        ("minimal", "low" as JSONValue?), ("high", "high"), ("xhigh", "xhigh"), ("none", nil),
    ])
    func reasoningEffort(effort: String, expected: JSONValue?) throws {
        let value = try Self.translate(
            #"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"\#(effort)"}"#)
        #expect(value["output_config"]?["effort"] == expected)
    }

    @Test func vertexAndBedrockFlavorsCarryTheVersionInsteadOfTheModel() throws {
        let json = #"{"messages":[{"role":"user","content":"x"}],"stream":true}"#
        let vertex = try Self.translate(json, flavor: .vertex)
        #expect(vertex["model"] == nil)
        #expect(vertex["anthropic_version"] == "vertex-2023-10-16")
        #expect(vertex["stream"] == true)
        let bedrock = try Self.translate(json, flavor: .bedrock)
        #expect(bedrock["anthropic_version"] == "bedrock-2023-05-31")
        #expect(bedrock["stream"] == nil)
    }

    @Test func systemAndDeveloperAreHoistedFromAnywhere() throws {
        let value = try Self.translate(
            """
            {"messages":[{"role":"user","content":"x"},{"role":"system","content":"s1"},
            {"role":"developer","content":[{"type":"text","text":"s2"}]}]}
            """)
        #expect(value["system"] == [["type": "text", "text": "s1"], ["type": "text", "text": "s2"]])
        #expect(value["messages"]?.arrayValue?.count == 1)
    }

    @Test(arguments: [
        (#"{"messages":[],"n":2}"#, "n"),
        (
            #"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"input_audio","input_audio":{}}]}]}"#,
            "messages[0].content[1]"
        ),
        (
            #"{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}"#,
            "messages[0].content[0]"
        ),
        (
            #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/bmp;base64,AA"}}]}]}"#,
            "messages[0].content[0].image_url.url"
        ),
        (
            #"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#,
            "messages[0].content[0].image_url.url"
        ),
        (
            #"{"messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#,
            "messages[0].tool_calls[0].function.arguments"
        ),
        (
            #"{"messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{"}}]}]}"#,
            "messages[0].tool_calls[0].function.arguments"
        ),
        (
            #"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#,
            "response_format.type"
        ),
        (#"{"messages":[{"role":"wizard","content":"x"}]}"#, "messages[0].role"),
        (#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, "max_tokens"),
        (#"{"messages":[{"role":"user","content":"x"}],"stop":[1]}"#, "stop"),
        (#"{"messages":"no"}"#, "messages"),
        (#"{"messages":[{"role":"tool","content":"x"}]}"#, "messages[0].tool_call_id"),
    ])
    func invalidRequestsNameTheField(json: String, param: String) throws {
        let error = try Self.error(json)
        #expect(error?.status == 400)
        #expect(error?.param == param)
    }

    @Test func nonObjectBodyIsA400() throws {
        #expect(try Self.error("[1,2]")?.status == 400)
    }
}

// The Anthropic answer written by range (`AnthropicTranslator.anthropicResponse(fromOpenAIChat:)`) against the
// tree-based translation it replaced, kept here as the reference: on the fixtures, on hand-made edge cases and
// on thousands of mutated hub answers, both give the same bytes or the same error. As for the Responses
// answer (`ResponsesByRangeTests`), a body with a repeated member name is left out: the tree's parser refuses
// it, the range reader takes the last occurrence.

import Testing

@testable import SluiceCore

@Suite struct AnthropicByRangeTests {
    static let context = TranslationContext(
        upstreamModel: "m", requestModel: "claude-x", stream: false, includeUsage: true, created: 1_700_000_000,
        fallbackResponseID: "msg_fallback")

    /// The tree-based translation as it was before it read by range.
    static func treeTranslation(
        fromOpenAIChat body: [UInt8], context: TranslationContext
    ) throws(TranslateError) -> [UInt8] {
        guard let root = try? JSONParser.parse(body), root.objectValue != nil else {
            throw .badUpstreamResponse("The upstream response is not a JSON object.")
        }
        guard let choice = root["choices"]?.arrayValue?.first, let message = choice["message"] else {
            throw .badUpstreamResponse("The upstream response has no 'choices[0].message'.")
        }
        var writer = JSONWriter(reservingCapacity: body.count + 256)
        writer.beginObject()
        writer.key("id")
        writer.string(root["id"]?.stringValue ?? context.fallbackResponseID)
        writer.key("type")
        writer.string("message")
        writer.key("role")
        writer.string("assistant")
        writer.key("model")
        writer.string(context.requestModel)
        writer.key("content")
        writer.beginArray()
        treeThinkingBlocks(message, to: &writer)
        if let text = AnthropicTranslator.plainText(message["content"]), !text.isEmpty {
            treeTextBlock(text, to: &writer)
        }
        if let refusal = message["refusal"]?.stringValue, !refusal.isEmpty {
            treeTextBlock(refusal, to: &writer)
        }
        for call in message["tool_calls"]?.arrayValue ?? [] {
            writer.beginObject()
            writer.key("type")
            writer.string("tool_use")
            writer.key("id")
            writer.string(call["id"]?.stringValue ?? "")
            writer.key("name")
            writer.string(call["function"]?["name"]?.stringValue ?? "")
            writer.key("input")
            writer.value(AnthropicTranslator.toolInput(call["function"]?["arguments"]?.stringValue ?? ""))
            writer.endObject()
        }
        writer.endArray()
        writer.key("stop_reason")
        writer.string(AnthropicTranslator.stopReason(fromFinishReason: choice["finish_reason"]?.stringValue))
        writer.key("stop_sequence")
        writer.null()
        AnthropicTranslator.writeAnthropicUsage(AnthropicTranslator.usage(fromOpenAI: root["usage"]), to: &writer)
        writer.endObject()
        return writer.bytes
    }

    static func treeTextBlock(_ text: String, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("text")
        writer.key("text")
        writer.string(text)
        writer.endObject()
    }

    static func treeThinkingBlocks(_ message: JSONValue, to writer: inout JSONWriter) {
        let blocks = message["thinking_blocks"]?.arrayValue ?? []
        if blocks.isEmpty {
            guard let reasoning = message["reasoning_content"]?.stringValue, !reasoning.isEmpty else { return }
            writer.beginObject()
            writer.key("type")
            writer.string("thinking")
            writer.key("thinking")
            writer.string(reasoning)
            writer.key("signature")
            writer.string("")
            writer.endObject()
            return
        }
        for block in blocks {
            switch block["type"]?.stringValue {
            case "thinking":
                writer.beginObject()
                writer.key("type")
                writer.string("thinking")
                writer.key("thinking")
                writer.string(block["thinking"]?.stringValue ?? "")
                writer.key("signature")
                writer.string(block["signature"]?.stringValue ?? "")
                writer.endObject()
            case "redacted_thinking":
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                writer.string(block["data"]?.stringValue ?? "")
                writer.endObject()
            default:
                continue
            }
        }
    }

    static let handMade: [String] = [
        #"{"id":"chatcmpl-\u00e9t\u00e9 \ud83d\ude00/x","choices":[{"message":{"content":[{"type":"text","text":"a\"b\u0001"},{"type":"refusal","refusal":"\/no"}],"refusal":"!"},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":1.5,"completion_tokens":-3,"prompt_tokens_details":{"cached_tokens":null},"cache_creation_tokens":7}}"#,
        #"{"id":"","choices":[{"message":{"content":[{"type":"text","text":"x"},{"type":"image_url"}],"tool_calls":[1,{"id":7,"function":{"name":"f","arguments":"{}"}},{"function":"x"}]},"finish_reason":"length"}]}"#,
        #"{"id":42,"choices":[{"message":{"content":null,"reasoning_content":"","tool_calls":{}}}],"usage":[]}"#,
        #"{"id":"a","choices":[{"message":{"content":"hi","reasoning_content":"r\n","thinking_blocks":[{"type":"thinking","thinking":"t\u0000","signature":"s"},{"type":"redacted_thinking","data":"d"},{"type":"other"},5]},"finish_reason":"tool_calls"}]}"#,
        #"{"choices":[{"message":{"thinking_blocks":[],"reasoning_content":"only reasoning"},"finish_reason":"function_call"}]}"#,
        #"{"choices":[{"message":{"thinking_blocks":[7],"reasoning_content":"dropped"}}]}"#,
        #"{"choices":[{"message":{"tool_calls":[{"id":"c1","function":{"name":"get","arguments":"{\"a\": [1, 2.50, {\"b\": null}], \"c\": \"\\u00e9\"}"}},{"id":"c2","function":{"name":"bad","arguments":"{not json"}},{"id":"c3","function":{"name":"empty","arguments":" \n "}},{"id":"c4","function":{"name":"dup","arguments":"{\"k\":1,\"k\":2}"}}]},"finish_reason":"tool_calls"}]}"#,
        #"{"choices":[{"message":null,"finish_reason":"len\u0067th"}]}"#,
        #"{"choices":[{"message":"text","finish_reason":"content\u005ffilter"}]}"#,
        #"{"choices":[{"message":{"content":{"text":"x"},"refusal":5}}]}"#,
        "{\"id\":\"" + String(repeating: "é", count: 120) + "\",\"choices\":[{\"message\":{\"content\":\"\"}}]}",
        #"  {"choices":[{"message":{"content":[{"type":"te\u0078t","text":""}],"tool_calls":[]}}]}  "#,
        #"{"choices":[{"message":{}}],"usage":{"completion_tokens_details":{"reasoning_tokens":99999999999999999999}}}"#,
        #"{"choices":[]}"#, #"{"choices":[5]}"#, "[]", "", #"{"choices":[{"message":{}}]"#,
    ]

    static func seeds() throws -> [[UInt8]] {
        try [
            AnthropicFixtures.bytes("hub-response.openai.json"), ResponsesFixtures.bytes("hub-response.openai.json"),
            ResponsesFixtures.bytes("hub-response-length.openai.json"),
        ] + handMade.map { Array($0.utf8) }
    }

    /// Nil when both translations agree on `body`; otherwise what differs.
    static func disagreement(_ body: [UInt8]) -> String? {
        if case .failure(let error) = Result(catching: { () throws(JSONParseError) in try JSONParser.parse(body) }),
            case .duplicateKey = error.kind
        {
            return nil
        }
        let tree = Result { () throws(TranslateError) in try treeTranslation(fromOpenAIChat: body, context: context) }
        let range = Result { () throws(TranslateError) in
            try AnthropicTranslator.anthropicResponse(fromOpenAIChat: body, context: context)
        }
        switch (tree, range) {
        case (.success(let a), .success(let b)) where a == b: return nil
        case (.failure(let a), .failure(let b)) where a == b: return nil
        default:
            return "\(String(decoding: body, as: UTF8.self))\n tree:  \(tree.map { String(decoding: $0, as: UTF8.self) })"
                + "\n range: \(range.map { String(decoding: $0, as: UTF8.self) })"
        }
    }

    @Test func seedsTranslateAsTheTreeDid() throws {
        for seed in try Self.seeds() {
            #expect(Self.disagreement(seed) == nil)
        }
    }

    @Test func mutatedAnswersTranslateAsTheTreeDid() throws {
        let seeds = try Self.seeds()
        var random = SplitMix64(seed: 0xa17_4e5)
        var failures: [String] = []
        var translated = 0
        for iteration in 0..<6_000 where failures.count < 3 {
            let seed = seeds[iteration % seeds.count]
            let body =
                iteration % 2 == 0
                ? AnthropicFuzzTests.mutate(seed, &random) : ResponsesByRangeTests.mildMutate(seed, &random)
            if let failure = Self.disagreement(body) { failures.append(failure) }
            if (try? AnthropicTranslator.anthropicResponse(fromOpenAIChat: body, context: Self.context)) != nil {
                translated += 1
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
        // Enough mutants are still answers for the comparison to be about output, not only errors.
        #expect(translated > 500, "only \(translated) mutants translated")
    }
}

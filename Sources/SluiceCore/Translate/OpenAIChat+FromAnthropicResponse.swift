// Anthropic `message` response -> OpenAI `chat.completion` ("Anthropic Messages" in
// SluiceCore.docc/ProviderWireShapes.md).
//
// Better than the reference: every text block is kept (concatenated in order), thinking goes to
// `reasoning_content`, and the thinking blocks with their signatures go to the `thinking_blocks` extension so
// the client can send them back on the next turn (Anthropic requires that during tool use).

extension AnthropicTranslator {
    /// Translates an Anthropic Messages response body into an OpenAI chat completion.
    /// - Parameters:
    ///   - body: the upstream's 2xx response body.
    ///   - context: `requestModel` and `created` for the fields Anthropic does not report.
    /// - Returns: the OpenAI body and the token usage it reports.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not an Anthropic message.
    public static func response(
        toOpenAIChat body: [UInt8], context: TranslationContext
    ) throws(TranslateError) -> (body: [UInt8], usage: TokenUsage) {
        guard let root = try? JSONParser.parse(body), root.objectValue != nil else {
            throw .badUpstreamResponse("The Anthropic response is not a JSON object.")
        }
        if root["type"]?.stringValue == "error" {
            let message = root["error"]?["message"]?.stringValue ?? "unknown error"
            throw .badUpstreamResponse("Anthropic returned an error with a success status: \(message)")
        }
        guard let content = root["content"]?.arrayValue else {
            throw .badUpstreamResponse("The Anthropic response has no 'content' array.")
        }

        var text = ""
        var reasoning = ""
        var thinkingBlocks: [JSONValue] = []
        var toolCalls: [JSONValue] = []
        for block in content {
            switch block["type"]?.stringValue {
            case "text":
                text += block["text"]?.stringValue ?? ""
            case "thinking":
                reasoning += block["thinking"]?.stringValue ?? ""
                thinkingBlocks.append(block)
            case "redacted_thinking":
                thinkingBlocks.append(block)
            case "tool_use":
                let input = block["input"] ?? object([])
                let arguments = String(decoding: input.serialized(), as: UTF8.self)
                toolCalls.append(
                    object([
                        ("id", .string(block["id"]?.stringValue ?? "")), ("type", "function"),
                        (
                            "function",
                            object([
                                ("name", .string(block["name"]?.stringValue ?? "")), ("arguments", .string(arguments)),
                            ])
                        ),
                    ]))
            default:
                // Server tool blocks (web search results and the like) have no OpenAI equivalent.
                continue
            }
        }
        let (usage, _) = Self.usage(fromAnthropic: root["usage"])
        let finish = finishReason(fromStopReason: root["stop_reason"]?.stringValue)

        var writer = JSONWriter(reservingCapacity: body.count + 256)
        writer.beginObject()
        writer.key("id")
        writer.string(root["id"]?.stringValue ?? context.fallbackResponseID)
        writer.key("object")
        writer.string("chat.completion")
        writer.key("created")
        writer.int(context.created)
        writer.key("model")
        writer.string(context.requestModel)
        writer.key("choices")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(0)
        writer.key("message")
        writer.beginObject()
        writer.key("role")
        writer.string("assistant")
        writer.key("content")
        if text.isEmpty && !toolCalls.isEmpty { writer.null() } else { writer.string(text) }
        if !reasoning.isEmpty {
            writer.key("reasoning_content")
            writer.string(reasoning)
        }
        if !thinkingBlocks.isEmpty {
            writer.key("thinking_blocks")
            writer.value(.array(thinkingBlocks))
        }
        if !toolCalls.isEmpty {
            writer.key("tool_calls")
            writer.value(.array(toolCalls))
        }
        writer.endObject()
        writer.key("logprobs")
        writer.null()
        writer.key("finish_reason")
        writer.string(finish)
        writer.endObject()
        writer.endArray()
        writeOpenAIUsage(usage, to: &writer)
        writer.endObject()
        return (writer.bytes, usage)
    }
}

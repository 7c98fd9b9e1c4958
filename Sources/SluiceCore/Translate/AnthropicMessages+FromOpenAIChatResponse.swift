// OpenAI `chat.completion` (the hub's response, from any backend) -> Anthropic `message`, for clients that
// speak the Anthropic Messages API.
//
// Block order follows Anthropic's: thinking first, then text, then tool_use. Tool arguments that are not
// valid JSON (some open models produce them) are passed as a JSON string `input` rather than dropped.

extension AnthropicTranslator {
    /// Translates a hub chat completion into an Anthropic Messages response body.
    /// - Parameters:
    ///   - body: the hub's 2xx response body (OpenAI shape).
    ///   - context: `requestModel` is reported as the message's model.
    /// - Returns: the Anthropic `message` body.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not a chat completion.
    public static func anthropicResponse(
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
        writeThinkingBlocks(message, to: &writer)
        if let text = plainText(message["content"]), !text.isEmpty {
            writeTextBlock(text, to: &writer)
        }
        if let refusal = message["refusal"]?.stringValue, !refusal.isEmpty {
            writeTextBlock(refusal, to: &writer)
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
            writer.value(toolInput(call["function"]?["arguments"]?.stringValue ?? ""))
            writer.endObject()
        }
        writer.endArray()
        writer.key("stop_reason")
        writer.string(stopReason(fromFinishReason: choice["finish_reason"]?.stringValue))
        writer.key("stop_sequence")
        writer.null()
        writeAnthropicUsage(usage(fromOpenAI: root["usage"]), to: &writer)
        writer.endObject()
        return writer.bytes
    }

    /// Tool arguments as a tool_use `input`: the parsed JSON, an empty object for none, or the raw string.
    static func toolInput(_ arguments: String) -> JSONValue {
        guard arguments.utf8.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else {
            return object([])
        }
        return (try? JSONParser.parse(arguments)) ?? .string(arguments)
    }

    private static func writeTextBlock(_ text: String, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("text")
        writer.key("text")
        writer.string(text)
        writer.endObject()
    }

    /// Thinking blocks from the `thinking_blocks` extension, or one unsigned block from `reasoning_content`
    /// when the backend (DeepSeek, vLLM reasoning parsers) only reports the text.
    private static func writeThinkingBlocks(_ message: JSONValue, to writer: inout JSONWriter) {
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
}

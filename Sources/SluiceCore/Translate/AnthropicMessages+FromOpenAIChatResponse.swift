// OpenAI `chat.completion` (the hub's response, from any backend) -> Anthropic `message`, for clients that
// speak the Anthropic Messages API.
//
// Block order follows Anthropic's: thinking first, then text, then tool_use. Tool arguments that are not
// valid JSON (some open models produce them) are passed as a JSON string `input` rather than dropped.

extension AnthropicTranslator {
    /// Translates a hub chat completion into an Anthropic Messages response body.
    ///
    /// One validating pass over the hub body (`UpstreamJSON`), then one pass writing the answer: strings go
    /// from the body into the output by range, escaped as `JSONWriter` escapes a `String`, so the bytes are
    /// those the tree-based translation wrote (`AnthropicByRangeTests` keeps it as the reference). A tree is
    /// still built for one thing: a tool call's `arguments`, a JSON document inside a JSON string, which
    /// becomes the `input` object (`toolInput`). As everywhere an upstream's JSON is read, the last of
    /// repeated member names wins.
    /// - Parameters:
    ///   - body: the hub's 2xx response body (OpenAI shape).
    ///   - context: `requestModel` is reported as the message's model.
    /// - Returns: the Anthropic `message` body.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not a chat completion.
    public static func anthropicResponse(
        fromOpenAIChat body: [UInt8], context: TranslationContext
    ) throws(TranslateError) -> [UInt8] {
        let bytes = body.span
        let answer = try ResponsesTranslator.HubAnswerMembers(bytes)
        let (hubID, usageValue, message, finishReason) = (answer.id, answer.usage, answer.message, answer.finishReason)
        guard message != nil else { throw .badUpstreamResponse("The upstream response has no 'choices[0].message'.") }
        let (thinkingBlocks, reasoning, content, refusal, toolCalls) =
            (answer.members.thinkingBlocks, answer.members.reasoning, answer.members.content, answer.members.refusal,
                answer.members.toolCalls)
        var writer = JSONWriter(reservingCapacity: body.count + 256)
        writer.beginObject()
        writer.key("id")
        UpstreamJSON.writeString(hubID, from: body, or: context.fallbackResponseID, to: &writer)
        writer.key("type")
        writer.string("message")
        writer.key("role")
        writer.string("assistant")
        writer.key("model")
        writer.string(context.requestModel)
        writer.key("content")
        writer.beginArray()
        writeThinkingBlocks(thinkingBlocks, reasoning: reasoning, from: body, to: &writer)
        let text = ResponsesTranslator.MessageText(content: content, refusal: nil, in: bytes)
        if !text.isEmpty {
            writeTextBlock(to: &writer) { text.write(from: body, to: &$0) }
        }
        if UpstreamJSON.isNonEmptyString(refusal, in: bytes) {
            writeTextBlock(to: &writer) { UpstreamJSON.writeString(refusal, from: body, or: "", to: &$0) }
        }
        if UpstreamJSON.kind(of: toolCalls, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: toolCalls, in: bytes) { value in
                let call = ResponsesTranslator.ToolCallMembers(value, in: bytes)
                writer.beginObject()
                writer.key("type")
                writer.string("tool_use")
                writer.key("id")
                UpstreamJSON.writeString(call.id, from: body, or: "", to: &writer)
                writer.key("name")
                UpstreamJSON.writeString(call.name, from: body, or: "", to: &writer)
                writer.key("input")
                writer.value(toolInput(UpstreamJSON.string(call.arguments, in: bytes) ?? ""))
                writer.endObject()
            }
        }
        writer.endArray()
        writer.key("stop_reason")
        writer.string(stopReason(fromFinishReason: UpstreamJSON.string(finishReason, in: bytes)))
        writer.key("stop_sequence")
        writer.null()
        writeAnthropicUsage(OpenAICompatible.usage(ofUsageObject: usageValue, in: bytes), to: &writer)
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

    /// The members of one entry of `thinking_blocks` (in an answer's message or a stream chunk's delta).
    struct ThinkingBlockMembers {
        var type: UpstreamJSON.Value?
        var thinking: UpstreamJSON.Value?
        var signature: UpstreamJSON.Value?
        var data: UpstreamJSON.Value?

        init(_ block: UpstreamJSON.Value, in bytes: Span<UInt8>) {
            UpstreamJSON.forEachMember(of: block, in: bytes) { member in
                if member.key("type", in: bytes) {
                    type = member.value
                } else if member.key("thinking", in: bytes) {
                    thinking = member.value
                } else if member.key("signature", in: bytes) {
                    signature = member.value
                } else if member.key("data", in: bytes) {
                    data = member.value
                }
            }
        }
    }

    private static func writeTextBlock(to writer: inout JSONWriter, text: (inout JSONWriter) -> Void) {
        writer.beginObject()
        writer.key("type")
        writer.string("text")
        writer.key("text")
        text(&writer)
        writer.endObject()
    }

    /// Thinking blocks from the `thinking_blocks` extension, or one unsigned block from `reasoning_content`
    /// when the backend (DeepSeek, vLLM reasoning parsers) only reports the text.
    private static func writeThinkingBlocks(
        _ blocks: UpstreamJSON.Value?, reasoning: UpstreamJSON.Value?, from body: [UInt8], to writer: inout JSONWriter
    ) {
        let bytes = body.span
        var blockCount = 0
        if UpstreamJSON.kind(of: blocks, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: blocks, in: bytes) { _ in blockCount += 1 }
        }
        if blockCount == 0 {
            guard UpstreamJSON.isNonEmptyString(reasoning, in: bytes) else { return }
            writer.beginObject()
            writer.key("type")
            writer.string("thinking")
            writer.key("thinking")
            UpstreamJSON.writeString(reasoning, from: body, or: "", to: &writer)
            writer.key("signature")
            writer.string("")
            writer.endObject()
            return
        }
        UpstreamJSON.forEachElement(of: blocks, in: bytes) { value in
            let block = ThinkingBlockMembers(value, in: bytes)
            if UpstreamJSON.string(block.type, equals: "thinking", in: bytes) {
                writer.beginObject()
                writer.key("type")
                writer.string("thinking")
                writer.key("thinking")
                UpstreamJSON.writeString(block.thinking, from: body, or: "", to: &writer)
                writer.key("signature")
                UpstreamJSON.writeString(block.signature, from: body, or: "", to: &writer)
                writer.endObject()
            } else if UpstreamJSON.string(block.type, equals: "redacted_thinking", in: bytes) {
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                UpstreamJSON.writeString(block.data, from: body, or: "", to: &writer)
                writer.endObject()
            }
        }
    }
}

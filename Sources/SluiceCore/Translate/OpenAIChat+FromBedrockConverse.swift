// Bedrock Converse response -> OpenAI `chat.completion` ("AWS Bedrock Converse" in
// SluiceCore.docc/ProviderWireShapes.md).
//
// Better than the reference: every text block is kept (concatenated), reasoning goes to `reasoning_content`
// (plus `thinking_blocks` with signatures for round trips), `guardrail_intervened` maps to `content_filter`, and a
// 200 without `output.message` is a 502 instead of an empty answer. With `structuredOutput`, the forced
// `json_response` tool's input becomes the message content and the finish reason is `stop`.

extension BedrockConverse {
    /// A translated non-streaming response.
    public struct Response: Sendable, Equatable {
        /// The OpenAI `chat.completion` JSON.
        public var body: [UInt8]
        public var usage: TokenUsage
        public var finishReason: String
    }

    /// Translates a Converse response body (HTTP 200) to an OpenAI chat completion.
    ///
    /// - Parameters:
    ///   - body: The Converse response JSON.
    ///   - context: `fallbackResponseID` should carry the `x-amzn-requestid` header (Converse bodies have no id).
    ///   - structuredOutput: `Request.structuredOutput` of the request this answers.
    /// - Throws: `TranslateError` (502) when the body is not a Converse response.
    public static func chatCompletion(
        fromConverse body: [UInt8], context: TranslationContext, structuredOutput: Bool = false
    ) throws(TranslateError) -> Response {
        guard let parsed = try? JSONParser.parse(body), let root = parsed.objectValue else {
            throw TranslateError.badUpstreamResponse("Bedrock returned a body that is not a JSON object.")
        }
        guard let message = root["output"]?["message"]?.objectValue,
            let content = message["content"]?.arrayValue
        else {
            let reason = root["stopReason"]?.stringValue.map { " (stopReason \($0))" } ?? ""
            throw TranslateError.badUpstreamResponse("Bedrock returned no output message\(reason).")
        }

        var text = ""
        var sawText = false
        var reasoning = ""
        var thinkingBlocks: [JSONValue] = []
        var toolCalls: [JSONValue] = []
        var jsonAnswer: [UInt8]?
        for block in content {
            if let piece = block["text"]?.stringValue {
                text += piece
                sawText = true
            } else if let use = block["toolUse"]?.objectValue {
                let name = use["name"]?.stringValue ?? ""
                let input = use["input"] ?? [:]
                if structuredOutput && name == jsonResponseToolName {
                    jsonAnswer = input.serialized()
                    continue
                }
                toolCalls.append([
                    "id": .string(use["toolUseId"]?.stringValue ?? ""), "type": "function",
                    "function": ["name": .string(name), "arguments": .string(String(decoding: input.serialized(), as: UTF8.self))],
                ])
            } else if let reasoningContent = block["reasoningContent"] {
                if let reasoningText = reasoningContent["reasoningText"] {
                    let piece = reasoningText["text"]?.stringValue ?? ""
                    reasoning += piece
                    var thinking: [(key: String, value: JSONValue)] = [("type", "thinking"), ("thinking", .string(piece))]
                    if let signature = reasoningText["signature"]?.stringValue {
                        thinking.append(("signature", .string(signature)))
                    }
                    thinkingBlocks.append(.object(JSONObject(thinking)))
                } else if let redacted = reasoningContent["redactedContent"]?.stringValue {
                    thinkingBlocks.append(["type": "redacted_thinking", "data": .string(redacted)])
                }
            }
        }
        if let jsonAnswer {
            text = String(decoding: jsonAnswer, as: UTF8.self)
            sawText = true
        }

        let usage = Self.usage(root["usage"])
        var finishReason = Self.finishReason(root["stopReason"]?.stringValue)
        if jsonAnswer != nil && finishReason == "tool_calls" { finishReason = "stop" }

        var writer = JSONWriter(reservingCapacity: 256 + text.utf8.count)
        writer.beginObject()
        writer.key("id")
        writer.string(context.fallbackResponseID)
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
        if sawText { writer.string(text) } else { writer.null() }
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
        writer.string(finishReason)
        writer.endObject()
        writer.endArray()
        writer.key("usage")
        writeUsage(usage, to: &writer)
        if let tier = root["serviceTier"]?["type"]?.stringValue {
            writer.key("service_tier")
            writer.string(tier)
        }
        writer.endObject()
        return Response(body: writer.bytes, usage: usage, finishReason: finishReason)
    }

    // MARK: - Shared with the stream translator

    /// OpenAI's `finish_reason` for a Converse `stopReason`.
    static func finishReason(_ stopReason: String?) -> String {
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "guardrail_intervened", "content_filtered": "content_filter"
        default: "stop"
        }
    }

    /// Token usage from a Converse `usage` object; prompt tokens include cache reads and writes.
    static func usage(_ value: JSONValue?) -> TokenUsage {
        var reader = TokenCountReader()
        let cacheRead = reader.count(value?["cacheReadInputTokens"])
        let cacheWrite = reader.count(value?["cacheWriteInputTokens"])
        let input = reader.sum(reader.sum(reader.count(value?["inputTokens"]), cacheRead), cacheWrite)
        let output = reader.count(value?["outputTokens"])
        return TokenUsage(
            inputTokens: input, outputTokens: output, cachedInputTokens: cacheRead, cacheWriteInputTokens: cacheWrite,
            isClamped: reader.clamped)
    }

    /// Writes an OpenAI `usage` object.
    static func writeUsage(_ usage: TokenUsage, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("prompt_tokens")
        writer.int(usage.inputTokens)
        writer.key("completion_tokens")
        writer.int(usage.outputTokens)
        writer.key("total_tokens")
        writer.int(usage.totalTokens)
        writer.key("prompt_tokens_details")
        writer.beginObject()
        writer.key("cached_tokens")
        writer.int(usage.cachedInputTokens)
        if usage.cacheWriteInputTokens > 0 {
            writer.key("cache_write_tokens")
            writer.int(usage.cacheWriteInputTokens)
        }
        writer.endObject()
        writer.endObject()
    }
}

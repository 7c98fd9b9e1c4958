// The namespace of the OpenAI Chat <-> Anthropic Messages translators, and the small vocabulary they
// share: stop/finish reason tables, usage arithmetic and error-type tables. Each direction lives in
// its own file (`Anthropic+FromOpenAIChat.swift`, `OpenAIChat+FromAnthropicResponse.swift`, ...).
//
// Hub extensions. The OpenAI hub shape carries a few members OpenAI itself does not define, so that
// Anthropic features survive a round trip through the hub:
// - request: `thinking` (Anthropic's object), `top_k`; assistant messages `thinking_blocks`
//   (`[{type:"thinking", thinking, signature} | {type:"redacted_thinking", data}]`); tool messages
//   `is_error`; `cache_control` on content parts and tools.
// - response: `message.reasoning_content`, `message.thinking_blocks`;
//   `usage.prompt_tokens_details.cache_write_tokens`.
// - stream: `delta.reasoning_content`, `delta.thinking_blocks` (signatures and redacted blocks).
// A translator to a backend that rejects unknown members must strip these.

/// Translators between the OpenAI Chat Completions hub shape and Anthropic Messages.
public enum AnthropicTranslator {
    /// Which Anthropic endpoint the request body is for.
    public enum Flavor: Sendable, Equatable {
        /// api.anthropic.com: `model` in the body.
        case native
        /// Vertex AI rawPredict / streamRawPredict: model in the URL, `anthropic_version: vertex-2023-10-16`.
        case vertex
        /// Bedrock InvokeModel: model in the URL, `anthropic_version: bedrock-2023-05-31`, no `stream` member.
        case bedrock
    }

    // MARK: - Reasons

    /// Anthropic `stop_reason` -> OpenAI `finish_reason` (<doc:ProviderWireShapes#Finish-reasons>).
    static func finishReason(fromStopReason stopReason: String?) -> String {
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        // end_turn, stop_sequence, pause_turn, and anything new: the turn ended normally.
        default: "stop"
        }
    }

    /// OpenAI `finish_reason` -> Anthropic `stop_reason`, for Anthropic clients.
    static func stopReason(fromFinishReason finishReason: String?) -> String {
        switch finishReason {
        case "length": "max_tokens"
        case "tool_calls", "function_call": "tool_use"
        case "content_filter": "refusal"
        default: "end_turn"
        }
    }

    /// Reads an OpenAI `usage` object (the hub's) into `TokenUsage`.
    static func usage(fromOpenAI usage: JSONValue?) -> TokenUsage {
        var result = TokenUsage()
        guard let object = usage?.objectValue else { return result }
        var reader = TokenCountReader()
        result.inputTokens = reader.count(object["prompt_tokens"])
        result.outputTokens = reader.count(object["completion_tokens"])
        let prompt = object["prompt_tokens_details"]
        result.cachedInputTokens = reader.count(prompt?["cached_tokens"])
        // Our own extension first, EAIG's older name second.
        result.cacheWriteInputTokens = reader.count(prompt?["cache_write_tokens"] ?? object["cache_creation_tokens"])
        result.reasoningTokens = reader.count(object["completion_tokens_details"]?["reasoning_tokens"])
        result.isClamped = reader.clamped
        return result
    }

    /// Writes `"usage": {...}` in Anthropic's shape: `input_tokens` excludes cache reads and writes.
    static func writeAnthropicUsage(_ usage: TokenUsage, to writer: inout JSONWriter) {
        writer.key("usage")
        writer.beginObject()
        writer.key("input_tokens")
        writer.int(max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens))
        writer.key("cache_creation_input_tokens")
        writer.int(usage.cacheWriteInputTokens)
        writer.key("cache_read_input_tokens")
        writer.int(usage.cachedInputTokens)
        writer.key("output_tokens")
        writer.int(usage.outputTokens)
        writer.endObject()
    }

    // MARK: - Errors

    /// The HTTP status Anthropic uses for an `error.type` (for errors that arrive without one, mid-stream).
    static func status(forErrorType type: String?) -> UInt32 {
        switch type {
        case "invalid_request_error": 400
        case "authentication_error": 401
        case "billing_error": 402
        case "permission_error": 403
        case "not_found_error": 404
        case "request_too_large": 413
        case "rate_limit_error": 429
        case "timeout_error": 504
        case "overloaded_error": 529
        default: 500
        }
    }

    /// An Anthropic `error.type` for an OpenAI error type or code seen in a hub stream.
    static func anthropicErrorType(openAIType: String?, code: String?) -> String {
        for candidate in [openAIType, code] {
            switch candidate {
            case "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error",
                "billing_error":
                if let candidate { return candidate }
            case "rate_limit_exceeded", "insufficient_quota": return "rate_limit_error"
            case "invalid_api_key": return "authentication_error"
            default: continue
            }
        }
        return "api_error"
    }

    // MARK: - Small JSON helpers

    /// A JSON object value from ordered members.
    static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(JSONObject(members.map { (key: $0.0, value: $0.1) }))
    }

    /// Text of an OpenAI content value: a string, or the concatenated `text` of its text parts.
    /// Returns nil when an element is not a text part (the caller decides whether that is an error).
    static func plainText(_ content: JSONValue?) -> String? {
        switch content {
        case nil, .null?: return ""
        case .string(let text)?: return text
        case .array(let parts)?:
            var text = ""
            for part in parts {
                guard let type = part["type"]?.stringValue, type == "text" || type == "refusal",
                    let piece = part[type]?.stringValue
                else { return nil }
                text += piece
            }
            return text
        default: return nil
        }
    }
}

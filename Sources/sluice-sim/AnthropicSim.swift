import SluiceCore

/// Anthropic Messages API: `POST /v1/messages` (JSON and SSE), `count_tokens`, `GET /v1/models`.
struct AnthropicSimulator: ProviderSimulator {
    let credentials: SimCredentials
    var name: String { "anthropic" }

    static let models = ["claude-sonnet-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest"]
    static let knownParameters: Set<String> = [
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
        "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "output_config",
        "output_format", "context_management",
    ]

    func authenticate(_ request: SimRequest) -> SimResponse? {
        guard let key = request.header("x-api-key") else {
            return error(401, type: "authentication_error", "x-api-key header is required")
        }
        guard secretsEqual(key, credentials.anthropicKey) else {
            return error(401, type: "authentication_error", "invalid x-api-key")
        }
        return nil
    }

    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        let path = request.path
        if request.method == "GET", path == "/v1/models" {
            return (modelList(), nil)
        }
        guard request.method == "POST", path == "/v1/messages" || path == "/v1/messages/count_tokens" else {
            return (error(404, type: "not_found_error", "Not found"), nil)
        }
        guard request.header("anthropic-version") != nil else {
            return (error(400, type: "invalid_request_error", "anthropic-version: header is required"), nil)
        }
        guard let body = request.json() else {
            return (error(400, type: "invalid_request_error", "There was an error parsing the body of your request"),
                nil)
        }
        let conversation: Conversation
        let model: String
        do {
            (model, conversation) = try parse(body, countOnly: path.hasSuffix("count_tokens"))
        } catch {
            return (self.error(400, type: "invalid_request_error", error.message), nil)
        }
        guard model.hasPrefix("claude") || model.hasPrefix("sim-") else {
            return (error(404, type: "not_found_error", "model: \(model)"), nil)
        }
        let reply = Planner.reply(to: conversation)
        if path.hasSuffix("count_tokens") {
            return (.json(200, Array(utf8: #"{"input_tokens":\#(reply.promptTokens)}"#)), nil)
        }
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: reply.promptTokens), nil)
        }
        let sequence = context.state.nextID()
        let id = "msg_sim\(sequence)"
        let headers = [("request-id", "req_sim\(sequence)"), ("anthropic-organization-id", "sim-org")]
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        if conversation.stream {
            return (.sse(stream(id: id, model: model, reply: reply, midstream: fault == .midstream,
                toolID: "toolu_sim\(sequence)"), headers: headers), usage)
        }
        let bytes = jsonObject { w in
            w.key("id"); w.string(id)
            w.key("type"); w.string("message")
            w.key("role"); w.string("assistant")
            w.key("model"); w.string(model)
            w.key("content")
            w.beginArray()
            if !reply.thinking.isEmpty {
                w.beginObject()
                w.key("type"); w.string("thinking")
                w.key("thinking"); w.string(reply.thinkingText)
                w.key("signature"); w.string(signature(reply.thinkingText))
                w.endObject()
            }
            switch reply.content {
            case .text:
                w.beginObject()
                w.key("type"); w.string("text")
                w.key("text"); w.string(reply.text)
                w.endObject()
            case .toolCall(let name, let arguments, _):
                w.beginObject()
                w.key("type"); w.string("tool_use")
                w.key("id"); w.string("toolu_sim\(sequence)")
                w.key("name"); w.string(name)
                w.key("input"); w.value(arguments)
                w.endObject()
            }
            w.endArray()
            w.key("stop_reason"); w.string(stopReason(reply.finish))
            w.key("stop_sequence"); w.null()
            writeUsage(&w, reply: reply, outputTokens: reply.completionTokens)
        }
        return (.json(200, bytes, headers: headers), usage)
    }

    // MARK: Request validation

    private func parse(_ body: JSONValue, countOnly: Bool) throws(SimInvalid) -> (String, Conversation) {
        guard let object = body.objectValue else { throw SimInvalid("Input should be a valid dictionary") }
        if let unknown = object.keys.first(where: { !Self.knownParameters.contains($0) }) {
            throw SimInvalid("\(unknown): Extra inputs are not permitted")
        }
        guard let model = object["model"]?.stringValue else { throw SimInvalid("model: Field required") }
        var conversation = Conversation()
        if !countOnly {
            guard let maxTokens = object["max_tokens"] else { throw SimInvalid("max_tokens: Field required") }
            guard let limit = maxTokens.int64Value, limit >= 1 else {
                throw SimInvalid("max_tokens: Input should be greater than or equal to 1")
            }
            conversation.maxTokens = Int(clamping: limit)
        }
        if let temperature = object["temperature"], !temperature.isNull {
            guard let value = temperature.doubleValue, value >= 0, value <= 1 else {
                throw SimInvalid("temperature: Input should be less than or equal to 1")
            }
        }
        if let system = object["system"], !system.isNull {
            if let text = system.stringValue {
                conversation.addPrompt(text)
            } else if let blocks = system.arrayValue {
                for (index, block) in blocks.enumerated() {
                    guard block["type"]?.stringValue == "text", let text = block["text"]?.stringValue else {
                        throw SimInvalid("system.\(index): Input should be a valid text block")
                    }
                    conversation.addPrompt(text)
                }
            } else {
                throw SimInvalid("system: Input should be a valid string")
            }
        }
        guard let messagesValue = object["messages"] else { throw SimInvalid("messages: Field required") }
        guard let messages = messagesValue.arrayValue else { throw SimInvalid("messages: Input should be a valid list") }
        var pendingToolUses: [String] = []
        var lastRole = ""
        var lastHasToolResult = false
        for (index, message) in messages.enumerated() {
            guard let role = message["role"]?.stringValue else { throw SimInvalid("messages.\(index).role: Field required") }
            guard role == "user" || role == "assistant" else {
                if role == "system" {
                    throw SimInvalid(
                        "messages.\(index).role: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.")
                }
                throw SimInvalid("messages.\(index).role: Input should be 'user' or 'assistant'")
            }
            guard let content = message["content"] else { throw SimInvalid("messages.\(index).content: Field required") }
            var texts: [String] = []
            var toolUses: [String] = []
            var toolResults: [String] = []
            var resultTexts: [String] = []
            if let text = content.stringValue {
                texts.append(text)
            } else if let blocks = content.arrayValue {
                for (blockIndex, block) in blocks.enumerated() {
                    let path = "messages.\(index).content.\(blockIndex)"
                    guard let type = block["type"]?.stringValue else { throw SimInvalid("\(path).type: Field required") }
                    switch type {
                    case "text":
                        guard let text = block["text"]?.stringValue else { throw SimInvalid("\(path).text: Field required") }
                        guard !text.isEmpty else { throw SimInvalid("messages: text content blocks must be non-empty") }
                        texts.append(text)
                    case "image", "document":
                        guard block["source"]?.objectValue != nil else { throw SimInvalid("\(path).source: Field required") }
                    case "tool_use":
                        guard role == "assistant" else {
                            throw SimInvalid("\(path): `tool_use` blocks can only be in `assistant` messages")
                        }
                        guard let id = block["id"]?.stringValue else { throw SimInvalid("\(path).id: Field required") }
                        guard block["name"]?.stringValue != nil else { throw SimInvalid("\(path).name: Field required") }
                        guard let input = block["input"], input.objectValue != nil else {
                            throw SimInvalid("\(path).input: Input should be a valid dictionary")
                        }
                        toolUses.append(id)
                        conversation.addPrompt(String(decoding: input.serialized(), as: UTF8.self))
                    case "tool_result":
                        guard role == "user" else {
                            throw SimInvalid("\(path): `tool_result` blocks can only be in `user` messages")
                        }
                        guard let id = block["tool_use_id"]?.stringValue else {
                            throw SimInvalid("\(path).tool_use_id: Field required")
                        }
                        toolResults.append(id)
                        let text = Self.toolResultText(block["content"])
                        resultTexts.append(text)
                        conversation.addPrompt(text)
                    case "thinking":
                        guard block["thinking"]?.stringValue != nil, block["signature"]?.stringValue != nil else {
                            throw SimInvalid("\(path).signature: Field required")
                        }
                    case "redacted_thinking":
                        guard block["data"]?.stringValue != nil else { throw SimInvalid("\(path).data: Field required") }
                    case "search_result", "server_tool_use", "web_search_tool_result", "container_upload":
                        break
                    default:
                        throw SimInvalid(
                            "\(path): Input tag '\(type)' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'")
                    }
                }
            } else {
                throw SimInvalid("messages.\(index).content: Input should be a valid list")
            }
            // Every tool_use must be answered by a tool_result in the very next message.
            if !pendingToolUses.isEmpty {
                let missing = pendingToolUses.filter { !toolResults.contains($0) }
                if !missing.isEmpty {
                    throw SimInvalid(
                        "messages.\(index): `tool_use` ids were found without `tool_result` blocks immediately after: \(missing.joined(separator: ", ")). Each `tool_use` block must have a corresponding `tool_result` block in the next message.")
                }
            }
            if let stray = toolResults.first(where: { !pendingToolUses.contains($0) }) {
                throw SimInvalid(
                    "messages.\(index).content.0: unexpected `tool_use_id` found in `tool_result` blocks: \(stray). Each `tool_result` block must have a corresponding `tool_use` block in the previous message.")
            }
            pendingToolUses = toolUses
            let text = texts.joined(separator: " ")
            conversation.addPrompt(text)
            if role == "user" {
                if !texts.isEmpty || toolResults.isEmpty { conversation.lastUserText = text }
                if !resultTexts.isEmpty { conversation.toolResultText = resultTexts.joined(separator: " ") }
            }
            lastRole = role
            lastHasToolResult = !toolResults.isEmpty
        }
        if !countOnly, messages.isEmpty { throw SimInvalid("messages: at least one message is required") }
        if !pendingToolUses.isEmpty, lastRole == "assistant", !countOnly {
            throw SimInvalid(
                "messages.\(messages.count - 1): `tool_use` ids were found without `tool_result` blocks immediately after: \(pendingToolUses.joined(separator: ", ")). Each `tool_use` block must have a corresponding `tool_result` block in the next message.")
        }
        conversation.endsWithToolResult = lastRole == "user" && lastHasToolResult
        if let tools = object["tools"], !tools.isNull {
            guard let array = tools.arrayValue else { throw SimInvalid("tools: Input should be a valid list") }
            for (index, tool) in array.enumerated() {
                if let type = tool["type"]?.stringValue, type != "custom" { continue }  // server tools
                guard let name = tool["name"]?.stringValue else { throw SimInvalid("tools.\(index).name: Field required") }
                guard let schema = tool["input_schema"] else {
                    throw SimInvalid("tools.\(index).custom.input_schema: Field required")
                }
                guard schema["type"]?.stringValue == "object" else {
                    throw SimInvalid("tools.\(index).custom.input_schema.type: Input should be 'object'")
                }
                conversation.tools.append(SimTool(name: name, schema: schema))
            }
        }
        var forcesTool = false
        if let choice = object["tool_choice"], !choice.isNull {
            switch choice["type"]?.stringValue {
            case "auto": break
            case "any": forcesTool = true
            case "none": conversation.toolsDisabled = true
            case "tool":
                guard let name = choice["name"]?.stringValue else { throw SimInvalid("tool_choice.tool.name: Field required") }
                conversation.forcedTool = name
                forcesTool = true
            default:
                throw SimInvalid("tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'")
            }
        }
        if let thinking = object["thinking"], !thinking.isNull {
            switch thinking["type"]?.stringValue {
            case "enabled":
                guard let budget = thinking["budget_tokens"]?.int64Value else {
                    throw SimInvalid("thinking.enabled.budget_tokens: Field required")
                }
                guard budget >= 1024 else {
                    throw SimInvalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
                }
                if let limit = conversation.maxTokens, Int64(limit) <= budget {
                    throw SimInvalid("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size")
                }
                conversation.thinking = true
            case "adaptive":
                conversation.thinking = true
            case "disabled":
                break
            default:
                throw SimInvalid("thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'")
            }
            if conversation.thinking, forcesTool {
                throw SimInvalid("Thinking may not be enabled when tool_choice forces tool use.")
            }
            // As Anthropic: sampling changes and thinking do not go together.
            if conversation.thinking, let temperature = object["temperature"]?.doubleValue, temperature != 1 {
                throw SimInvalid("`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
            }
            if conversation.thinking, let topP = object["top_p"]?.doubleValue, topP < 0.95 {
                throw SimInvalid("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility")
            }
        }
        if let stream = object["stream"], !stream.isNull {
            guard let flag = stream.boolValue else { throw SimInvalid("stream: Input should be a valid boolean") }
            conversation.stream = flag
        }
        return (model, conversation)
    }

    private static func toolResultText(_ content: JSONValue?) -> String {
        guard let content else { return "" }
        if let text = content.stringValue { return text }
        return content.arrayValue?.compactMap { $0["text"]?.stringValue }.joined(separator: " ") ?? ""
    }

    // MARK: Stream

    private func stream(id: String, model: String, reply: SimReply, midstream: Bool, toolID: String) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        func event(_ type: String, _ write: (inout JSONWriter) -> Void) {
            chunks.append(sseFrame(event: type, jsonObject { w in
                w.key("type"); w.string(type)
                write(&w)
            }))
        }
        event("message_start") { w in
            w.key("message")
            w.beginObject()
            w.key("id"); w.string(id)
            w.key("type"); w.string("message")
            w.key("role"); w.string("assistant")
            w.key("model"); w.string(model)
            w.key("content"); w.beginArray(); w.endArray()
            w.key("stop_reason"); w.null()
            w.key("stop_sequence"); w.null()
            writeUsage(&w, reply: reply, outputTokens: 1)
            w.endObject()
        }
        var index = 0
        var emitted = 0
        func midstreamError() {
            event("error") { w in
                w.key("error")
                w.beginObject()
                w.key("type"); w.string("overloaded_error")
                w.key("message"); w.string("Overloaded")
                w.endObject()
            }
        }
        if !reply.thinking.isEmpty {
            event("content_block_start") { w in
                w.key("index"); w.int(index)
                w.key("content_block")
                w.beginObject()
                w.key("type"); w.string("thinking")
                w.key("thinking"); w.string("")
                w.key("signature"); w.string("")
                w.endObject()
            }
            for token in reply.thinking {
                event("content_block_delta") { w in
                    w.key("index"); w.int(index)
                    w.key("delta")
                    w.beginObject()
                    w.key("type"); w.string("thinking_delta")
                    w.key("thinking"); w.string(token)
                    w.endObject()
                }
            }
            event("content_block_delta") { w in
                w.key("index"); w.int(index)
                w.key("delta")
                w.beginObject()
                w.key("type"); w.string("signature_delta")
                w.key("signature"); w.string(signature(reply.thinkingText))
                w.endObject()
            }
            event("content_block_stop") { w in w.key("index"); w.int(index) }
            index += 1
        }
        switch reply.content {
        case .text(let tokens):
            event("content_block_start") { w in
                w.key("index"); w.int(index)
                w.key("content_block")
                w.beginObject()
                w.key("type"); w.string("text")
                w.key("text"); w.string("")
                w.endObject()
            }
            // Anthropic sends a keep-alive ping early in every stream.
            event("ping") { _ in }
            for token in tokens {
                if midstream, emitted == SimFault.tokensBeforeMidstreamError {
                    midstreamError()
                    return chunks
                }
                event("content_block_delta") { w in
                    w.key("index"); w.int(index)
                    w.key("delta")
                    w.beginObject()
                    w.key("type"); w.string("text_delta")
                    w.key("text"); w.string(token)
                    w.endObject()
                }
                emitted += 1
            }
        case .toolCall(let name, _, let fragments):
            event("content_block_start") { w in
                w.key("index"); w.int(index)
                w.key("content_block")
                w.beginObject()
                w.key("type"); w.string("tool_use")
                w.key("id"); w.string(toolID)
                w.key("name"); w.string(name)
                w.key("input"); w.beginObject(); w.endObject()
                w.endObject()
            }
            event("ping") { _ in }
            for fragment in [""] + fragments {
                if midstream, emitted == 2 {
                    midstreamError()
                    return chunks
                }
                event("content_block_delta") { w in
                    w.key("index"); w.int(index)
                    w.key("delta")
                    w.beginObject()
                    w.key("type"); w.string("input_json_delta")
                    w.key("partial_json"); w.string(fragment)
                    w.endObject()
                }
                emitted += 1
            }
        }
        if midstream {
            midstreamError()
            return chunks
        }
        event("content_block_stop") { w in w.key("index"); w.int(index) }
        event("message_delta") { w in
            w.key("delta")
            w.beginObject()
            w.key("stop_reason"); w.string(stopReason(reply.finish))
            w.key("stop_sequence"); w.null()
            w.endObject()
            writeUsage(&w, reply: reply, outputTokens: reply.completionTokens, withTier: false)
        }
        event("message_stop") { _ in }
        return chunks
    }

    // MARK: Writers

    private func stopReason(_ finish: SimReply.Finish) -> String {
        switch finish {
        case .stop: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        }
    }

    /// Anthropic's `input_tokens` excludes cache reads, which are reported separately.
    private func writeUsage(_ w: inout JSONWriter, reply: SimReply, outputTokens: Int, withTier: Bool = true) {
        w.key("usage")
        w.beginObject()
        w.key("input_tokens"); w.int(reply.promptTokens - reply.cachedTokens)
        w.key("cache_creation_input_tokens"); w.int(0)
        w.key("cache_read_input_tokens"); w.int(reply.cachedTokens)
        w.key("output_tokens"); w.int(outputTokens)
        if withTier {
            w.key("service_tier"); w.string("standard")
        }
        w.endObject()
    }

    private func signature(_ thinking: String) -> String {
        Base64.encode(SHA256.hash("sim-signature:" + thinking).bytes)
    }

    private func modelList() -> SimResponse {
        .json(200) { w in
            w.beginObject()
            w.key("data")
            w.beginArray()
            for id in Self.models {
                w.beginObject()
                w.key("type"); w.string("model")
                w.key("id"); w.string(id)
                w.key("display_name"); w.string(id)
                w.key("created_at"); w.string("2025-01-01T00:00:00Z")
                w.endObject()
            }
            w.endArray()
            w.key("has_more"); w.bool(false)
            w.key("first_id"); w.string(Self.models[0])
            w.key("last_id"); w.string(Self.models[Self.models.count - 1])
            w.endObject()
        }
    }

    // MARK: Errors

    func error(_ status: Int, type: String, _ message: String, headers: [(String, String)] = []) -> SimResponse {
        .json(status, headers: headers) { w in
            w.beginObject()
            w.key("type"); w.string("error")
            w.key("error")
            w.beginObject()
            w.key("type"); w.string(type)
            w.key("message"); w.string(message)
            w.endObject()
            w.key("request_id"); w.string("req_sim_error")
            w.endObject()
        }
    }

    private func faultResponse(_ fault: SimFault, promptTokens: Int) -> SimResponse {
        switch fault {
        case .rateLimited:
            error(429, type: "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit (https://docs.claude.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.",
                headers: [("retry-after", "1"), ("anthropic-ratelimit-requests-remaining", "0")])
        case .serverError, .midstream:
            error(500, type: "api_error", "Internal server error")
        case .unavailable:
            error(503, type: "api_error", "Service unavailable")
        case .overloaded:
            error(529, type: "overloaded_error", "Overloaded")
        case .contextLength:
            error(400, type: "invalid_request_error",
                "prompt is too long: \(200_000 + promptTokens) tokens > 200000 maximum")
        }
    }
}

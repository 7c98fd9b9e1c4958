// Anthropic `message` response -> OpenAI `chat.completion` ("Anthropic Messages" in
// SluiceCore.docc/ProviderWireShapes.md).
//
// Better than the reference: every text block is kept (concatenated in order), thinking goes to
// `reasoning_content`, and the thinking blocks with their signatures go to the `thinking_blocks` extension so
// the client can send them back on the next turn (Anthropic requires that during tool use).
//
// One validating pass over the body finds the top-level members; the `content` array is then walked once per
// OpenAI field it feeds (text, reasoning, thinking blocks, tool calls: each a pass over that array only), and
// every string is copied from the body into the answer without becoming a `String` (see `UpstreamJSON`).

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
        let bytes = body.span
        let message = try scanMessage(body)
        guard let content = message.content, UpstreamJSON.kind(of: content, in: bytes) == .array else {
            throw .badUpstreamResponse("The Anthropic response has no 'content' array.")
        }

        // What the blocks hold, to choose which members to write.
        var text = UpstreamJSON.TextPieces()
        var reasoning = UpstreamJSON.TextPieces()
        var thinkingBlocks = 0
        var toolCalls = 0
        forEachBlock(of: content, in: bytes) { kind, block in
            switch kind {
            case .text: text.add(block.text, in: bytes)
            case .thinking:
                reasoning.add(block.thinking, in: bytes)
                thinkingBlocks += 1
            case .redactedThinking: thinkingBlocks += 1
            case .toolUse: toolCalls += 1
            }
        }
        let usage = Self.usage(fromAnthropicAt: message.usage, in: bytes).0
        let finish = finishReason(fromStopReason: UpstreamJSON.string(message.stopReason, in: bytes))

        var writer = OpenAIChatCompletionWriter(reservingCapacity: body.count + 256)
        writer.begin(created: context.created, model: context.requestModel) { json in
            UpstreamJSON.writeString(message.id, from: body, or: context.fallbackResponseID, to: &json)
        }
        writer.beginChoice(index: 0)
        writer.json.key("content")
        if text.isEmpty && toolCalls > 0 {
            writer.json.null()
        } else {
            text.write(from: body, to: &writer.json) { piece in
                forEachBlock(of: content, in: bytes) { kind, block in
                    if kind == .text, let value = block.text { piece(value) }
                }
            }
        }
        if !reasoning.isEmpty {
            writer.json.key("reasoning_content")
            reasoning.write(from: body, to: &writer.json) { piece in
                forEachBlock(of: content, in: bytes) { kind, block in
                    if kind == .thinking, let value = block.thinking { piece(value) }
                }
            }
        }
        if thinkingBlocks > 0 {
            writer.json.key("thinking_blocks")
            writer.json.beginArray()
            forEachBlock(of: content, in: bytes) { kind, block in
                // The hub's shape of the block, member by member from what was read (not a copy of
                // the block: an upstream's repeated member name would reach the client repeated).
                switch kind {
                case .thinking:
                    writer.json.beginObject()
                    writer.json.key("type")
                    writer.json.string("thinking")
                    Self.writeStringMember("thinking", block.thinking, from: body, to: &writer.json)
                    Self.writeStringMember("signature", block.signature, from: body, to: &writer.json)
                    writer.json.endObject()
                case .redactedThinking:
                    writer.json.beginObject()
                    writer.json.key("type")
                    writer.json.string("redacted_thinking")
                    Self.writeStringMember("data", block.data, from: body, to: &writer.json)
                    writer.json.endObject()
                case .text, .toolUse:
                    break
                }
            }
            writer.json.endArray()
        }
        if toolCalls > 0 {
            writer.json.key("tool_calls")
            writer.json.beginArray()
            forEachBlock(of: content, in: bytes) { kind, block in
                guard kind == .toolUse else { return }
                writer.appendToolCall(id: block.id, name: block.name, input: block.input, from: body)
            }
            writer.json.endArray()
        }
        writer.endChoice(finishReason: finish)
        writer.endChoices(usage: usage, reasoningReported: false)
        return (writer.finish(), usage)
    }

    /// The token usage of an Anthropic Messages response body, without translating it (an Anthropic client's
    /// answer passes through as it is). Zero for a body that is not a message.
    public static func usage(ofResponse body: [UInt8]) -> TokenUsage {
        let bytes = body.span
        guard let message = try? scanMessage(body), UpstreamJSON.kind(of: message.content, in: bytes) == .array else {
            return TokenUsage()
        }
        return usage(fromAnthropicAt: message.usage, in: bytes).0
    }

    // MARK: - Scanning

    /// The top-level members of a message the translation reads.
    private struct ScannedMessage {
        var id: UpstreamJSON.Value?
        var content: UpstreamJSON.Value?
        var stopReason: UpstreamJSON.Value?
        var usage: UpstreamJSON.Value?
    }

    /// Validates the body and finds its members.
    /// - Throws: 502 when it is not a JSON object, or is Anthropic's error object with a success status.
    private static func scanMessage(_ body: [UInt8]) throws(TranslateError) -> ScannedMessage {
        let bytes = body.span
        var message = ScannedMessage()
        var type: UpstreamJSON.Value?
        var error: UpstreamJSON.Value?
        let kind: JSONKind
        do {
            kind = try UpstreamJSON.scanTopLevel(bytes) { member in
                if member.key("id", in: bytes) {
                    message.id = member.value
                } else if member.key("type", in: bytes) {
                    type = member.value
                } else if member.key("content", in: bytes) {
                    message.content = member.value
                } else if member.key("stop_reason", in: bytes) {
                    message.stopReason = member.value
                } else if member.key("usage", in: bytes) {
                    message.usage = member.value
                } else if member.key("error", in: bytes) {
                    error = member.value
                }
            }
        } catch {
            throw .badUpstreamResponse("The Anthropic response is not a JSON object.")
        }
        guard kind == .object else { throw .badUpstreamResponse("The Anthropic response is not a JSON object.") }
        if UpstreamJSON.string(type, equals: "error", in: bytes) {
            let text = UpstreamJSON.string(UpstreamJSON.member("message", of: error, in: bytes), in: bytes)
            throw .badUpstreamResponse("Anthropic returned an error with a success status: \(text ?? "unknown error")")
        }
        return message
    }

    /// The content block types that have an OpenAI counterpart.
    private enum BlockKind { case text, thinking, redactedThinking, toolUse }

    /// `"name":value` when `value` is a string; nothing otherwise (a block's text, signature and
    /// data are strings in Anthropic's schema).
    private static func writeStringMember(
        _ name: String, _ value: UpstreamJSON.Value?, from body: [UInt8], to json: inout JSONWriter
    ) {
        guard let value, UpstreamJSON.isString(value, in: body.span) else { return }
        json.key(name)
        UpstreamJSON.writeString(value, from: body, or: "", to: &json)
    }

    /// The members of one content block the translation reads.
    private struct ScannedBlock {
        var text: UpstreamJSON.Value?
        var thinking: UpstreamJSON.Value?
        var signature: UpstreamJSON.Value?
        var data: UpstreamJSON.Value?
        var id: UpstreamJSON.Value?
        var name: UpstreamJSON.Value?
        var input: UpstreamJSON.Value?
    }

    /// Calls `body` for each content block with an OpenAI counterpart, in order. Server tool blocks (web search
    /// results and the like) and anything that is not an object with a known `type` are passed over.
    private static func forEachBlock(
        of content: UpstreamJSON.Value, in bytes: Span<UInt8>, _ body: (BlockKind, ScannedBlock) -> Void
    ) {
        UpstreamJSON.forEachElement(of: content, in: bytes) { element in
            var block = ScannedBlock()
            var type: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: element, in: bytes) { member in
                if member.key("type", in: bytes) {
                    type = member.value
                } else if member.key("text", in: bytes) {
                    block.text = member.value
                } else if member.key("thinking", in: bytes) {
                    block.thinking = member.value
                } else if member.key("signature", in: bytes) {
                    block.signature = member.value
                } else if member.key("data", in: bytes) {
                    block.data = member.value
                } else if member.key("id", in: bytes) {
                    block.id = member.value
                } else if member.key("name", in: bytes) {
                    block.name = member.value
                } else if member.key("input", in: bytes) {
                    block.input = member.value
                }
            }
            let kind: BlockKind
            if UpstreamJSON.string(type, equals: "text", in: bytes) {
                kind = .text
            } else if UpstreamJSON.string(type, equals: "thinking", in: bytes) {
                kind = .thinking
            } else if UpstreamJSON.string(type, equals: "redacted_thinking", in: bytes) {
                kind = .redactedThinking
            } else if UpstreamJSON.string(type, equals: "tool_use", in: bytes) {
                kind = .toolUse
            } else {
                return
            }
            body(kind, block)
        }
    }

    // MARK: - Usage

    /// Reads an Anthropic `usage` object (at `value` of `bytes`) into OpenAI terms: prompt tokens include cache
    /// reads and writes. Members absent (or `null`) keep their value in `base`, because stream events report some
    /// counts only once (message_start) and others cumulatively (message_delta).
    static func usage(fromAnthropicAt value: UpstreamJSON.Value?, in bytes: Span<UInt8>, base: TokenUsage = TokenUsage())
        -> (TokenUsage, uncached: Int)
    {
        var result = base
        var reader = TokenCountReader()
        // Counts come from `TokenUsage.count`, so they are bounded and the subtraction cannot overflow.
        var uncached = max(0, base.inputTokens - base.cachedInputTokens - base.cacheWriteInputTokens)
        guard let value, UpstreamJSON.kind(of: value, in: bytes) == .object else { return (result, uncached) }
        var input: UpstreamJSON.Value?
        var cacheRead: UpstreamJSON.Value?
        var cacheWrite: UpstreamJSON.Value?
        var output: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: value, in: bytes) { member in
            if member.key("input_tokens", in: bytes) {
                input = member.value
            } else if member.key("cache_read_input_tokens", in: bytes) {
                cacheRead = member.value
            } else if member.key("cache_creation_input_tokens", in: bytes) {
                cacheWrite = member.value
            } else if member.key("output_tokens", in: bytes) {
                output = member.value
            }
        }
        if UpstreamJSON.isPresent(input, in: bytes) { uncached = reader.count(input, in: bytes) }
        if UpstreamJSON.isPresent(cacheRead, in: bytes) { result.cachedInputTokens = reader.count(cacheRead, in: bytes) }
        if UpstreamJSON.isPresent(cacheWrite, in: bytes) {
            result.cacheWriteInputTokens = reader.count(cacheWrite, in: bytes)
        }
        if UpstreamJSON.isPresent(output, in: bytes) { result.outputTokens = reader.count(output, in: bytes) }
        result.inputTokens = reader.sum(reader.sum(uncached, result.cachedInputTokens), result.cacheWriteInputTokens)
        result.isClamped = base.isClamped || reader.clamped
        return (result, uncached)
    }
}

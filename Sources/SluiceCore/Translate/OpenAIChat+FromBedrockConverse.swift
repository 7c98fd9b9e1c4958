// Bedrock Converse response -> OpenAI `chat.completion` (SluiceCore.docc, ProviderWireShapes, "AWS Bedrock Converse").
//
// Better than the reference: every text block is kept (concatenated), reasoning goes to `reasoning_content`
// (plus `thinking_blocks` with signatures for round trips), `guardrail_intervened` maps to `content_filter`, and a
// 200 without `output.message` is a 502 instead of an empty answer. With `structuredOutput`, the forced
// `json_response` tool's input becomes the message content and the finish reason is `stop`.
//
// One validating pass finds the top-level members; `output.message.content` is then walked once per OpenAI field
// it feeds, and strings are copied from the body without becoming `String`s (see `UpstreamJSON`).

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
        let bytes = body.span
        var output: UpstreamJSON.Value?
        var stopReason: UpstreamJSON.Value?
        var usageValue: UpstreamJSON.Value?
        var serviceTier: UpstreamJSON.Value?
        let kind: JSONKind
        do {
            kind = try UpstreamJSON.scanTopLevel(bytes) { member in
                if member.key("output", in: bytes) {
                    output = member.value
                } else if member.key("stopReason", in: bytes) {
                    stopReason = member.value
                } else if member.key("usage", in: bytes) {
                    usageValue = member.value
                } else if member.key("serviceTier", in: bytes) {
                    serviceTier = member.value
                }
            }
        } catch {
            throw TranslateError.badUpstreamResponse("Bedrock returned a body that is not a JSON object.")
        }
        guard kind == .object else {
            throw TranslateError.badUpstreamResponse("Bedrock returned a body that is not a JSON object.")
        }
        let message = UpstreamJSON.member("message", of: output, in: bytes)
        guard UpstreamJSON.kind(of: message, in: bytes) == .object,
            let content = UpstreamJSON.member("content", of: message, in: bytes),
            UpstreamJSON.kind(of: content, in: bytes) == .array
        else {
            let reason = UpstreamJSON.string(stopReason, in: bytes).map { " (stopReason \($0))" } ?? ""
            throw TranslateError.badUpstreamResponse("Bedrock returned no output message\(reason).")
        }

        // What the blocks hold, to choose which members to write.
        var text = UpstreamJSON.TextPieces()
        var reasoning = UpstreamJSON.TextPieces()
        var thinkingBlocks = 0
        var toolCalls = 0
        /// The forced `json_response` tool's block (the last, if repeated): its input is the answer.
        var jsonAnswer: ScannedBlock?
        forEachBlock(of: content, in: bytes, structuredOutput: structuredOutput) { kind, block in
            switch kind {
            case .text: text.add(block.text, in: bytes)
            case .toolUse: toolCalls += 1
            case .jsonAnswer: jsonAnswer = block
            case .reasoning:
                reasoning.add(block.reasoningText, in: bytes)
                thinkingBlocks += 1
            case .redactedReasoning: thinkingBlocks += 1
            }
        }

        let usage = Self.usage(at: usageValue, in: bytes)
        var finishReason = Self.finishReason(UpstreamJSON.string(stopReason, in: bytes))
        if jsonAnswer != nil && finishReason == "tool_calls" { finishReason = "stop" }

        var writer = OpenAIChatCompletionWriter(reservingCapacity: body.count + 256)
        writer.begin(created: context.created, model: context.requestModel) { json in
            json.string(context.fallbackResponseID)
        }
        writer.beginChoice(index: 0)
        writer.json.key("content")
        if let jsonAnswer {
            // The structured answer is the whole content, as the JSON text of the tool's input.
            if let input = jsonAnswer.input {
                UpstreamJSON.writeCompactAsString(input, from: body, to: &writer.json)
            } else {
                writer.json.string("{}")
            }
        } else if text.count > 0 {
            text.write(from: body, to: &writer.json) { piece in
                forEachBlock(of: content, in: bytes, structuredOutput: structuredOutput) { kind, block in
                    if kind == .text, let value = block.text { piece(value) }
                }
            }
        } else {
            writer.json.null()
        }
        if !reasoning.isEmpty {
            writer.json.key("reasoning_content")
            reasoning.write(from: body, to: &writer.json) { piece in
                forEachBlock(of: content, in: bytes, structuredOutput: structuredOutput) { kind, block in
                    if kind == .reasoning, let value = block.reasoningText { piece(value) }
                }
            }
        }
        if thinkingBlocks > 0 {
            writer.json.key("thinking_blocks")
            writer.json.beginArray()
            forEachBlock(of: content, in: bytes, structuredOutput: structuredOutput) { kind, block in
                switch kind {
                case .reasoning:
                    writer.json.beginObject()
                    writer.json.key("type")
                    writer.json.string("thinking")
                    writer.json.key("thinking")
                    UpstreamJSON.writeString(block.reasoningText, from: body, or: "", to: &writer.json)
                    if UpstreamJSON.isString(block.signature, in: bytes) {
                        writer.json.key("signature")
                        UpstreamJSON.writeString(block.signature, from: body, or: "", to: &writer.json)
                    }
                    writer.json.endObject()
                case .redactedReasoning:
                    writer.json.beginObject()
                    writer.json.key("type")
                    writer.json.string("redacted_thinking")
                    writer.json.key("data")
                    UpstreamJSON.writeString(block.redactedContent, from: body, or: "", to: &writer.json)
                    writer.json.endObject()
                case .text, .toolUse, .jsonAnswer:
                    break
                }
            }
            writer.json.endArray()
        }
        if toolCalls > 0 {
            writer.json.key("tool_calls")
            writer.json.beginArray()
            forEachBlock(of: content, in: bytes, structuredOutput: structuredOutput) { kind, block in
                guard kind == .toolUse else { return }
                writer.appendToolCall(id: block.toolUseID, name: block.name, input: block.input, from: body)
            }
            writer.json.endArray()
        }
        writer.endChoice(finishReason: finishReason)
        writer.endChoices(usage: usage, reasoningReported: false)
        if let tier = UpstreamJSON.member("type", of: serviceTier, in: bytes), UpstreamJSON.isString(tier, in: bytes) {
            writer.json.key("service_tier")
            UpstreamJSON.writeString(tier, from: body, or: "", to: &writer.json)
        }
        return Response(body: writer.finish(), usage: usage, finishReason: finishReason)
    }

    // MARK: - Content blocks

    /// What a content block becomes in OpenAI's terms.
    private enum BlockKind { case text, toolUse, jsonAnswer, reasoning, redactedReasoning }

    /// The members of one content block the translation reads (nested ones flattened).
    private struct ScannedBlock {
        var text: UpstreamJSON.Value?
        var toolUseID: UpstreamJSON.Value?
        var name: UpstreamJSON.Value?
        var input: UpstreamJSON.Value?
        var reasoningText: UpstreamJSON.Value?
        var signature: UpstreamJSON.Value?
        var redactedContent: UpstreamJSON.Value?
    }

    /// Calls `body` for each block with an OpenAI counterpart, in order: a string `text`; else a `toolUse`
    /// object (the forced `json_response` tool, with `structuredOutput`, is the answer); else `reasoningContent`
    /// with `reasoningText` (text and signature) or a string `redactedContent`.
    private static func forEachBlock(
        of content: UpstreamJSON.Value, in bytes: Span<UInt8>, structuredOutput: Bool,
        _ body: (BlockKind, ScannedBlock) -> Void
    ) {
        UpstreamJSON.forEachElement(of: content, in: bytes) { element in
            var block = ScannedBlock()
            var toolUse: UpstreamJSON.Value?
            var reasoningContent: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: element, in: bytes) { member in
                if member.key("text", in: bytes) {
                    block.text = member.value
                } else if member.key("toolUse", in: bytes) {
                    toolUse = member.value
                } else if member.key("reasoningContent", in: bytes) {
                    reasoningContent = member.value
                }
            }
            if UpstreamJSON.isString(block.text, in: bytes) {
                body(.text, block)
            } else if let toolUse, UpstreamJSON.kind(of: toolUse, in: bytes) == .object {
                UpstreamJSON.forEachMember(of: toolUse, in: bytes) { member in
                    if member.key("toolUseId", in: bytes) {
                        block.toolUseID = member.value
                    } else if member.key("name", in: bytes) {
                        block.name = member.value
                    } else if member.key("input", in: bytes) {
                        block.input = member.value
                    }
                }
                let isAnswer = structuredOutput && UpstreamJSON.string(block.name, equals: jsonResponseToolName, in: bytes)
                body(isAnswer ? .jsonAnswer : .toolUse, block)
            } else if let reasoningContent {
                var reasoningText: UpstreamJSON.Value?
                UpstreamJSON.forEachMember(of: reasoningContent, in: bytes) { member in
                    if member.key("reasoningText", in: bytes) {
                        reasoningText = member.value
                    } else if member.key("redactedContent", in: bytes) {
                        block.redactedContent = member.value
                    }
                }
                if let reasoningText {
                    UpstreamJSON.forEachMember(of: reasoningText, in: bytes) { member in
                        if member.key("text", in: bytes) {
                            block.reasoningText = member.value
                        } else if member.key("signature", in: bytes) {
                            block.signature = member.value
                        }
                    }
                    body(.reasoning, block)
                } else if UpstreamJSON.isString(block.redactedContent, in: bytes) {
                    body(.redactedReasoning, block)
                }
            }
        }
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

    /// Token usage from the Converse `usage` object at `value` (zero when absent or not an object); prompt
    /// tokens include cache reads and writes.
    static func usage(at value: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> TokenUsage {
        var input: UpstreamJSON.Value?
        var output: UpstreamJSON.Value?
        var cacheReadCount: UpstreamJSON.Value?
        var cacheWriteCount: UpstreamJSON.Value?
        if let value {
            UpstreamJSON.forEachMember(of: value, in: bytes) { member in
                if member.key("inputTokens", in: bytes) {
                    input = member.value
                } else if member.key("outputTokens", in: bytes) {
                    output = member.value
                } else if member.key("cacheReadInputTokens", in: bytes) {
                    cacheReadCount = member.value
                } else if member.key("cacheWriteInputTokens", in: bytes) {
                    cacheWriteCount = member.value
                }
            }
        }
        var reader = TokenCountReader()
        let cacheRead = reader.count(cacheReadCount, in: bytes)
        let cacheWrite = reader.count(cacheWriteCount, in: bytes)
        let inputTokens = reader.sum(reader.sum(reader.count(input, in: bytes), cacheRead), cacheWrite)
        let outputTokens = reader.count(output, in: bytes)
        return TokenUsage(
            inputTokens: inputTokens, outputTokens: outputTokens, cachedInputTokens: cacheRead,
            cacheWriteInputTokens: cacheWrite, isClamped: reader.clamped)
    }
}

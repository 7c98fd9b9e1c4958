// OpenAI `chat.completion.chunk` SSE stream (the hub's, from any backend) -> Anthropic Messages SSE events,
// for clients that speak the Anthropic API.
//
// Event order follows Anthropic's: message_start, then for each content block content_block_start, its
// deltas and content_block_stop, then message_delta (stop_reason and usage) and message_stop. OpenAI sends
// the finish reason before the usage chunk, so message_delta waits for `[DONE]` (or the end of the stream).
// Blocks never interleave: a delta of another kind closes the open block and starts a new one.

/// Translates an OpenAI chat completion chunk stream into Anthropic Messages stream events.
public struct OpenAIToAnthropicStream: Sendable, HubStreamClientStage {
    /// Token usage from the hub's usage chunk (zero when the hub sent none).
    public private(set) var usage = TokenUsage()
    /// The hub's OpenAI finish reason, once seen.
    public private(set) var finishReason: String?
    /// The Anthropic stop reason sent (or to be sent) in message_delta.
    public var stopReason: String { AnthropicTranslator.stopReason(fromFinishReason: finishReason) }
    /// The error that ended the stream, if one did.
    public private(set) var error: GatewayError?

    /// The content block currently open.
    private enum Block: Equatable {
        case none
        case text
        case thinking
        /// A tool call, by its OpenAI index.
        case tool(Int64)
    }

    private let context: TranslationContext
    var parser: SSEParser
    private var started = false
    private var done = false
    private var block = Block.none
    /// The Anthropic index of the open block, or of the next one when none is open.
    private var blockIndex = 0

    /// - Parameters:
    ///   - context: `requestModel` (reported as the message's model) and the fallback id.
    ///   - maxEventBytes: the largest single SSE event accepted.
    public init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
    }

    /// Feeds hub bytes and returns the Anthropic events they complete (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] { feedHub(chunk) }

    /// Ends the stream: a stream that stopped without `[DONE]` or a finish reason ends with an error event.
    public mutating func finish() -> [UInt8] { finishHub() }

    // MARK: - Chunks

    /// One hub chunk, read by ranges (`UpstreamJSON`): no tree per chunk. Strings (text, thinking, ids, names,
    /// tool arguments) go from the chunk into the events by range, escaped as `JSONWriter` escapes a `String`,
    /// so the bytes are those the tree-based stage wrote (`AnthropicStreamByRangeTests` keeps it as the
    /// reference). No tree is left: a tool call's `arguments` (JSON inside a JSON string) is passed on as
    /// `partial_json` text, never parsed. As everywhere an upstream's JSON is read by range, the last of
    /// repeated member names wins.
    mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        // One allocation for a delta's event (about 130 bytes beside the delta), instead of growing from empty.
        if out.isEmpty { out.reserveCapacity(data.count + 160) }
        if data.elementsEqual("[DONE]".utf8) {
            complete(&out)
            return
        }
        let bytes = data.span
        let chunk = ResponsesTranslator.HubChunkMembers(bytes)
        let (id, errorValue, usageValue, choices) = (chunk.id, chunk.error, chunk.usage, chunk.choices)
        guard chunk.kind == .object else {
            fail(type: "api_error", message: "The upstream stream sent a chunk that is not a JSON object.", &out)
            return
        }
        if UpstreamJSON.isPresent(errorValue, in: bytes) {
            let type = AnthropicTranslator.anthropicErrorType(
                openAIType: UpstreamJSON.string(UpstreamJSON.member("type", of: errorValue, in: bytes), in: bytes),
                code: UpstreamJSON.string(UpstreamJSON.member("code", of: errorValue, in: bytes), in: bytes))
            let message = UpstreamJSON.string(UpstreamJSON.member("message", of: errorValue, in: bytes), in: bytes)
            fail(type: type, message: message ?? "The upstream stream reported an error.", &out)
            return
        }
        start(id: id, of: data, &out)
        if UpstreamJSON.kind(of: usageValue, in: bytes) == .object {
            usage = OpenAICompatible.usage(ofUsageObject: usageValue, in: bytes)
        }
        guard let choice = UpstreamJSON.firstElement(of: choices, in: bytes) else { return }
        var deltaValue: UpstreamJSON.Value?
        var finishValue: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: choice, in: bytes) { member in
            if member.key("delta", in: bytes) {
                deltaValue = member.value
            } else if member.key("finish_reason", in: bytes) {
                finishValue = member.value
            }
        }
        let delta = ResponsesTranslator.MessageMembers(of: deltaValue, in: bytes)
        if UpstreamJSON.isNonEmptyString(delta.reasoning, in: bytes) {
            thinkingDelta(delta.reasoning, of: data, &out)
        }
        if UpstreamJSON.kind(of: delta.thinkingBlocks, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: delta.thinkingBlocks, in: bytes) { entry in
                thinkingBlock(entry, of: data, &out)
            }
        }
        if UpstreamJSON.isNonEmptyString(delta.content, in: bytes) {
            open(.text, &out)
            event("content_block_delta", &out) { writer in
                writer.key("delta")
                writer.beginObject()
                writer.key("type")
                writer.string("text_delta")
                writer.key("text")
                UpstreamJSON.writeString(delta.content, from: data, or: "", to: &writer)
                writer.endObject()
            }
        }
        if UpstreamJSON.kind(of: delta.toolCalls, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: delta.toolCalls, in: bytes) { call in toolCall(call, of: data, &out) }
        }
        if let reason = UpstreamJSON.string(finishValue, in: bytes) { finishReason = reason }
    }

    /// A `thinking_delta` with the string `text` of `data`, in the open thinking block (opened if need be).
    private mutating func thinkingDelta(_ text: UpstreamJSON.Value?, of data: [UInt8], _ out: inout [UInt8]) {
        open(.thinking, &out)
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("thinking_delta")
            writer.key("thinking")
            UpstreamJSON.writeString(text, from: data, or: "", to: &writer)
            writer.endObject()
        }
    }

    /// One entry of a chunk's `thinking_blocks`: signed thinking, or a redacted block sent whole.
    private mutating func thinkingBlock(_ entry: UpstreamJSON.Value, of data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        let entry = AnthropicTranslator.ThinkingBlockMembers(entry, in: bytes)
        if UpstreamJSON.string(entry.type, equals: "thinking", in: bytes) {
            if UpstreamJSON.isNonEmptyString(entry.thinking, in: bytes) { thinkingDelta(entry.thinking, of: data, &out) }
            guard UpstreamJSON.isNonEmptyString(entry.signature, in: bytes) else { return }
            open(.thinking, &out)
            event("content_block_delta", &out) { writer in
                writer.key("delta")
                writer.beginObject()
                writer.key("type")
                writer.string("signature_delta")
                writer.key("signature")
                UpstreamJSON.writeString(entry.signature, from: data, or: "", to: &writer)
                writer.endObject()
            }
            // A signature completes its thinking block; more reasoning starts a new one.
            close(&out)
        } else if UpstreamJSON.string(entry.type, equals: "redacted_thinking", in: bytes) {
            close(&out)
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                UpstreamJSON.writeString(entry.data, from: data, or: "", to: &writer)
                writer.endObject()
            }
            event("content_block_stop", &out) { _ in }
            blockIndex += 1
        }
    }

    /// One entry of a chunk's `delta.tool_calls`: a new call (an id, or another index) starts a tool_use block.
    private mutating func toolCall(_ value: UpstreamJSON.Value, of data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        let call = ResponsesTranslator.ToolCallMembers(value, in: bytes)
        let index = UpstreamJSON.int64(call.index, in: bytes) ?? 0
        let hasID = UpstreamJSON.isString(call.id, in: bytes)
        if hasID || block != .tool(index) {
            close(&out)
            let blockIndex = blockIndex
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("tool_use")
                writer.key("id")
                if hasID {
                    UpstreamJSON.writeString(call.id, from: data, or: "", to: &writer)
                } else {
                    writer.string("toolu_\(blockIndex)")
                }
                writer.key("name")
                UpstreamJSON.writeString(call.name, from: data, or: "", to: &writer)
                writer.key("input")
                writer.beginObject()
                writer.endObject()
                writer.endObject()
            }
            block = .tool(index)
        }
        guard UpstreamJSON.isNonEmptyString(call.arguments, in: bytes) else { return }
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("input_json_delta")
            writer.key("partial_json")
            UpstreamJSON.writeString(call.arguments, from: data, or: "", to: &writer)
            writer.endObject()
        }
    }

    // MARK: - Blocks and events

    /// Opens a text or thinking block unless one of that kind is already open.
    private mutating func open(_ kind: Block, _ out: inout [UInt8]) {
        guard block != kind else { return }
        close(&out)
        event("content_block_start", &out) { writer in
            writer.key("content_block")
            writer.beginObject()
            writer.key("type")
            if kind == .thinking {
                writer.string("thinking")
                writer.key("thinking")
                writer.string("")
                writer.key("signature")
                writer.string("")
            } else {
                writer.string("text")
                writer.key("text")
                writer.string("")
            }
            writer.endObject()
        }
        block = kind
    }

    private mutating func close(_ out: inout [UInt8]) {
        guard block != .none else { return }
        event("content_block_stop", &out) { _ in }
        block = .none
        blockIndex += 1
    }

    /// Writes `event: <type>` with `{"type": <type>, "index": <block>, ...}` (index only for block events),
    /// straight into `out` (JSON from `JSONWriter` has no line break to split a `data:` line).
    private func event(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        out.append(contentsOf: "event: ".utf8)
        out.append(contentsOf: type.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
        var writer = JSONWriter()
        swap(&writer.bytes, &out)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        if type.hasPrefix("content_block") {
            writer.key("index")
            writer.int(blockIndex)
        }
        members(&writer)
        writer.endObject()
        swap(&writer.bytes, &out)
        out.append(contentsOf: "\n\n".utf8)
    }

    /// `message_start`, once: the id is the hub's (the string `id` of `data`), or the fallback.
    private mutating func start(id: UpstreamJSON.Value?, of data: [UInt8], _ out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let fallbackID = context.fallbackResponseID
        event("message_start", &out) { writer in
            writer.key("message")
            writer.beginObject()
            writer.key("id")
            UpstreamJSON.writeString(id, from: data, or: fallbackID, to: &writer)
            writer.key("type")
            writer.string("message")
            writer.key("role")
            writer.string("assistant")
            writer.key("model")
            writer.string(context.requestModel)
            writer.key("content")
            writer.beginArray()
            writer.endArray()
            writer.key("stop_reason")
            writer.null()
            writer.key("stop_sequence")
            writer.null()
            // Counts are unknown until the hub's usage chunk; message_delta reports them.
            AnthropicTranslator.writeAnthropicUsage(TokenUsage(), to: &writer)
            writer.endObject()
        }
    }

    mutating func complete(_ out: inout [UInt8]) {
        start(id: nil, of: [], &out)
        close(&out)
        done = true
        let reason = stopReason
        let usage = usage
        event("message_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("stop_reason")
            writer.string(reason)
            writer.key("stop_sequence")
            writer.null()
            writer.endObject()
            AnthropicTranslator.writeAnthropicUsage(usage, to: &writer)
        }
        event("message_stop", &out) { _ in }
    }

    /// Headers are already sent, so an error ends the stream with Anthropic's `error` event.
    static let unfinishedMessage = "The upstream stream ended before the message was complete."

    var isDone: Bool { done }

    mutating func failStream(_ message: String, _ out: inout [UInt8]) { fail(type: "api_error", message: message, &out) }

    private mutating func fail(type: String, message: String, _ out: inout [UInt8]) {
        done = true
        error = GatewayError(
            status: AnthropicTranslator.status(forErrorType: type), type: type, code: type, message: message)
        event("error", &out) { writer in
            writer.key("error")
            writer.beginObject()
            writer.key("type")
            writer.string(type)
            writer.key("message")
            writer.string(message)
            writer.endObject()
        }
    }
}

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

    mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        if data.elementsEqual("[DONE]".utf8) {
            complete(&out)
            return
        }
        guard let chunk = try? JSONParser.parse(data), chunk.objectValue != nil else {
            fail(type: "api_error", message: "The upstream stream sent a chunk that is not a JSON object.", &out)
            return
        }
        if let error = chunk["error"], !error.isNull {
            let type = AnthropicTranslator.anthropicErrorType(
                openAIType: error["type"]?.stringValue, code: error["code"]?.stringValue)
            fail(type: type, message: error["message"]?.stringValue ?? "The upstream stream reported an error.", &out)
            return
        }
        start(id: chunk["id"]?.stringValue, &out)
        if let usage = chunk["usage"], usage.objectValue != nil {
            self.usage = AnthropicTranslator.usage(fromOpenAI: usage)
        }
        guard let choice = chunk["choices"]?.arrayValue?.first else { return }
        if let delta = choice["delta"] {
            if let reasoning = delta["reasoning_content"]?.stringValue, !reasoning.isEmpty {
                thinkingDelta(reasoning, &out)
            }
            for entry in delta["thinking_blocks"]?.arrayValue ?? [] {
                thinkingBlock(entry, &out)
            }
            if let text = delta["content"]?.stringValue, !text.isEmpty {
                open(.text, &out)
                event("content_block_delta", &out) { writer in
                    writer.key("delta")
                    writer.beginObject()
                    writer.key("type")
                    writer.string("text_delta")
                    writer.key("text")
                    writer.string(text)
                    writer.endObject()
                }
            }
            for call in delta["tool_calls"]?.arrayValue ?? [] {
                toolCall(call, &out)
            }
        }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
    }

    private mutating func thinkingDelta(_ text: String, _ out: inout [UInt8]) {
        open(.thinking, &out)
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("thinking_delta")
            writer.key("thinking")
            writer.string(text)
            writer.endObject()
        }
    }

    private mutating func thinkingBlock(_ entry: JSONValue, _ out: inout [UInt8]) {
        switch entry["type"]?.stringValue {
        case "thinking":
            if let text = entry["thinking"]?.stringValue, !text.isEmpty { thinkingDelta(text, &out) }
            guard let signature = entry["signature"]?.stringValue, !signature.isEmpty else { return }
            open(.thinking, &out)
            event("content_block_delta", &out) { writer in
                writer.key("delta")
                writer.beginObject()
                writer.key("type")
                writer.string("signature_delta")
                writer.key("signature")
                writer.string(signature)
                writer.endObject()
            }
            // A signature completes its thinking block; more reasoning starts a new one.
            close(&out)
        case "redacted_thinking":
            close(&out)
            let data = entry["data"]?.stringValue ?? ""
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                writer.string(data)
                writer.endObject()
            }
            event("content_block_stop", &out) { _ in }
            blockIndex += 1
        default:
            break
        }
    }

    private mutating func toolCall(_ call: JSONValue, _ out: inout [UInt8]) {
        let index = call["index"]?.int64Value ?? 0
        let id = call["id"]?.stringValue
        if id != nil || block != .tool(index) {
            close(&out)
            let toolID = id ?? "toolu_\(blockIndex)"
            let name = call["function"]?["name"]?.stringValue ?? ""
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("tool_use")
                writer.key("id")
                writer.string(toolID)
                writer.key("name")
                writer.string(name)
                writer.key("input")
                writer.beginObject()
                writer.endObject()
                writer.endObject()
            }
            block = .tool(index)
        }
        guard let arguments = call["function"]?["arguments"]?.stringValue, !arguments.isEmpty else { return }
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("input_json_delta")
            writer.key("partial_json")
            writer.string(arguments)
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

    /// Writes `event: <type>` with `{"type": <type>, "index": <block>, ...}` (index only for block events).
    private func event(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        var writer = JSONWriter(reservingCapacity: 128)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        if type.hasPrefix("content_block") {
            writer.key("index")
            writer.int(blockIndex)
        }
        members(&writer)
        writer.endObject()
        SSEWriter.appendEvent(type, data: writer.bytes, to: &out)
    }

    private mutating func start(id: String?, _ out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let id = id ?? context.fallbackResponseID
        event("message_start", &out) { writer in
            writer.key("message")
            writer.beginObject()
            writer.key("id")
            writer.string(id)
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
        start(id: nil, &out)
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

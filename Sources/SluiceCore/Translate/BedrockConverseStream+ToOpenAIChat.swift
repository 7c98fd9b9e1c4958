// Bedrock ConverseStream (binary `application/vnd.amazon.eventstream`) -> OpenAI SSE `chat.completion.chunk`s
// (SluiceCore.docc, ProviderWireShapes, "Streams, whatever the backend"). The response content-type must be
// rewritten to `text/event-stream` by the caller.
//
// An incremental state machine: `feed` takes raw body bytes split anywhere and returns the SSE bytes ready so far;
// only an unfinished event-stream message is buffered, and each message is translated as the decoder completes
// it, its JSON payload read by range (`UpstreamJSON`, no tree). Exceptions (`:message-type` exception or error),
// corrupt frames and truncated streams end the client stream with an OpenAI error event and `[DONE]`.

/// Translates a ConverseStream body into OpenAI chat completion chunks.
public struct BedrockConverseStreamTranslator: Sendable, AWSEventStreamStage {
    public let context: TranslationContext
    /// The request forced the `json_response` tool: stream its input as content.
    public let structuredOutput: Bool

    /// Token usage from the `metadata` event (zero until it arrives).
    public private(set) var usage = TokenUsage()
    /// The OpenAI finish reason, once `messageStop` has arrived.
    public private(set) var finishReason: String?
    /// The error the stream ended with, if any.
    public private(set) var failure: GatewayError?
    /// Whether the metadata event (with usage) arrived.
    public private(set) var sawUsage = false

    var decoder = AWSEventStreamDecoder()
    private var chunks: OpenAIChunkWriter
    private var roleSent = false
    private var toolIndexByBlock: [Int: Int] = [:]
    private var nextToolIndex = 0
    private var jsonBlock: Int?
    private var sawMessageStop = false
    private(set) var done = false
    /// The size of the payload being translated: the room its chunk is likely to need.
    private var eventBytes = 0

    public init(context: TranslationContext, structuredOutput: Bool = false) {
        self.context = context
        self.structuredOutput = structuredOutput
        self.chunks = OpenAIChunkWriter(
            id: context.fallbackResponseID, created: context.created, model: context.requestModel)
    }

    /// Feeds raw event-stream bytes; returns the SSE bytes ready for the client (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] { feedEventStream(chunk) }

    /// Flushes at end of stream: the usage chunk (when `includeUsage`) and `[DONE]`, or an error if the stream was cut.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        guard finishEventStream(into: &out) else { return out }
        guard sawMessageStop else {
            fail(TranslateError.badUpstreamResponse("Bedrock's stream ended before messageStop.").gatewayError, into: &out)
            return out
        }
        if context.includeUsage {
            chunks.appendUsage(usage, reasoningReported: false, to: &out)
        }
        OpenAIChunkWriter.appendDone(to: &out)
        done = true
        return out
    }

    // MARK: - Events

    mutating func handle(_ message: AWSEventMessage, into out: inout [UInt8]) {
        switch message.messageType {
        case "exception":
            fail(
                BedrockError.gatewayError(status: nil, errorType: message.exceptionType, body: message.payload),
                into: &out)
            return
        case "error":
            let code = message.headers[":error-code"]?.stringValue
            let text = message.headers[":error-message"]?.stringValue ?? ""
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("message")
            writer.string(text)
            writer.endObject()
            fail(BedrockError.gatewayError(status: nil, errorType: code, body: writer.bytes), into: &out)
            return
        default: break
        }
        guard let type = message.eventType else { return }
        let payload = message.payload
        let bytes = payload.span
        var event = ScannedEvent()
        let kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
            if member.key("contentBlockIndex", in: bytes) {
                event.contentBlockIndex = member.value
            } else if member.key("delta", in: bytes) {
                event.delta = member.value
            } else if member.key("start", in: bytes) {
                event.start = member.value
            } else if member.key("stopReason", in: bytes) {
                event.stopReason = member.value
            } else if member.key("usage", in: bytes) {
                event.usage = member.value
            }
        }
        guard kind == .object else {
            fail(TranslateError.badUpstreamResponse("Bedrock sent a \(type) event whose payload is not a JSON object.").gatewayError, into: &out)
            return
        }
        eventBytes = payload.count
        switch type {
        case "messageStart":
            guard !roleSent else { return }
            emitDelta(into: &out) { writer in
                writer.key("content")
                writer.string("")
            }
        case "contentBlockStart":
            contentBlockStart(event, payload, into: &out)
        case "contentBlockDelta":
            contentBlockDelta(event, payload, into: &out)
        case "messageStop":
            var reason = BedrockConverse.finishReason(UpstreamJSON.string(event.stopReason, in: bytes))
            if jsonBlock != nil && reason == "tool_calls" { reason = "stop" }
            finishReason = reason
            sawMessageStop = true
            emitDelta(into: &out, finishReason: reason) { _ in }
        case "metadata":
            usage = BedrockConverse.usage(at: event.usage, in: bytes)
            sawUsage = true
        default:
            // contentBlockStop and future event types carry nothing the client needs.
            break
        }
    }

    /// The members of an event payload the translation reads.
    private struct ScannedEvent {
        var contentBlockIndex: UpstreamJSON.Value?
        var delta: UpstreamJSON.Value?
        var start: UpstreamJSON.Value?
        var stopReason: UpstreamJSON.Value?
        var usage: UpstreamJSON.Value?
    }

    private mutating func contentBlockStart(_ event: ScannedEvent, _ payload: [UInt8], into out: inout [UInt8]) {
        let bytes = payload.span
        guard let block = UpstreamJSON.int64(event.contentBlockIndex, in: bytes).map({ Int(clamping: $0) }),
            let use = UpstreamJSON.member("toolUse", of: event.start, in: bytes)
        else { return }
        var id: UpstreamJSON.Value?
        var name: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: use, in: bytes) { member in
            if member.key("toolUseId", in: bytes) {
                id = member.value
            } else if member.key("name", in: bytes) {
                name = member.value
            }
        }
        if structuredOutput && UpstreamJSON.string(name, equals: BedrockConverse.jsonResponseToolName, in: bytes) {
            jsonBlock = block
            return
        }
        let index = nextToolIndex
        nextToolIndex += 1
        toolIndexByBlock[block] = index
        emitDelta(into: &out) { writer in
            Self.beginToolCall(index: index, to: &writer)
            writer.key("id")
            UpstreamJSON.writeString(id, from: payload, or: "", to: &writer)
            writer.key("type")
            writer.string("function")
            writer.key("function")
            writer.beginObject()
            writer.key("name")
            UpstreamJSON.writeString(name, from: payload, or: "", to: &writer)
            writer.key("arguments")
            writer.string("")
            Self.endToolCall(&writer)
        }
    }

    private mutating func contentBlockDelta(_ event: ScannedEvent, _ payload: [UInt8], into out: inout [UInt8]) {
        let bytes = payload.span
        guard let delta = event.delta, UpstreamJSON.kind(of: delta, in: bytes) == .object else { return }
        let block = UpstreamJSON.int64(event.contentBlockIndex, in: bytes).map { Int(clamping: $0) } ?? -1
        var text: UpstreamJSON.Value?
        var toolUse: UpstreamJSON.Value?
        var reasoningContent: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: delta, in: bytes) { member in
            if member.key("text", in: bytes) {
                text = member.value
            } else if member.key("toolUse", in: bytes) {
                toolUse = member.value
            } else if member.key("reasoningContent", in: bytes) {
                reasoningContent = member.value
            }
        }
        if UpstreamJSON.isString(text, in: bytes) {
            emitDelta(into: &out) { writer in
                writer.key("content")
                UpstreamJSON.writeString(text, from: payload, or: "", to: &writer)
            }
            return
        }
        if let input = UpstreamJSON.member("input", of: toolUse, in: bytes), UpstreamJSON.isString(input, in: bytes) {
            if jsonBlock == block {
                emitDelta(into: &out) { writer in
                    writer.key("content")
                    UpstreamJSON.writeString(input, from: payload, or: "", to: &writer)
                }
            } else if let index = toolIndexByBlock[block] {
                emitDelta(into: &out) { writer in
                    Self.beginToolCall(index: index, to: &writer)
                    writer.key("function")
                    writer.beginObject()
                    writer.key("arguments")
                    UpstreamJSON.writeString(input, from: payload, or: "", to: &writer)
                    Self.endToolCall(&writer)
                }
            }
            return
        }
        guard let reasoningContent, UpstreamJSON.kind(of: reasoningContent, in: bytes) == .object else { return }
        var reasoningText: UpstreamJSON.Value?
        var signature: UpstreamJSON.Value?
        var redacted: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: reasoningContent, in: bytes) { member in
            if member.key("text", in: bytes) {
                reasoningText = member.value
            } else if member.key("signature", in: bytes) {
                signature = member.value
            } else if member.key("redactedContent", in: bytes) {
                redacted = member.value
            }
        }
        if UpstreamJSON.isString(reasoningText, in: bytes) {
            emitDelta(into: &out) { writer in
                writer.key("reasoning_content")
                UpstreamJSON.writeString(reasoningText, from: payload, or: "", to: &writer)
            }
        } else if UpstreamJSON.isString(signature, in: bytes) {
            emitDelta(into: &out) { writer in
                writer.key("thinking_blocks")
                writer.beginArray()
                writer.beginObject()
                writer.key("type")
                writer.string("thinking")
                writer.key("thinking")
                writer.string("")
                writer.key("signature")
                UpstreamJSON.writeString(signature, from: payload, or: "", to: &writer)
                writer.endObject()
                writer.endArray()
            }
        } else if UpstreamJSON.isString(redacted, in: bytes) {
            emitDelta(into: &out) { writer in
                writer.key("thinking_blocks")
                writer.beginArray()
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                UpstreamJSON.writeString(redacted, from: payload, or: "", to: &writer)
                writer.endObject()
                writer.endArray()
            }
        }
    }

    // MARK: - Writing

    /// Appends one chunk whose delta members are written by `body` (role added to the first chunk).
    private mutating func emitDelta(
        into out: inout [UInt8], finishReason: String? = nil, _ body: (inout JSONWriter) -> Void
    ) {
        let role = !roleSent
        roleSent = true
        chunks.appendDelta(to: &out, role: role, finishReason: finishReason, reserving: eventBytes, body)
    }

    /// `"tool_calls":[{"index":…,` — the call's other members follow, then `endToolCall`.
    private static func beginToolCall(index: Int, to writer: inout JSONWriter) {
        writer.key("tool_calls")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(index)
    }

    /// Closes the `function` object, the call and the `tool_calls` array.
    private static func endToolCall(_ writer: inout JSONWriter) {
        writer.endObject()
        writer.endObject()
        writer.endArray()
    }

    /// Ends the client stream with an OpenAI error event and `[DONE]`.
    mutating func fail(_ error: GatewayError, into out: inout [UInt8]) {
        failure = error
        done = true
        OpenAIChunkWriter.appendError(error, to: &out)
    }
}

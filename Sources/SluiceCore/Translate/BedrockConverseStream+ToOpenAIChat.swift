// Bedrock ConverseStream (binary `application/vnd.amazon.eventstream`) -> OpenAI SSE `chat.completion.chunk`s
// ("AWS Bedrock Converse" in SluiceCore.docc/ProviderWireShapes.md). The response content-type must be
// rewritten to `text/event-stream` by the caller.
//
// An incremental state machine: `feed` takes raw body bytes split anywhere and returns the SSE bytes ready so far;
// only an unfinished event-stream message is buffered. Exceptions (`:message-type` exception or error), corrupt
// frames and truncated streams end the client stream with an OpenAI error event and `[DONE]`.

/// Translates a ConverseStream body into OpenAI chat completion chunks.
public struct BedrockConverseStreamTranslator: Sendable {
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

    private var decoder = AWSEventStreamDecoder()
    private var roleSent = false
    private var toolIndexByBlock: [Int: Int] = [:]
    private var nextToolIndex = 0
    private var jsonBlock: Int?
    private var sawMessageStop = false
    private var done = false

    public init(context: TranslationContext, structuredOutput: Bool = false) {
        self.context = context
        self.structuredOutput = structuredOutput
    }

    /// Feeds raw event-stream bytes; returns the SSE bytes ready for the client (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        // Messages completed before a corrupt one still reach the client, whatever the chunking.
        var messages: [AWSEventMessage] = []
        var corrupt: AWSEventStreamError?
        do {
            try decoder.feed(chunk) { messages.append($0) }
        } catch {
            corrupt = error
        }
        for message in messages where !done {
            handle(message, into: &out)
        }
        if let corrupt, !done {
            fail(TranslateError.badUpstreamResponse("Bedrock sent a corrupt event stream: \(corrupt.description)").gatewayError, into: &out)
        }
        return out
    }

    /// Flushes at end of stream: the usage chunk (when `includeUsage`) and `[DONE]`, or an error if the stream was cut.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        do {
            try decoder.finish()
        } catch {
            fail(TranslateError.badUpstreamResponse("Bedrock's event stream ended mid-message: \(error.description)").gatewayError, into: &out)
            return out
        }
        guard sawMessageStop else {
            fail(TranslateError.badUpstreamResponse("Bedrock's stream ended before messageStop.").gatewayError, into: &out)
            return out
        }
        if context.includeUsage {
            var writer = chunkHeader()
            writer.key("choices")
            writer.beginArray()
            writer.endArray()
            writer.key("usage")
            BedrockConverse.writeUsage(usage, to: &writer)
            writer.endObject()
            SSEWriter.appendData(writer.bytes, to: &out)
        }
        SSEWriter.appendDone(to: &out)
        done = true
        return out
    }

    // MARK: - Events

    private mutating func handle(_ message: AWSEventMessage, into out: inout [UInt8]) {
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
        guard let parsed = try? JSONParser.parse(message.payload), let event = parsed.objectValue else {
            fail(TranslateError.badUpstreamResponse("Bedrock sent a \(type) event whose payload is not a JSON object.").gatewayError, into: &out)
            return
        }
        switch type {
        case "messageStart":
            guard !roleSent else { return }
            emitDelta(into: &out) { writer in
                writer.key("content")
                writer.string("")
            }
        case "contentBlockStart":
            guard let block = event["contentBlockIndex"]?.int64Value.map({ Int(clamping: $0) }),
                let use = event["start"]?["toolUse"]
            else { return }
            let name = use["name"]?.stringValue ?? ""
            if structuredOutput && name == BedrockConverse.jsonResponseToolName {
                jsonBlock = block
                return
            }
            let index = nextToolIndex
            nextToolIndex += 1
            toolIndexByBlock[block] = index
            let id = use["toolUseId"]?.stringValue ?? ""
            emitDelta(into: &out) { writer in
                Self.writeToolCall(index: index, id: id, name: name, arguments: "", to: &writer)
            }
        case "contentBlockDelta":
            guard let delta = event["delta"]?.objectValue else { return }
            let block = event["contentBlockIndex"]?.int64Value.map { Int(clamping: $0) } ?? -1
            if let text = delta["text"]?.stringValue {
                emitDelta(into: &out) { writer in
                    writer.key("content")
                    writer.string(text)
                }
            } else if let input = delta["toolUse"]?["input"]?.stringValue {
                if jsonBlock == block {
                    emitDelta(into: &out) { writer in
                        writer.key("content")
                        writer.string(input)
                    }
                } else if let index = toolIndexByBlock[block] {
                    emitDelta(into: &out) { writer in
                        Self.writeToolCall(index: index, id: nil, name: nil, arguments: input, to: &writer)
                    }
                }
            } else if let reasoning = delta["reasoningContent"]?.objectValue {
                if let text = reasoning["text"]?.stringValue {
                    emitDelta(into: &out) { writer in
                        writer.key("reasoning_content")
                        writer.string(text)
                    }
                } else if let signature = reasoning["signature"]?.stringValue {
                    emitDelta(into: &out) { writer in
                        writer.key("thinking_blocks")
                        writer.value([["type": "thinking", "thinking": "", "signature": .string(signature)]])
                    }
                } else if let redacted = reasoning["redactedContent"]?.stringValue {
                    emitDelta(into: &out) { writer in
                        writer.key("thinking_blocks")
                        writer.value([["type": "redacted_thinking", "data": .string(redacted)]])
                    }
                }
            }
        case "messageStop":
            var reason = BedrockConverse.finishReason(event["stopReason"]?.stringValue)
            if jsonBlock != nil && reason == "tool_calls" { reason = "stop" }
            finishReason = reason
            sawMessageStop = true
            emitDelta(into: &out, finishReason: reason) { _ in }
        case "metadata":
            usage = BedrockConverse.usage(event["usage"])
            sawUsage = true
        default:
            // contentBlockStop and future event types carry nothing the client needs.
            break
        }
    }

    // MARK: - Writing

    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,` with the object left open.
    private func chunkHeader() -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: 160)
        writer.beginObject()
        writer.key("id")
        writer.string(context.fallbackResponseID)
        writer.key("object")
        writer.string("chat.completion.chunk")
        writer.key("created")
        writer.int(context.created)
        writer.key("model")
        writer.string(context.requestModel)
        return writer
    }

    /// Appends one chunk whose delta members are written by `body` (role added to the first chunk).
    private mutating func emitDelta(
        into out: inout [UInt8], finishReason: String? = nil, _ body: (inout JSONWriter) -> Void
    ) {
        var writer = chunkHeader()
        writer.key("choices")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(0)
        writer.key("delta")
        writer.beginObject()
        if !roleSent {
            writer.key("role")
            writer.string("assistant")
            roleSent = true
        }
        body(&writer)
        writer.endObject()
        writer.key("finish_reason")
        if let finishReason { writer.string(finishReason) } else { writer.null() }
        writer.endObject()
        writer.endArray()
        writer.endObject()
        SSEWriter.appendData(writer.bytes, to: &out)
    }

    private static func writeToolCall(index: Int, id: String?, name: String?, arguments: String, to writer: inout JSONWriter) {
        writer.key("tool_calls")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(index)
        if let id {
            writer.key("id")
            writer.string(id)
            writer.key("type")
            writer.string("function")
        }
        writer.key("function")
        writer.beginObject()
        if let name {
            writer.key("name")
            writer.string(name)
        }
        writer.key("arguments")
        writer.string(arguments)
        writer.endObject()
        writer.endObject()
        writer.endArray()
    }

    /// Ends the client stream with an OpenAI error event and `[DONE]`.
    private mutating func fail(_ error: GatewayError, into out: inout [UInt8]) {
        failure = error
        done = true
        SSEWriter.appendData(error.body(for: .openAI), to: &out)
        SSEWriter.appendDone(to: &out)
    }
}

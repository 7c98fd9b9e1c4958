// Anthropic Messages SSE stream -> OpenAI `chat.completion.chunk` SSE frames (SluiceCore.docc, ProviderWireShapes, "Streams, whatever the backend").
//
// An incremental state machine: bytes in, client bytes out, only the unfinished SSE event buffered. Events
// are matched by their JSON `type`, not the SSE `event:` line, so the same machine serves Bedrock
// InvokeModel streams (JSON events without SSE framing) through `feedEvent(json:)`.
//
// Each event is validated and read in one scan of its data (`UpstreamJSON`), and its text is copied from the
// event into the chunk; events are translated as the SSE parser completes them, without being collected first.
//
// Usage: `message_start` carries the input and cache counts, `message_delta` the output count, which is
// cumulative (set, never add); a count absent from a later event keeps its previous value.

/// Translates an Anthropic Messages event stream into OpenAI chat completion chunks.
public struct AnthropicToOpenAIStream: Sendable {
    /// Token usage seen so far (final once the stream has ended).
    public private(set) var usage = TokenUsage()
    /// The OpenAI finish reason, once `message_delta` has reported one.
    public private(set) var finishReason: String?
    /// The error that ended the stream, if one did.
    public private(set) var error: GatewayError?

    private let context: TranslationContext
    private var parser: SSEParser
    private var chunks: OpenAIChunkWriter
    private var roleSent = false
    private var done = false
    /// Anthropic content block index -> OpenAI tool call index, for open and closed tool blocks.
    private var toolBlocks: [(block: Int64, tool: Int)] = []
    private var nextToolIndex = 0
    /// The size of the event being translated: the room its chunk is likely to need.
    private var eventBytes = 0

    /// - Parameters:
    ///   - context: `requestModel`, `created`, `includeUsage` and the fallback id.
    ///   - maxEventBytes: the largest single SSE event accepted.
    public init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
        self.chunks = OpenAIChunkWriter(
            id: context.fallbackResponseID, created: context.created, model: context.requestModel)
    }

    /// Feeds upstream bytes and returns the client bytes they complete (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        // The parser is moved out while it calls back into `handle`, which mutates `self`.
        var parser = SSEParser(maxEventBytes: self.parser.maxEventBytes)
        swap(&parser, &self.parser)
        defer { swap(&parser, &self.parser) }
        do {
            // Events completed before an oversized one are translated first, as they would be had they
            // arrived in a chunk of their own: the output must not depend on where the stream is cut.
            try parser.feed(chunk) { event in
                if !done { handle(event.data, &out) }
            }
        } catch {
            guard !done else { return out }
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "An Anthropic stream event exceeded \(parser.maxEventBytes) bytes."), &out)
        }
        return out
    }

    /// Feeds one complete event as JSON (Bedrock InvokeModel streams deliver events without SSE framing).
    public mutating func feedEvent(json: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        handle(json, &out)
        return out
    }

    /// Ends the stream: flushes a trailing event, and reports a stream cut short as an error.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        for event in parser.finish() where !done {
            // An event without its blank line is usually cut mid-JSON: that is truncation, not garbage.
            guard (try? JSONScanner.validate(event.data.span)) != nil else { break }
            handle(event.data, &out)
        }
        guard !done else { return out }
        if finishReason != nil {
            // `message_delta` arrived but `message_stop` did not: the answer itself is complete.
            complete(&out)
        } else {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "upstream_stream_truncated",
                    message: "The Anthropic stream ended before the message was complete."), &out)
        }
        return out
    }

    // MARK: - Events

    /// The members of an event the translation reads (nested ones flattened).
    private struct ScannedEvent {
        var type: UpstreamJSON.Value?
        var index: UpstreamJSON.Value?
        var message: UpstreamJSON.Value?
        var contentBlock: UpstreamJSON.Value?
        var delta: UpstreamJSON.Value?
        var usage: UpstreamJSON.Value?
    }

    private mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        var event = ScannedEvent()
        let kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
            if member.key("type", in: bytes) {
                event.type = member.value
            } else if member.key("index", in: bytes) {
                event.index = member.value
            } else if member.key("delta", in: bytes) {
                event.delta = member.value
            } else if member.key("content_block", in: bytes) {
                event.contentBlock = member.value
            } else if member.key("message", in: bytes) {
                event.message = member.value
            } else if member.key("usage", in: bytes) {
                event.usage = member.value
            }
        }
        guard kind == .object, UpstreamJSON.isString(event.type, in: bytes) else {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "The Anthropic stream sent an event that is not a JSON object with a 'type'."), &out)
            return
        }
        eventBytes = data.count
        let type = event.type
        if UpstreamJSON.string(type, equals: "content_block_delta", in: bytes) {
            contentBlockDelta(event, data, &out)
        } else if UpstreamJSON.string(type, equals: "content_block_start", in: bytes) {
            contentBlockStart(event, data, &out)
        } else if UpstreamJSON.string(type, equals: "message_start", in: bytes) {
            var id: UpstreamJSON.Value?
            var messageUsage: UpstreamJSON.Value?
            if let message = event.message {
                UpstreamJSON.forEachMember(of: message, in: bytes) { member in
                    if member.key("id", in: bytes) {
                        id = member.value
                    } else if member.key("usage", in: bytes) {
                        messageUsage = member.value
                    }
                }
            }
            if let id { chunks.setID(id, from: data) }
            usage = AnthropicTranslator.usage(fromAnthropicAt: messageUsage, in: bytes, base: usage).0
            if !roleSent {
                chunk(&out) { writer in
                    writer.key("content")
                    writer.string("")
                }
            }
        } else if UpstreamJSON.string(type, equals: "message_delta", in: bytes) {
            if let reason = UpstreamJSON.string(UpstreamJSON.member("stop_reason", of: event.delta, in: bytes), in: bytes) {
                finishReason = AnthropicTranslator.finishReason(fromStopReason: reason)
            }
            usage = AnthropicTranslator.usage(fromAnthropicAt: event.usage, in: bytes, base: usage).0
        } else if UpstreamJSON.string(type, equals: "message_stop", in: bytes) {
            complete(&out)
        } else if UpstreamJSON.string(type, equals: "error", in: bytes) {
            // The error path reads Anthropic's error object as a tree: rare, small, and shared with the
            // non-streamed error translation.
            let tree = (try? JSONParser.parse(data)) ?? .null
            fail(AnthropicTranslator.streamError(tree), &out)
        }
        // ping, content_block_stop and event types added later carry nothing for the client.
    }

    /// The members of a content block or delta the translation reads.
    private struct ScannedBlock {
        var type: UpstreamJSON.Value?
        var text: UpstreamJSON.Value?
        var thinking: UpstreamJSON.Value?
        var id: UpstreamJSON.Value?
        var name: UpstreamJSON.Value?
        var data: UpstreamJSON.Value?
        var signature: UpstreamJSON.Value?
        var partialJSON: UpstreamJSON.Value?
    }

    private static func scanBlock(_ value: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> ScannedBlock {
        var block = ScannedBlock()
        guard let value else { return block }
        UpstreamJSON.forEachMember(of: value, in: bytes) { member in
            if member.key("type", in: bytes) {
                block.type = member.value
            } else if member.key("text", in: bytes) {
                block.text = member.value
            } else if member.key("thinking", in: bytes) {
                block.thinking = member.value
            } else if member.key("partial_json", in: bytes) {
                block.partialJSON = member.value
            } else if member.key("signature", in: bytes) {
                block.signature = member.value
            } else if member.key("id", in: bytes) {
                block.id = member.value
            } else if member.key("name", in: bytes) {
                block.name = member.value
            } else if member.key("data", in: bytes) {
                block.data = member.value
            }
        }
        return block
    }

    private mutating func contentBlockStart(_ event: ScannedEvent, _ data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        let block = Self.scanBlock(event.contentBlock, in: bytes)
        if UpstreamJSON.string(block.type, equals: "tool_use", in: bytes) {
            let tool = nextToolIndex
            nextToolIndex += 1
            toolBlocks.append((block: UpstreamJSON.int64(event.index, in: bytes) ?? -1, tool: tool))
            chunk(&out) { writer in
                writer.key("tool_calls")
                writer.beginArray()
                writer.beginObject()
                writer.key("index")
                writer.int(tool)
                writer.key("id")
                UpstreamJSON.writeString(block.id, from: data, or: "", to: &writer)
                writer.key("type")
                writer.string("function")
                writer.key("function")
                writer.beginObject()
                writer.key("name")
                UpstreamJSON.writeString(block.name, from: data, or: "", to: &writer)
                writer.key("arguments")
                writer.string("")
                writer.endObject()
                writer.endObject()
                writer.endArray()
            }
        } else if UpstreamJSON.string(block.type, equals: "text", in: bytes) {
            content("content", block.text, data, &out)
        } else if UpstreamJSON.string(block.type, equals: "thinking", in: bytes) {
            content("reasoning_content", block.thinking, data, &out)
        } else if UpstreamJSON.string(block.type, equals: "redacted_thinking", in: bytes) {
            thinkingBlock(type: "redacted_thinking", key: "data", block.data, data, &out)
        }
    }

    private mutating func contentBlockDelta(_ event: ScannedEvent, _ data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        let delta = Self.scanBlock(event.delta, in: bytes)
        if UpstreamJSON.string(delta.type, equals: "text_delta", in: bytes) {
            content("content", delta.text, data, &out)
        } else if UpstreamJSON.string(delta.type, equals: "thinking_delta", in: bytes) {
            content("reasoning_content", delta.thinking, data, &out)
        } else if UpstreamJSON.string(delta.type, equals: "signature_delta", in: bytes) {
            thinkingBlock(type: "thinking", key: "signature", delta.signature, data, &out)
        } else if UpstreamJSON.string(delta.type, equals: "input_json_delta", in: bytes) {
            let index = UpstreamJSON.int64(event.index, in: bytes) ?? -1
            guard let tool = toolBlocks.last(where: { $0.block == index })?.tool,
                UpstreamJSON.isNonEmptyString(delta.partialJSON, in: bytes)
            else { return }
            chunk(&out) { writer in
                writer.key("tool_calls")
                writer.beginArray()
                writer.beginObject()
                writer.key("index")
                writer.int(tool)
                writer.key("function")
                writer.beginObject()
                writer.key("arguments")
                UpstreamJSON.writeString(delta.partialJSON, from: data, or: "", to: &writer)
                writer.endObject()
                writer.endObject()
                writer.endArray()
            }
        }
        // citations_delta and later additions have no OpenAI equivalent.
    }

    // MARK: - Output

    /// A delta of one text member (`content` or `reasoning_content`), when `text` is a non-empty string.
    private mutating func content(_ key: String, _ text: UpstreamJSON.Value?, _ data: [UInt8], _ out: inout [UInt8]) {
        guard UpstreamJSON.isNonEmptyString(text, in: data.span) else { return }
        chunk(&out) { writer in
            writer.key(key)
            UpstreamJSON.writeString(text, from: data, or: "", to: &writer)
        }
    }

    /// A `thinking_blocks` delta: a signature for the thinking text streamed so far, or a redacted block.
    private mutating func thinkingBlock(
        type: String, key: String, _ value: UpstreamJSON.Value?, _ data: [UInt8], _ out: inout [UInt8]
    ) {
        chunk(&out) { writer in
            writer.key("thinking_blocks")
            writer.beginArray()
            writer.beginObject()
            writer.key("type")
            writer.string(type)
            writer.key(key)
            UpstreamJSON.writeString(value, from: data, or: "", to: &writer)
            writer.endObject()
            writer.endArray()
        }
    }

    /// Writes one chunk frame; `delta` writes the delta's members (the role goes on the first chunk).
    private mutating func chunk(
        _ out: inout [UInt8], finishReason: String? = nil, _ delta: (inout JSONWriter) -> Void
    ) {
        let role = !roleSent
        roleSent = true
        chunks.appendDelta(to: &out, role: role, finishReason: finishReason, reserving: eventBytes, delta)
    }

    /// The finish chunk, the usage chunk when asked for, and `[DONE]`.
    private mutating func complete(_ out: inout [UInt8]) {
        done = true
        let reason = finishReason ?? "stop"
        finishReason = reason
        chunk(&out, finishReason: reason) { _ in }
        if context.includeUsage {
            chunks.appendUsage(usage, reasoningReported: false, to: &out)
        }
        OpenAIChunkWriter.appendDone(to: &out)
    }

    /// Headers are already sent, so an error ends the stream with an OpenAI error frame and `[DONE]`.
    private mutating func fail(_ error: GatewayError, _ out: inout [UInt8]) {
        done = true
        self.error = error
        OpenAIChunkWriter.appendError(error, to: &out)
    }
}

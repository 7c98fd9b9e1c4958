// Anthropic Messages SSE stream -> OpenAI `chat.completion.chunk` SSE frames ("Anthropic Messages",
// stream table, in SluiceCore.docc/ProviderWireShapes.md).
//
// An incremental state machine: bytes in, client bytes out, only the unfinished SSE event buffered. Events
// are matched by their JSON `type`, not the SSE `event:` line, so the same machine serves Bedrock
// InvokeModel streams (JSON events without SSE framing) through `feedEvent(json:)`.
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
    private var id: String
    private var roleSent = false
    private var done = false
    /// Anthropic content block index -> OpenAI tool call index, for open and closed tool blocks.
    private var toolBlocks: [(block: Int64, tool: Int)] = []
    private var nextToolIndex = 0

    /// - Parameters:
    ///   - context: `requestModel`, `created`, `includeUsage` and the fallback id.
    ///   - maxEventBytes: the largest single SSE event accepted.
    public init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
        self.id = context.fallbackResponseID
    }

    /// Feeds upstream bytes and returns the client bytes they complete (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        // Events completed before an oversized one are translated first, as they would be had they
        // arrived in a chunk of their own: the output must not depend on where the stream is cut.
        var events: [SSEEvent] = []
        do {
            try parser.feed(chunk) { events.append($0) }
        } catch {
            for event in events where !done {
                handle(event.data, &out)
            }
            guard !done else { return out }
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "An Anthropic stream event exceeded \(parser.maxEventBytes) bytes."), &out)
            return out
        }
        for event in events where !done {
            handle(event.data, &out)
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
            guard (try? JSONParser.parse(event.data)) != nil else { break }
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

    private mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        guard let event = try? JSONParser.parse(data), let type = event["type"]?.stringValue else {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "The Anthropic stream sent an event that is not a JSON object with a 'type'."), &out)
            return
        }
        switch type {
        case "message_start":
            let message = event["message"]
            if let id = message?["id"]?.stringValue { self.id = id }
            usage = AnthropicTranslator.usage(fromAnthropic: message?["usage"], base: usage).0
            if !roleSent {
                chunk(&out) { writer in
                    writer.key("content")
                    writer.string("")
                }
            }
        case "content_block_start":
            contentBlockStart(event, &out)
        case "content_block_delta":
            contentBlockDelta(event, &out)
        case "message_delta":
            if let reason = event["delta"]?["stop_reason"]?.stringValue {
                finishReason = AnthropicTranslator.finishReason(fromStopReason: reason)
            }
            usage = AnthropicTranslator.usage(fromAnthropic: event["usage"], base: usage).0
        case "message_stop":
            complete(&out)
        case "error":
            fail(AnthropicTranslator.streamError(event), &out)
        default:
            // ping, content_block_stop and event types added later carry nothing for the client.
            break
        }
    }

    private mutating func contentBlockStart(_ event: JSONValue, _ out: inout [UInt8]) {
        let block = event["content_block"]
        switch block?["type"]?.stringValue {
        case "tool_use":
            let tool = nextToolIndex
            nextToolIndex += 1
            toolBlocks.append((block: event["index"]?.int64Value ?? -1, tool: tool))
            let id = block?["id"]?.stringValue ?? ""
            let name = block?["name"]?.stringValue ?? ""
            chunk(&out) { writer in
                writer.key("tool_calls")
                writer.beginArray()
                writer.beginObject()
                writer.key("index")
                writer.int(tool)
                writer.key("id")
                writer.string(id)
                writer.key("type")
                writer.string("function")
                writer.key("function")
                writer.beginObject()
                writer.key("name")
                writer.string(name)
                writer.key("arguments")
                writer.string("")
                writer.endObject()
                writer.endObject()
                writer.endArray()
            }
        case "text":
            if let text = block?["text"]?.stringValue, !text.isEmpty { content("content", text, &out) }
        case "thinking":
            if let text = block?["thinking"]?.stringValue, !text.isEmpty { content("reasoning_content", text, &out) }
        case "redacted_thinking":
            let data = block?["data"]?.stringValue ?? ""
            thinkingBlock([("type", "redacted_thinking"), ("data", .string(data))], &out)
        default:
            break
        }
    }

    private mutating func contentBlockDelta(_ event: JSONValue, _ out: inout [UInt8]) {
        let delta = event["delta"]
        switch delta?["type"]?.stringValue {
        case "text_delta":
            if let text = delta?["text"]?.stringValue, !text.isEmpty { content("content", text, &out) }
        case "thinking_delta":
            if let text = delta?["thinking"]?.stringValue, !text.isEmpty { content("reasoning_content", text, &out) }
        case "signature_delta":
            let signature = delta?["signature"]?.stringValue ?? ""
            thinkingBlock([("type", "thinking"), ("signature", .string(signature))], &out)
        case "input_json_delta":
            let index = event["index"]?.int64Value ?? -1
            guard let tool = toolBlocks.last(where: { $0.block == index })?.tool,
                let partial = delta?["partial_json"]?.stringValue, !partial.isEmpty
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
                writer.string(partial)
                writer.endObject()
                writer.endObject()
                writer.endArray()
            }
        default:
            // citations_delta and later additions have no OpenAI equivalent.
            break
        }
    }

    // MARK: - Output

    private mutating func content(_ key: String, _ text: String, _ out: inout [UInt8]) {
        chunk(&out) { writer in
            writer.key(key)
            writer.string(text)
        }
    }

    /// A `thinking_blocks` delta: a signature for the thinking text streamed so far, or a redacted block.
    private mutating func thinkingBlock(_ members: [(String, JSONValue)], _ out: inout [UInt8]) {
        chunk(&out) { writer in
            writer.key("thinking_blocks")
            writer.value(.array([AnthropicTranslator.object(members)]))
        }
    }

    /// Writes one chunk frame; `delta` writes the delta's members (the role goes on the first chunk).
    private mutating func chunk(
        _ out: inout [UInt8], finishReason: String? = nil, _ delta: (inout JSONWriter) -> Void
    ) {
        var writer = header()
        writer.key("choices")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(0)
        writer.key("delta")
        writer.beginObject()
        if !roleSent {
            roleSent = true
            writer.key("role")
            writer.string("assistant")
        }
        delta(&writer)
        writer.endObject()
        writer.key("finish_reason")
        if let finishReason { writer.string(finishReason) } else { writer.null() }
        writer.endObject()
        writer.endArray()
        writer.endObject()
        SSEWriter.appendData(writer.bytes, to: &out)
    }

    private func header() -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.key("id")
        writer.string(id)
        writer.key("object")
        writer.string("chat.completion.chunk")
        writer.key("created")
        writer.int(context.created)
        writer.key("model")
        writer.string(context.requestModel)
        return writer
    }

    /// The finish chunk, the usage chunk when asked for, and `[DONE]`.
    private mutating func complete(_ out: inout [UInt8]) {
        done = true
        let reason = finishReason ?? "stop"
        finishReason = reason
        chunk(&out, finishReason: reason) { _ in }
        if context.includeUsage {
            var writer = header()
            writer.key("choices")
            writer.beginArray()
            writer.endArray()
            AnthropicTranslator.writeOpenAIUsage(usage, to: &writer)
            writer.endObject()
            SSEWriter.appendData(writer.bytes, to: &out)
        }
        SSEWriter.appendDone(to: &out)
    }

    /// Headers are already sent, so an error ends the stream with an OpenAI error frame and `[DONE]`.
    private mutating func fail(_ error: GatewayError, _ out: inout [UInt8]) {
        done = true
        self.error = error
        SSEWriter.appendData(error.body(for: .openAI), to: &out)
        SSEWriter.appendDone(to: &out)
    }
}

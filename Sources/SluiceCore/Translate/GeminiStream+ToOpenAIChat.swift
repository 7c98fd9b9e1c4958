// Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` SSE.
//
// Each Gemini event is `data: {GenerateContentResponse}`: a slice of each candidate's parts, `finishReason` on the
// last slice, and cumulative `usageMetadata` (set, never added). Gemini sends whole function calls, so each
// becomes one complete tool-call delta. Only a partial SSE event is ever buffered (in `SSEParser`).

/// Incremental translator of a Gemini SSE stream into OpenAI chat chunks.
public struct GeminiStream: Sendable {
    public let context: TranslationContext
    /// Token usage so far (the latest `usageMetadata`).
    public private(set) var usage = TokenUsage()
    /// The first choice's OpenAI finish reason, once seen.
    public private(set) var finishReason: String?
    /// Set when the stream ended in an error event.
    public private(set) var error: GatewayError?

    private var parser: SSEParser
    private var id: String?
    private var toolCounter = 0
    /// Per choice index: whether the role was sent, tool calls seen so far, and whether it finished.
    private var roleSent: Set<Int> = []
    private var toolCallsPerChoice: [Int: Int] = [:]
    private var finished: Set<Int> = []
    private var done = false

    public init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
    }

    /// Feeds upstream bytes; returns the client bytes ready so far (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        var events: [SSEEvent] = []
        do {
            try parser.feed(chunk) { events.append($0) }
        } catch {
            for event in events { handle(event, into: &out) }
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "Gemini stream event exceeded \(parser.maxEventBytes) bytes."), into: &out)
            return out
        }
        for event in events { handle(event, into: &out) }
        return out
    }

    /// Flushes at end of stream: the last event, the usage chunk (when the client asked) and `[DONE]`.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        for event in parser.finish() { handle(event, into: &out) }
        guard !done else { return out }
        done = true
        if context.includeUsage {
            var writer = chunkHeader()
            writer.key("choices")
            writer.beginArray()
            writer.endArray()
            writer.key("usage")
            Gemini.writeUsage(usage, to: &writer)
            writer.endObject()
            SSEWriter.appendData(writer.bytes, to: &out)
        }
        SSEWriter.appendDone(to: &out)
        return out
    }

    // MARK: - Events

    private mutating func handle(_ event: SSEEvent, into out: inout [UInt8]) {
        guard !done, !event.data.isEmpty else { return }
        if event.data.elementsEqual("[DONE]".utf8) { return }
        guard let root = try? JSONParser.parse(event.data), let response = root.objectValue else {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "Gemini stream carried an event that is not a JSON object: "
                        + Gemini.snippet(event.data, limit: 128)), into: &out)
            return
        }
        if response["error"] != nil {
            fail(Gemini.gatewayError(status: 0, body: event.data), into: &out)
            return
        }
        if id == nil, let responseID = response["responseId"]?.stringValue { id = "chatcmpl-" + responseID }
        if let latest = Gemini.usage(fromMetadata: response["usageMetadata"]) { usage = latest }

        let candidates = response["candidates"]?.arrayValue ?? []
        if candidates.isEmpty, response["promptFeedback"]?["blockReason"] != nil, !finished.contains(0) {
            writeDelta(index: 0, parts: Gemini.CandidateParts(), into: &out)
            writeFinish(index: 0, reason: "content_filter", into: &out)
            return
        }
        for (position, candidate) in candidates.enumerated() {
            let index = candidate["index"]?.int64Value.map { Int(clamping: $0) } ?? position
            guard !finished.contains(index) else { continue }
            var parts = Gemini.CandidateParts()
            parts.collect(candidate["content"]?["parts"], toolCounter: &toolCounter)
            if !parts.text.isEmpty || !parts.reasoning.isEmpty || !parts.toolCalls.isEmpty
                || !roleSent.contains(index)
            {
                writeDelta(index: index, parts: parts, into: &out)
            }
            if let reason = candidate["finishReason"]?.stringValue {
                let sawTools = toolCallsPerChoice[index, default: 0] > 0
                writeFinish(index: index, reason: Gemini.openAIFinishReason(reason, sawToolCall: sawTools), into: &out)
            }
        }
    }

    private mutating func writeDelta(index: Int, parts: Gemini.CandidateParts, into out: inout [UInt8]) {
        var writer = chunkHeader()
        writer.key("choices")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(index)
        writer.key("delta")
        writer.beginObject()
        if roleSent.insert(index).inserted {
            writer.key("role")
            writer.string("assistant")
            if parts.text.isEmpty {
                // OpenAI's first chunk carries an empty content string; some clients key off it.
                writer.key("content")
                writer.string("")
            }
        }
        if !parts.text.isEmpty {
            writer.key("content")
            writer.string(parts.text)
        }
        if !parts.reasoning.isEmpty {
            writer.key("reasoning_content")
            writer.string(parts.reasoning)
        }
        if !parts.toolCalls.isEmpty {
            writer.key("tool_calls")
            writer.beginArray()
            var next = toolCallsPerChoice[index, default: 0]
            for call in parts.toolCalls {
                Gemini.writeToolCall(call, streamIndex: next, to: &writer)
                next &+= 1
            }
            toolCallsPerChoice[index] = next
            writer.endArray()
        }
        writer.endObject()
        writer.key("finish_reason")
        writer.null()
        writer.endObject()
        writer.endArray()
        writer.endObject()
        SSEWriter.appendData(writer.bytes, to: &out)
    }

    private mutating func writeFinish(index: Int, reason: String, into out: inout [UInt8]) {
        finished.insert(index)
        // The first choice's reason wins; another choice's only stands in until it arrives.
        if index == 0 || finishReason == nil { finishReason = reason }
        var writer = chunkHeader()
        writer.key("choices")
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(index)
        writer.key("delta")
        writer.beginObject()
        writer.endObject()
        writer.key("finish_reason")
        writer.string(reason)
        writer.endObject()
        writer.endArray()
        writer.endObject()
        SSEWriter.appendData(writer.bytes, to: &out)
    }

    /// Opens a chunk object and writes the members every chunk shares.
    private func chunkHeader() -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.key("id")
        writer.string(id ?? context.fallbackResponseID)
        writer.key("object")
        writer.string("chat.completion.chunk")
        writer.key("created")
        writer.int(context.created)
        writer.key("model")
        writer.string(context.requestModel)
        return writer
    }

    /// Ends the stream with an OpenAI-shaped error event and `[DONE]`; later input is ignored.
    private mutating func fail(_ error: GatewayError, into out: inout [UInt8]) {
        guard !done else { return }
        done = true
        self.error = error
        SSEWriter.appendData(error.body(for: .openAI), to: &out)
        SSEWriter.appendDone(to: &out)
    }
}

// Gemini `streamGenerateContent?alt=sse` -> OpenAI `chat.completion.chunk` SSE.
//
// Each Gemini event is `data: {GenerateContentResponse}`: a slice of each candidate's parts, `finishReason` on the
// last slice, and cumulative `usageMetadata` (set, never added). Gemini sends whole function calls, so each
// becomes one complete tool-call delta. Only a partial SSE event is ever buffered (in `SSEParser`); each event is
// translated as it completes, read by range with the response translator's functions (no tree).

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
    private var chunks: OpenAIChunkWriter
    /// Whether a `responseId` has given the chunks their id.
    private var sawResponseID = false
    private var toolCounter = 0
    /// Per choice index: whether the role was sent, tool calls seen so far, and whether it finished.
    private var roleSent: Set<Int> = []
    private var toolCallsPerChoice: [Int: Int] = [:]
    private var finished: Set<Int> = []
    private var done = false

    public init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
        self.chunks = OpenAIChunkWriter(
            id: context.fallbackResponseID, created: context.created, model: context.requestModel)
    }

    /// Feeds upstream bytes; returns the client bytes ready so far (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        // The parser is moved out while it calls back into `handle`, which mutates `self`.
        var parser = SSEParser(maxEventBytes: self.parser.maxEventBytes)
        swap(&parser, &self.parser)
        defer { swap(&parser, &self.parser) }
        do {
            // Events completed before an oversized one are translated first.
            try parser.feed(chunk) { event in handle(event.data, into: &out) }
        } catch {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "Gemini stream event exceeded \(parser.maxEventBytes) bytes."), into: &out)
        }
        return out
    }

    /// Flushes at end of stream: the last event, the usage chunk (when the client asked) and `[DONE]`.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        for event in parser.finish() { handle(event.data, into: &out) }
        guard !done else { return out }
        done = true
        if context.includeUsage {
            chunks.appendUsage(usage, reasoningReported: true, to: &out)
        }
        OpenAIChunkWriter.appendDone(to: &out)
        return out
    }

    // MARK: - Events

    private mutating func handle(_ data: [UInt8], into out: inout [UInt8]) {
        guard !done, !data.isEmpty else { return }
        if data.elementsEqual("[DONE]".utf8) { return }
        let bytes = data.span
        guard
            let response = try? Gemini.scanResponse(data, upstreamMessage: { _ in "" })
        else {
            fail(
                GatewayError(
                    status: 502, type: "api_error", code: "bad_upstream_response",
                    message: "Gemini stream carried an event that is not a JSON object: "
                        + Gemini.snippet(data, limit: 128)), into: &out)
            return
        }
        if response.hasError {
            fail(Gemini.gatewayError(status: 0, body: data), into: &out)
            return
        }
        if !sawResponseID, let responseID = response.responseID, UpstreamJSON.isString(responseID, in: bytes) {
            chunks.setID(responseID, from: data, idPrefix: "chatcmpl-")
            sawResponseID = true
        }
        if let latest = Gemini.usage(fromMetadataAt: response.usageMetadata, in: bytes) { usage = latest }

        var position = 0
        UpstreamJSON.forEachElement(of: response.candidates, in: bytes) { element in
            defer { position += 1 }
            let candidate = Gemini.scanCandidate(element, in: bytes)
            let index = UpstreamJSON.int64(candidate.index, in: bytes).map { Int(clamping: $0) } ?? position
            guard !finished.contains(index) else { return }
            let summary = Gemini.summarize(candidate.parts, in: bytes)
            if !summary.isEmpty || !roleSent.contains(index) {
                writeDelta(index: index, parts: candidate.parts, summary, data, into: &out)
            }
            if let reason = UpstreamJSON.string(candidate.finishReason, in: bytes) {
                let sawTools = toolCallsPerChoice[index, default: 0] > 0
                writeFinish(index: index, reason: Gemini.openAIFinishReason(reason, sawToolCall: sawTools), into: &out)
            }
        }
        if position == 0, response.blocked, !finished.contains(0) {
            writeDelta(index: 0, parts: nil, Gemini.PartsSummary(), data, into: &out)
            writeFinish(index: 0, reason: "content_filter", into: &out)
        }
    }

    private mutating func writeDelta(
        index: Int, parts: UpstreamJSON.Value?, _ summary: Gemini.PartsSummary, _ data: [UInt8],
        into out: inout [UInt8]
    ) {
        let role = roleSent.insert(index).inserted
        let firstToolIndex = toolCallsPerChoice[index, default: 0]
        var toolCounter = self.toolCounter
        var written = 0
        chunks.appendDelta(to: &out, index: index, role: role, reserving: data.count) { writer in
            if role && !summary.hasText {
                // OpenAI's first chunk carries an empty content string; some clients key off it.
                writer.key("content")
                writer.string("")
            }
            if summary.hasText {
                writer.key("content")
                Gemini.writeJoined(.text, summary, of: parts, from: data, to: &writer)
            }
            if summary.hasReasoning {
                writer.key("reasoning_content")
                Gemini.writeJoined(.reasoning, summary, of: parts, from: data, to: &writer)
            }
            if summary.toolCalls > 0 {
                writer.key("tool_calls")
                writer.beginArray()
                written = Gemini.writeToolCalls(
                    of: parts, from: data, toolCounter: &toolCounter, streamIndex: firstToolIndex, to: &writer)
                writer.endArray()
            }
        }
        self.toolCounter = toolCounter
        if written > 0 { toolCallsPerChoice[index] = firstToolIndex &+ written }
    }

    private mutating func writeFinish(index: Int, reason: String, into out: inout [UInt8]) {
        finished.insert(index)
        // The first choice's reason wins; another choice's only stands in until it arrives.
        if index == 0 || finishReason == nil { finishReason = reason }
        chunks.appendDelta(to: &out, index: index, role: false, finishReason: reason) { _ in }
    }

    /// Ends the stream with an OpenAI-shaped error event and `[DONE]`; later input is ignored.
    private mutating func fail(_ error: GatewayError, into out: inout [UInt8]) {
        guard !done else { return }
        done = true
        self.error = error
        OpenAIChunkWriter.appendError(error, to: &out)
    }
}

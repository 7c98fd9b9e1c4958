// OpenAI `chat.completion.chunk` SSE stream (the hub's, from any backend) -> OpenAI Responses typed
// stream events, for clients of `POST /v1/responses` with `stream: true`.
//
// Event order follows OpenAI's: `response.created` and `response.in_progress`, then for each output item
// `response.output_item.added`, its parts and deltas, and `response.output_item.done`; last
// `response.completed` (or `response.incomplete`) carrying the whole response with usage. Items never
// interleave: a delta of another kind closes the open item and opens the next one. The hub sends its finish
// reason before the usage chunk, so the final event waits for `[DONE]` (or the end of the stream). Every
// event carries `type` and a `sequence_number` counted from 0. Headers are already sent when the stream
// fails, so an error becomes `response.failed` with the response's `error` filled in.

/// Translates an OpenAI chat completion chunk stream into OpenAI Responses stream events.
public struct OpenAIToResponsesStream: Sendable, HubStreamClientStage {
    /// Token usage from the hub's usage chunk (zero when the hub sent none).
    public private(set) var usage = TokenUsage()
    /// The hub's OpenAI finish reason, once seen.
    public private(set) var finishReason: String?
    /// The error that ended the stream, if one did.
    public private(set) var error: GatewayError?

    private typealias Item = ResponsesTranslator.OutputItem

    private let context: TranslationContext
    private let echo: ResponsesEcho
    var parser: SSEParser
    private var started = false
    private var done = false
    private var responseID = ""
    private var itemBase = ""
    private var created: Int64
    private var sequence = 0
    /// Every item so far; the last one is open while `itemOpen` says so, its text (or arguments) then in
    /// `openText` rather than in the item, so that appending a delta does not copy the text so far.
    private var items: [Item] = []
    private var itemOpen = false
    private var openText = ""
    /// The hub index of the tool call the open function-call item belongs to.
    private var openToolIndex: Int64?

    /// - Parameters:
    ///   - echo: the request fields every response object reports back.
    ///   - context: `requestModel` (reported as the model), `created` and the fallback id.
    ///   - maxEventBytes: the largest single SSE event accepted.
    public init(echo: ResponsesEcho, context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.echo = echo
        self.context = context
        self.created = context.created
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
    }

    /// Feeds hub bytes and returns the Responses events they complete (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] { feedHub(chunk) }

    /// Ends the stream: a stream that stopped without `[DONE]` or a finish reason ends as failed.
    public mutating func finish() -> [UInt8] { finishHub() }

    // MARK: - Chunks

    /// One hub chunk, read by ranges (`UpstreamJSON`): no tree per chunk.
    mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        if data.elementsEqual("[DONE]".utf8) {
            complete(&out)
            return
        }
        let bytes = data.span
        var id: UpstreamJSON.Value?
        var createdValue: UpstreamJSON.Value?
        var errorValue: UpstreamJSON.Value?
        var usageValue: UpstreamJSON.Value?
        var choices: UpstreamJSON.Value?
        let kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
            if member.key("id", in: bytes) {
                id = member.value
            } else if member.key("created", in: bytes) {
                createdValue = member.value
            } else if member.key("error", in: bytes) {
                errorValue = member.value
            } else if member.key("usage", in: bytes) {
                usageValue = member.value
            } else if member.key("choices", in: bytes) {
                choices = member.value
            }
        }
        guard kind == .object else {
            fail(code: "server_error", message: "The upstream stream sent a chunk that is not a JSON object.", &out)
            return
        }
        if UpstreamJSON.isPresent(errorValue, in: bytes) {
            let rateLimited =
                UpstreamJSON.string(UpstreamJSON.member("type", of: errorValue, in: bytes), equals: "rate_limit_error", in: bytes)
                || UpstreamJSON.string(
                    UpstreamJSON.member("code", of: errorValue, in: bytes), equals: "rate_limit_exceeded", in: bytes)
            let message = UpstreamJSON.string(UpstreamJSON.member("message", of: errorValue, in: bytes), in: bytes)
            fail(
                code: rateLimited ? "rate_limit_exceeded" : "server_error",
                message: message ?? "The upstream stream reported an error.", &out)
            return
        }
        if !started {
            start(id: UpstreamJSON.string(id, in: bytes), created: UpstreamJSON.int64(createdValue, in: bytes), &out)
        }
        if UpstreamJSON.kind(of: usageValue, in: bytes) == .object { usage = Self.usage(usageValue, in: bytes) }
        var choice: UpstreamJSON.Value?
        UpstreamJSON.forEachElement(of: choices, in: bytes) { element in
            if choice == nil { choice = element }
        }
        guard choice != nil else { return }
        let delta = UpstreamJSON.member("delta", of: choice, in: bytes)
        if let reasoning = UpstreamJSON.string(UpstreamJSON.member("reasoning_content", of: delta, in: bytes), in: bytes),
            !reasoning.isEmpty
        {
            reasoningDelta(reasoning, &out)
        }
        for key in ["content", "refusal"] {
            if let text = UpstreamJSON.string(UpstreamJSON.member(key, of: delta, in: bytes), in: bytes), !text.isEmpty {
                textDelta(text, &out)
            }
        }
        let toolCalls = UpstreamJSON.member("tool_calls", of: delta, in: bytes)
        if UpstreamJSON.kind(of: toolCalls, in: bytes) == .array {
            var calls: [ToolCallDelta] = []
            UpstreamJSON.forEachElement(of: toolCalls, in: bytes) { call in
                let function = UpstreamJSON.member("function", of: call, in: bytes)
                calls.append(
                    ToolCallDelta(
                        index: UpstreamJSON.int64(UpstreamJSON.member("index", of: call, in: bytes), in: bytes),
                        id: UpstreamJSON.string(UpstreamJSON.member("id", of: call, in: bytes), in: bytes),
                        name: UpstreamJSON.string(UpstreamJSON.member("name", of: function, in: bytes), in: bytes),
                        arguments: UpstreamJSON.string(
                            UpstreamJSON.member("arguments", of: function, in: bytes), in: bytes)))
            }
            for call in calls { toolCall(call, &out) }
        }
        if let reason = UpstreamJSON.string(UpstreamJSON.member("finish_reason", of: choice, in: bytes), in: bytes) {
            finishReason = reason
        }
    }

    /// One entry of a chunk's `delta.tool_calls`.
    private struct ToolCallDelta {
        var index: Int64?
        var id: String?
        var name: String?
        var arguments: String?
    }

    /// The hub's `usage` object, every count range-checked (`TokenCountReader`).
    private static func usage(_ value: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> TokenUsage {
        var reader = TokenCountReader()
        var result = TokenUsage()
        result.inputTokens = reader.count(UpstreamJSON.member("prompt_tokens", of: value, in: bytes), in: bytes)
        result.outputTokens = reader.count(UpstreamJSON.member("completion_tokens", of: value, in: bytes), in: bytes)
        let prompt = UpstreamJSON.member("prompt_tokens_details", of: value, in: bytes)
        result.cachedInputTokens = reader.count(UpstreamJSON.member("cached_tokens", of: prompt, in: bytes), in: bytes)
        // Our own extension first, EAIG's older name second (as `AnthropicTranslator.usage(fromOpenAI:)`).
        result.cacheWriteInputTokens = reader.count(
            UpstreamJSON.member("cache_write_tokens", of: prompt, in: bytes)
                ?? UpstreamJSON.member("cache_creation_tokens", of: value, in: bytes), in: bytes)
        let completion = UpstreamJSON.member("completion_tokens_details", of: value, in: bytes)
        result.reasoningTokens = reader.count(UpstreamJSON.member("reasoning_tokens", of: completion, in: bytes), in: bytes)
        result.isClamped = reader.clamped
        return result
    }

    private mutating func reasoningDelta(_ text: String, _ out: inout [UInt8]) {
        if case .reasoning? = items.last, itemOpen {
            openText += text
        } else {
            openItem(.reasoning(id: "rs_\(itemBase)_\(items.count)", text: ""), &out)
            openText = text
            itemEvent("response.reasoning_summary_part.added", &out) { writer in
                writer.key("summary_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeSummaryPart("", to: &writer)
            }
        }
        itemEvent("response.reasoning_summary_text.delta", &out) { writer in
            writer.key("summary_index")
            writer.int(0)
            writer.key("delta")
            writer.string(text)
        }
    }

    private mutating func textDelta(_ text: String, _ out: inout [UInt8]) {
        if case .message? = items.last, itemOpen {
            openText += text
        } else {
            openItem(.message(id: "msg_\(itemBase)_\(items.count)", text: ""), &out)
            openText = text
            itemEvent("response.content_part.added", &out) { writer in
                writer.key("content_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeTextPart("", to: &writer)
            }
        }
        itemEvent("response.output_text.delta", &out) { writer in
            writer.key("content_index")
            writer.int(0)
            writer.key("delta")
            writer.string(text)
            writer.key("logprobs")
            writer.beginArray()
            writer.endArray()
        }
    }

    private mutating func toolCall(_ call: ToolCallDelta, _ out: inout [UInt8]) {
        // Indices come from the upstream: anything but a small integer is treated as index 0.
        let index = call.index.flatMap { (0...1_000_000).contains($0) ? $0 : nil } ?? 0
        let callID = call.id
        let continues: Bool
        if case .functionCall? = items.last, itemOpen, openToolIndex == index, callID == nil {
            continues = true
        } else {
            continues = false
        }
        if !continues {
            openItem(
                .functionCall(
                    id: "fc_\(itemBase)_\(items.count)", callID: callID ?? "call_\(itemBase)_\(items.count)",
                    name: call.name ?? "", arguments: ""), &out)
            openToolIndex = index
        }
        guard let arguments = call.arguments, !arguments.isEmpty else { return }
        openText += arguments
        itemEvent("response.function_call_arguments.delta", &out) { writer in
            writer.key("delta")
            writer.string(arguments)
        }
    }

    // MARK: - Items and events

    /// Closes the open item and opens `item`, empty (its text or arguments grow in `openText`):
    /// `response.output_item.added` with the item as it starts.
    private mutating func openItem(_ item: Item, _ out: inout [UInt8]) {
        close(&out)
        items.append(item)
        itemOpen = true
        openText = ""
        let index = items.count - 1
        event("response.output_item.added", &out) { writer in
            writer.key("output_index")
            writer.int(index)
            writer.key("item")
            ResponsesTranslator.writeItem(item, status: "in_progress", to: &writer)
        }
    }

    /// Closes the open item: its closing events, then `response.output_item.done` with the whole item.
    private mutating func close(_ out: inout [UInt8]) {
        guard itemOpen else { return }
        settleOpenItem()
        guard let item = items.last else { return }
        switch item {
        case .reasoning(_, let text):
            itemEvent("response.reasoning_summary_text.done", &out) { writer in
                writer.key("summary_index")
                writer.int(0)
                writer.key("text")
                writer.string(text)
            }
            itemEvent("response.reasoning_summary_part.done", &out) { writer in
                writer.key("summary_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeSummaryPart(text, to: &writer)
            }
        case .message(_, let text):
            itemEvent("response.output_text.done", &out) { writer in
                writer.key("content_index")
                writer.int(0)
                writer.key("text")
                writer.string(text)
                writer.key("logprobs")
                writer.beginArray()
                writer.endArray()
            }
            itemEvent("response.content_part.done", &out) { writer in
                writer.key("content_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeTextPart(text, to: &writer)
            }
        case .functionCall(_, _, _, let arguments):
            itemEvent("response.function_call_arguments.done", &out) { writer in
                writer.key("arguments")
                writer.string(arguments)
            }
        }
        let index = items.count - 1
        event("response.output_item.done", &out) { writer in
            writer.key("output_index")
            writer.int(index)
            writer.key("item")
            ResponsesTranslator.writeItem(item, status: "completed", to: &writer)
        }
    }

    /// Moves the open item's text into it; the item is closed from here on.
    private mutating func settleOpenItem() {
        guard itemOpen, let last = items.last else { return }
        itemOpen = false
        openToolIndex = nil
        switch last {
        case .reasoning(let id, _): items[items.count - 1] = .reasoning(id: id, text: openText)
        case .message(let id, _): items[items.count - 1] = .message(id: id, text: openText)
        case .functionCall(let id, let callID, let name, _):
            items[items.count - 1] = .functionCall(id: id, callID: callID, name: name, arguments: openText)
        }
        openText = ""
    }

    /// An event about the open (last) item: `item_id` and `output_index` first.
    private mutating func itemEvent(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        let itemID: String
        switch items.last {
        case .reasoning(let id, _)?, .message(let id, _)?, .functionCall(let id, _, _, _)?: itemID = id
        case nil: itemID = ""
        }
        let index = items.count - 1
        event(type, &out) { writer in
            writer.key("item_id")
            writer.string(itemID)
            writer.key("output_index")
            writer.int(index)
            members(&writer)
        }
    }

    /// Writes `event: <type>` with `{"type": <type>, "sequence_number": n, ...}`.
    private mutating func event(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        var writer = JSONWriter(reservingCapacity: 160)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        writer.key("sequence_number")
        writer.int(sequence)
        members(&writer)
        writer.endObject()
        sequence += 1
        SSEWriter.appendEvent(type, data: writer.bytes, to: &out)
    }

    /// An event carrying the whole response (`response.created`, `.in_progress`, `.completed`, ...).
    private mutating func responseEvent(
        _ type: String, status: ResponsesTranslator.Status, usage: TokenUsage?, _ out: inout [UInt8]
    ) {
        let head = ResponsesTranslator.ResponseHead(
            id: responseID, createdAt: created, model: context.requestModel, status: status)
        let items = status == .inProgress ? [] : self.items
        let echo = echo
        event(type, &out) { writer in
            writer.key("response")
            ResponsesTranslator.writeResponse(head, echo: echo, items: items, usage: usage, to: &writer)
        }
    }

    private mutating func start(id: String?, created upstreamCreated: Int64?, _ out: inout [UInt8]) {
        guard !started else { return }
        started = true
        itemBase = ResponsesTranslator.itemBase(id ?? context.fallbackResponseID)
        responseID = "resp_\(itemBase)"
        if let upstreamCreated, (0...ResponsesTranslator.maxCreated).contains(upstreamCreated) {
            created = upstreamCreated
        }
        responseEvent("response.created", status: .inProgress, usage: nil, &out)
        responseEvent("response.in_progress", status: .inProgress, usage: nil, &out)
    }

    mutating func complete(_ out: inout [UInt8]) {
        start(id: nil, created: nil, &out)
        close(&out)
        done = true
        let status = ResponsesTranslator.Status(finishReason: finishReason)
        let type = status == .completed ? "response.completed" : "response.incomplete"
        responseEvent(type, status: status, usage: usage, &out)
    }

    static let unfinishedMessage = "The upstream stream ended before the response was complete."

    var isDone: Bool { done }

    mutating func failStream(_ message: String, _ out: inout [UInt8]) { fail(code: "server_error", message: message, &out) }

    private mutating func fail(code: String, message: String, _ out: inout [UInt8]) {
        start(id: nil, created: nil, &out)
        done = true
        // The open item ends incomplete inside the failed response; no item events follow a failure.
        settleOpenItem()
        error = GatewayError(
            status: code == "rate_limit_exceeded" ? 429 : 502, type: code == "rate_limit_exceeded"
                ? "rate_limit_error" : "api_error", code: code, message: message)
        responseEvent("response.failed", status: .failed(code: code, message: message), usage: usage, &out)
    }
}

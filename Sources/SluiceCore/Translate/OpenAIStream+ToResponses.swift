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
    /// Its UTF-8, decoded.
    private var openText: [UInt8] = []
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
        // One allocation for a delta's event (about 200 bytes beside the delta), instead of growing from empty.
        if out.isEmpty { out.reserveCapacity(data.count + 320) }
        if data.elementsEqual("[DONE]".utf8) {
            complete(&out)
            return
        }
        let bytes = data.span
        let chunk = ResponsesTranslator.HubChunkMembers(bytes)
        let (id, createdValue, errorValue, usageValue, choices) = (chunk.id, chunk.created, chunk.error, chunk.usage, chunk.choices)
        guard chunk.kind == .object else {
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
        if UpstreamJSON.kind(of: usageValue, in: bytes) == .object {
            usage = OpenAICompatible.usage(ofUsageObject: usageValue, in: bytes)
        }
        guard let choice = UpstreamJSON.firstElement(of: choices, in: bytes) else { return }
        let delta = ResponsesTranslator.MessageMembers(
            of: UpstreamJSON.member("delta", of: choice, in: bytes), in: bytes)
        let (reasoning, content, refusal, toolCalls) = (delta.reasoning, delta.content, delta.refusal, delta.toolCalls)
        // Text goes from the chunk into the events by range, and into the open item's text decoded: no
        // `String` per delta.
        if let reasoning, UpstreamJSON.isNonEmptyString(reasoning, in: bytes) { reasoningDelta(reasoning, data, &out) }
        if let content, UpstreamJSON.isNonEmptyString(content, in: bytes) { textDelta(content, data, &out) }
        if let refusal, UpstreamJSON.isNonEmptyString(refusal, in: bytes) { textDelta(refusal, data, &out) }
        if UpstreamJSON.kind(of: toolCalls, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: toolCalls, in: bytes) { call in toolCall(call, data, &out) }
        }
        if let reason = UpstreamJSON.string(UpstreamJSON.member("finish_reason", of: choice, in: bytes), in: bytes) {
            finishReason = reason
        }
    }

    /// Appends the decoded text of the string `value` of `data` to the open item's text.
    private mutating func appendOpenText(_ value: UpstreamJSON.Value, _ data: [UInt8]) {
        let bytes = data.span
        guard let content = UpstreamJSON.stringContent(value, in: bytes) else { return }
        JSONNavigation.appendDecoded(content, of: data, to: &openText)
    }

    private mutating func reasoningDelta(_ text: UpstreamJSON.Value, _ data: [UInt8], _ out: inout [UInt8]) {
        if !openItemIs(.reasoning) {
            openItem(.reasoning(id: "rs_\(itemBase)_\(items.count)", text: ""), &out)
            itemEvent("response.reasoning_summary_part.added", &out) { writer in
                writer.key("summary_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeSummaryPart("", to: &writer)
            }
        }
        appendOpenText(text, data)
        itemEvent("response.reasoning_summary_text.delta", &out) { writer in
            writer.key("summary_index")
            writer.int(0)
            writer.key("delta")
            UpstreamJSON.writeString(text, from: data, or: "", to: &writer)
        }
    }

    private mutating func textDelta(_ text: UpstreamJSON.Value, _ data: [UInt8], _ out: inout [UInt8]) {
        if !openItemIs(.message) {
            openItem(.message(id: "msg_\(itemBase)_\(items.count)", text: ""), &out)
            itemEvent("response.content_part.added", &out) { writer in
                writer.key("content_index")
                writer.int(0)
                writer.key("part")
                ResponsesTranslator.writeTextPart("", to: &writer)
            }
        }
        appendOpenText(text, data)
        itemEvent("response.output_text.delta", &out) { writer in
            writer.key("content_index")
            writer.int(0)
            writer.key("delta")
            UpstreamJSON.writeString(text, from: data, or: "", to: &writer)
            writer.key("logprobs")
            writer.beginArray()
            writer.endArray()
        }
    }

    /// One entry of a chunk's `delta.tool_calls`.
    private mutating func toolCall(_ call: UpstreamJSON.Value, _ data: [UInt8], _ out: inout [UInt8]) {
        let bytes = data.span
        let call = ResponsesTranslator.ToolCallMembers(call, in: bytes)
        // Indices come from the upstream: anything but a small integer is treated as index 0.
        let index = UpstreamJSON.int64(call.index, in: bytes).flatMap { (0...1_000_000).contains($0) ? $0 : nil } ?? 0
        let hasID = UpstreamJSON.isString(call.id, in: bytes)
        if !(openItemIs(.functionCall) && openToolIndex == index && !hasID) {
            openItem(
                .functionCall(
                    id: "fc_\(itemBase)_\(items.count)",
                    callID: UpstreamJSON.string(call.id, in: bytes) ?? "call_\(itemBase)_\(items.count)",
                    name: UpstreamJSON.string(call.name, in: bytes) ?? "", arguments: ""), &out)
            openToolIndex = index
        }
        guard let arguments = call.arguments, UpstreamJSON.isNonEmptyString(arguments, in: bytes) else { return }
        appendOpenText(arguments, data)
        itemEvent("response.function_call_arguments.delta", &out) { writer in
            writer.key("delta")
            UpstreamJSON.writeString(arguments, from: data, or: "", to: &writer)
        }
    }

    // MARK: - Items and events

    /// Whether an item is open and is of `kind`.
    private func openItemIs(_ kind: ResponsesTranslator.ItemKind) -> Bool {
        guard itemOpen, let last = items.last else { return false }
        switch (last, kind) {
        case (.reasoning, .reasoning), (.message, .message), (.functionCall, .functionCall): return true
        default: return false
        }
    }

    /// Closes the open item and opens `item`, empty (its text or arguments grow in `openText`):
    /// `response.output_item.added` with the item as it starts.
    private mutating func openItem(_ item: Item, _ out: inout [UInt8]) {
        close(&out)
        items.append(item)
        itemOpen = true
        openText.removeAll(keepingCapacity: true)
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
        // Decoded from lexed JSON strings, the bytes are valid UTF-8: nothing is repaired.
        let text = String(decoding: openText, as: UTF8.self)
        switch last {
        case .reasoning(let id, _): items[items.count - 1] = .reasoning(id: id, text: text)
        case .message(let id, _): items[items.count - 1] = .message(id: id, text: text)
        case .functionCall(let id, let callID, let name, _):
            items[items.count - 1] = .functionCall(id: id, callID: callID, name: name, arguments: text)
        }
        openText.removeAll(keepingCapacity: true)
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

    /// Writes `event: <type>` with `{"type": <type>, "sequence_number": n, ...}`, straight into `out` (JSON
    /// from `JSONWriter` has no line break to split a `data:` line).
    private mutating func event(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        out.append(contentsOf: "event: ".utf8)
        out.append(contentsOf: type.utf8)
        out.append(contentsOf: "\ndata: ".utf8)
        var writer = JSONWriter()
        swap(&writer.bytes, &out)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        writer.key("sequence_number")
        writer.int(sequence)
        members(&writer)
        writer.endObject()
        swap(&writer.bytes, &out)
        out.append(contentsOf: "\n\n".utf8)
        sequence += 1
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

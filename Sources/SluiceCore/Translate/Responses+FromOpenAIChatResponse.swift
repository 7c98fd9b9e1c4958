// OpenAI `chat.completion` (the hub's response, from any backend) -> OpenAI Responses `response` object, for
// clients of `POST /v1/responses` whose backend does not speak Responses.
//
// The answer is what the official SDK's `Response` model reads (`response.output_text` joins the
// `output_text` parts of the message items): `id` is `resp_` + the hub id, items are, in order, a
// `reasoning` item (the hub's `reasoning_content`, as one summary), one assistant `message` item (text and
// refusal as `output_text`) and one `function_call` item per tool call. A `length` finish makes the answer
// `incomplete` with reason `max_output_tokens`, `content_filter` with reason `content_filter`. The stream
// translator (`OpenAIToResponsesStream`) writes the same object through the same writers.

extension ResponsesTranslator {
    /// One output item of a Responses answer.
    enum OutputItem: Sendable, Equatable {
        case reasoning(id: String, text: String)
        case message(id: String, text: String)
        case functionCall(id: String, callID: String, name: String, arguments: String)
    }

    /// Latest `created` accepted from an upstream (9999-12-31): beyond it, the gateway's own clock.
    static let maxCreated: Int64 = 253_402_300_799

    /// Translates a hub chat completion into a Responses `response` body.
    /// - Parameters:
    ///   - body: the hub's 2xx response body (OpenAI shape).
    ///   - echo: the request fields to report back (from `openAIRequest(fromResponses:)`).
    ///   - context: `requestModel` is reported as the response's model; `created` and `fallbackResponseID`
    ///     stand in for what the hub body lacks.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not a chat completion.
    public static func responsesResponse(
        fromOpenAIChat body: [UInt8], echo: ResponsesEcho, context: TranslationContext
    ) throws(TranslateError) -> [UInt8] {
        guard let root = try? JSONParser.parse(body), root.objectValue != nil else {
            throw .badUpstreamResponse("The upstream response is not a JSON object.")
        }
        guard let choice = root["choices"]?.arrayValue?.first, let message = choice["message"],
            message.objectValue != nil
        else {
            throw .badUpstreamResponse("The upstream response has no 'choices[0].message'.")
        }
        let base = itemBase(root["id"]?.stringValue ?? context.fallbackResponseID)
        var items: [OutputItem] = []
        if let reasoning = message["reasoning_content"]?.stringValue, !reasoning.isEmpty {
            items.append(.reasoning(id: "rs_\(base)", text: reasoning))
        }
        var text = AnthropicTranslator.plainText(message["content"]) ?? ""
        if let refusal = message["refusal"]?.stringValue { text += refusal }
        let calls = message["tool_calls"]?.arrayValue ?? []
        // A turn with neither text nor calls still answers with an (empty) message, as OpenAI does.
        if !text.isEmpty || calls.isEmpty { items.append(.message(id: "msg_\(base)", text: text)) }
        for (index, call) in calls.enumerated() {
            let callID = call["id"]?.stringValue ?? "call_\(base)_\(index)"
            items.append(
                .functionCall(
                    id: "fc_\(base)_\(index)", callID: callID, name: call["function"]?["name"]?.stringValue ?? "",
                    arguments: call["function"]?["arguments"]?.stringValue ?? ""))
        }
        let created = root["created"]?.int64Value.flatMap { (0...maxCreated).contains($0) ? $0 : nil } ?? context.created
        var writer = JSONWriter(reservingCapacity: body.count + echo.members.count + 512)
        writeResponse(
            ResponseHead(
                id: "resp_\(base)", createdAt: created, model: context.requestModel,
                status: Status(finishReason: choice["finish_reason"]?.stringValue)),
            echo: echo, items: items, usage: AnthropicTranslator.usage(fromOpenAI: root["usage"]), to: &writer)
        return writer.bytes
    }

    // MARK: - The response object

    /// How a response ended, and the reason OpenAI gives for an incomplete one.
    enum Status: Sendable, Equatable {
        case inProgress
        case completed
        case incomplete(reason: String)
        case failed(code: String, message: String)

        /// The status of an answer that ended with the hub's `finish_reason`.
        init(finishReason: String?) {
            switch finishReason {
            case "length": self = .incomplete(reason: "max_output_tokens")
            case "content_filter": self = .incomplete(reason: "content_filter")
            default: self = .completed
            }
        }

        var name: String {
            switch self {
            case .inProgress: "in_progress"
            case .completed: "completed"
            case .incomplete: "incomplete"
            case .failed: "failed"
            }
        }

        /// The status of an item that ended when the response did.
        var itemStatus: String {
            switch self {
            case .inProgress: "in_progress"
            case .completed: "completed"
            case .incomplete, .failed: "incomplete"
            }
        }
    }

    /// The fields of a response object that are not items, usage or echo.
    struct ResponseHead: Sendable {
        var id: String
        var createdAt: Int64
        var model: String
        var status: Status
    }

    /// Writes a whole `response` object. `usage` nil writes `null` (a response still in progress).
    static func writeResponse(
        _ head: ResponseHead, echo: ResponsesEcho, items: [OutputItem], usage: TokenUsage?, to writer: inout JSONWriter
    ) {
        writer.beginObject()
        writer.key("id")
        writer.string(head.id)
        writer.key("object")
        writer.string("response")
        writer.key("created_at")
        writer.int(head.createdAt)
        writer.key("status")
        writer.string(head.status.name)
        writer.key("model")
        writer.string(head.model)
        writer.key("error")
        if case .failed(let code, let message) = head.status {
            writer.beginObject()
            writer.key("code")
            writer.string(code)
            writer.key("message")
            writer.string(message)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("incomplete_details")
        if case .incomplete(let reason) = head.status {
            writer.beginObject()
            writer.key("reason")
            writer.string(reason)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("output")
        writer.beginArray()
        for item in items { writeItem(item, status: head.status.itemStatus, to: &writer) }
        writer.endArray()
        if !echo.members.isEmpty {
            writer.beginRawValue()
            writer.bytes.append(contentsOf: echo.members)
            writer.endRawValue()
        }
        writer.key("usage")
        if let usage { writeUsage(usage, to: &writer) } else { writer.null() }
        writer.endObject()
    }

    /// Writes one output item (`status` for message and function-call items); a message still in
    /// progress has no content part yet.
    static func writeItem(_ item: OutputItem, status: String, to writer: inout JSONWriter) {
        writer.beginObject()
        switch item {
        case .reasoning(let id, let text):
            writer.key("id")
            writer.string(id)
            writer.key("type")
            writer.string("reasoning")
            writer.key("summary")
            writer.beginArray()
            if !text.isEmpty { writeSummaryPart(text, to: &writer) }
            writer.endArray()
        case .message(let id, let text):
            writer.key("id")
            writer.string(id)
            writer.key("type")
            writer.string("message")
            writer.key("status")
            writer.string(status)
            writer.key("role")
            writer.string("assistant")
            writer.key("content")
            writer.beginArray()
            if status != "in_progress" { writeTextPart(text, to: &writer) }
            writer.endArray()
        case .functionCall(let id, let callID, let name, let arguments):
            writer.key("id")
            writer.string(id)
            writer.key("type")
            writer.string("function_call")
            writer.key("status")
            writer.string(status)
            writer.key("call_id")
            writer.string(callID)
            writer.key("name")
            writer.string(name)
            writer.key("arguments")
            writer.string(arguments)
        }
        writer.endObject()
    }

    /// `{"type":"output_text","text":…,"annotations":[]}`.
    static func writeTextPart(_ text: String, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("output_text")
        writer.key("text")
        writer.string(text)
        writer.key("annotations")
        writer.beginArray()
        writer.endArray()
        writer.endObject()
    }

    /// `{"type":"summary_text","text":…}`.
    static func writeSummaryPart(_ text: String, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("summary_text")
        writer.key("text")
        writer.string(text)
        writer.endObject()
    }

    /// Responses usage: `input_tokens` includes cached ones (as OpenAI's `prompt_tokens` does).
    static func writeUsage(_ usage: TokenUsage, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("input_tokens")
        writer.int(usage.inputTokens)
        writer.key("input_tokens_details")
        writer.beginObject()
        writer.key("cached_tokens")
        writer.int(usage.cachedInputTokens)
        writer.key("cache_write_tokens")
        writer.int(usage.cacheWriteInputTokens)
        writer.endObject()
        writer.key("output_tokens")
        writer.int(usage.outputTokens)
        writer.key("output_tokens_details")
        writer.beginObject()
        writer.key("reasoning_tokens")
        writer.int(usage.reasoningTokens)
        writer.endObject()
        writer.key("total_tokens")
        writer.int(usage.totalTokens)
        writer.endObject()
    }

    /// The part of item ids after their prefix: the hub id, kept to a safe length and alphabet (it comes
    /// from the upstream and ends up in ids clients send back).
    static func itemBase(_ hubID: String) -> String {
        var base = ""
        for scalar in hubID.unicodeScalars.prefix(96) {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "-", "_": base.unicodeScalars.append(scalar)
            default: base.unicodeScalars.append("_")
            }
        }
        return base.isEmpty ? "sluice" : base
    }
}

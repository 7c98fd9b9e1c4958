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
    ///
    /// One validating pass over the hub body (`UpstreamJSON`), then one pass writing the answer: strings go
    /// from the body into the output by range, escaped as `JSONWriter` escapes a `String`, so the bytes are
    /// those the tree-based translation wrote. As everywhere an upstream's JSON is read, the last of repeated
    /// member names wins.
    /// - Parameters:
    ///   - body: the hub's 2xx response body (OpenAI shape).
    ///   - echo: the request fields to report back (from `openAIRequest(fromResponses:)`).
    ///   - context: `requestModel` is reported as the response's model; `created` and `fallbackResponseID`
    ///     stand in for what the hub body lacks.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not a chat completion.
    public static func responsesResponse(
        fromOpenAIChat body: [UInt8], echo: ResponsesEcho, context: TranslationContext
    ) throws(TranslateError) -> [UInt8] {
        let bytes = body.span
        let answer = try HubAnswerMembers(bytes)
        let (hubID, createdValue, usageValue, message, finishReason) =
            (answer.id, answer.created, answer.usage, answer.message, answer.finishReason)
        guard UpstreamJSON.kind(of: message, in: bytes) == .object else {
            throw .badUpstreamResponse("The upstream response has no 'choices[0].message'.")
        }
        let (reasoning, content, toolCalls) = (answer.members.reasoning, answer.members.content, answer.members.toolCalls)
        var refusal = answer.members.refusal
        if !UpstreamJSON.isString(refusal, in: bytes) { refusal = nil }
        var base = ItemBase()
        if let content = UpstreamJSON.stringContent(hubID, in: bytes) {
            _ = JSONLexer.forEachDecodedByte(bytes, content: content) { base.add($0) }
        } else {
            for byte in context.fallbackResponseID.utf8 where !base.add(byte) { break }
        }
        let text = MessageText(content: content, refusal: refusal, in: bytes)
        var callCount = 0
        if UpstreamJSON.kind(of: toolCalls, in: bytes) == .array {
            UpstreamJSON.forEachElement(of: toolCalls, in: bytes) { _ in callCount += 1 }
        }
        var created = context.created
        if let upstream = UpstreamJSON.int64(createdValue, in: bytes), (0...maxCreated).contains(upstream) {
            created = upstream
        }
        let status = Status(finishReason: UpstreamJSON.shortString(finishReason, in: bytes))
        let itemStatus = status.itemStatus
        var writer = JSONWriter(reservingCapacity: body.count + echo.members.count + 512)
        writeResponse(
            id: { base.write(prefix: "resp_", to: &$0) }, createdAt: created, model: context.requestModel,
            status: status, echo: echo, usage: OpenAICompatible.usage(ofUsageObject: usageValue, in: bytes),
            to: &writer
        ) { writer in
            if UpstreamJSON.isNonEmptyString(reasoning, in: bytes) {
                writeItem(
                    .reasoning, status: itemStatus, id: { base.write(prefix: "rs_", to: &$0) },
                    text: { UpstreamJSON.writeString(reasoning, from: body, or: "", to: &$0) }, textIsEmpty: false,
                    to: &writer)
            }
            // A turn with neither text nor calls still answers with an (empty) message, as OpenAI does.
            if !text.isEmpty || callCount == 0 {
                writeItem(
                    .message, status: itemStatus, id: { base.write(prefix: "msg_", to: &$0) },
                    text: { text.write(from: body, to: &$0) }, textIsEmpty: text.isEmpty, to: &writer)
            }
            guard callCount > 0 else { return }
            var index = 0
            UpstreamJSON.forEachElement(of: toolCalls, in: bytes) { value in
                defer { index += 1 }
                let call = ToolCallMembers(value, in: bytes)
                writeItem(
                    .functionCall, status: itemStatus, id: { base.write(prefix: "fc_", index: index, to: &$0) },
                    text: { UpstreamJSON.writeString(call.arguments, from: body, or: "", to: &$0) }, textIsEmpty: false,
                    callID: { json in
                        if UpstreamJSON.isString(call.id, in: bytes) {
                            UpstreamJSON.writeString(call.id, from: body, or: "", to: &json)
                        } else {
                            base.write(prefix: "call_", index: index, to: &json)
                        }
                    },
                    name: { UpstreamJSON.writeString(call.name, from: body, or: "", to: &$0) }, to: &writer)
            }
        }
        return writer.bytes
    }

    /// The members of a hub chat completion that the client-answer translators (Responses here, Anthropic
    /// Messages in AnthropicMessages+FromOpenAIChatResponse.swift) read, found by range: the top level's
    /// `id`, `created` and `usage`, the first choice's `message` and `finish_reason`, and the message's members.
    struct HubAnswerMembers {
        var id: UpstreamJSON.Value?
        var created: UpstreamJSON.Value?
        var usage: UpstreamJSON.Value?
        /// `choices[0].message`, whatever its kind (each translator checks what it needs).
        var message: UpstreamJSON.Value?
        var finishReason: UpstreamJSON.Value?
        /// The message's members (none when it is not an object).
        var members: MessageMembers

        /// Validates `bytes` and finds the members.
        /// - Throws: `TranslateError.badUpstreamResponse` (502) when the body is not a JSON object.
        init(_ bytes: Span<UInt8>) throws(TranslateError) {
            var id: UpstreamJSON.Value?
            var created: UpstreamJSON.Value?
            var choices: UpstreamJSON.Value?
            var usage: UpstreamJSON.Value?
            let kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
                if member.key("id", in: bytes) {
                    id = member.value
                } else if member.key("created", in: bytes) {
                    created = member.value
                } else if member.key("choices", in: bytes) {
                    choices = member.value
                } else if member.key("usage", in: bytes) {
                    usage = member.value
                }
            }
            guard kind == .object else { throw .badUpstreamResponse("The upstream response is not a JSON object.") }
            self.id = id
            self.created = created
            self.usage = usage
            let choice = UpstreamJSON.firstElement(of: choices, in: bytes)
            var message: UpstreamJSON.Value?
            var finishReason: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: choice, in: bytes) { member in
                if member.key("message", in: bytes) {
                    message = member.value
                } else if member.key("finish_reason", in: bytes) {
                    finishReason = member.value
                }
            }
            self.message = message
            self.finishReason = finishReason
            members = MessageMembers(of: message, in: bytes)
        }
    }

    /// The top-level members of one hub stream chunk that the client stream stages (Responses and
    /// Anthropic) read, found in the scan that validates the chunk; the last of a repeated name wins.
    struct HubChunkMembers {
        /// `.object` for a chunk the stages can read; nil when the bytes are not JSON.
        var kind: JSONKind?
        var id: UpstreamJSON.Value?
        var created: UpstreamJSON.Value?
        var error: UpstreamJSON.Value?
        var usage: UpstreamJSON.Value?
        var choices: UpstreamJSON.Value?

        init(_ bytes: Span<UInt8>) {
            var members = (id: UpstreamJSON.Value?.none, created: UpstreamJSON.Value?.none, error: UpstreamJSON.Value?.none,
                usage: UpstreamJSON.Value?.none, choices: UpstreamJSON.Value?.none)
            kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
                if member.key("id", in: bytes) {
                    members.id = member.value
                } else if member.key("created", in: bytes) {
                    members.created = member.value
                } else if member.key("error", in: bytes) {
                    members.error = member.value
                } else if member.key("usage", in: bytes) {
                    members.usage = member.value
                } else if member.key("choices", in: bytes) {
                    members.choices = member.value
                }
            }
            (id, created, error, usage, choices) = members
        }
    }

    /// The members of an OpenAI assistant message that the client translators read, found by range: an answer's
    /// `choices[0].message` (`HubAnswerMembers`) or a stream chunk's `choices[0].delta` (the Responses and
    /// Anthropic stream stages), which carry the same members.
    struct MessageMembers {
        var content: UpstreamJSON.Value?
        var reasoning: UpstreamJSON.Value?
        var refusal: UpstreamJSON.Value?
        var toolCalls: UpstreamJSON.Value?
        /// The `thinking_blocks` extension (Anthropic's signed thinking, carried through the hub).
        var thinkingBlocks: UpstreamJSON.Value?

        /// The members of the object at `message` (none when it is absent or not an object); the last of a
        /// repeated name wins.
        init(of message: UpstreamJSON.Value?, in bytes: Span<UInt8>) {
            UpstreamJSON.forEachMember(of: message, in: bytes) { member in
                if member.key("content", in: bytes) {
                    content = member.value
                } else if member.key("reasoning_content", in: bytes) {
                    reasoning = member.value
                } else if member.key("refusal", in: bytes) {
                    refusal = member.value
                } else if member.key("tool_calls", in: bytes) {
                    toolCalls = member.value
                } else if member.key("thinking_blocks", in: bytes) {
                    thinkingBlocks = member.value
                }
            }
        }
    }

    /// The members of one OpenAI tool call (an entry of a message's or a stream delta's `tool_calls`) that the
    /// Responses translators read.
    struct ToolCallMembers {
        var index: UpstreamJSON.Value?
        var id: UpstreamJSON.Value?
        /// `function.name` and `function.arguments`.
        var name: UpstreamJSON.Value?
        var arguments: UpstreamJSON.Value?

        init(_ call: UpstreamJSON.Value, in bytes: Span<UInt8>) {
            var index: UpstreamJSON.Value?
            var id: UpstreamJSON.Value?
            var function: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: call, in: bytes) { member in
                if member.key("index", in: bytes) {
                    index = member.value
                } else if member.key("id", in: bytes) {
                    id = member.value
                } else if member.key("function", in: bytes) {
                    function = member.value
                }
            }
            var name: UpstreamJSON.Value?
            var arguments: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: function, in: bytes) { member in
                if member.key("name", in: bytes) {
                    name = member.value
                } else if member.key("arguments", in: bytes) {
                    arguments = member.value
                }
            }
            self.index = index
            self.id = id
            self.name = name
            self.arguments = arguments
        }
    }

    /// The text of the message item, read by range as `AnthropicTranslator.plainText` reads a tree: `content`
    /// (a string, or the `text` or `refusal` of each of its parts; nothing at all if one part is anything else),
    /// then `refusal`. (The Anthropic answer reads `content` through it too, with no `refusal`.)
    struct MessageText {
        var content: UpstreamJSON.Value?
        var refusal: UpstreamJSON.Value?
        /// `content` is an array of parts, every one of them text.
        var contentIsParts = false
        var isEmpty = true

        init(content: UpstreamJSON.Value?, refusal: UpstreamJSON.Value?, in bytes: Span<UInt8>) {
            self.refusal = refusal
            if UpstreamJSON.isNonEmptyString(refusal, in: bytes) { isEmpty = false }
            switch UpstreamJSON.kind(of: content, in: bytes) {
            case .string:
                self.content = content
                if UpstreamJSON.isNonEmptyString(content, in: bytes) { isEmpty = false }
            case .array:
                var valid = true
                var partsEmpty = true
                Self.forEachPiece(of: content, in: bytes) { piece in
                    if let piece {
                        if UpstreamJSON.isNonEmptyString(piece, in: bytes) { partsEmpty = false }
                    } else {
                        valid = false
                    }
                }
                if valid {
                    self.content = content
                    contentIsParts = true
                    if !partsEmpty { isEmpty = false }
                }
            default:
                break
            }
        }

        /// Calls `body` with each part's text (its `text` or `refusal`, as its `type` says), or nil for a part
        /// that is not a text part.
        static func forEachPiece(
            of content: UpstreamJSON.Value?, in bytes: Span<UInt8>, _ body: (UpstreamJSON.Value?) -> Void
        ) {
            UpstreamJSON.forEachElement(of: content, in: bytes) { part in
                var type: UpstreamJSON.Value?
                var text: UpstreamJSON.Value?
                var refusal: UpstreamJSON.Value?
                UpstreamJSON.forEachMember(of: part, in: bytes) { member in
                    if member.key("type", in: bytes) {
                        type = member.value
                    } else if member.key("text", in: bytes) {
                        text = member.value
                    } else if member.key("refusal", in: bytes) {
                        refusal = member.value
                    }
                }
                let piece =
                    UpstreamJSON.string(type, equals: "text", in: bytes)
                    ? text : UpstreamJSON.string(type, equals: "refusal", in: bytes) ? refusal : nil
                body(UpstreamJSON.isString(piece, in: bytes) ? piece : nil)
            }
        }

        /// Writes the text as one string value.
        func write(from source: [UInt8], to writer: inout JSONWriter) {
            let bytes = source.span
            writer.beginRawValue()
            writer.bytes.append(JSONByte.quote)
            if contentIsParts {
                Self.forEachPiece(of: content, in: bytes) { piece in
                    if let piece { UpstreamJSON.appendStringContent(piece, from: source, to: &writer.bytes) }
                }
            } else if let content {
                UpstreamJSON.appendStringContent(content, from: source, to: &writer.bytes)
            }
            if let refusal { UpstreamJSON.appendStringContent(refusal, from: source, to: &writer.bytes) }
            writer.bytes.append(JSONByte.quote)
            writer.endRawValue()
        }
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
        writeResponse(
            id: { $0.string(head.id) }, createdAt: head.createdAt, model: head.model, status: head.status, echo: echo,
            usage: usage, to: &writer
        ) { writer in
            for item in items { writeItem(item, status: head.status.itemStatus, to: &writer) }
        }
    }

    /// Writes one JSON string value (an id, a text, arguments) from wherever it is kept.
    typealias StringField = (inout JSONWriter) -> Void

    /// Writes a whole `response` object, its id written by `id` and its output items by `items`.
    static func writeResponse(
        id: StringField, createdAt: Int64, model: String, status: Status, echo: ResponsesEcho, usage: TokenUsage?,
        to writer: inout JSONWriter, items: (inout JSONWriter) -> Void
    ) {
        writer.beginObject()
        writer.key("id")
        id(&writer)
        writer.key("object")
        writer.string("response")
        writer.key("created_at")
        writer.int(createdAt)
        writer.key("status")
        writer.string(status.name)
        writer.key("model")
        writer.string(model)
        writer.key("error")
        if case .failed(let code, let message) = status {
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
        if case .incomplete(let reason) = status {
            writer.beginObject()
            writer.key("reason")
            writer.string(reason)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("output")
        writer.beginArray()
        items(&writer)
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
        switch item {
        case .reasoning(let id, let text):
            writeItem(.reasoning, status: status, id: { $0.string(id) }, text: { $0.string(text) },
                      textIsEmpty: text.isEmpty, to: &writer)
        case .message(let id, let text):
            writeItem(.message, status: status, id: { $0.string(id) }, text: { $0.string(text) },
                      textIsEmpty: text.isEmpty, to: &writer)
        case .functionCall(let id, let callID, let name, let arguments):
            writeItem(
                .functionCall, status: status, id: { $0.string(id) }, text: { $0.string(arguments) },
                textIsEmpty: arguments.isEmpty, callID: { $0.string(callID) }, name: { $0.string(name) }, to: &writer)
        }
    }

    /// The kinds of output item.
    enum ItemKind { case reasoning, message, functionCall }

    /// Writes one output item whose strings are written by the fields: `text` is a reasoning item's summary,
    /// a message's text, a function call's arguments; `callID` and `name` are a function call's.
    static func writeItem(
        _ kind: ItemKind, status: String, id: StringField, text: StringField, textIsEmpty: Bool,
        callID: StringField = { _ in }, name: StringField = { _ in }, to writer: inout JSONWriter
    ) {
        writer.beginObject()
        writer.key("id")
        id(&writer)
        switch kind {
        case .reasoning:
            writer.key("type")
            writer.string("reasoning")
            writer.key("summary")
            writer.beginArray()
            if !textIsEmpty { writeSummaryPart(text, to: &writer) }
            writer.endArray()
        case .message:
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
        case .functionCall:
            writer.key("type")
            writer.string("function_call")
            writer.key("status")
            writer.string(status)
            writer.key("call_id")
            callID(&writer)
            writer.key("name")
            name(&writer)
            writer.key("arguments")
            text(&writer)
        }
        writer.endObject()
    }

    /// `{"type":"output_text","text":…,"annotations":[]}`.
    static func writeTextPart(_ text: String, to writer: inout JSONWriter) {
        writeTextPart({ $0.string(text) }, to: &writer)
    }

    static func writeTextPart(_ text: StringField, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("output_text")
        writer.key("text")
        text(&writer)
        writer.key("annotations")
        writer.beginArray()
        writer.endArray()
        writer.endObject()
    }

    /// `{"type":"summary_text","text":…}`.
    static func writeSummaryPart(_ text: String, to writer: inout JSONWriter) {
        writeSummaryPart({ $0.string(text) }, to: &writer)
    }

    static func writeSummaryPart(_ text: StringField, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("summary_text")
        writer.key("text")
        text(&writer)
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
        var base = ItemBase()
        for byte in hubID.utf8 where !base.add(byte) { break }
        return base.string
    }

    /// The hub id as item ids carry it, built from its UTF-8 bytes without a `String`: its first `maxScalars`
    /// scalars, each ASCII letter, digit, `-` and `_` kept and any other scalar made `_`; "sluice" if empty.
    struct ItemBase {
        static let maxScalars = 96
        private var storage = InlineArray<96, UInt8>(repeating: 0)
        private var count = 0

        /// Adds the next byte of the id; false once the base is full.
        mutating func add(_ byte: UInt8) -> Bool {
            // A continuation byte belongs to the scalar its lead byte already stood for.
            if byte & 0xC0 == 0x80 { return count < Self.maxScalars }
            guard count < Self.maxScalars else { return false }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                storage[count] = byte
            default:
                storage[count] = UInt8(ascii: "_")
            }
            count += 1
            return true
        }

        /// Appends the base (no quotes: it needs no escaping).
        func append(to output: inout [UInt8]) {
            guard count > 0 else {
                output.append(contentsOf: "sluice".utf8)
                return
            }
            for index in 0..<count { output.append(storage[index]) }
        }

        /// Writes `<prefix><base>` or, with an index, `<prefix><base>_<index>` as a string value.
        func write(prefix: StaticString, index: Int? = nil, to writer: inout JSONWriter) {
            writer.beginRawValue()
            writer.bytes.append(JSONByte.quote)
            prefix.withUTF8Buffer { writer.bytes.append(contentsOf: $0) }
            append(to: &writer.bytes)
            if let index {
                writer.bytes.append(UInt8(ascii: "_"))
                JSONWriter.appendDigits(UInt64(max(0, index)), to: &writer.bytes)
            }
            writer.bytes.append(JSONByte.quote)
            writer.endRawValue()
        }

        var string: String {
            var bytes: [UInt8] = []
            append(to: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

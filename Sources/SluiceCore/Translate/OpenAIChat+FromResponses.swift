// OpenAI Responses request (`POST /v1/responses`, from an OpenAI-SDK client) -> OpenAI chat request (the
// hub), so that a Responses client can reach the translated backends (Anthropic, Bedrock Converse, Gemini).
// OpenAI and Azure speak Responses themselves: their passthrough never calls this translator, so every
// refusal below applies only where the backend cannot carry the feature.
//
// Mapping ("Responses clients" in SluiceCore.docc/ProviderWireShapes.md):
// - `instructions` -> one leading system message; `input` as a string -> one user message.
// - `message` items (roles user/assistant/system/developer) -> hub messages; parts `input_text` and
//   `output_text` -> text, `input_image` (URL or data: URI) -> `image_url`, `input_file` with `file_data`
//   -> a `file` part. Files by id (`file_id`) live in OpenAI's file store: refused.
// - `function_call` items -> `tool_calls` of an assistant message (joined to the assistant message just
//   before, as the chat shape puts a turn's text and calls in one message); `call_id` is the call's id.
// - `function_call_output` items -> `tool` messages.
// - `reasoning` items are the model's earlier output: dropped (the chat shape has no place for a replayed
//   summary, and OpenAI's encrypted reasoning means nothing to another provider).
// - `tools` of type `function` -> hub function tools; built-in tools (web_search, file_search, ...) run
//   inside OpenAI: refused, naming the type.
// - `reasoning.summary` (auto, concise, detailed) on a backend whose answer carries reasoning only when
//   extended thinking is on (Anthropic's Messages API: `reasoning_effort` alone sets its effort, not its
//   thinking): the hub also gets `thinking` with a budget by effort (low 1024, medium 2048, higher 4096
//   tokens, as Claude on Bedrock's effort mapping), at most half of `max_output_tokens` (which bounds reasoning
//   and text together, as on OpenAI) so the answer keeps room, and none below Anthropic's 1024-token minimum, with `minimal` or `none`
//   effort, when `tool_choice` forces a tool (Anthropic refuses thinking there), or in the middle of a tool
//   loop (Anthropic wants the signed thinking of the call's turn back). `temperature` and `top_p`
//   are then left out: Anthropic refuses them with thinking, as OpenAI's reasoning models refuse them. The
//   thinking comes back as the answer's `reasoning` item and the stream's reasoning summary events.
// - `max_output_tokens` -> `max_completion_tokens`; `reasoning.effort` -> `reasoning_effort`;
//   `text.format` -> `response_format`; `user` -> `user`; `temperature`, `top_p`, `parallel_tool_calls`,
//   `tool_choice` and `stop` as in chat.
// - `previous_response_id`, `conversation`, `background`, `prompt` and `item_reference` items need the
//   state OpenAI keeps server-side; the gateway keeps none: refused.
// - `store` is ignored: a translated backend stores nothing, and a stateless answer is what the client
//   gets from OpenAI with `store: false` too. `include`, `truncation`, `service_tier`,
//   `prompt_cache_key`, `safety_identifier` and `metadata` have no hub place and are not sent
//   (`metadata` is echoed in the response).
// - Streams always ask for usage: `response.completed` carries it.
//
// One pass, no tree (issue 12): the body is validated once (`JSONValidator`, the parser's rules and errors) and
// read in place by byte ranges; the hub request and the echo are written as the input is read, strings and
// sub-documents (schemas, stop lists, metadata) copied as they are, without whitespace. Checks run in the order
// they always did, so the first problem found is the one reported. The one thing that needs more than the
// current item is a function call joining the assistant turn before it: that message is left open
// (`HubMessages`) until an item that is not a call, or the end, closes it.

/// Translators between the OpenAI Responses API (client side) and the OpenAI Chat Completions hub.
public enum ResponsesTranslator {
    /// The Responses request, translated: the hub request and what the response must echo.
    public struct Request: Sendable {
        /// The equivalent OpenAI chat request, compact JSON.
        public var hub: [UInt8]
        /// The request fields the Responses answer reports back.
        public var echo: ResponsesEcho
    }

    /// The largest `max_output_tokens` accepted: `TokenUsage.maxCount`, ten times any context window today.
    static let maxOutputTokens: Int64 = Int64(TokenUsage.maxCount)

    /// Translates a Responses request body into the OpenAI hub request.
    /// - Parameters:
    ///   - body: the client's Responses request.
    ///   - options: what the backend needs: whether a reasoning summary turns thinking on, and the
    ///     `max_tokens` sent when the client sets none.
    /// - Returns: the hub request and the echo fields for the answer.
    /// - Throws: `TranslateError` (400) for a body that is not JSON, or naming the Responses field that is
    ///   wrong or cannot be expressed.
    public static func openAIRequest(
        fromResponses body: [UInt8], options: ResponsesTranslationOptions = ResponsesTranslationOptions()
    ) throws(TranslateError) -> Request {
        var validator = JSONValidator()
        let document: ValidatedJSON
        let fields: JSONFields<19>
        do throws(JSONParseError) {
            (document, fields) = try validator.validate(body, capturing: ResponsesRequestFields.keys)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        var translation = ResponsesRequestTranslation(
            document: document, root: ResponsesRequestFields(fields), options: options, capacity: body.count)
        return try translation.translate()
    }

    /// Translates a parsed Responses request (a caller holding a tree): the tree is serialised and read as a
    /// body would be.
    public static func openAIRequest(
        fromResponses body: JSONValue, options: ResponsesTranslationOptions = ResponsesTranslationOptions()
    ) throws(TranslateError) -> (hub: JSONValue, echo: ResponsesEcho) {
        let request = try openAIRequest(fromResponses: body.serialized(), options: options)
        do {
            return (try JSONParser.parse(request.hub), request.echo)
        } catch {
            throw .invalidBody("The request body is nested too deeply.")
        }
    }

    static let reasoningEfforts: Set<String> = ["none", "minimal", "low", "medium", "high", "xhigh"]
    static let reasoningSummaries = ["auto", "concise", "detailed"]
    /// Anthropic's smallest thinking budget.
    static let minThinkingBudget: Int64 = 1024
}

/// What the backend needs from a Responses request's translation beyond the request itself.
public struct ResponsesTranslationOptions: Sendable, Equatable {
    /// The backend returns reasoning only with extended thinking on (Anthropic's Messages API): a requested
    /// `reasoning.summary` turns it on (see the file's mapping notes).
    public var thinkingForSummaries: Bool
    /// The `max_tokens` the backend's request gets when the client sets no `max_output_tokens`.
    public var defaultMaxTokens: Int

    public init(thinkingForSummaries: Bool = false, defaultMaxTokens: Int = 4096) {
        self.thinkingForSummaries = thinkingForSummaries
        self.defaultMaxTokens = defaultMaxTokens
    }
}

/// The top-level members of a Responses request the translation reads.
struct ResponsesRequestFields {
    static let keys = JSONKeys<19>(
        "model", "previous_response_id", "conversation", "background", "prompt", "instructions", "input",
        "max_output_tokens", "temperature", "top_p", "parallel_tool_calls", "stop", "stream", "user", "metadata",
        "tools", "tool_choice", "text", "reasoning")

    let model, previousResponseID, conversation, background, prompt, instructions, input: Range<Int>?
    let maxOutputTokens, temperature, topP, parallelToolCalls, stop, stream, user, metadata: Range<Int>?
    let tools, toolChoice, text, reasoning: Range<Int>?

    init(_ fields: JSONFields<19>) {
        model = fields[0]
        previousResponseID = fields[1]
        conversation = fields[2]
        background = fields[3]
        prompt = fields[4]
        instructions = fields[5]
        input = fields[6]
        maxOutputTokens = fields[7]
        temperature = fields[8]
        topP = fields[9]
        parallelToolCalls = fields[10]
        stop = fields[11]
        stream = fields[12]
        user = fields[13]
        metadata = fields[14]
        tools = fields[15]
        toolChoice = fields[16]
        text = fields[17]
        reasoning = fields[18]
    }
}

/// The members of one input item (a message, a function call or its output, ...).
private struct ResponsesInputItem {
    static let keys = JSONKeys<7>("type", "role", "content", "call_id", "name", "arguments", "output")
    let type, role, content, callID, name, arguments, output: Range<Int>?

    init(_ fields: JSONFields<7>) {
        type = fields[0]
        role = fields[1]
        content = fields[2]
        callID = fields[3]
        name = fields[4]
        arguments = fields[5]
        output = fields[6]
    }
}

/// The members of one content part.
private struct ResponsesContentPart {
    static let keys = JSONKeys<8>("type", "text", "refusal", "image_url", "file_id", "detail", "file_data", "filename")
    let type, text, refusal, imageURL, fileID, detail, fileData, filename: Range<Int>?

    init(_ fields: JSONFields<8>) {
        type = fields[0]
        text = fields[1]
        refusal = fields[2]
        imageURL = fields[3]
        fileID = fields[4]
        detail = fields[5]
        fileData = fields[6]
        filename = fields[7]
    }
}

/// The hub's `messages` array being written, with the assistant message a following function call joins.
private struct HubMessages {
    enum Open {
        case none
        /// An assistant message is open after its content: a call adds `tool_calls`.
        case assistant
        /// An assistant message's `tool_calls` array is open: a call is appended.
        case toolCalls
    }

    var count = 0
    var open = Open.none

    /// Closes the open assistant message, if any.
    mutating func close(_ writer: inout JSONWriter) {
        switch open {
        case .none: return
        case .assistant: writer.endObject()
        case .toolCalls:
            writer.endArray()
            writer.endObject()
        }
        open = .none
    }

    /// Starts a message (closing the open one) and writes its role.
    mutating func begin(role: String, _ writer: inout JSONWriter) {
        close(&writer)
        writer.beginObject()
        writer.key("role")
        writer.string(role)
        count += 1
    }

    /// Makes room for one more tool call: the open assistant message's `tool_calls`, or a new assistant message.
    mutating func beginToolCall(_ writer: inout JSONWriter) {
        switch open {
        case .toolCalls: return
        case .assistant: break
        case .none:
            begin(role: "assistant", &writer)
            writer.key("content")
            writer.null()
        }
        writer.key("tool_calls")
        writer.beginArray()
        open = .toolCalls
    }
}

/// One Responses request being translated: the validated body read in place, the hub and the echo written.
private struct ResponsesRequestTranslation {
    let document: ValidatedJSON
    let root: ResponsesRequestFields
    let options: ResponsesTranslationOptions
    var hub: JSONWriter
    var messages = HubMessages()

    init(document: ValidatedJSON, root: ResponsesRequestFields, options: ResponsesTranslationOptions, capacity: Int) {
        self.document = document
        self.root = root
        self.options = options
        hub = JSONWriter(reservingCapacity: capacity + 64)
    }

    /// The value `range` is present and not `null`.
    func present(_ range: Range<Int>?) -> Bool { !document.isAbsentOrNull(range) }

    /// A string that decodes to at least one character.
    func nonEmptyString(_ range: Range<Int>?) -> Range<Int>? {
        guard let range, document.isString(range), !document.isEmptyString(range) else { return nil }
        return range
    }

    /// Copies the value `range` into the hub as it is, without whitespace.
    mutating func copy(_ range: Range<Int>) { document.writeCompact(range, to: &hub) }

    mutating func translate() throws(TranslateError) -> ResponsesTranslator.Request {
        guard document.kind(document.root) == .object else { throw .invalidBody("The request body must be a JSON object.") }
        guard let model = nonEmptyString(root.model) else {
            throw .invalidBody("'model' must be a non-empty string.", param: "model")
        }
        for (name, value) in [("previous_response_id", root.previousResponseID), ("conversation", root.conversation)]
        where present(value) {
            throw .unsupported(
                "'\(name)' needs a conversation stored by the provider; this gateway keeps no state for this "
                    + "backend. Send the whole conversation in 'input' instead.", param: name)
        }
        if document.bool(root.background) == true {
            throw .unsupported("Background responses are not available on this backend.", param: "background")
        }
        if present(root.prompt) {
            throw .unsupported("Stored prompts are not available on this backend.", param: "prompt")
        }

        hub.beginObject()
        hub.key("model")
        copy(model)
        hub.key("messages")
        hub.beginArray()
        if let instructions = root.instructions, present(instructions) {
            guard document.isString(instructions) else {
                throw .invalidBody("'instructions' must be a string.", param: "instructions")
            }
            if !document.isEmptyString(instructions) {
                messages.begin(role: "system", &hub)
                hub.key("content")
                copy(instructions)
                hub.endObject()
            }
        }
        switch document.kind(root.input) {
        case .string?:
            messages.begin(role: "user", &hub)
            hub.key("content")
            copy(root.input ?? 0..<0)
            hub.endObject()
        case .array?:
            var index = 0
            for (item, fields) in document.objects(in: root.input, ResponsesInputItem.keys) {
                try appendHubMessages(item, ResponsesInputItem(fields), param: "input[\(index)]")
                index += 1
            }
            messages.close(&hub)
        default:
            throw .invalidBody("'input' must be a string or an array of input items.", param: "input")
        }
        guard messages.count > 0 else {
            throw .invalidBody("'input' must hold at least one message.", param: "input")
        }
        hub.endArray()

        if let tokens = root.maxOutputTokens, present(tokens) {
            guard let value = document.int64(tokens), value >= 1, value <= ResponsesTranslator.maxOutputTokens else {
                throw .invalidBody(
                    "'max_output_tokens' must be an integer from 1 to \(ResponsesTranslator.maxOutputTokens).",
                    param: "max_output_tokens")
            }
            hub.key("max_completion_tokens")
            hub.int(value)
        }
        // Decided before the sampling fields, which thinking leaves out; `reasoning` is checked in its turn below.
        let thinkingBudget = summaryThinkingBudget()
        for (name, value, bound) in [("temperature", root.temperature, 2.0), ("top_p", root.topP, 1.0)] {
            guard let value, present(value) else { continue }
            guard let number = document.double(value), number >= 0, number <= bound else {
                throw .invalidBody("'\(name)' must be a number from 0 to \(Int(bound)).", param: name)
            }
            guard thinkingBudget == nil else { continue }
            hub.key(name)
            copy(value)
        }
        if let parallel = root.parallelToolCalls, present(parallel) {
            guard document.bool(parallel) != nil else {
                throw .invalidBody("'parallel_tool_calls' must be a boolean.", param: "parallel_tool_calls")
            }
            hub.key("parallel_tool_calls")
            copy(parallel)
        }
        try appendStop()
        switch document.kind(root.stream) {
        case nil, .null?: break
        case .boolean? where document.bool(root.stream) == false: break
        case .boolean?:
            hub.key("stream")
            hub.bool(true)
            hub.key("stream_options")
            hub.beginObject()
            hub.key("include_usage")
            hub.bool(true)
            hub.endObject()
        default:
            throw .invalidBody("'stream' must be a boolean.", param: "stream")
        }
        if let user = root.user, present(user) {
            guard document.isString(user) else { throw .invalidBody("'user' must be a string.", param: "user") }
            hub.key("user")
            copy(user)
        }
        if present(root.metadata), !document.isObject(root.metadata) {
            throw .invalidBody("'metadata' must be an object of strings.", param: "metadata")
        }
        try appendTools()
        try appendTextFormat()
        try appendReasoning()
        if let thinkingBudget {
            hub.key("thinking")
            hub.beginObject()
            hub.key("type")
            hub.string("enabled")
            hub.key("budget_tokens")
            hub.int(thinkingBudget)
            hub.endObject()
        }
        hub.endObject()
        return ResponsesTranslator.Request(hub: hub.bytes, echo: ResponsesEcho(document: document, root: root))
    }

    // MARK: - Input items

    mutating func appendHubMessages(_ range: Range<Int>, _ item: ResponsesInputItem, param: String) throws(TranslateError) {
        guard document.isObject(range) else {
            throw .invalidBody("Each input item must be an object.", param: param)
        }
        // An easy input message may leave out `type`; a role is enough.
        let type: Range<Int>? = document.isString(item.type) ? item.type : nil
        if type == nil {
            guard item.role != nil else {
                throw .invalidBody("Each input item needs a string 'type' or a 'role'.", param: param)
            }
            try appendMessage(item, param: param)
        } else if document.string(type, is: "message") {
            try appendMessage(item, param: param)
        } else if document.string(type, is: "function_call") {
            guard let callID = nonEmptyString(item.callID) else {
                throw .invalidBody("A function_call item needs a string 'call_id'.", param: "\(param).call_id")
            }
            guard let name = nonEmptyString(item.name) else {
                throw .invalidBody("A function_call item needs a string 'name'.", param: "\(param).name")
            }
            guard let arguments = item.arguments, document.isString(arguments) else {
                throw .invalidBody("A function_call item needs 'arguments' as a string.", param: "\(param).arguments")
            }
            messages.beginToolCall(&hub)
            hub.beginObject()
            hub.key("id")
            copy(callID)
            hub.key("type")
            hub.string("function")
            hub.key("function")
            hub.beginObject()
            hub.key("name")
            copy(name)
            hub.key("arguments")
            copy(arguments)
            hub.endObject()
            hub.endObject()
        } else if document.string(type, is: "function_call_output") {
            guard let callID = nonEmptyString(item.callID) else {
                throw .invalidBody(
                    "A function_call_output item needs a string 'call_id'.", param: "\(param).call_id")
            }
            messages.begin(role: "tool", &hub)
            hub.key("tool_call_id")
            copy(callID)
            hub.key("content")
            switch document.kind(item.output) {
            case .string?:
                copy(item.output ?? 0..<0)
            case .array?:
                hub.beginArray()
                var index = 0
                for (_, fields) in document.objects(in: item.output, ResponsesContentPart.keys) {
                    let part = ResponsesContentPart(fields)
                    guard document.string(part.type, is: "input_text"), let text = part.text, document.isString(text)
                    else {
                        throw .unsupported(
                            "Function call outputs can only carry text for this backend.",
                            param: "\(param).output[\(index)]")
                    }
                    hub.beginObject()
                    hub.key("type")
                    hub.string("text")
                    hub.key("text")
                    copy(text)
                    hub.endObject()
                    index += 1
                }
                hub.endArray()
            default:
                throw .invalidBody(
                    "'output' must be a string or an array of input_text parts.", param: "\(param).output")
            }
            hub.endObject()
        } else if document.string(type, is: "reasoning") {
            return  // The model's earlier reasoning: no place in the hub (see the mapping notes).
        } else if document.string(type, is: "item_reference") {
            throw .unsupported(
                "Item references need items stored by the provider; this gateway keeps no state for this backend.",
                param: param)
        } else {
            let name = document.decodedString(type) ?? ""
            throw .unsupported("Input item type '\(name)' cannot be sent to this backend.", param: "\(param).type")
        }
    }

    static let roles = ["user", "assistant", "system", "developer"]

    mutating func appendMessage(_ item: ResponsesInputItem, param: String) throws(TranslateError) {
        guard let roleRange = item.role, let role = Self.roles.first(where: { document.string(roleRange, is: $0) }) else {
            throw .invalidBody(
                "Each message needs a 'role' of 'user', 'assistant', 'system' or 'developer'.", param: "\(param).role")
        }
        switch document.kind(item.content) {
        case .string?:
            messages.begin(role: role, &hub)
            hub.key("content")
            copy(item.content ?? 0..<0)
            finishMessage(role: role)
            return
        case .array?:
            break
        default:
            throw .invalidBody("'content' must be a string or an array of content parts.", param: "\(param).content")
        }
        messages.begin(role: role, &hub)
        hub.key("content")
        // Assistant, system and developer turns are text in the chat shape (their images and files are refused
        // below): their pieces are joined into one string, escapes kept, as one string's content.
        let isUser = role == "user"
        if isUser { hub.beginArray() } else {
            hub.beginRawValue()
            hub.bytes.append(JSONByte.quote)
        }
        var index = 0
        for (_, fields) in document.objects(in: item.content, ResponsesContentPart.keys) {
            let part = ResponsesContentPart(fields)
            let partParam = "\(param).content[\(index)]"
            index += 1
            guard let type = part.type, document.isString(type) else {
                throw .invalidBody("Each content part needs a string 'type'.", param: "\(partParam).type")
            }
            if document.string(type, is: "input_text") || document.string(type, is: "output_text")
                || document.string(type, is: "refusal")
            {
                let isRefusal = document.string(type, is: "refusal")
                let key = isRefusal ? "refusal" : "text"
                guard let piece = isRefusal ? part.refusal : part.text, let content = document.stringContent(piece) else {
                    throw .invalidBody("A text part needs a string '\(key)'.", param: "\(partParam).\(key)")
                }
                if isUser {
                    hub.beginObject()
                    hub.key("type")
                    hub.string("text")
                    hub.key("text")
                    copy(piece)
                    hub.endObject()
                } else {
                    hub.bytes.append(contentsOf: document.slice(content))
                }
            } else if document.string(type, is: "input_image") {
                guard isUser else { throw .unsupported("Only user messages can carry images.", param: partParam) }
                if present(part.fileID) {
                    throw .unsupported(
                        "Images by 'file_id' live in OpenAI's file store and cannot be sent to this backend; "
                            + "send 'image_url' (a URL or a data: URI).", param: "\(partParam).file_id")
                }
                guard let url = nonEmptyString(part.imageURL) else {
                    throw .invalidBody("An input_image part needs a string 'image_url'.", param: "\(partParam).image_url")
                }
                hub.beginObject()
                hub.key("type")
                hub.string("image_url")
                hub.key("image_url")
                hub.beginObject()
                hub.key("url")
                copy(url)
                if let detail = part.detail, document.isString(detail) {
                    hub.key("detail")
                    copy(detail)
                }
                hub.endObject()
                hub.endObject()
            } else if document.string(type, is: "input_file") {
                guard isUser else { throw .unsupported("Only user messages can carry files.", param: partParam) }
                guard let data = nonEmptyString(part.fileData) else {
                    throw .unsupported(
                        "Files by 'file_id' or 'file_url' cannot be sent to this backend; send 'file_data'.",
                        param: partParam)
                }
                hub.beginObject()
                hub.key("type")
                hub.string("file")
                hub.key("file")
                hub.beginObject()
                hub.key("file_data")
                copy(data)
                if let filename = part.filename, document.isString(filename) {
                    hub.key("filename")
                    copy(filename)
                }
                hub.endObject()
                hub.endObject()
            } else {
                let name = document.decodedString(type) ?? ""
                throw .unsupported("Content part type '\(name)' cannot be sent to this backend.", param: "\(partParam).type")
            }
        }
        if isUser { hub.endArray() } else {
            hub.bytes.append(JSONByte.quote)
            hub.endRawValue()
        }
        finishMessage(role: role)
    }

    /// Closes a message just written, except an assistant one, which a following function call joins.
    mutating func finishMessage(role: String) {
        if role == "assistant" {
            messages.open = .assistant
        } else {
            hub.endObject()
        }
    }

    /// The thinking budget that brings back a reasoning summary (see the file's mapping notes), or nil for
    /// no thinking. Reads only valid values: invalid ones are refused in the order of the checks.
    func summaryThinkingBudget() -> Int64? {
        guard options.thinkingForSummaries, let reasoning = root.reasoning, document.isObject(reasoning) else { return nil }
        let fields = document.fields(of: reasoning, JSONKeys<2>("effort", "summary"))
        guard let summary = fields[1],
            ResponsesTranslator.reasoningSummaries.contains(where: { document.string(summary, is: $0) })
        else { return nil }
        var budget: Int64 = 2048
        if let effort = fields[0], present(effort) {
            if document.string(effort, is: "none") || document.string(effort, is: "minimal") { return nil }
            if document.string(effort, is: "low") {
                budget = 1024
            } else if document.string(effort, is: "high") || document.string(effort, is: "xhigh") {
                budget = 4096
            }
        }
        // A forced tool (`required` or a named function) and thinking cannot go together on Anthropic.
        if let choice = root.toolChoice, present(choice),
            document.isObject(choice) || document.string(choice, is: "required")
        {
            return nil
        }
        // In the middle of a tool loop (a function call after the last user message), Anthropic wants the
        // call's turn to start with the signed thinking that led to it, which a Responses client does not send
        // back (its `reasoning` items are dropped): that turn goes without thinking.
        if document.isArray(root.input) {
            var callSinceUser = false
            for (_, fields) in document.objects(in: root.input, JSONKeys<2>("type", "role")) {
                if document.string(fields[0], is: "function_call") {
                    callSinceUser = true
                } else if document.string(fields[1], is: "user") {
                    callSinceUser = false
                }
            }
            if callSinceUser { return nil }
        }
        var maxTokens = Int64(options.defaultMaxTokens)
        if let tokens = root.maxOutputTokens, present(tokens) {
            guard let value = document.int64(tokens), value >= 1 else { return nil }
            maxTokens = value
        }
        // The budget is part of max_tokens (Anthropic wants it below): at most half, so the answer keeps room.
        budget = min(budget, maxTokens / 2)
        return budget >= ResponsesTranslator.minThinkingBudget ? budget : nil
    }

    // MARK: - Stop, tools, format, reasoning

    mutating func appendStop() throws(TranslateError) {
        guard let stop = root.stop, present(stop) else { return }
        switch document.kind(stop) {
        case .string?:
            hub.key("stop")
            copy(stop)
            return
        case .array?:
            var count = 0
            var allStrings = true
            for element in document.elements(of: stop) {
                count += 1
                if !document.isString(element) { allStrings = false }
            }
            if count <= 4 && allStrings {
                if count > 0 {
                    hub.key("stop")
                    copy(stop)
                }
                return
            }
        default:
            break
        }
        throw .invalidBody("'stop' must be a string or an array of up to 4 strings.", param: "stop")
    }

    private static let toolKeys = JSONKeys<5>("type", "name", "description", "parameters", "strict")

    mutating func appendTools() throws(TranslateError) {
        if let tools = root.tools, present(tools) {
            guard document.isArray(tools) else { throw .invalidBody("'tools' must be an array.", param: "tools") }
            var index = 0
            var wroteAny = false
            for (_, fields) in document.objects(in: tools, Self.toolKeys) {
                let param = "tools[\(index)]"
                index += 1
                guard let type = fields[0], document.isString(type) else {
                    throw .invalidBody("Each tool needs a string 'type'.", param: "\(param).type")
                }
                guard document.string(type, is: "function") else {
                    let name = document.decodedString(type) ?? ""
                    throw .unsupported(
                        "Built-in tool '\(name)' runs inside OpenAI and cannot be sent to this backend; "
                            + "only 'function' tools can.", param: "\(param).type")
                }
                guard let name = nonEmptyString(fields[1]) else {
                    throw .invalidBody("A function tool needs a string 'name'.", param: "\(param).name")
                }
                let parameters = fields[3]
                guard document.isAbsentOrNull(parameters) || document.isObject(parameters) else {
                    throw .invalidBody("'parameters' must be a JSON Schema object.", param: "\(param).parameters")
                }
                if !wroteAny {
                    hub.key("tools")
                    hub.beginArray()
                    wroteAny = true
                }
                hub.beginObject()
                hub.key("type")
                hub.string("function")
                hub.key("function")
                hub.beginObject()
                hub.key("name")
                copy(name)
                if let description = fields[2], document.isString(description) {
                    hub.key("description")
                    copy(description)
                }
                hub.key("parameters")
                if let parameters, document.isObject(parameters) {
                    copy(parameters)
                } else {
                    hub.raw(#"{"type":"object","properties":{}}"#.utf8)
                }
                if let strict = document.bool(fields[4]) {
                    hub.key("strict")
                    hub.bool(strict)
                }
                hub.endObject()
                hub.endObject()
            }
            if wroteAny { hub.endArray() }
        }
        guard let choice = root.toolChoice, present(choice) else { return }
        switch document.kind(choice) {
        case .string?:
            guard let mode = ["auto", "none", "required"].first(where: { document.string(choice, is: $0) }) else {
                throw .invalidBody("'tool_choice' must be 'auto', 'none', 'required' or a function.", param: "tool_choice")
            }
            hub.key("tool_choice")
            hub.string(mode)
        case .object?:
            let fields = document.fields(of: choice, JSONKeys<2>("type", "name"))
            guard document.string(fields[0], is: "function") else {
                throw .unsupported("Only a 'function' tool_choice can be sent to this backend.", param: "tool_choice.type")
            }
            guard let name = nonEmptyString(fields[1]) else {
                throw .invalidBody("A function tool_choice needs a string 'name'.", param: "tool_choice.name")
            }
            hub.key("tool_choice")
            hub.beginObject()
            hub.key("type")
            hub.string("function")
            hub.key("function")
            hub.beginObject()
            hub.key("name")
            copy(name)
            hub.endObject()
            hub.endObject()
        default:
            throw .invalidBody("'tool_choice' must be a string or an object.", param: "tool_choice")
        }
    }

    private static let formatKeys = JSONKeys<5>("type", "name", "description", "schema", "strict")

    mutating func appendTextFormat() throws(TranslateError) {
        guard let text = root.text, present(text) else { return }
        guard document.isObject(text) else { throw .invalidBody("'text' must be an object.", param: "text") }
        guard let format = document.fields(of: text, JSONKeys<1>("format"))[0], present(format) else { return }
        let fields = document.fields(of: format, Self.formatKeys)
        if document.string(fields[0], is: "text") { return }
        if document.string(fields[0], is: "json_object") {
            hub.key("response_format")
            hub.raw(#"{"type":"json_object"}"#.utf8)
            return
        }
        guard document.string(fields[0], is: "json_schema") else {
            throw .invalidBody(
                "'text.format.type' must be 'text', 'json_object' or 'json_schema'.", param: "text.format.type")
        }
        guard let name = nonEmptyString(fields[1]) else {
            throw .invalidBody("A json_schema format needs a string 'name'.", param: "text.format.name")
        }
        guard let schema = fields[3], document.isObject(schema) else {
            throw .invalidBody("A json_schema format needs a 'schema' object.", param: "text.format.schema")
        }
        hub.key("response_format")
        hub.beginObject()
        hub.key("type")
        hub.string("json_schema")
        hub.key("json_schema")
        hub.beginObject()
        hub.key("name")
        copy(name)
        if let description = fields[2], document.isString(description) {
            hub.key("description")
            copy(description)
        }
        hub.key("schema")
        copy(schema)
        if let strict = document.bool(fields[4]) {
            hub.key("strict")
            hub.bool(strict)
        }
        hub.endObject()
        hub.endObject()
    }

    mutating func appendReasoning() throws(TranslateError) {
        guard let reasoning = root.reasoning, present(reasoning) else { return }
        guard document.isObject(reasoning) else {
            throw .invalidBody("'reasoning' must be an object.", param: "reasoning")
        }
        let fields = document.fields(of: reasoning, JSONKeys<2>("effort", "summary"))
        if let summary = fields[1], present(summary) {
            guard ResponsesTranslator.reasoningSummaries.contains(where: { document.string(summary, is: $0) }) else {
                throw .invalidBody(
                    "'reasoning.summary' must be one of auto, concise, detailed.", param: "reasoning.summary")
            }
        }
        guard let effort = fields[0], present(effort) else { return }
        guard document.isString(effort),
            let value = ResponsesTranslator.reasoningEfforts.first(where: { document.string(effort, is: $0) })
        else {
            throw .invalidBody(
                "'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh.", param: "reasoning.effort")
        }
        hub.key("reasoning_effort")
        hub.string(value)
    }
}

/// The request fields a Responses answer reports back (`instructions`, `tools`, `tool_choice`, ...), kept
/// from the request translation for the response or stream translation of the same attempt. The SDK's
/// `Response` model requires `tools`, `tool_choice` and `parallel_tool_calls`; the others are echoed as
/// OpenAI does (null or the documented default when the client left them out).
public struct ResponsesEcho: Sendable, Equatable {
    /// The members, serialised once: `"instructions":…,"max_output_tokens":…,…` (no braces), written into
    /// every response object of the answer (a stream writes it in created, in_progress and completed).
    public let members: [UInt8]

    /// The echo of a validated request: each field copied as the client sent it (without whitespace, so it
    /// can go into an SSE `data:` line), or its default.
    init(document: ValidatedJSON, root: ResponsesRequestFields) {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        for (name, value, fallback) in [
            ("instructions", root.instructions, "null"), ("max_output_tokens", root.maxOutputTokens, "null"),
            ("metadata", root.metadata, "{}"), ("parallel_tool_calls", root.parallelToolCalls, "true"),
            ("reasoning", root.reasoning, "null"), ("temperature", root.temperature, "null"),
            ("text", root.text, #"{"format":{"type":"text"}}"#), ("tool_choice", root.toolChoice, #""auto""#),
            ("tools", root.tools, "[]"), ("top_p", root.topP, "null"), ("user", root.user, "null"),
        ] {
            writer.key(name)
            if let value, !document.isAbsentOrNull(value) {
                document.writeCompact(value, to: &writer)
            } else {
                writer.raw(fallback.utf8)
            }
        }
        writer.endObject()
        let bytes = writer.bytes
        // Without the braces: the members are spliced into a larger object.
        members = bytes.count > 2 ? Array(bytes[1..<(bytes.count - 1)]) : []
    }

    /// No echo fields beyond the defaults (tests, or a request the translator did not see).
    public init() {
        let empty = ValidatedJSON(bytes: Array("{}".utf8), root: 0..<2)
        self.init(document: empty, root: ResponsesRequestFields(JSONFields<19>()))
    }
}

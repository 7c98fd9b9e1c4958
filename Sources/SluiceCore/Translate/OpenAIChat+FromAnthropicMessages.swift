// Anthropic Messages request (from an Anthropic-SDK client) -> OpenAI chat request (the hub), so that an
// Anthropic client can reach any backend. The inverse of `Anthropic+FromOpenAIChat.swift`: a request that
// goes through both comes out equivalent to the original.
//
// Mapping notes:
// - `system` becomes one leading system message (text parts keep `cache_control`).
// - `tool_result` blocks of a user turn become `tool` messages placed before the rest of that turn;
//   `is_error` is kept as a hub extension. Tool results may only hold text (OpenAI tool messages are text).
// - `thinking`/`redacted_thinking` blocks become `reasoning_content` + `thinking_blocks` (hub extensions).
// - Documents: base64 PDFs become `file` parts with a data: URI; URL PDFs become `image_url` parts, which the
//   Anthropic translator turns back into URL documents; plain-text documents become text parts.
// - `max_tokens` -> `max_completion_tokens`; `stop_sequences` -> `stop`; `metadata.user_id` -> `user`;
//   `tool_choice.disable_parallel_tool_use` -> `parallel_tool_calls: false`;
//   `output_config.format` -> `response_format` json_schema; `output_config.effort` -> `reasoning_effort`;
//   `thinking` and `top_k` stay as hub extensions.
// - Streams always ask for usage (`stream_options.include_usage`): Anthropic clients expect it.
// - Server tools (web search, code execution, ...) and their blocks cannot leave Anthropic: 400.
//
// One pass, no tree: the body is validated once (`JSONValidator`, the parser's rules and errors) and read in
// place by byte ranges; the hub request is written as the body is read, every string decoded and escaped again
// and every sub-document (schemas, `cache_control`, thinking blocks, stop lists) copied without whitespace, so
// the bytes are exactly those the tree this translation used to build serialised to. Checks run in the order
// they always did, so the first problem found is the one reported. What is needed out of order is read by range
// first: `system` (the first message) is a top-level member found with the others; a user turn's `tool_result`
// blocks become messages ahead of the turn's other parts, which wait in a second writer when there are any;
// an assistant turn is walked once to check its blocks, then once more for each of its joined text, reasoning,
// thinking blocks and tool calls.
// For an OpenAI-compatible backend the same pass writes that backend's body (`HubTarget.openAI`): the upstream
// model, none of the hub extensions, and `stream_options.include_usage` last when the gateway needs a stream's
// usage, as `OpenAIHub.serialize` wrote them from the tree.

extension AnthropicTranslator {
    /// What an Anthropic client's request is written as.
    enum HubTarget: Equatable {
        /// The hub request, extensions included, for the translators of the other backends to read.
        case hub
        /// An OpenAI-compatible backend's body: `model` is the upstream model; the hub extensions (`thinking`,
        /// `top_k`, `thinking_blocks`, `is_error`, `cache_control`) are left out, since OpenAI refuses members it
        /// does not know; with `forceStreamUsage`, `stream_options` asks for usage and comes last.
        case openAI(model: String, forceStreamUsage: Bool)
    }

    /// Translates an Anthropic Messages request body into the OpenAI hub request.
    /// - Parameter body: the client's Anthropic request.
    /// - Returns: the equivalent OpenAI chat request, compact JSON.
    /// - Throws: `TranslateError` (400) for a body that is not JSON, or naming the Anthropic field that cannot
    ///   be expressed.
    public static func openAIRequest(fromAnthropic body: [UInt8]) throws(TranslateError) -> [UInt8] {
        let (document, fields) = try validatedClientBody(body)
        return try AnthropicHubTranslation(document: document, root: AnthropicRequestFields(fields), target: .hub)
            .translate()
    }

    /// Translates a parsed Anthropic request (a caller holding a tree): the tree is serialised, read as a body
    /// would be, and the hub parsed again.
    public static func openAIRequest(fromAnthropic body: JSONValue) throws(TranslateError) -> JSONValue {
        // A tree may nest deeper than a client's body may, and repeat a name (its lookups take the first).
        let limits = JSONLimits(maxDepth: JSONLimits.maxSupportedDepth, maxBytes: .max)
        var validator = JSONValidator(limits: limits, duplicateKeys: .allow)
        do {
            let (document, fields) = try validator.validate(body.serialized(), capturing: AnthropicRequestFields.keys)
            let hub = try AnthropicHubTranslation(document: document, root: AnthropicRequestFields(fields), target: .hub)
                .translate()
            return try JSONParser.parse(hub, limits: limits)
        } catch let error as TranslateError {
            throw error
        } catch {
            throw .invalidBody("The request body is nested too deeply.")
        }
    }

    /// An Anthropic client's request as an OpenAI-compatible backend's body (`OpenAIAdapter`).
    /// - Throws: `TranslateError` (400) as `openAIRequest(fromAnthropic:)`.
    static func openAIBody(fromAnthropic body: [UInt8], model: String, forceStreamUsage: Bool) throws(TranslateError)
        -> [UInt8]
    {
        let (document, fields) = try validatedClientBody(body)
        return try AnthropicHubTranslation(
            document: document, root: AnthropicRequestFields(fields),
            target: .openAI(model: model, forceStreamUsage: forceStreamUsage)
        ).translate()
    }

    /// An Anthropic client's request as the hub request the one-pass translators read
    /// (`ProviderAttempt.openAIChatRequest`): written once and handed over as written, not read again.
    /// - Throws: `TranslateError` (400) as `openAIRequest(fromAnthropic:)`, and for a hub beyond the parser's
    ///   limits (see below).
    static func chatRequest(fromAnthropic body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        // The hub used to be serialised and validated again with the parser's limits before the translators read
        // it. It nests `system` blocks two levels deeper than the request does (and tool schemas one), and can
        // outgrow the size limit (data: URIs, tool input as escaped strings), so a body close to those limits
        // was refused then with "not valid JSON". Such a body is rare: it alone has its hub checked again, found
        // by validating with two levels less room, and then again with the full room for the client's error.
        let limits = JSONLimits()
        var nearLimits = false
        var validator = JSONValidator(limits: JSONLimits(maxDepth: limits.maxDepth - 2))
        let document: ValidatedJSON
        let fields: AnthropicRequestFields.Fields
        do throws(JSONParseError) {
            (document, fields) = try validator.validate(body, capturing: AnthropicRequestFields.keys)
        } catch {
            guard error.kind == .tooDeep else { throw parseError(error) }
            nearLimits = true
            (document, fields) = try validatedClientBody(body)
        }
        let hub = try AnthropicHubTranslation(document: document, root: AnthropicRequestFields(fields), target: .hub)
            .translate()
        if nearLimits || hub.count > limits.maxBytes {
            var validator = JSONValidator()
            do throws(JSONParseError) {
                _ = try validator.validate(hub)
            } catch {
                throw .invalidBody("The request body is not valid JSON: \(error.description)")
            }
        }
        return OpenAIChatRequest(written: hub)
    }

    /// A count request's conversation (`POST /v1/messages/count_tokens`, which has no `max_tokens`) as the hub
    /// request the one-pass translators read: `max_tokens` is the smallest, 1, which the count leaves out
    /// again, and `stream` is ignored.
    /// - Throws: `TranslateError` (400) for a body that is not a JSON object, or naming the field that cannot
    ///   be expressed.
    static func countedChatRequest(fromAnthropic body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        var validator = JSONValidator()
        let document: ValidatedJSON
        let fields: AnthropicRequestFields.Fields
        do throws(JSONParseError) {
            (document, fields) = try validator.validate(body, capturing: AnthropicRequestFields.keys)
        } catch {
            throw .invalidBody("The request body must be a JSON object.")
        }
        guard document.isObject(document.root) else { throw .invalidBody("The request body must be a JSON object.") }
        let hub = try AnthropicHubTranslation(
            document: document, root: AnthropicRequestFields(fields), target: .hub, counting: true
        ).translate()
        return OpenAIChatRequest(written: hub)
    }

    /// Validates a client's body with the parser's limits, refusing one that is not JSON with the parser's error.
    private static func validatedClientBody(_ body: [UInt8]) throws(TranslateError)
        -> (ValidatedJSON, AnthropicRequestFields.Fields)
    {
        var validator = JSONValidator()
        do throws(JSONParseError) {
            return try validator.validate(body, capturing: AnthropicRequestFields.keys)
        } catch {
            throw parseError(error)
        }
    }

    @inline(never)
    private static func parseError(_ error: JSONParseError) -> TranslateError {
        .invalidBody("We could not parse the JSON body of your request: \(error.description).")
    }
}

// MARK: - Members read

/// The top-level members of a Messages request the translation reads.
struct AnthropicRequestFields {
    typealias Fields = JSONFields<14>
    static let keys = JSONKeys<14>(
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "stream",
        "metadata", "tools", "tool_choice", "output_config", "thinking")

    let model, messages, system, maxTokens, temperature, topP, topK, stopSequences, stream: Range<Int>?
    let metadata, tools, toolChoice, outputConfig, thinking: Range<Int>?

    init(_ fields: JSONFields<14>) {
        model = fields[0]
        messages = fields[1]
        system = fields[2]
        maxTokens = fields[3]
        temperature = fields[4]
        topP = fields[5]
        topK = fields[6]
        stopSequences = fields[7]
        stream = fields[8]
        metadata = fields[9]
        tools = fields[10]
        toolChoice = fields[11]
        outputConfig = fields[12]
        thinking = fields[13]
    }
}

/// The members of a content block (of a message, of `system`, or inside a tool result) the translation reads.
private struct AnthropicBlock {
    static let keys = JSONKeys<12>(
        "type", "text", "cache_control", "source", "title", "tool_use_id", "content", "is_error", "thinking", "id",
        "name", "input")

    let type, text, cacheControl, source, title, toolUseID, content, isError, thinking, id, name, input: Range<Int>?

    init(_ fields: JSONFields<12>) {
        type = fields[0]
        text = fields[1]
        cacheControl = fields[2]
        source = fields[3]
        title = fields[4]
        toolUseID = fields[5]
        content = fields[6]
        isError = fields[7]
        thinking = fields[8]
        id = fields[9]
        name = fields[10]
        input = fields[11]
    }
}

/// The members read of the smaller objects, named once (a `JSONKeys` built per use would allocate).
private enum AnthropicKeys {
    static let message = JSONKeys<2>("role", "content")
    static let type = JSONKeys<1>("type")
    static let source = JSONKeys<4>("type", "media_type", "data", "url")
    static let tool = JSONKeys<6>("type", "name", "description", "input_schema", "strict", "cache_control")
    static let toolChoice = JSONKeys<3>("type", "name", "disable_parallel_tool_use")
    static let outputConfig = JSONKeys<2>("format", "effort")
    static let format = JSONKeys<2>("type", "schema")
}

// MARK: - The translation

/// One Anthropic request being translated: the validated body read in place. The writers are passed along
/// rather than kept here, as a user turn writes into two.
private struct AnthropicHubTranslation {
    let document: ValidatedJSON
    let root: AnthropicRequestFields
    let target: AnthropicTranslator.HubTarget
    /// A count request's conversation: `max_tokens` is 1 and `stream` is not read.
    var counting = false

    /// The hub's own members (`thinking`, `cache_control`, ...) are written (the hub), or left out (an OpenAI body).
    var keepsExtensions: Bool { target == .hub }

    /// The value `range` is present and not `null`.
    func present(_ range: Range<Int>?) -> Bool { !document.isAbsentOrNull(range) }

    func copy(_ range: Range<Int>, _ writer: inout JSONWriter) { document.writeCanonical(range, to: &writer) }

    func translate() throws(TranslateError) -> [UInt8] {
        guard document.isObject(document.root) else { throw .invalidBody("The request body must be a JSON object.") }
        guard let model = root.model, document.isString(model) else {
            throw .invalidBody("'model' must be a string.", param: "model")
        }
        guard let messages = root.messages, document.isArray(messages) else {
            throw .invalidBody("'messages' must be an array of messages.", param: "messages")
        }
        var hub = JSONWriter(reservingCapacity: document.bytes.count + 64)
        hub.beginObject()
        hub.key("model")
        switch target {
        case .hub: copy(model, &hub)
        case .openAI(let upstreamModel, _): hub.string(upstreamModel)
        }
        hub.key("messages")
        hub.beginArray()
        try writeSystem(&hub)
        // A user turn's parts wait here while its tool results are written as messages before it.
        var heldParts = JSONWriter()
        var index = 0
        for (_, fields) in document.objects(in: messages, AnthropicKeys.message) {
            try writeMessage(role: fields[0], content: fields[1], index: index, &hub, &heldParts)
            index += 1
        }
        hub.endArray()

        if counting {
            hub.key("max_completion_tokens")
            hub.int(1)
        } else if let maxTokens = root.maxTokens, present(maxTokens) {
            guard document.int64(maxTokens) != nil else {
                throw .invalidBody("'max_tokens' must be an integer.", param: "max_tokens")
            }
            hub.key("max_completion_tokens")
            copy(maxTokens, &hub)
        }
        try writeNumber("temperature", root.temperature, &hub)
        try writeNumber("top_p", root.topP, &hub)
        try writeNumber("top_k", root.topK, written: keepsExtensions, &hub)
        if let stops = root.stopSequences, present(stops) {
            guard document.isArray(stops), document.elements(of: stops).allSatisfy({ document.isString($0) }) else {
                throw .invalidBody("'stop_sequences' must be an array of strings.", param: "stop_sequences")
            }
            if !document.isEmptyContainer(stops) {
                hub.key("stop")
                copy(stops, &hub)
            }
        }
        var forceStreamUsage = false
        if case .openAI(_, let force) = target { forceStreamUsage = force }
        if !counting, document.bool(root.stream) == true {
            hub.key("stream")
            hub.bool(true)
            if !forceStreamUsage { Self.writeStreamOptions(&hub) }
        }
        if let user = document.member("user_id", of: root.metadata), document.isString(user) {
            hub.key("user")
            copy(user, &hub)
        }
        try writeTools(&hub)
        try writeToolChoice(&hub)
        try writeOutputConfig(&hub)
        if keepsExtensions, let thinking = root.thinking, document.isObject(thinking) {
            hub.key("thinking")
            copy(thinking, &hub)
        }
        // The gateway needs a stream's usage: asked for last, whatever the client sent.
        if forceStreamUsage { Self.writeStreamOptions(&hub) }
        hub.endObject()
        return hub.bytes
    }

    /// A number member copied as it is, unless absent or `null` (checked even where it is not `written`).
    func writeNumber(_ name: String, _ value: Range<Int>?, written: Bool = true, _ hub: inout JSONWriter)
        throws(TranslateError)
    {
        guard let value, present(value) else { return }
        guard document.kind(value) == .number else { throw .invalidBody("'\(name)' must be a number.", param: name) }
        guard written else { return }
        hub.key(name)
        copy(value, &hub)
    }

    static func writeStreamOptions(_ hub: inout JSONWriter) {
        hub.key("stream_options")
        hub.raw(#"{"include_usage":true}"#.utf8)
    }

    // MARK: Messages

    func writeSystem(_ hub: inout JSONWriter) throws(TranslateError) {
        guard let system = root.system, present(system) else { return }
        switch document.kind(system) {
        case .string?:
            Self.beginMessage(role: "system", &hub)
            copy(system, &hub)
            hub.endObject()
        case .array?:
            Self.beginMessage(role: "system", &hub)
            hub.beginArray()
            var index = 0
            for (_, fields) in document.objects(in: system, AnthropicBlock.keys) {
                let block = AnthropicBlock(fields)
                guard document.string(block.type, is: "text"), let text = block.text, document.isString(text) else {
                    throw .invalidBody("System blocks must be text blocks.", param: "system[\(index)]")
                }
                writeTextPart(text, of: block, &hub)
                index += 1
            }
            hub.endArray()
            hub.endObject()
        default:
            throw .invalidBody("'system' must be a string or an array of text blocks.", param: "system")
        }
    }

    /// Opens a message and writes its role, then the `content` key.
    static func beginMessage(role: String, _ writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("role")
        writer.string(role)
        writer.key("content")
    }

    func writeMessage(
        role: Range<Int>?, content: Range<Int>?, index: Int, _ hub: inout JSONWriter, _ heldParts: inout JSONWriter
    ) throws(TranslateError) {
        let isUser = document.string(role, is: "user")
        guard isUser || document.string(role, is: "assistant") else {
            throw .invalidBody(
                "Each message needs a 'role' of 'user' or 'assistant'.", param: OpenAIChatParam.message(index, ".role"))
        }
        switch document.kind(content) {
        case .string?:
            Self.beginMessage(role: isUser ? "user" : "assistant", &hub)
            copy(content ?? 0..<0, &hub)
            hub.endObject()
        case .array?:
            if isUser {
                try writeUserTurn(content ?? 0..<0, message: index, &hub, &heldParts)
            } else {
                try writeAssistantTurn(content ?? 0..<0, message: index, &hub)
            }
        default:
            throw .invalidBody(
                "'content' must be a string or an array of content blocks.",
                param: OpenAIChatParam.message(index, ".content"))
        }
    }

    /// A user turn: its tool results as `tool` messages, then one user message with the other blocks, if any.
    func writeUserTurn(
        _ content: Range<Int>, message: Int, _ hub: inout JSONWriter, _ heldParts: inout JSONWriter
    ) throws(TranslateError) {
        var hasToolResults = false
        for (_, fields) in document.objects(in: content, AnthropicKeys.type)
        where document.string(fields[0], is: "tool_result") {
            hasToolResults = true
            break
        }
        guard hasToolResults else {
            // Every block is a part (or an error): written straight into the message.
            guard !document.isEmptyContainer(content) else { return }
            Self.beginMessage(role: "user", &hub)
            hub.beginArray()
            var index = 0
            for (_, fields) in document.objects(in: content, AnthropicBlock.keys) {
                try writeUserPart(AnthropicBlock(fields), message: message, index: index, &hub)
                index += 1
            }
            hub.endArray()
            hub.endObject()
            return
        }
        // The parts are held until the tool messages, which come first, are written.
        heldParts.bytes.removeAll(keepingCapacity: true)
        heldParts.beginArray()
        var partCount = 0
        var index = 0
        for (_, fields) in document.objects(in: content, AnthropicBlock.keys) {
            let block = AnthropicBlock(fields)
            if document.string(block.type, is: "tool_result") {
                try writeToolMessage(block, message: message, index: index, &hub)
            } else {
                try writeUserPart(block, message: message, index: index, &heldParts)
                partCount += 1
            }
            index += 1
        }
        heldParts.endArray()
        guard partCount > 0 else { return }
        Self.beginMessage(role: "user", &hub)
        hub.raw(heldParts.bytes)
        hub.endObject()
    }

    /// One block of a user turn other than a tool result, as a hub content part.
    func writeUserPart(_ block: AnthropicBlock, message: Int, index: Int, _ writer: inout JSONWriter)
        throws(TranslateError)
    {
        if document.string(block.type, is: "text") {
            guard let text = block.text, document.isString(text) else {
                throw .invalidBody("A text block needs a string 'text'.", param: OpenAIChatParam.part(message, index, ".text"))
            }
            writeTextPart(text, of: block, &writer)
        } else if document.string(block.type, is: "image") {
            try writeMedia(block, isDocument: false, message: message, index: index, &writer)
        } else if document.string(block.type, is: "document") {
            try writeMedia(block, isDocument: true, message: message, index: index, &writer)
        } else {
            throw unknownBlock(block.type, message: message, index: index)
        }
    }

    /// 400 for a block whose type the hub cannot carry, or that has none.
    @inline(never)
    func unknownBlock(_ type: Range<Int>?, message: Int, index: Int) -> TranslateError {
        guard let name = document.decodedString(type) else {
            return .invalidBody("Each content block needs a string 'type'.", param: OpenAIChatParam.part(message, index))
        }
        return .unsupported(
            "Content block type '\(name)' cannot be sent to this backend.", param: OpenAIChatParam.part(message, index))
    }

    /// `{"type":"text","text":…}` with the block's `cache_control`.
    func writeTextPart(_ text: Range<Int>, of block: AnthropicBlock, _ writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("type")
        writer.string("text")
        writer.key("text")
        copy(text, &writer)
        writeCacheControl(of: block, &writer)
        writer.endObject()
    }

    /// A block's `cache_control`, unless absent or `null` (or the target leaves it out).
    func writeCacheControl(of block: AnthropicBlock, _ writer: inout JSONWriter) {
        guard keepsExtensions, let cacheControl = block.cacheControl, present(cacheControl) else { return }
        writer.key("cache_control")
        copy(cacheControl, &writer)
    }

    func writeMedia(_ block: AnthropicBlock, isDocument: Bool, message: Int, index: Int, _ writer: inout JSONWriter)
        throws(TranslateError)
    {
        let source = document.fields(of: block.source, AnthropicKeys.source)
        let type = source[0]
        if document.string(type, is: "base64") {
            guard let mediaType = source[1], document.isString(mediaType), let data = source[2], document.isString(data)
            else {
                throw .invalidBody(
                    "A base64 source needs 'media_type' and 'data'.", param: OpenAIChatParam.part(message, index, ".source"))
            }
            writer.beginObject()
            writer.key("type")
            if isDocument {
                writer.string("file")
                writer.key("file")
                writer.beginObject()
                writer.key("file_data")
                writeDataURI(mediaType: mediaType, data: data, &writer)
                if let title = block.title, document.isString(title) {
                    writer.key("filename")
                    copy(title, &writer)
                }
                writer.endObject()
            } else {
                writer.string("image_url")
                writer.key("image_url")
                writer.beginObject()
                writer.key("url")
                writeDataURI(mediaType: mediaType, data: data, &writer)
                writer.endObject()
            }
            writeCacheControl(of: block, &writer)
            writer.endObject()
        } else if document.string(type, is: "url") {
            guard let url = source[3], document.isString(url) else {
                throw .invalidBody("A url source needs 'url'.", param: OpenAIChatParam.part(message, index, ".source.url"))
            }
            writer.beginObject()
            writer.key("type")
            writer.string("image_url")
            writer.key("image_url")
            writer.beginObject()
            writer.key("url")
            copy(url, &writer)
            writer.endObject()
            writeCacheControl(of: block, &writer)
            writer.endObject()
        } else if isDocument, document.string(type, is: "text") {
            guard let data = source[2], document.isString(data) else {
                throw .invalidBody("A text source needs 'data'.", param: OpenAIChatParam.part(message, index, ".source.data"))
            }
            writeTextPart(data, of: block, &writer)
        } else {
            throw .unsupported(
                "This media source type cannot be sent to this backend.",
                param: OpenAIChatParam.part(message, index, ".source.type"))
        }
    }

    /// `"data:<media type>;base64,<data>"`.
    func writeDataURI(mediaType: Range<Int>, data: Range<Int>, _ writer: inout JSONWriter) {
        writer.beginRawValue()
        writer.bytes.append(JSONByte.quote)
        writer.bytes.append(contentsOf: "data:".utf8)
        document.appendCanonicalContent(ofString: mediaType, to: &writer.bytes)
        writer.bytes.append(contentsOf: ";base64,".utf8)
        document.appendCanonicalContent(ofString: data, to: &writer.bytes)
        writer.bytes.append(JSONByte.quote)
        writer.endRawValue()
    }

    func writeToolMessage(_ block: AnthropicBlock, message: Int, index: Int, _ hub: inout JSONWriter)
        throws(TranslateError)
    {
        guard let id = block.toolUseID, document.isString(id) else {
            throw .invalidBody(
                "A tool_result block needs 'tool_use_id'.", param: OpenAIChatParam.part(message, index, ".tool_use_id"))
        }
        hub.beginObject()
        hub.key("role")
        hub.string("tool")
        hub.key("tool_call_id")
        copy(id, &hub)
        hub.key("content")
        switch document.kind(block.content) {
        case nil, .null?:
            hub.string("")
        case .string?:
            copy(block.content ?? 0..<0, &hub)
        case .array?:
            hub.beginArray()
            var itemIndex = 0
            for (_, fields) in document.objects(in: block.content, AnthropicBlock.keys) {
                let item = AnthropicBlock(fields)
                guard document.string(item.type, is: "text"), let text = item.text, document.isString(text) else {
                    throw .unsupported(
                        "Tool results can only carry text for this backend.",
                        param: OpenAIChatParam.part(message, index, ".content[\(itemIndex)]"))
                }
                writeTextPart(text, of: item, &hub)
                itemIndex += 1
            }
            hub.endArray()
        default:
            throw .invalidBody(
                "'content' must be a string or an array of blocks.",
                param: OpenAIChatParam.part(message, index, ".content"))
        }
        if keepsExtensions, document.bool(block.isError) == true {
            hub.key("is_error")
            hub.bool(true)
        }
        hub.endObject()
    }

    /// An assistant turn as one message: its text blocks joined into `content`, its thinking into
    /// `reasoning_content` and `thinking_blocks`, its tool uses as `tool_calls`.
    func writeAssistantTurn(_ content: Range<Int>, message: Int, _ hub: inout JSONWriter) throws(TranslateError) {
        // First every block is checked, in order, and what the message will hold is noted.
        var hasText = false
        var hasReasoning = false
        var hasThinkingBlocks = false
        var hasToolCalls = false
        var index = 0
        for (_, fields) in document.objects(in: content, AnthropicBlock.keys) {
            let block = AnthropicBlock(fields)
            if document.string(block.type, is: "text") {
                guard let text = block.text, document.isString(text) else {
                    throw .invalidBody(
                        "A text block needs a string 'text'.", param: OpenAIChatParam.part(message, index, ".text"))
                }
                if !document.isEmptyString(text) { hasText = true }
            } else if document.string(block.type, is: "thinking") {
                if let thinking = block.thinking, document.isString(thinking), !document.isEmptyString(thinking) {
                    hasReasoning = true
                }
                hasThinkingBlocks = true
            } else if document.string(block.type, is: "redacted_thinking") {
                hasThinkingBlocks = true
            } else if document.string(block.type, is: "tool_use") {
                guard document.isString(block.id), document.isString(block.name) else {
                    throw .invalidBody("A tool_use block needs 'id' and 'name'.", param: OpenAIChatParam.part(message, index))
                }
                hasToolCalls = true
            } else {
                throw unknownBlock(block.type, message: message, index: index)
            }
            index += 1
        }
        Self.beginMessage(role: "assistant", &hub)
        if hasToolCalls && !hasText {
            hub.null()
        } else {
            writeJoined(content, type: "text", { $0.text }, &hub)
        }
        if hasReasoning {
            hub.key("reasoning_content")
            writeJoined(content, type: "thinking", { $0.thinking }, &hub)
        }
        if keepsExtensions && hasThinkingBlocks {
            hub.key("thinking_blocks")
            hub.beginArray()
            for (range, fields) in document.objects(in: content, AnthropicKeys.type)
            where document.string(fields[0], is: "thinking") || document.string(fields[0], is: "redacted_thinking") {
                copy(range, &hub)
            }
            hub.endArray()
        }
        if hasToolCalls {
            hub.key("tool_calls")
            hub.beginArray()
            for (_, fields) in document.objects(in: content, AnthropicBlock.keys) {
                let block = AnthropicBlock(fields)
                guard document.string(block.type, is: "tool_use"), let id = block.id, let name = block.name else {
                    continue
                }
                hub.beginObject()
                hub.key("id")
                copy(id, &hub)
                hub.key("type")
                hub.string("function")
                hub.key("function")
                hub.beginObject()
                hub.key("name")
                copy(name, &hub)
                hub.key("arguments")
                if let input = block.input {
                    document.writeCanonicalAsString(input, to: &hub)
                } else {
                    hub.string("{}")
                }
                hub.endObject()
                hub.endObject()
            }
            hub.endArray()
        }
        hub.endObject()
    }

    /// One string joined from the string member `member` of every block of type `type`, in order.
    func writeJoined(
        _ content: Range<Int>, type: String, _ member: (AnthropicBlock) -> Range<Int>?, _ writer: inout JSONWriter
    ) {
        writer.beginRawValue()
        writer.bytes.append(JSONByte.quote)
        for (_, fields) in document.objects(in: content, AnthropicBlock.keys) {
            let block = AnthropicBlock(fields)
            guard document.string(block.type, is: type), let piece = member(block) else { continue }
            document.appendCanonicalContent(ofString: piece, to: &writer.bytes)
        }
        writer.bytes.append(JSONByte.quote)
        writer.endRawValue()
    }

    // MARK: Tools and output

    func writeTools(_ hub: inout JSONWriter) throws(TranslateError) {
        guard let tools = root.tools, present(tools) else { return }
        guard document.isArray(tools) else { throw .invalidBody("'tools' must be an array.", param: "tools") }
        var index = 0
        for (_, fields) in document.objects(in: tools, AnthropicKeys.tool) {
            if let type = fields[0], document.isString(type), !document.string(type, is: "custom") {
                throw .unsupported(
                    "Server tool '\(document.decodedString(type) ?? "")' cannot be sent to this backend.",
                    param: "tools[\(index)].type")
            }
            guard let name = fields[1], document.isString(name) else {
                throw .invalidBody("A tool needs a string 'name'.", param: "tools[\(index)].name")
            }
            if index == 0 {
                hub.key("tools")
                hub.beginArray()
            }
            hub.beginObject()
            hub.key("type")
            hub.string("function")
            hub.key("function")
            hub.beginObject()
            hub.key("name")
            copy(name, &hub)
            if let description = fields[2], document.isString(description) {
                hub.key("description")
                copy(description, &hub)
            }
            hub.key("parameters")
            if let schema = fields[3] {
                copy(schema, &hub)
            } else {
                hub.raw(#"{"type":"object"}"#.utf8)
            }
            if let strict = document.bool(fields[4]) {
                hub.key("strict")
                hub.bool(strict)
            }
            hub.endObject()
            if keepsExtensions, let cacheControl = fields[5], present(cacheControl) {
                hub.key("cache_control")
                copy(cacheControl, &hub)
            }
            hub.endObject()
            index += 1
        }
        if index > 0 { hub.endArray() }
    }

    func writeToolChoice(_ hub: inout JSONWriter) throws(TranslateError) {
        guard let choice = root.toolChoice, present(choice) else { return }
        let fields = document.fields(of: choice, AnthropicKeys.toolChoice)
        let type = fields[0]
        if document.string(type, is: "auto") {
            hub.key("tool_choice")
            hub.string("auto")
        } else if document.string(type, is: "any") {
            hub.key("tool_choice")
            hub.string("required")
        } else if document.string(type, is: "none") {
            hub.key("tool_choice")
            hub.string("none")
        } else if document.string(type, is: "tool") {
            guard let name = fields[1], document.isString(name) else {
                throw .invalidBody("A 'tool' tool_choice needs 'name'.", param: "tool_choice.name")
            }
            hub.key("tool_choice")
            hub.beginObject()
            hub.key("type")
            hub.string("function")
            hub.key("function")
            hub.beginObject()
            hub.key("name")
            copy(name, &hub)
            hub.endObject()
            hub.endObject()
        } else {
            throw .invalidBody("Unknown 'tool_choice.type'.", param: "tool_choice.type")
        }
        if document.bool(fields[2]) == true {
            hub.key("parallel_tool_calls")
            hub.bool(false)
        }
    }

    func writeOutputConfig(_ hub: inout JSONWriter) throws(TranslateError) {
        guard let config = root.outputConfig, present(config) else { return }
        let fields = document.fields(of: config, AnthropicKeys.outputConfig)
        if let format = fields[0], present(format) {
            let formatFields = document.fields(of: format, AnthropicKeys.format)
            guard document.string(formatFields[0], is: "json_schema"), let schema = formatFields[1] else {
                throw .invalidBody(
                    "'output_config.format' must be a json_schema format.", param: "output_config.format")
            }
            hub.key("response_format")
            hub.beginObject()
            hub.key("type")
            hub.string("json_schema")
            hub.key("json_schema")
            hub.beginObject()
            hub.key("name")
            hub.string("output")
            hub.key("schema")
            copy(schema, &hub)
            hub.key("strict")
            hub.bool(true)
            hub.endObject()
            hub.endObject()
        }
        if let effort = fields[1], document.isString(effort) {
            hub.key("reasoning_effort")
            copy(effort, &hub)
        }
    }
}

// OpenAI Chat Completions request (the hub) -> Anthropic Messages request body (SluiceCore.docc, ProviderWireShapes, "Anthropic Messages").
//
// Choices where the mapping is not one-to-one:
// - `temperature` above 1 is clamped to 1 (Anthropic's range is 0...1; OpenAI's is 0...2). EAIG answers 400
//   instead; a client tuned for OpenAI usually means "more random", and 1 is the closest Anthropic offers.
// - `max_tokens` is required by Anthropic: the per-model default from the context fills it in.
// - `n > 1` and content parts Anthropic cannot take (audio, files by id) are a 400 naming the field.
// - `response_format: json_object` has no Anthropic equivalent and is a 400 (use `json_schema`); silently
//   dropping it would hand the client prose it then fails to parse.
// - `reasoning_effort` becomes `output_config.effort` (`minimal` -> `low`, `none` -> omitted).
// - `logprobs`, `seed`, penalties, `logit_bias`, `stream_options`, `store`, `service_tier` are dropped.
// - Consecutive turns of the same role are merged (tool results and a following user message become one
//   user turn, tool results first), so the upstream never sees two user turns in a row.
//
// One pass over the body (`OpenAIChatRequest`): messages are written as they are read, strings and
// sub-documents copied as they are. Two things need more than the current message: a user turn that is a single
// string is written as a plain string unless a same-role message merges into it (its range is held back until
// the next block or the end of the turn), and `system` gathers system/developer messages from anywhere (their
// content is checked in message order, then written by a second look at those messages).

extension AnthropicTranslator {
    /// Translates a parsed OpenAI chat request into an Anthropic Messages request body.
    /// - Parameters:
    ///   - body: the client's request, parsed (or the hub request of an Anthropic client).
    ///   - context: upstream model and the default `max_tokens`.
    ///   - flavor: native API, Vertex rawPredict or Bedrock InvokeModel (model in the URL, not the body).
    /// - Returns: the compact JSON body to send upstream.
    /// - Throws: `TranslateError` (400) naming the field the backend cannot take.
    public static func request(
        fromOpenAIChat body: JSONValue, context: TranslationContext, flavor: Flavor = .native
    ) throws(TranslateError) -> [UInt8] {
        guard body.objectValue != nil else { throw .invalidBody("The request body must be a JSON object.") }
        let request: OpenAIChatRequest
        do {
            request = try OpenAIChatRequest(serialized: body)
        } catch {
            // Only a hand-built tree nested deeper than any parser accepts ends here.
            throw .invalidBody("The request body is nested too deeply.")
        }
        return try Self.request(fromOpenAIChat: request, context: context, flavor: flavor)
    }

    /// Translates an OpenAI chat request body into an Anthropic Messages request body.
    /// - Throws: `TranslateError` (400) for a body that is not JSON, or naming the field the backend cannot take.
    public static func request(
        fromOpenAIChat body: [UInt8], context: TranslationContext, flavor: Flavor = .native
    ) throws(TranslateError) -> [UInt8] {
        let request: OpenAIChatRequest
        do {
            request = try OpenAIChatRequest(body: body)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        return try Self.request(fromOpenAIChat: request, context: context, flavor: flavor)
    }

    /// Translates a validated OpenAI chat request.
    static func request(
        fromOpenAIChat request: OpenAIChatRequest, context: TranslationContext, flavor: Flavor = .native
    ) throws(TranslateError) -> [UInt8] {
        var translation = AnthropicRequestTranslation(request: request, context: context, flavor: flavor)
        try translation.write()
        return translation.writer.bytes
    }
}

/// One translation in progress: the request being read and the body being written.
private struct AnthropicRequestTranslation {
    enum Role {
        case user, assistant

        var name: String {
            switch self {
            case .user: "user"
            case .assistant: "assistant"
            }
        }
    }

    var request: OpenAIChatRequest
    let context: TranslationContext
    let flavor: AnthropicTranslator.Flavor
    var writer: JSONWriter

    /// The role of the turn whose content is being written, if one is open.
    var openTurn: Role?
    /// A user turn opened by string content: the string, written plainly unless another block joins the turn.
    var pendingText: Range<Int>?

    /// System blocks found so far, whether all of them are bare text (no `cache_control`), the text of the
    /// first, and the content of the only system message (when there is one).
    var systemBlockCount = 0
    var systemIsPlain = true
    var firstSystemText: Range<Int>?
    var systemMessageCount = 0
    var firstSystemContent: Range<Int>?

    init(request: OpenAIChatRequest, context: TranslationContext, flavor: AnthropicTranslator.Flavor) {
        self.request = request
        self.context = context
        self.flavor = flavor
        writer = JSONWriter(reservingCapacity: request.document.bytes.count + 256)
    }

    var document: ValidatedJSON { request.document }

    mutating func write() throws(TranslateError) {
        let document = self.document
        guard request.rootKind == .object else { throw .invalidBody("The request body must be a JSON object.") }
        if !document.isAbsentOrNull(request.n) {
            guard let count = document.int64(request.n) else {
                throw .invalidBody("'n' must be an integer.", param: "n")
            }
            if count > 1 {
                throw .unsupported(
                    "Anthropic models return a single choice; 'n' greater than 1 is not supported.",
                    param: "n")
            }
        }
        guard document.isArray(request.messages) else {
            throw .invalidBody("'messages' must be an array of messages.", param: "messages")
        }

        writer.beginObject()
        switch flavor {
        case .native:
            writer.key("model")
            writer.string(context.upstreamModel)
        case .vertex:
            writer.key("anthropic_version")
            writer.string("vertex-2023-10-16")
        case .bedrock:
            writer.key("anthropic_version")
            writer.string("bedrock-2023-05-31")
        }
        writer.key("messages")
        writer.beginArray()
        for (index, (_, scanned)) in document.objects(in: request.messages, OpenAIChatMessage.keys).enumerated() {
            try writeMessage(OpenAIChatMessage(scanned), index: index)
        }
        closeTurn()
        writer.endArray()
        writer.key("max_tokens")
        writer.int(try maxTokens())
        if systemBlockCount > 0 { writeSystem() }
        try writeSampling()
        try writeTools()
        try writeOutputConfig()
        if document.isObject(request.thinking), let thinking = request.thinking {
            writer.key("thinking")
            writer.copy(thinking, from: document)
        }
        if let user = document.stringRange(request.user), !document.isEmptyString(user) {
            writer.key("metadata")
            writer.beginObject()
            writer.key("user_id")
            writer.copy(user, from: document)
            writer.endObject()
        }
        if flavor != .bedrock, document.bool(request.stream) == true {
            writer.key("stream")
            writer.bool(true)
        }
        writer.endObject()
    }

    // MARK: - Turns

    /// Makes sure a turn of `role` is open and its content array started, so the caller can write one block.
    mutating func beginBlock(_ role: Role) {
        if openTurn == role {
            if let text = pendingText {
                pendingText = nil
                writer.beginArray()
                writeTextBlock(text, cacheControl: nil)
            }
            return
        }
        closeTurn()
        writer.beginObject()
        writer.key("role")
        writer.string(role.name)
        writer.key("content")
        writer.beginArray()
        openTurn = role
    }

    /// A user message whose content is a string: a turn of its own is that plain string.
    mutating func userText(_ text: Range<Int>) {
        if openTurn == .user {
            beginBlock(.user)
            writeTextBlock(text, cacheControl: nil)
            return
        }
        closeTurn()
        writer.beginObject()
        writer.key("role")
        writer.string("user")
        writer.key("content")
        openTurn = .user
        pendingText = text
    }

    mutating func closeTurn() {
        guard openTurn != nil else { return }
        if let text = pendingText {
            writer.copy(text, from: document)
            pendingText = nil
        } else {
            writer.endArray()
        }
        writer.endObject()
        openTurn = nil
    }

    // MARK: - Messages

    mutating func writeMessage(_ fields: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        guard let role = document.stringRange(fields.role) else {
            throw .invalidBody("Each message needs a string 'role'.", param: OpenAIChatParam.message(index, ".role"))
        }
        if document.string(role, is: "system") || document.string(role, is: "developer") {
            try checkSystem(fields.content, index: index)
        } else if document.string(role, is: "user") {
            if let text = document.stringRange(fields.content) {
                userText(text)
            } else {
                try writeUserBlocks(fields.content, index: index)
            }
        } else if document.string(role, is: "assistant") {
            try writeAssistantBlocks(fields, index: index)
        } else if document.string(role, is: "tool") {
            try writeToolResult(fields, index: index)
        } else if document.string(role, is: "function") {
            throw .unsupported(
                "Legacy 'function' messages are not supported; use 'tool' messages.",
                param: OpenAIChatParam.message(index, ".role"))
        } else {
            throw .invalidBody(
                "Unknown message role '\(document.decodedString(role) ?? "")'.",
                param: OpenAIChatParam.message(index, ".role"))
        }
    }

    /// System/developer content: a string or text parts, each becoming a text block (`cache_control` kept).
    /// Checked here, in message order; written by `writeSystem()`.
    mutating func checkSystem(_ content: Range<Int>?, index: Int) throws(TranslateError) {
        let document = self.document
        systemMessageCount += 1
        if systemMessageCount == 1 { firstSystemContent = content }
        if let text = document.stringRange(content) {
            noteSystemBlock(text: text, plain: true)
        } else if document.isArray(content) {
            for (partIndex, (_, scanned)) in document.objects(in: content, OpenAIChatPart.keys).enumerated() {
                let fields = OpenAIChatPart(scanned)
                guard document.string(fields.type, is: "text"), let text = fields.text else {
                    throw .unsupported("Only text parts are allowed here.", param: OpenAIChatParam.part(index, partIndex))
                }
                noteSystemBlock(text: text, plain: document.isAbsentOrNull(fields.cacheControl))
            }
        } else {
            throw .invalidBody(
                "'content' must be a string or an array of text parts.",
                param: OpenAIChatParam.message(index, ".content"))
        }
    }

    mutating func noteSystemBlock(text: Range<Int>, plain: Bool) {
        systemBlockCount += 1
        if systemBlockCount == 1 { firstSystemText = text }
        systemIsPlain = systemIsPlain && plain
    }

    /// `system`: one bare text block as a plain value, anything else as the list of blocks.
    mutating func writeSystem() {
        let document = self.document
        writer.key("system")
        if systemIsPlain, systemBlockCount == 1, let text = firstSystemText {
            writer.copy(text, from: document)
            return
        }
        writer.beginArray()
        if systemMessageCount == 1 {
            writeSystemBlocks(firstSystemContent)
        } else {
            for (_, scanned) in document.objects(in: request.messages, OpenAIChatMessage.keys) {
                let fields = OpenAIChatMessage(scanned)
                if document.string(fields.role, is: "system") || document.string(fields.role, is: "developer") {
                    writeSystemBlocks(fields.content)
                }
            }
        }
        writer.endArray()
    }

    /// The blocks of system content `checkSystem` accepted.
    mutating func writeSystemBlocks(_ content: Range<Int>?) {
        let document = self.document
        if let text = document.stringRange(content) {
            writeTextBlock(text, cacheControl: nil)
            return
        }
        for (_, scanned) in document.objects(in: content, OpenAIChatPart.keys) {
            let fields = OpenAIChatPart(scanned)
            if let text = fields.text { writeTextBlock(text, cacheControl: fields.cacheControl) }
        }
    }

    /// `{"type":"text","text":…}`, with the part's `cache_control` when it has one.
    mutating func writeTextBlock(_ text: Range<Int>, cacheControl: Range<Int>?) {
        let document = self.document
        writer.beginObject()
        writer.key("type")
        writer.string("text")
        writer.key("text")
        writer.copy(text, from: document)
        writeCacheControl(cacheControl)
        writer.endObject()
    }

    mutating func writeCacheControl(_ cacheControl: Range<Int>?) {
        guard let cacheControl, !document.isAbsentOrNull(cacheControl) else { return }
        writer.key("cache_control")
        writer.copy(cacheControl, from: document)
    }

    mutating func writeUserBlocks(_ content: Range<Int>?, index: Int) throws(TranslateError) {
        let document = self.document
        guard document.isArray(content) else {
            throw .invalidBody(
                "'content' must be a string or an array of content parts.",
                param: OpenAIChatParam.message(index, ".content"))
        }
        for (partIndex, (_, scanned)) in document.objects(in: content, OpenAIChatPart.keys).enumerated() {
            let fields = OpenAIChatPart(scanned)
            guard let type = document.stringRange(fields.type) else {
                throw .invalidBody(
                    "Each content part needs a string 'type'.", param: OpenAIChatParam.part(index, partIndex))
            }
            if document.string(type, is: "text") {
                guard let text = document.stringRange(fields.text) else {
                    throw .invalidBody(
                        "A text part needs a string 'text'.", param: OpenAIChatParam.part(index, partIndex, ".text"))
                }
                beginBlock(.user)
                writeTextBlock(text, cacheControl: fields.cacheControl)
            } else if document.string(type, is: "image_url") {
                let url = document.stringRange(document.member("url", of: fields.imageURL))
                    ?? document.stringRange(fields.imageURL)
                guard let url else {
                    throw .invalidBody(
                        "An image_url part needs 'image_url.url'.",
                        param: OpenAIChatParam.part(index, partIndex, ".image_url"))
                }
                let media = try mediaBlock(url, param: OpenAIChatParam.part(index, partIndex, ".image_url.url"))
                beginBlock(.user)
                writeMediaBlock(media, cacheControl: fields.cacheControl, title: nil)
            } else if document.string(type, is: "file") {
                // A PDF sent inline is a document; files by id live in OpenAI's storage and cannot be reached.
                guard let data = document.stringRange(document.member("file_data", of: fields.file)),
                    document.string(data, hasPrefix: "data:")
                else {
                    throw .unsupported(
                        "File parts are only supported as inline PDF data ('file.file_data' data: URI).",
                        param: OpenAIChatParam.part(index, partIndex))
                }
                let media = try mediaBlock(data, param: OpenAIChatParam.part(index, partIndex, ".file.file_data"))
                let title = document.stringRange(document.member("filename", of: fields.file))
                beginBlock(.user)
                writeMediaBlock(media, cacheControl: fields.cacheControl, title: media.isDocument ? title : nil)
            } else if document.string(type, is: "input_audio") {
                throw .unsupported(
                    "Anthropic models do not accept audio input.", param: OpenAIChatParam.part(index, partIndex))
            } else {
                throw .unsupported(
                    "Content part type '\(document.decodedString(type) ?? "")' is not supported by Anthropic models.",
                    param: OpenAIChatParam.part(index, partIndex))
            }
        }
    }

    // MARK: - Media

    typealias Text = OpenAIChatText

    /// An image or document block, before it is written.
    struct MediaBlock {
        var isDocument: Bool
        /// `(media type, base64 data)` for a data: URI, nil for a URL.
        var base64: (mediaType: String, data: Text)?
        var url: Text?
    }

    /// Image media types Anthropic accepts.
    static let imageTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    /// An image or document block from a data: URI or an http(s) URL.
    ///
    /// Plain ASCII URLs are read as bytes; a URL with escapes or non-ASCII text is decoded and read with
    /// `String`'s character semantics, as the tree-based translator read every URL.
    func mediaBlock(_ url: Range<Int>, param: String) throws(TranslateError) -> MediaBlock {
        let document = self.document
        guard let content = document.stringContent(url) else { return try Self.mediaBlock(url: "", param: param) }
        let bytes = document.bytes
        if document.content(of: url, hasPrefix: "data:") {
            // Only the header and the byte after the comma decide how `String` would split the URI.
            if let comma = document.firstIndex(of: JSONByte.comma, in: content),
                document.isPlainASCII(content: (content.lowerBound + 5)..<comma),
                comma + 1 >= content.upperBound
                    || (bytes[comma + 1] < 0x80 && bytes[comma + 1] != JSONByte.backslash)
            {
                return try dataURIBlock(header: (content.lowerBound + 5)..<comma,
                                        data: (comma + 1)..<content.upperBound, param: param)
            }
        } else if document.isPlainASCII(url) {
            guard document.lowercased(content.prefix(8), equals: "https://")
                || document.lowercased(content.prefix(7), equals: "http://")
            else {
                throw .unsupported("Only http(s) URLs and base64 data: URIs are supported.", param: param)
            }
            var pathEnd = content.upperBound
            for index in content where bytes[index] == UInt8(ascii: "?") || bytes[index] == UInt8(ascii: "#") {
                pathEnd = index
                break
            }
            let isPDF = pathEnd - content.lowerBound >= 4 && document.lowercased((pathEnd - 4)..<pathEnd, equals: ".pdf")
            return MediaBlock(isDocument: isPDF, base64: nil, url: .content(content))
        }
        return try Self.mediaBlock(url: document.decodedString(url) ?? "", param: param)
    }

    /// A base64 data URI whose header (between `data:` and the comma) is plain ASCII.
    func dataURIBlock(header: Range<Int>, data: Range<Int>, param: String) throws(TranslateError) -> MediaBlock {
        let document = self.document
        // `header.split(separator: ";")`: the first non-empty field is the media type, a later one must be base64.
        var mediaType: Range<Int>?
        var isBase64 = false
        var fieldStart = header.lowerBound
        for index in header.lowerBound...header.upperBound {
            guard index == header.upperBound || document.bytes[index] == UInt8(ascii: ";") else { continue }
            let field = fieldStart..<index
            fieldStart = index + 1
            guard !field.isEmpty else { continue }
            if mediaType == nil {
                mediaType = field
            } else if document.lowercased(field, equals: "base64") {
                isBase64 = true
            }
        }
        guard isBase64 else { throw .unsupported("Only base64 data: URIs are supported.", param: param) }
        let type = mediaType.map { document.lowercasedString($0) } ?? ""
        if type == "application/pdf" {
            return MediaBlock(isDocument: true, base64: (type, .content(data)), url: nil)
        }
        guard Self.imageTypes.contains(type) else { throw Self.unsupportedMediaType(type, param: param) }
        return MediaBlock(isDocument: false, base64: (type, .content(data)), url: nil)
    }

    /// The tree-based translator's reading of a URL, kept for URLs with escapes or non-ASCII text.
    static func mediaBlock(url: String, param: String) throws(TranslateError) -> MediaBlock {
        if url.hasPrefix("data:") {
            guard let comma = url.firstIndex(of: ",") else {
                throw .invalidBody("Malformed data: URI (no ',').", param: param)
            }
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            let fields = header.split(separator: ";")
            let mediaType = fields.first.map { $0.lowercased() } ?? ""
            guard fields.dropFirst().contains(where: { $0.lowercased() == "base64" }) else {
                throw .unsupported("Only base64 data: URIs are supported.", param: param)
            }
            let data = String(url[url.index(after: comma)...])
            if mediaType == "application/pdf" {
                return MediaBlock(isDocument: true, base64: (mediaType, .string(data)), url: nil)
            }
            guard imageTypes.contains(mediaType) else { throw unsupportedMediaType(mediaType, param: param) }
            return MediaBlock(isDocument: false, base64: (mediaType, .string(data)), url: nil)
        }
        let lower = url.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://") else {
            throw .unsupported("Only http(s) URLs and base64 data: URIs are supported.", param: param)
        }
        let path = lower.split(separator: "?", maxSplits: 1).first?.split(separator: "#", maxSplits: 1).first
        return MediaBlock(isDocument: path?.hasSuffix(".pdf") ?? false, base64: nil, url: .string(url))
    }

    @inline(never)
    static func unsupportedMediaType(_ mediaType: String, param: String) -> TranslateError {
        .unsupported(
            "Media type '\(mediaType)' is not supported; use image/jpeg, image/png, image/gif, image/webp "
                + "or application/pdf.", param: param)
    }

    mutating func writeMediaBlock(_ media: MediaBlock, cacheControl: Range<Int>?, title: Range<Int>?) {
        writer.beginObject()
        writer.key("type")
        writer.string(media.isDocument ? "document" : "image")
        writer.key("source")
        writer.beginObject()
        if let (mediaType, data) = media.base64 {
            writer.key("type")
            writer.string("base64")
            writer.key("media_type")
            writer.string(mediaType)
            writer.key("data")
            writer.string(data, from: document)
        } else if let url = media.url {
            writer.key("type")
            writer.string("url")
            writer.key("url")
            writer.string(url, from: document)
        }
        writer.endObject()
        writeCacheControl(cacheControl)
        if let title {
            writer.key("title")
            writer.copy(title, from: document)
        }
        writer.endObject()
    }

    // MARK: - Assistant and tool messages

    /// Assistant turn: thinking blocks (which must come first), text, then tool_use blocks.
    mutating func writeAssistantBlocks(_ message: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        if !document.isAbsentOrNull(message.thinkingBlocks) {
            guard document.isArray(message.thinkingBlocks) else {
                throw .invalidBody(
                    "'thinking_blocks' must be an array.", param: OpenAIChatParam.message(index, ".thinking_blocks"))
            }
            for (blockIndex, block) in document.elements(of: message.thinkingBlocks).enumerated() {
                let type = document.member("type", of: block)
                guard document.string(type, is: "thinking") || document.string(type, is: "redacted_thinking") else {
                    throw .invalidBody(
                        "Thinking blocks must be of type 'thinking' or 'redacted_thinking'.",
                        param: OpenAIChatParam.message(index, ".thinking_blocks[\(blockIndex)]"))
                }
                beginBlock(.assistant)
                writer.copy(block, from: document)
            }
        }
        // `reasoning_content` without a signature cannot be replayed to Anthropic, so it is dropped.
        if let text = document.stringRange(message.content) {
            if !document.isEmptyString(text) {
                beginBlock(.assistant)
                writeTextBlock(text, cacheControl: nil)
            }
        } else if document.isArray(message.content) {
            for (partIndex, (_, scanned)) in document.objects(in: message.content, OpenAIChatPart.keys).enumerated() {
                let fields = OpenAIChatPart(scanned)
                let text: Range<Int>?
                if document.string(fields.type, is: "text") {
                    text = document.stringRange(fields.text)
                } else if document.string(fields.type, is: "refusal") {
                    text = document.stringRange(fields.refusal)
                } else {
                    text = nil
                }
                guard let text else {
                    throw .unsupported(
                        "Assistant content parts must be text.", param: OpenAIChatParam.part(index, partIndex))
                }
                if !document.isEmptyString(text) {
                    beginBlock(.assistant)
                    writeTextBlock(text, cacheControl: fields.cacheControl)
                }
            }
        } else if !document.isAbsentOrNull(message.content) {
            throw .invalidBody(
                "'content' must be a string, an array or null.", param: OpenAIChatParam.message(index, ".content"))
        }
        if !document.isAbsentOrNull(message.toolCalls) {
            guard document.isArray(message.toolCalls) else {
                throw .invalidBody("'tool_calls' must be an array.", param: OpenAIChatParam.message(index, ".tool_calls"))
            }
            for (callIndex, (_, call)) in document.objects(in: message.toolCalls, OpenAIChatToolCall.keys).enumerated() {
                try writeToolUse(OpenAIChatToolCall(call), param: { OpenAIChatParam.message(index, ".tool_calls[\(callIndex)]") })
            }
        }
    }

    mutating func writeToolUse(_ fields: OpenAIChatToolCall, param: () -> String) throws(TranslateError) {
        let document = self.document
        if let type = document.stringRange(fields.type), !document.string(type, is: "function") {
            throw .unsupported(
                "Tool call type '\(document.decodedString(type) ?? "")' is not supported.", param: param() + ".type")
        }
        guard let id = document.stringRange(fields.id) else {
            throw .invalidBody("A tool call needs a string 'id'.", param: param() + ".id")
        }
        let function = OpenAIChatFunction(document, fields.function)
        guard let name = document.stringRange(function.name) else {
            throw .invalidBody("A tool call needs 'function.name'.", param: param() + ".function.name")
        }
        var input: ArraySlice<UInt8>?
        if let arguments = document.stringRange(function.arguments) {
            switch request.embeddedJSON(decoding: arguments) {
            case .blank: break
            case .object(let object): input = object
            case .other:
                throw .invalidBody("Tool call arguments must be a JSON object.", param: param() + ".function.arguments")
            }
        }
        beginBlock(.assistant)
        writer.beginObject()
        writer.key("type")
        writer.string("tool_use")
        writer.key("id")
        writer.copy(id, from: document)
        writer.key("name")
        writer.copy(name, from: document)
        writer.key("input")
        if let input {
            writer.raw(input)
        } else {
            writer.beginObject()
            writer.endObject()
        }
        writer.endObject()
    }

    mutating func writeToolResult(_ message: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        guard let id = document.stringRange(message.toolCallID) else {
            throw .invalidBody(
                "A tool message needs a string 'tool_call_id'.", param: OpenAIChatParam.message(index, ".tool_call_id"))
        }
        let content = message.content
        guard document.isString(content) || document.isArray(content) || document.isAbsentOrNull(content) else {
            throw .invalidBody(
                "'content' must be a string or an array of text parts.",
                param: OpenAIChatParam.message(index, ".content"))
        }
        beginBlock(.user)
        writer.beginObject()
        writer.key("type")
        writer.string("tool_result")
        writer.key("tool_use_id")
        writer.copy(id, from: document)
        if let text = document.stringRange(content) {
            writer.key("content")
            writer.copy(text, from: document)
        } else if document.isArray(content) {
            writer.key("content")
            writer.beginArray()
            for (partIndex, (_, scanned)) in document.objects(in: content, OpenAIChatPart.keys).enumerated() {
                let fields = OpenAIChatPart(scanned)
                guard document.string(fields.type, is: "text"), let text = fields.text else {
                    throw .unsupported("Only text parts are allowed here.", param: OpenAIChatParam.part(index, partIndex))
                }
                writeTextBlock(text, cacheControl: fields.cacheControl)
            }
            writer.endArray()
        }
        if document.bool(message.isError) == true {
            writer.key("is_error")
            writer.bool(true)
        }
        writer.endObject()
    }

    // MARK: - Parameters

    func maxTokens() throws(TranslateError) -> Int64 {
        let document = self.document
        if !document.isAbsentOrNull(request.maxCompletionTokens) {
            guard let tokens = document.int64(request.maxCompletionTokens), tokens > 0 else {
                throw .invalidBody("'max_completion_tokens' must be a positive integer.", param: "max_completion_tokens")
            }
            return tokens
        }
        if !document.isAbsentOrNull(request.maxTokens) {
            guard let tokens = document.int64(request.maxTokens), tokens > 0 else {
                throw .invalidBody("'max_tokens' must be a positive integer.", param: "max_tokens")
            }
            return tokens
        }
        return Int64(max(1, context.defaultMaxTokens))
    }

    mutating func writeSampling() throws(TranslateError) {
        let document = self.document
        if let value = request.temperature, !document.isAbsentOrNull(value) {
            guard let temperature = document.double(value) else {
                throw .invalidBody("'temperature' must be a number.", param: "temperature")
            }
            writer.key("temperature")
            if temperature > 1 { writer.int(1) } else { writer.copy(value, from: document) }
        }
        try copyNumber(request.topP, "top_p")
        try copyNumber(request.topK, "top_k")
        guard let stop = request.stop, !document.isAbsentOrNull(stop) else { return }
        if document.isString(stop) {
            writer.key("stop_sequences")
            writer.beginArray()
            writer.copy(stop, from: document)
            writer.endArray()
        } else if document.isArray(stop) {
            var isEmpty = true
            for element in document.elements(of: stop) {
                guard document.isString(element) else {
                    throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
                }
                isEmpty = false
            }
            if !isEmpty {
                writer.key("stop_sequences")
                writer.copy(stop, from: document)
            }
        } else {
            throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
        }
    }

    mutating func copyNumber(_ value: Range<Int>?, _ name: String) throws(TranslateError) {
        guard let value, !document.isAbsentOrNull(value) else { return }
        guard document.kind(value) == .number else { throw .invalidBody("'\(name)' must be a number.", param: name) }
        writer.key(name)
        writer.copy(value, from: document)
    }

    mutating func writeTools() throws(TranslateError) {
        let document = self.document
        guard let tools = request.tools, !document.isAbsentOrNull(tools) else { return }
        guard document.isArray(tools) else { throw .invalidBody("'tools' must be an array.", param: "tools") }
        guard !document.isEmptyContainer(tools) else { return }
        writer.key("tools")
        writer.beginArray()
        for (index, (_, scanned)) in document.objects(in: tools, OpenAIChatToolCall.keys).enumerated() {
            let fields = OpenAIChatToolCall(scanned)
            if let type = document.stringRange(fields.type), !document.string(type, is: "function") {
                throw .unsupported("Only function tools are supported.", param: "tools[\(index)].type")
            }
            let function = OpenAIChatFunction(document, fields.function)
            guard let name = document.stringRange(function.name) else {
                throw .invalidBody("A tool needs 'function.name'.", param: "tools[\(index)].function.name")
            }
            writer.beginObject()
            writer.key("name")
            writer.copy(name, from: document)
            if let description = document.stringRange(function.description) {
                writer.key("description")
                writer.copy(description, from: document)
            }
            writer.key("input_schema")
            if let schema = function.parameters, document.isObject(schema) {
                writer.copy(schema, from: document)
            } else {
                writer.beginObject()
                writer.key("type")
                writer.string("object")
                writer.key("properties")
                writer.beginObject()
                writer.endObject()
                writer.endObject()
            }
            if let strict = document.bool(function.strict) {
                writer.key("strict")
                writer.bool(strict)
            }
            writeCacheControl(fields.cacheControl)
            writer.endObject()
        }
        writer.endArray()

        let noParallel = document.bool(request.parallelToolCalls) == false
        let choice: String
        var name: Range<Int>?
        let toolChoice = request.toolChoice
        if document.isAbsentOrNull(toolChoice) {
            guard noParallel else { return }
            choice = "auto"
        } else if document.string(toolChoice, is: "auto") {
            choice = "auto"
        } else if document.string(toolChoice, is: "required") {
            choice = "any"
        } else if document.string(toolChoice, is: "none") {
            choice = "none"
        } else if document.isObject(toolChoice) {
            guard let named = document.stringRange(document.member("function", "name", of: toolChoice)) else {
                throw .invalidBody("A named tool_choice needs 'function.name'.", param: "tool_choice.function.name")
            }
            choice = "tool"
            name = named
        } else {
            throw .invalidBody(
                "'tool_choice' must be 'auto', 'required', 'none' or a named function.",
                param: "tool_choice")
        }
        writer.key("tool_choice")
        writer.beginObject()
        writer.key("type")
        writer.string(choice)
        if let name {
            writer.key("name")
            writer.copy(name, from: document)
        }
        // Anthropic's `none` choice has no parallelism flag.
        if noParallel, choice != "none" {
            writer.key("disable_parallel_tool_use")
            writer.bool(true)
        }
        writer.endObject()
    }

    mutating func writeOutputConfig() throws(TranslateError) {
        let document = self.document
        var schema: Range<Int>?
        if let format = request.responseFormat, !document.isAbsentOrNull(format) {
            let type = document.member("type", of: format)
            if document.string(type, is: "text") {
            } else if document.string(type, is: "json_schema") {
                guard let given = document.member("json_schema", "schema", of: format), document.isObject(given) else {
                    throw .invalidBody(
                        "'response_format.json_schema.schema' must be an object.",
                        param: "response_format.json_schema.schema")
                }
                schema = given
            } else if document.string(type, is: "json_object") {
                throw .unsupported(
                    "Anthropic models have no JSON mode; use response_format type 'json_schema' with a schema.",
                    param: "response_format.type")
            } else {
                throw .invalidBody("Unknown 'response_format.type'.", param: "response_format.type")
            }
        }
        var effort: Text?
        if let value = request.reasoningEffort, !document.isAbsentOrNull(value) {
            if document.string(value, is: "none") {
            } else if document.string(value, is: "minimal") {
                effort = .string("low")
            } else if document.string(value, is: "low") || document.string(value, is: "medium")
                || document.string(value, is: "high") || document.string(value, is: "xhigh")
                || document.string(value, is: "max"), let content = document.stringContent(value)
            {
                effort = .content(content)
            } else {
                throw .invalidBody("Unknown 'reasoning_effort'.", param: "reasoning_effort")
            }
        }
        guard schema != nil || effort != nil else { return }
        writer.key("output_config")
        writer.beginObject()
        if let schema {
            writer.key("format")
            writer.beginObject()
            writer.key("type")
            writer.string("json_schema")
            writer.key("schema")
            writer.copy(schema, from: document)
            writer.endObject()
        }
        if let effort {
            writer.key("effort")
            writer.string(effort, from: document)
        }
        writer.endObject()
    }
}

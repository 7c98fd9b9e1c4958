// OpenAI Chat Completions request -> Bedrock Converse / ConverseStream request (SluiceCore.docc, ProviderWireShapes, "AWS Bedrock Converse").
//
// The model goes into the URL path, not the body. What we do beyond the reference translator:
// - same-role turns are merged (Converse requires user/assistant alternation), tool results included;
// - PDFs and other documents (data URIs in `file` or `image_url` parts) become `document` blocks;
// - `toolConfig` is kept whenever the history has toolUse/toolResult blocks (Bedrock rejects such turns
//   without it); if the client sent no tools we declare the tools the history used with an open schema;
// - `response_format` (json_schema / json_object) becomes a forced tool named `json_response`; the response
//   translators turn that tool's input back into the message content (see `BedrockConverse.jsonResponseToolName`).
// Remote (http) images cannot be fetched from inside the filter: they are a clear 400 naming the field.
//
// One pass over the body (`OpenAIChatRequest`): turns are written as messages are read, strings and schemas
// copied from the body. What needs more than the current message: `system` (system messages from anywhere,
// checked in order and written by a second look at them), and `toolConfig`, which depends on the whole history
// (whether it has tool blocks, and the names of the tools it used: a small table of name ranges) and on `tools`,
// `tool_choice` and `response_format` together, so `tools` is checked first and written by a second scan.

/// Namespace of the Bedrock Converse translators.
public enum BedrockConverse {
    /// The tool that carries structured output when the client asked for `response_format` json.
    public static let jsonResponseToolName = "json_response"

    /// `/model/{modelId}/converse` or `/converse-stream`, with the model id (or inference profile / ARN)
    /// percent-encoded as one path segment (':' -> %3A, '/' -> %2F, everything but unreserved characters).
    public static func path(model: String, stream: Bool) -> String {
        // One buffer: the concatenation of the encoded id made five allocations an attempt.
        var path: [UInt8] = []
        path.reserveCapacity(32 + model.utf8.count * 3)
        path += "/model/".utf8
        SigV4Signer.appendURIEncoded(model.utf8, keepSlash: false, to: &path)
        path += (stream ? "/converse-stream" : "/converse").utf8
        return String(decoding: path, as: UTF8.self)
    }

    /// A translated request: the body, the path to POST it to, and what the response translators must know.
    public struct Request: Sendable, Equatable {
        public var body: [UInt8]
        public var path: String
        /// The request forced the `json_response` tool: its input is the answer's content.
        public var structuredOutput: Bool
    }

    /// Translates an OpenAI chat completion request body to a Converse request.
    /// - Throws: `TranslateError` (400) for malformed or unsupported input, naming the field at fault.
    public static func request(
        fromOpenAIChat body: [UInt8], context: TranslationContext
    ) throws(TranslateError) -> Request {
        let request: OpenAIChatRequest
        do {
            request = try OpenAIChatRequest(body: body)
        } catch {
            throw TranslateError.invalidBody("The request body is not valid JSON: \(error.description)")
        }
        return try Self.request(fromOpenAIChat: request, context: context)
    }

    /// Translates a validated OpenAI chat request.
    static func request(fromOpenAIChat request: OpenAIChatRequest, context: TranslationContext)
        throws(TranslateError) -> Request
    {
        var translation = ConverseRequestTranslation(request: request)
        let structuredOutput = try translation.write(model: context.upstreamModel)
        return Request(
            body: translation.writer.bytes, path: path(model: context.upstreamModel, stream: context.stream),
            structuredOutput: structuredOutput)
    }
}

// MARK: - Translation

private struct ConverseRequestTranslation {
    enum Role {
        case user, assistant

        var name: String {
            switch self {
            case .user: "user"
            case .assistant: "assistant"
            }
        }
    }

    /// Where `toolConfig.tools` comes from.
    enum Tools {
        case none
        /// The client's `tools` array (checked, not empty).
        case client(Range<Int>)
        /// The forced `json_response` tool: its schema (nil: `{"type":"object"}`) and description.
        case structured(schema: Range<Int>?, description: Range<Int>?)
        /// The tools the history used, with an open schema (or a placeholder when it used none by name).
        case history
    }

    enum ToolChoice {
        case unset, auto, none, required
        case named(Range<Int>)
    }

    var request: OpenAIChatRequest
    var writer: JSONWriter

    var openTurn: Role?
    /// System blocks found so far, and the content of the only system message (when there is one).
    var systemBlockCount = 0
    var systemMessageCount = 0
    var firstSystemContent: Range<Int>?
    /// Tool names used by toolUse blocks in the history, in first-seen order (values: the names' ranges).
    var historyToolNames = JSONStringTable<Range<Int>>()
    var historyHasToolBlocks = false
    var documentCount = 0

    init(request: OpenAIChatRequest) {
        self.request = request
        writer = JSONWriter(reservingCapacity: request.document.bytes.count + 256)
    }

    var document: ValidatedJSON { request.document }

    /// Writes the body; returns whether `response_format` became the forced `json_response` tool.
    mutating func write(model: String) throws(TranslateError) -> Bool {
        let document = self.document
        guard request.rootKind == .object else {
            throw TranslateError.invalidBody("The request body must be a JSON object.")
        }
        if !document.isAbsentOrNull(request.n), document.int64(request.n) != 1 {
            throw TranslateError.unsupported("Bedrock Converse returns one choice; 'n' must be 1.", param: "n")
        }
        guard document.isArray(request.messages) else {
            throw TranslateError.invalidBody("'messages' must be an array.", param: "messages")
        }
        writer.beginObject()
        writer.key("messages")
        writer.beginArray()
        for (index, (_, scanned)) in document.objects(in: request.messages, OpenAIChatMessage.keys).enumerated() {
            try add(OpenAIChatMessage(scanned), index: index)
        }
        closeTurn()
        writer.endArray()
        if systemBlockCount > 0 { writeSystem() }

        // Tools and tool choice, checked in the order their errors are reported.
        let choice = try toolChoice()
        var tools = try clientTools()
        var structuredOutput = false
        if let format = request.responseFormat, !document.isAbsentOrNull(format) {
            let typeValue = document.member("type", of: format)
            guard let type = document.stringRange(typeValue) else {
                throw TranslateError.invalidBody("'response_format.type' must be a string.", param: "response_format")
            }
            if document.string(type, is: "text") {
            } else if document.string(type, is: "json_schema") || document.string(type, is: "json_object") {
                if case .client = tools {
                    throw TranslateError.unsupported(
                        "Bedrock Converse implements response_format with a forced tool; it cannot be combined with 'tools'.",
                        param: "response_format")
                }
                var schema: Range<Int>?
                if document.string(type, is: "json_schema") {
                    guard let given = document.member("json_schema", "schema", of: format), document.isObject(given)
                    else {
                        throw TranslateError.invalidBody(
                            "'response_format.json_schema.schema' must be an object.", param: "response_format.json_schema")
                    }
                    schema = given
                }
                let description = document.stringRange(document.member("json_schema", "description", of: format))
                tools = .structured(schema: schema, description: description)
                structuredOutput = true
            } else {
                throw TranslateError.unsupported(
                    "Unsupported response_format type '\(document.decodedString(type) ?? "")'.",
                    param: "response_format.type")
            }
        }
        var writesChoice = false
        if !structuredOutput {
            let hasTools: Bool
            if case .client = tools { hasTools = true } else { hasTools = false }
            switch choice {
            case .unset, .auto: writesChoice = hasTools
            case .required, .named: writesChoice = true
            case .none:
                // Converse has no "none": omit toolChoice, and drop the tools entirely unless the history needs them.
                if !historyHasToolBlocks { tools = .none }
            }
            if case .none = tools, writesChoice {
                throw TranslateError.invalidBody("'tool_choice' requires 'tools'.", param: "tool_choice")
            }
        }
        if historyHasToolBlocks, case .none = tools { tools = .history }

        try writeInferenceConfig()
        writeToolConfig(tools, choice: structuredOutput ? nil : (writesChoice ? choice : nil))
        try writeAdditionalFields(model: model)
        if let tier = document.stringRange(request.serviceTier), !document.string(tier, is: "auto") {
            writer.key("serviceTier")
            writer.beginObject()
            writer.key("type")
            writer.copy(tier, from: document)
            writer.endObject()
        }
        writer.endObject()
        return structuredOutput
    }

    // MARK: Turns

    /// Makes sure a turn of `role` is open and its content array started, so the caller can write one block.
    /// Same-role messages share a turn; messages without blocks open none.
    mutating func beginBlock(_ role: Role) {
        if openTurn == role { return }
        closeTurn()
        writer.beginObject()
        writer.key("role")
        writer.string(role.name)
        writer.key("content")
        writer.beginArray()
        openTurn = role
    }

    mutating func closeTurn() {
        guard openTurn != nil else { return }
        writer.endArray()
        writer.endObject()
        openTurn = nil
    }

    // MARK: Messages

    mutating func add(_ fields: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        guard let role = document.stringRange(fields.role) else {
            throw TranslateError.invalidBody(
                "Each message must be an object with a string 'role'.", param: OpenAIChatParam.message(index))
        }
        if document.string(role, is: "system") || document.string(role, is: "developer") {
            systemMessageCount += 1
            if systemMessageCount == 1 { firstSystemContent = fields.content }
            systemBlockCount += try checkTexts(fields.content, param: { OpenAIChatParam.message(index, ".content") })
        } else if document.string(role, is: "user") {
            try writeUserBlocks(fields.content, index: index)
        } else if document.string(role, is: "assistant") {
            try writeAssistantBlocks(fields, index: index)
        } else if document.string(role, is: "tool") {
            guard let id = document.stringRange(fields.toolCallID) else {
                throw TranslateError.invalidBody(
                    "A tool message needs a string 'tool_call_id'.",
                    param: OpenAIChatParam.message(index, ".tool_call_id"))
            }
            _ = try checkTexts(fields.content, param: { OpenAIChatParam.message(index, ".content") })
            historyHasToolBlocks = true
            beginBlock(.user)
            writer.beginObject()
            writer.key("toolResult")
            writer.beginObject()
            writer.key("toolUseId")
            writer.copy(id, from: document)
            writer.key("content")
            writer.beginArray()
            if writeTexts(fields.content, cachePoints: false) == 0 {
                writer.beginObject()
                writer.key("text")
                writer.string("")
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
            writer.endObject()
        } else if document.string(role, is: "function") {
            throw TranslateError.unsupported(
                "The deprecated 'function' role is not supported; use 'tool'.",
                param: OpenAIChatParam.message(index, ".role"))
        } else {
            throw TranslateError.invalidBody(
                "Unknown message role '\(document.decodedString(role) ?? "")'.",
                param: OpenAIChatParam.message(index, ".role"))
        }
    }

    /// Checks the text of a string or an array of text parts (system, developer and tool messages).
    /// - Returns: the number of blocks it becomes as system content (text, plus a cache point where asked).
    func checkTexts(_ content: Range<Int>?, param: () -> String) throws(TranslateError) -> Int {
        let document = self.document
        if document.isAbsentOrNull(content) { return 0 }
        if let text = document.stringRange(content) { return document.isEmptyString(text) ? 0 : 1 }
        guard document.isArray(content) else {
            throw TranslateError.invalidBody("'content' must be a string or an array of parts.", param: param())
        }
        var blocks = 0
        for (index, (_, scanned)) in document.objects(in: content, OpenAIChatPart.keys).enumerated() {
            let fields = OpenAIChatPart(scanned)
            guard document.string(fields.type, is: "text"), document.isString(fields.text) else {
                throw TranslateError(
                    code: "unsupported_content_part", message: "Only text parts are supported here.",
                    param: "\(param())[\(index)]")
            }
            blocks += document.isAbsentOrNull(fields.cacheControl) ? 1 : 2
        }
        return blocks
    }

    /// Writes the text blocks of content `checkTexts` accepted (with cache points for system content).
    /// - Returns: the number of text blocks written.
    mutating func writeTexts(_ content: Range<Int>?, cachePoints: Bool) -> Int {
        let document = self.document
        if let text = document.stringRange(content) {
            guard !document.isEmptyString(text) else { return 0 }
            writeTextBlock(text)
            return 1
        }
        var count = 0
        for (_, scanned) in document.objects(in: content, OpenAIChatPart.keys) {
            let fields = OpenAIChatPart(scanned)
            guard let text = document.stringRange(fields.text) else { continue }
            writeTextBlock(text)
            count += 1
            if cachePoints, !document.isAbsentOrNull(fields.cacheControl) { writeCachePoint() }
        }
        return count
    }

    mutating func writeSystem() {
        let document = self.document
        writer.key("system")
        writer.beginArray()
        if systemMessageCount == 1 {
            _ = writeTexts(firstSystemContent, cachePoints: true)
        } else {
            for (_, scanned) in document.objects(in: request.messages, OpenAIChatMessage.keys) {
                let fields = OpenAIChatMessage(scanned)
                if document.string(fields.role, is: "system") || document.string(fields.role, is: "developer") {
                    _ = writeTexts(fields.content, cachePoints: true)
                }
            }
        }
        writer.endArray()
    }

    mutating func writeTextBlock(_ text: Range<Int>) {
        writer.beginObject()
        writer.key("text")
        writer.copy(text, from: document)
        writer.endObject()
    }

    mutating func writeCachePoint() {
        writer.beginObject()
        writer.key("cachePoint")
        writer.beginObject()
        writer.key("type")
        writer.string("default")
        writer.endObject()
        writer.endObject()
    }

    mutating func writeUserBlocks(_ content: Range<Int>?, index: Int) throws(TranslateError) {
        let document = self.document
        if document.isAbsentOrNull(content) {
            throw TranslateError.invalidBody("A user message needs 'content'.", param: OpenAIChatParam.message(index, ".content"))
        }
        if let text = document.stringRange(content) {
            beginBlock(.user)
            writeTextBlock(text)
            return
        }
        guard document.isArray(content) else {
            throw TranslateError.invalidBody(
                "'content' must be a string or an array of parts.", param: OpenAIChatParam.message(index, ".content"))
        }
        for (partIndex, part) in document.elements(of: content).enumerated() {
            let param = { OpenAIChatParam.part(index, partIndex) }
            let fields = OpenAIChatPart(document, part)
            let type = document.stringRange(fields.type)
            if document.string(type, is: "text") {
                guard let text = document.stringRange(fields.text) else {
                    throw TranslateError.invalidBody("A text part needs a string 'text'.", param: param() + ".text")
                }
                beginBlock(.user)
                writeTextBlock(text)
            } else if document.string(type, is: "image_url") {
                let url = document.stringRange(document.member("url", of: fields.imageURL))
                    ?? document.stringRange(fields.imageURL)
                guard let url else {
                    throw TranslateError.invalidBody(
                        "An image_url part needs 'image_url.url'.", param: param() + ".image_url.url")
                }
                let media = try mediaBlock(url, param: { param() + ".image_url.url" })
                beginBlock(.user)
                writeMediaBlock(media, filename: nil)
            } else if document.string(type, is: "file") {
                guard let data = document.stringRange(document.member("file_data", of: fields.file)) else {
                    throw TranslateError(
                        code: "unsupported_content_part",
                        message: "Bedrock Converse needs inline file data ('file.file_data' as a data URI); file ids are not supported.",
                        param: param() + ".file")
                }
                let media = try mediaBlock(data, param: { param() + ".file.file_data" })
                beginBlock(.user)
                writeMediaBlock(media, filename: document.stringRange(document.member("filename", of: fields.file)))
            } else {
                throw TranslateError(
                    code: "unsupported_content_part",
                    message: "Content part type '\(document.decodedString(type) ?? "")' is not supported by Bedrock Converse.",
                    param: param() + ".type")
            }
            if !document.isAbsentOrNull(fields.cacheControl) { writeCachePoint() }
        }
    }

    // MARK: Media

    typealias Text = OpenAIChatText

    /// An image (`format` is its image format) or a document (`format` is its document format).
    struct MediaBlock {
        var isDocument: Bool
        var format: String
        var data: Text
    }

    static let documentFormats: [String: String] = [
        "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/vnd.ms-excel": "xls", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "text/html": "html", "text/plain": "txt", "text/markdown": "md",
    ]

    /// An image or document block from a data URI. A URI whose header is plain ASCII is read as bytes; others
    /// are decoded and read with `String`'s character semantics (`mediaBlock(url:param:)`), as every URI was.
    func mediaBlock(_ url: Range<Int>, param: () -> String) throws(TranslateError) -> MediaBlock {
        let document = self.document
        let bytes = document.bytes
        guard let content = document.stringContent(url), document.string(url, hasPrefix: "data:") else {
            return try Self.mediaBlock(url: document.decodedString(url) ?? "", param: param())
        }
        let headerStart = content.lowerBound + 5
        guard let comma = document.firstIndex(of: JSONByte.comma, in: content),
            document.isPlainASCII(content: headerStart..<comma),
            comma + 1 >= content.upperBound || (bytes[comma + 1] < 0x80 && bytes[comma + 1] != JSONByte.backslash)
        else {
            return try Self.mediaBlock(url: document.decodedString(url) ?? "", param: param())
        }
        // `header.split(separator: ";")`: the first non-empty field is the media type; one must be "base64".
        var mediaType: Range<Int>?
        var isBase64 = false
        var fieldStart = headerStart
        for index in headerStart...comma where index == comma || bytes[index] == UInt8(ascii: ";") {
            let field = fieldStart..<index
            fieldStart = index + 1
            guard !field.isEmpty else { continue }
            if mediaType == nil { mediaType = field }
            if field.count == 6, bytes[field].elementsEqual("base64".utf8) { isBase64 = true }
        }
        guard isBase64, let mediaType else {
            throw TranslateError.invalidBody("Only base64 data URIs are supported.", param: param())
        }
        return try Self.mediaBlock(
            mime: document.lowercasedString(mediaType), data: .content((comma + 1)..<content.upperBound),
            param: param())
    }

    /// The tree-based translator's reading of a data URI, kept for URIs with escapes or non-ASCII headers.
    static func mediaBlock(url: String, param: String) throws(TranslateError) -> MediaBlock {
        guard url.hasPrefix("data:") else {
            throw TranslateError(
                code: "unsupported_content_part",
                message: "Bedrock Converse needs inline media: send a base64 data URI, the gateway cannot fetch '\(url.prefix(64))'.",
                param: param)
        }
        guard let comma = url.utf8.firstIndex(of: UInt8(ascii: ",")) else {
            throw TranslateError.invalidBody("Malformed data URI.", param: param)
        }
        let header = String(url[url.index(url.startIndex, offsetBy: 5)..<comma])
        let data = String(url[url.index(after: comma)...])
        let attributes = header.split(separator: ";").map(String.init)
        guard attributes.contains("base64"), let mime = attributes.first?.lowercased() else {
            throw TranslateError.invalidBody("Only base64 data URIs are supported.", param: param)
        }
        return try mediaBlock(mime: mime, data: .string(data), param: param)
    }

    static func mediaBlock(mime: String, data: Text, param: String) throws(TranslateError) -> MediaBlock {
        switch mime {
        case "image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp":
            let format = mime == "image/jpg" ? "jpeg" : String(mime.dropFirst("image/".count))
            return MediaBlock(isDocument: false, format: format, data: data)
        default:
            guard let format = documentFormats[mime] else {
                throw TranslateError(
                    code: "unsupported_content_part",
                    message: "Media type '\(mime)' is not supported by Bedrock Converse.", param: param)
            }
            return MediaBlock(isDocument: true, format: format, data: data)
        }
    }

    mutating func writeMediaBlock(_ media: MediaBlock, filename: Range<Int>?) {
        writer.beginObject()
        writer.key(media.isDocument ? "document" : "image")
        writer.beginObject()
        writer.key("format")
        writer.string(media.format)
        if media.isDocument {
            documentCount += 1
            writer.key("name")
            writer.string(documentName(filename.flatMap { document.decodedString($0) }))
        }
        writer.key("source")
        writer.beginObject()
        writer.key("bytes")
        writer.string(media.data, from: document)
        writer.endObject()
        writer.endObject()
        writer.endObject()
    }

    /// Bedrock allows only letters, digits, single spaces, '-', '(', ')', '[' and ']' in document names, and names
    /// must be unique in a request: sanitize the client's filename and suffix a counter.
    func documentName(_ filename: String?) -> String {
        var name = ""
        var lastWasSpace = false
        for scalar in (filename ?? "document").unicodeScalars {
            let allowed = (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                || "-()[]".unicodeScalars.contains(scalar)
            if allowed {
                name.unicodeScalars.append(scalar)
                lastWasSpace = false
            } else if !lastWasSpace && !name.isEmpty {
                name += " "
                lastWasSpace = true
            }
            if name.utf8.count >= 100 { break }
        }
        while name.hasSuffix(" ") { name.removeLast() }
        return (name.isEmpty ? "document" : name) + " (\(documentCount))"
    }

    // MARK: Assistant messages

    mutating func writeAssistantBlocks(_ message: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        // Reasoning first: Converse (like Anthropic) wants thinking before the text it led to. Only signed blocks
        // round-trip; a bare `reasoning_content` string cannot be verified by the model and is dropped.
        for (blockIndex, block) in document.elements(of: message.thinkingBlocks).enumerated() {
            let type = document.member("type", of: block)
            if document.string(type, is: "thinking") {
                beginBlock(.assistant)
                writer.beginObject()
                writer.key("reasoningContent")
                writer.beginObject()
                writer.key("reasoningText")
                writer.beginObject()
                writer.key("text")
                if let thinking = document.stringRange(document.member("thinking", of: block)) {
                    writer.copy(thinking, from: document)
                } else {
                    writer.string("")
                }
                if let signature = document.stringRange(document.member("signature", of: block)) {
                    writer.key("signature")
                    writer.copy(signature, from: document)
                }
                writer.endObject()
                writer.endObject()
                writer.endObject()
            } else if document.string(type, is: "redacted_thinking") {
                guard let data = document.stringRange(document.member("data", of: block)) else {
                    throw TranslateError.invalidBody(
                        "redacted_thinking needs 'data'.",
                        param: OpenAIChatParam.message(index, ".thinking_blocks[\(blockIndex)]"))
                }
                beginBlock(.assistant)
                writer.beginObject()
                writer.key("reasoningContent")
                writer.beginObject()
                writer.key("redactedContent")
                writer.copy(data, from: document)
                writer.endObject()
                writer.endObject()
            } else {
                throw TranslateError.invalidBody(
                    "Unknown thinking block type.",
                    param: OpenAIChatParam.message(index, ".thinking_blocks[\(blockIndex)].type"))
            }
        }
        if let text = document.stringRange(message.content) {
            if !document.isEmptyString(text) {
                beginBlock(.assistant)
                writeTextBlock(text)
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
                    throw TranslateError(
                        code: "unsupported_content_part", message: "Assistant content parts must be text.",
                        param: OpenAIChatParam.part(index, partIndex))
                }
                if !document.isEmptyString(text) {
                    beginBlock(.assistant)
                    writeTextBlock(text)
                }
            }
        } else if !document.isAbsentOrNull(message.content) {
            throw TranslateError.invalidBody(
                "'content' must be a string, an array or null.", param: OpenAIChatParam.message(index, ".content"))
        }
        guard !document.isAbsentOrNull(message.toolCalls) else { return }
        guard document.isArray(message.toolCalls) else {
            throw TranslateError.invalidBody(
                "'tool_calls' must be an array.", param: OpenAIChatParam.message(index, ".tool_calls"))
        }
        for (callIndex, (_, call)) in document.objects(in: message.toolCalls, OpenAIChatToolCall.keys).enumerated() {
            let param = { OpenAIChatParam.message(index, ".tool_calls[\(callIndex)]") }
            let fields = OpenAIChatToolCall(call)
            let function = OpenAIChatFunction(document, fields.function)
            guard let id = document.stringRange(fields.id), fields.function != nil,
                let name = document.stringRange(function.name)
            else {
                throw TranslateError.invalidBody("A tool call needs 'id' and 'function.name'.", param: param())
            }
            var input: ArraySlice<UInt8>?
            if let arguments = document.stringRange(function.arguments) {
                switch request.embeddedJSON(decoding: arguments) {
                case .blank: break
                case .object(let object): input = object
                case .other:
                    // Blank as `Character.isWhitespace` sees it (no-break spaces, line separators...) is no input.
                    guard (document.decodedString(arguments) ?? "").allSatisfy(\.isWhitespace) else {
                        throw TranslateError.invalidBody(
                            "Tool call arguments must be a JSON object.", param: param() + ".function.arguments")
                    }
                }
            }
            historyHasToolBlocks = true
            if let key = document.stringKey(name) { historyToolNames.insert(key, name, in: document.bytes.span) }
            beginBlock(.assistant)
            writer.beginObject()
            writer.key("toolUse")
            writer.beginObject()
            writer.key("toolUseId")
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
            writer.endObject()
        }
    }

    // MARK: Tools

    func toolChoice() throws(TranslateError) -> ToolChoice {
        let document = self.document
        guard let value = request.toolChoice, !document.isAbsentOrNull(value) else { return .unset }
        if document.isString(value) {
            if document.string(value, is: "auto") { return .auto }
            if document.string(value, is: "none") { return .none }
            if document.string(value, is: "required") { return .required }
            throw TranslateError.invalidBody(
                "Unknown tool_choice '\(document.decodedString(value) ?? "")'.", param: "tool_choice")
        }
        guard let name = document.stringRange(document.member("function", "name", of: value)) else {
            throw TranslateError.invalidBody(
                "tool_choice must be a string or {type:function, function:{name}}.", param: "tool_choice")
        }
        return .named(name)
    }

    /// Checks the client's `tools`; written later by `writeClientTools`.
    func clientTools() throws(TranslateError) -> Tools {
        let document = self.document
        guard let value = request.tools, !document.isAbsentOrNull(value) else { return .none }
        guard document.isArray(value) else {
            throw TranslateError.invalidBody("'tools' must be an array.", param: "tools")
        }
        var count = 0
        for (index, (_, scanned)) in document.objects(in: value, OpenAIChatToolCall.keys).enumerated() {
            let fields = OpenAIChatToolCall(scanned)
            let function = OpenAIChatFunction(document, fields.function)
            guard document.string(fields.type, is: "function"), fields.function != nil,
                document.isString(function.name)
            else {
                throw TranslateError.unsupported(
                    "Only function tools with a name are supported by Bedrock Converse.", param: "tools[\(index)]")
            }
            if let parameters = function.parameters, !document.isObject(parameters) {
                throw TranslateError.invalidBody(
                    "'parameters' must be a JSON Schema object.", param: "tools[\(index)].function.parameters")
            }
            count += 1
        }
        return count > 0 ? .client(value) : .none
    }

    mutating func writeToolConfig(_ tools: Tools, choice: ToolChoice?) {
        let document = self.document
        switch tools {
        case .none:
            return
        case .client(let list):
            writer.key("toolConfig")
            writer.beginObject()
            writer.key("tools")
            writer.beginArray()
            for (_, scanned) in document.objects(in: list, OpenAIChatToolCall.keys) {
                let fields = OpenAIChatToolCall(scanned)
                let function = OpenAIChatFunction(document, fields.function)
                guard let name = document.stringRange(function.name) else { continue }
                writeToolSpec(
                    name: .content(document.stringContent(name) ?? name),
                    description: document.stringRange(function.description), schema: function.parameters)
                if !document.isAbsentOrNull(fields.cacheControl) { writeCachePoint() }
            }
            writer.endArray()
        case .structured(let schema, let description):
            writer.key("toolConfig")
            writer.beginObject()
            writer.key("tools")
            writer.beginArray()
            writeToolSpec(
                name: .string(BedrockConverse.jsonResponseToolName), description: description, schema: schema,
                defaultDescription: "Respond with a JSON object.", defaultSchemaIsOpen: false)
            writer.endArray()
            writer.key("toolChoice")
            writer.beginObject()
            writer.key("tool")
            writer.beginObject()
            writer.key("name")
            writer.string(BedrockConverse.jsonResponseToolName)
            writer.endObject()
            writer.endObject()
            writer.endObject()
            return
        case .history:
            writer.key("toolConfig")
            writer.beginObject()
            writer.key("tools")
            writer.beginArray()
            if historyToolNames.count == 0 {
                // Only tool results, no tool uses: Bedrock still wants a tool list; declare a placeholder.
                writeToolSpec(name: .string("tool"), description: nil, schema: nil)
            }
            for position in 0..<historyToolNames.count {
                if let name = historyToolNames.value(at: position), let content = document.stringContent(name) {
                    writeToolSpec(name: .content(content), description: nil, schema: nil)
                }
            }
            writer.endArray()
        }
        switch choice {
        case .auto?, .unset?:
            writer.key("toolChoice")
            writer.beginObject()
            writer.key("auto")
            writer.beginObject()
            writer.endObject()
            writer.endObject()
        case .required?:
            writer.key("toolChoice")
            writer.beginObject()
            writer.key("any")
            writer.beginObject()
            writer.endObject()
            writer.endObject()
        case .named(let name)?:
            writer.key("toolChoice")
            writer.beginObject()
            writer.key("tool")
            writer.beginObject()
            writer.key("name")
            writer.copy(name, from: document)
            writer.endObject()
            writer.endObject()
        case .none?, nil:
            break
        }
        writer.endObject()
    }

    /// `{"toolSpec":{"name","description"?,"inputSchema":{"json":schema}}}`; no schema means
    /// `{"type":"object","properties":{}}` (or `{"type":"object"}` for the structured-output tool).
    mutating func writeToolSpec(
        name: Text, description: Range<Int>?, schema: Range<Int>?, defaultDescription: String? = nil,
        defaultSchemaIsOpen: Bool = true
    ) {
        let document = self.document
        writer.beginObject()
        writer.key("toolSpec")
        writer.beginObject()
        writer.key("name")
        writer.string(name, from: document)
        if let description {
            if !document.isEmptyString(description) {
                writer.key("description")
                writer.copy(description, from: document)
            }
        } else if let defaultDescription {
            writer.key("description")
            writer.string(defaultDescription)
        }
        writer.key("inputSchema")
        writer.beginObject()
        writer.key("json")
        if let schema {
            writer.copy(schema, from: document)
        } else {
            writer.beginObject()
            writer.key("type")
            writer.string("object")
            if defaultSchemaIsOpen {
                writer.key("properties")
                writer.beginObject()
                writer.endObject()
            }
            writer.endObject()
        }
        writer.endObject()
        writer.endObject()
        writer.endObject()
    }

    // MARK: Inference and model-specific fields

    mutating func writeInferenceConfig() throws(TranslateError) {
        let document = self.document
        var maxTokens: Int64?
        if !document.isAbsentOrNull(request.maxCompletionTokens) {
            guard let tokens = document.int64(request.maxCompletionTokens), tokens > 0 else {
                throw TranslateError.invalidBody(
                    "'max_completion_tokens' must be a positive integer.", param: "max_completion_tokens")
            }
            maxTokens = tokens
        } else if !document.isAbsentOrNull(request.maxTokens) {
            guard let tokens = document.int64(request.maxTokens), tokens > 0 else {
                throw TranslateError.invalidBody("'max_tokens' must be a positive integer.", param: "max_tokens")
            }
            maxTokens = tokens
        }
        if !document.isAbsentOrNull(request.temperature), document.kind(request.temperature) != .number {
            throw TranslateError.invalidBody("'temperature' must be a number.", param: "temperature")
        }
        if !document.isAbsentOrNull(request.topP), document.kind(request.topP) != .number {
            throw TranslateError.invalidBody("'top_p' must be a number.", param: "top_p")
        }
        var stopSequences: Range<Int>?
        if let stop = request.stop, !document.isAbsentOrNull(stop) {
            if document.isString(stop) {
                stopSequences = stop
            } else if document.isArray(stop), document.elements(of: stop).allSatisfy({ document.isString($0) }) {
                if !document.isEmptyContainer(stop) { stopSequences = stop }
            } else {
                throw TranslateError.invalidBody("'stop' must be a string or an array of strings.", param: "stop")
            }
        }
        let temperature = document.isAbsentOrNull(request.temperature) ? nil : request.temperature
        let topP = document.isAbsentOrNull(request.topP) ? nil : request.topP
        guard maxTokens != nil || temperature != nil || topP != nil || stopSequences != nil else { return }
        writer.key("inferenceConfig")
        writer.beginObject()
        if let maxTokens {
            writer.key("maxTokens")
            writer.int(maxTokens)
        }
        if let temperature {
            writer.key("temperature")
            writer.copy(temperature, from: document)
        }
        if let topP {
            writer.key("topP")
            writer.copy(topP, from: document)
        }
        if let stopSequences {
            writer.key("stopSequences")
            if document.isString(stopSequences) {
                writer.beginArray()
                writer.copy(stopSequences, from: document)
                writer.endArray()
            } else {
                writer.copy(stopSequences, from: document)
            }
        }
        writer.endObject()
    }

    /// `text.contains(pattern)` for an ASCII `pattern`: a byte search when `text` is ASCII too (the standard
    /// library's search builds a table on the heap per call), `String`'s character-wise search otherwise.
    static func contains(_ text: String, _ pattern: String) -> Bool {
        let bytes = text.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return text.contains(pattern) }
        let needle = pattern.utf8
        guard needle.count <= bytes.count else { return false }
        var start = bytes.startIndex
        while let first = bytes[start...].firstIndex(of: needle.first ?? 0) {
            if bytes[first...].starts(with: needle) { return true }
            start = bytes.index(after: first)
        }
        return false
    }

    /// `additionalModelRequestFields`: reasoning and model-specific knobs Converse has no field for.
    mutating func writeAdditionalFields(model: String) throws(TranslateError) {
        let document = self.document
        let isClaude = Self.contains(model, "anthropic.") || Self.contains(model, "claude")
        var thinking: Range<Int>?
        var budget: Int64?
        var effort: Range<Int>?
        if let value = request.thinking, !document.isAbsentOrNull(value) {
            guard document.isObject(value) else {
                throw TranslateError.invalidBody("'thinking' must be an object.", param: "thinking")
            }
            thinking = value
        } else if let value = request.reasoningEffort, !document.isAbsentOrNull(value) {
            guard let level = document.stringRange(value) else {
                throw TranslateError.invalidBody("'reasoning_effort' must be a string.", param: "reasoning_effort")
            }
            if isClaude {
                // Claude on Bedrock takes a thinking budget (LiteLLM's mapping of effort to budget).
                if document.string(level, is: "none") || document.string(level, is: "minimal") {
                    budget = nil
                } else if document.string(level, is: "low") {
                    budget = 1024
                } else if document.string(level, is: "medium") {
                    budget = 2048
                } else {
                    budget = 4096
                }
            } else {
                effort = level
            }
        }
        var topK: Range<Int>?
        if let value = request.topK, !document.isAbsentOrNull(value) {
            guard document.int64(value) != nil else {
                throw TranslateError.invalidBody("'top_k' must be an integer.", param: "top_k")
            }
            topK = value
        }
        guard thinking != nil || budget != nil || effort != nil || topK != nil else { return }
        writer.key("additionalModelRequestFields")
        writer.beginObject()
        if let thinking {
            writer.key("thinking")
            writer.copy(thinking, from: document)
        } else if let budget {
            writer.key("thinking")
            writer.beginObject()
            writer.key("type")
            writer.string("enabled")
            writer.key("budget_tokens")
            writer.int(budget)
            writer.endObject()
        } else if let effort {
            writer.key("reasoning_effort")
            writer.copy(effort, from: document)
        }
        if let topK {
            writer.key("top_k")
            writer.copy(topK, from: document)
        }
        writer.endObject()
    }
}

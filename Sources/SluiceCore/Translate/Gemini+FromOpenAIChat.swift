// OpenAI Chat Completions request -> Gemini `GenerateContentRequest` body.
//
// | OpenAI                                   | Gemini                                                          |
// |------------------------------------------|-----------------------------------------------------------------|
// | system / developer messages (anywhere)   | `systemInstruction.parts[{text}]`, in order                     |
// | user / assistant                         | `contents[{role:"user"|"model", parts}]`, same-role turns merged |
// | text part, string content                | `{text}`                                                        |
// | image_url / file / input_audio data URI  | `{inlineData:{mimeType, data}}`                                 |
// | image_url / file id with http(s)/gs URL  | `{fileData:{mimeType?, fileUri}}` (mime guessed from extension)  |
// | assistant tool_calls                     | `{functionCall:{name, args}}` (+ `thoughtSignature` round trip) |
// | tool message                             | `{functionResponse:{name, response}}` in a user turn            |
// | tools[].function                         | `tools[{functionDeclarations[{name, description, parameters}]}]`|
// | tool_choice                              | `toolConfig.functionCallingConfig{mode, allowedFunctionNames}`  |
// | temperature, top_p, top_k, n, seed, ...  | `generationConfig`                                              |
// | response_format                          | `responseMimeType` / `responseSchema`                           |
// | reasoning_effort, thinking (extension)   | `generationConfig.thinkingConfig`                               |
//
// Dropped on purpose (no Gemini equivalent): parallel_tool_calls, logit_bias, logprobs, user, metadata, store,
// service_tier, stream / stream_options (the stream is chosen by the path), modalities, prediction.
//
// One pass over the body (`OpenAIChatRequest`): parts are written as messages are read, strings and schemas
// copied from the body. What needs more than the current message: `systemInstruction` (system messages from
// anywhere, checked in order and written by a second look at them), and the function name a tool message
// answers, which Gemini wants and OpenAI leaves in the assistant message that made the call (a table of tool
// call id -> name ranges, filled as assistant messages go by).

extension Gemini {
    /// Translates an OpenAI chat request into a Gemini `generateContent` body.
    /// - Parameters:
    ///   - body: The client's OpenAI chat request.
    ///   - context: Only `upstreamModel` is consulted (to pick a thinking knob); the model itself goes in the path.
    /// - Returns: The Gemini request body (compact JSON).
    /// - Throws: `TranslateError` (400) for malformed or untranslatable requests.
    public static func request(fromOpenAIChat body: [UInt8], context: TranslationContext) throws(TranslateError)
        -> [UInt8]
    {
        let request: OpenAIChatRequest
        do {
            request = try OpenAIChatRequest(body: body)
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
        return try Self.request(fromOpenAIChat: request, context: context)
    }

    /// Translates a validated OpenAI chat request.
    static func request(fromOpenAIChat request: OpenAIChatRequest, context: TranslationContext)
        throws(TranslateError) -> [UInt8]
    {
        var translation = GeminiRequestTranslation(request: request)
        try translation.write()
        return translation.writer.bytes
    }

    // MARK: - Parts (for text that is not in the request body)

    static func textPart(_ text: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("text")
        writer.string(text)
        writer.endObject()
        return writer.bytes
    }

    static func inlineDataPart(mimeType: String, data: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("inlineData")
        writer.beginObject()
        writer.key("mimeType")
        writer.string(mimeType)
        writer.key("data")
        writer.string(data)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    static func isRemoteURI(_ url: String) -> Bool {
        url.hasPrefix("https://") || url.hasPrefix("http://") || url.hasPrefix("gs://")
    }

    /// A data URI becomes `inlineData`; an http(s) or gs:// URI becomes `fileData`. The request translator reads
    /// plain ASCII URLs as bytes and comes here for URLs with escapes or non-ASCII text, so both read alike.
    static func mediaPart(url: String, param: String) throws(TranslateError) -> [UInt8] {
        if url.hasPrefix("data:") {
            // data:<mime>;base64,<payload>
            let rest = url.utf8.dropFirst(5)
            guard let comma = rest.firstIndex(of: JSONByte.comma) else {
                throw .invalidBody("Malformed data URI.", param: param)
            }
            let header = String(decoding: rest[rest.startIndex..<comma], as: UTF8.self)
            let payload = String(decoding: rest[rest.index(after: comma)...], as: UTF8.self)
            guard header.hasSuffix(";base64") else {
                throw .unsupported("Only base64 data URIs are supported.", param: param)
            }
            let mime = String(header.dropLast(";base64".count))
            guard !mime.isEmpty else { throw .invalidBody("The data URI has no media type.", param: param) }
            return inlineDataPart(mimeType: mime, data: payload)
        }
        guard isRemoteURI(url) else {
            throw .unsupported("Media URLs must be data:, http(s):// or gs:// URIs.", param: param)
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("fileData")
        writer.beginObject()
        if let mime = guessMimeType(url) {
            writer.key("mimeType")
            writer.string(mime)
        }
        writer.key("fileUri")
        writer.string(url)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    /// The media type implied by a URL's file extension, for the common types Gemini accepts.
    static func guessMimeType(_ url: String) -> String? {
        var path = Substring(url)
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<cut] }
        guard let dot = path.lastIndex(of: ".") else { return nil }
        return mimeType(forExtension: path[path.index(after: dot)...].lowercased())
    }

    static func mimeType(forExtension pathExtension: String) -> String? {
        switch pathExtension {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "heic": return "image/heic"
        case "heif": return "image/heif"
        case "pdf": return "application/pdf"
        case "mp3": return "audio/mp3"
        case "wav": return "audio/wav"
        case "mp4": return "video/mp4"
        case "txt": return "text/plain"
        default: return nil
        }
    }
}

/// One translation in progress.
private struct GeminiRequestTranslation {
    var request: OpenAIChatRequest
    var writer: JSONWriter

    /// The role ("user" or "model") of the content whose parts are being written, if one is open.
    var openRole: String?
    var wroteContent = false
    /// System parts found so far, and the content of the only system message (when there is one).
    var systemPartCount = 0
    var systemMessageCount = 0
    var firstSystemContent: Range<Int>?
    /// Tool call id -> the range of its function name, from earlier assistant messages.
    var toolNames = JSONStringTable<Range<Int>>()

    init(request: OpenAIChatRequest) {
        self.request = request
        writer = JSONWriter(reservingCapacity: request.document.bytes.count + 64)
    }

    var document: ValidatedJSON { request.document }

    mutating func write() throws(TranslateError) {
        let document = self.document
        guard let kind = request.rootKind, kind == .object else {
            throw .invalidBody("The request body must be a JSON object, got \(request.rootKind?.name ?? "null").")
        }
        guard document.isArray(request.messages) else {
            throw .invalidBody("'messages' is required and must be an array.", param: "messages")
        }
        writer.beginObject()
        writer.key("contents")
        writer.beginArray()
        for (index, (message, scanned)) in document.objects(in: request.messages, OpenAIChatMessage.keys).enumerated() {
            try add(message, OpenAIChatMessage(scanned), index: index)
        }
        closeContent()
        writer.endArray()
        guard wroteContent else {
            throw .invalidBody("'messages' must contain at least one user or assistant message.", param: "messages")
        }
        if systemPartCount > 0 { writeSystemInstruction() }
        try writeTools()
        try writeToolConfig()
        try writeGenerationConfig()
        // Gemini-native extensions a client may send alongside the OpenAI fields.
        copy(request.safetySettingsSnake, as: "safetySettings")
        copy(request.safetySettings, as: "safetySettings")
        copy(request.cachedContentSnake, as: "cachedContent")
        copy(request.cachedContent, as: "cachedContent")
        writer.endObject()
    }

    /// Copies a member that is present and not null under the name `target`.
    mutating func copy(_ value: Range<Int>?, as target: String) {
        guard let value, !document.isAbsentOrNull(value) else { return }
        writer.key(target)
        writer.copy(value, from: document)
    }

    // MARK: - Contents

    /// Makes sure a content of `role` is open and its parts array started, so the caller can write one part.
    /// Consecutive same-role messages share one content (Gemini expects user and model turns to alternate).
    mutating func beginPart(_ role: String) {
        if openRole == role { return }
        closeContent()
        writer.beginObject()
        writer.key("role")
        writer.string(role)
        writer.key("parts")
        writer.beginArray()
        openRole = role
        wroteContent = true
    }

    mutating func closeContent() {
        guard openRole != nil else { return }
        writer.endArray()
        writer.endObject()
        openRole = nil
    }

    mutating func add(_ message: Range<Int>, _ fields: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        guard document.isObject(message) else {
            throw .invalidBody("Each message must be an object.", param: OpenAIChatParam.message(index))
        }
        guard let role = document.stringRange(fields.role) else {
            throw .invalidBody("Each message needs a string 'role'.", param: OpenAIChatParam.message(index, ".role"))
        }
        if document.string(role, is: "system") || document.string(role, is: "developer") {
            try checkSystem(fields.content, index: index)
        } else if document.string(role, is: "user") {
            try writeUserParts(fields.content, index: index)
        } else if document.string(role, is: "assistant") {
            try writeAssistantParts(fields, index: index)
        } else if document.string(role, is: "tool") {
            guard let id = document.stringRange(fields.toolCallID) else {
                throw .invalidBody(
                    "A tool message needs 'tool_call_id'.", param: OpenAIChatParam.message(index, ".tool_call_id"))
            }
            guard let key = document.stringKey(id), let position = toolNames.position(of: key, in: document.bytes.span),
                let name = toolNames.value(at: position)
            else {
                throw TranslateError(
                    status: 400, code: "unknown_tool_call_id",
                    message: "Tool message refers to tool_call_id '\(document.decodedString(id) ?? "")', which no "
                        + "earlier assistant message issued; Gemini needs the function name, so the call must be "
                        + "in the history.",
                    param: OpenAIChatParam.message(index, ".tool_call_id"))
            }
            beginPart("user")
            writeFunctionResponse(name: name, content: fields.content)
        } else if document.string(role, is: "function") {
            guard let name = document.stringRange(fields.name) else {
                throw .invalidBody("A 'function' message needs a 'name'.", param: OpenAIChatParam.message(index, ".name"))
            }
            beginPart("user")
            writeFunctionResponse(name: name, content: fields.content)
        } else {
            throw .invalidBody(
                "Unknown message role '\(document.decodedString(role) ?? "")'.",
                param: OpenAIChatParam.message(index, ".role"))
        }
    }

    /// System content: a string, or text parts. Checked in message order; written by `writeSystemInstruction()`.
    mutating func checkSystem(_ content: Range<Int>?, index: Int) throws(TranslateError) {
        let document = self.document
        systemMessageCount += 1
        if systemMessageCount == 1 { firstSystemContent = content }
        if document.isAbsentOrNull(content) { return }
        if let text = document.stringRange(content) {
            if !document.isEmptyString(text) { systemPartCount += 1 }
            return
        }
        guard document.isArray(content) else {
            throw .invalidBody(
                "'content' must be a string or an array of parts.", param: OpenAIChatParam.message(index, ".content"))
        }
        for (partIndex, (_, scanned)) in document.objects(in: content, OpenAIChatPart.keys).enumerated() {
            let fields = OpenAIChatPart(scanned)
            guard document.string(fields.type, is: "text"), document.isString(fields.text) else {
                throw .unsupported("Only text parts are supported here.", param: OpenAIChatParam.part(index, partIndex))
            }
            systemPartCount += 1
        }
    }

    mutating func writeSystemInstruction() {
        let document = self.document
        writer.key("systemInstruction")
        writer.beginObject()
        writer.key("parts")
        writer.beginArray()
        if systemMessageCount == 1 {
            writeSystemParts(firstSystemContent)
        } else {
            for (_, scanned) in document.objects(in: request.messages, OpenAIChatMessage.keys) {
                let fields = OpenAIChatMessage(scanned)
                if document.string(fields.role, is: "system") || document.string(fields.role, is: "developer") {
                    writeSystemParts(fields.content)
                }
            }
        }
        writer.endArray()
        writer.endObject()
    }

    /// The parts of system content `checkSystem` accepted.
    mutating func writeSystemParts(_ content: Range<Int>?) {
        let document = self.document
        if let text = document.stringRange(content) {
            if !document.isEmptyString(text) { writeTextPart(text) }
            return
        }
        for part in document.elements(of: content) {
            if let text = document.stringRange(OpenAIChatPart(document, part).text) { writeTextPart(text) }
        }
    }

    mutating func writeTextPart(_ text: Range<Int>) {
        writer.beginObject()
        writer.key("text")
        writer.copy(text, from: document)
        writer.endObject()
    }

    mutating func writeUserParts(_ content: Range<Int>?, index: Int) throws(TranslateError) {
        let document = self.document
        if document.isAbsentOrNull(content) { return }
        if let text = document.stringRange(content) {
            beginPart("user")
            writeTextPart(text)
            return
        }
        guard document.isArray(content) else {
            throw .invalidBody(
                "'content' must be a string or an array of parts.", param: OpenAIChatParam.message(index, ".content"))
        }
        for (partIndex, part) in document.elements(of: content).enumerated() {
            let param = { OpenAIChatParam.part(index, partIndex) }
            let fields = OpenAIChatPart(document, part)
            guard let type = document.stringRange(fields.type) else {
                throw .invalidBody("Each content part needs a string 'type'.", param: param() + ".type")
            }
            if document.string(type, is: "text") {
                guard let text = document.stringRange(fields.text) else {
                    throw .invalidBody("A text part needs a string 'text'.", param: param() + ".text")
                }
                beginPart("user")
                writeTextPart(text)
            } else if document.string(type, is: "image_url") {
                let url = document.stringRange(document.member("url", of: fields.imageURL))
                    ?? document.stringRange(fields.imageURL)
                guard let url else {
                    throw .invalidBody("An image_url part needs 'image_url.url'.", param: param() + ".image_url.url")
                }
                try writeMediaPart(url, param: { param() + ".image_url.url" })
            } else if document.string(type, is: "file") {
                if let data = document.stringRange(document.member("file_data", of: fields.file)) {
                    try writeMediaPart(data, param: { param() + ".file.file_data" })
                } else if let id = document.stringRange(document.member("file_id", of: fields.file)),
                    isRemoteURI(id)
                {
                    try writeMediaPart(id, param: { param() + ".file.file_id" })
                } else {
                    throw .unsupported(
                        "File parts need 'file_data' (a data URI) or a 'file_id' that is an https or gs:// URI.",
                        param: param() + ".file")
                }
            } else if document.string(type, is: "input_audio") {
                guard let data = document.stringRange(document.member("data", of: fields.inputAudio)),
                    let format = document.stringRange(document.member("format", of: fields.inputAudio)),
                    let formatContent = document.stringContent(format), let dataContent = document.stringContent(data)
                else {
                    throw .invalidBody("An input_audio part needs 'data' and 'format'.", param: param() + ".input_audio")
                }
                beginPart("user")
                writeInlineData(mimePrefix: "audio/", mime: formatContent, data: dataContent)
            } else {
                throw .unsupported(
                    "Content part type '\(document.decodedString(type) ?? "")' is not supported by Gemini.",
                    param: param() + ".type")
            }
        }
    }

    /// `{"inlineData":{"mimeType":…,"data":…}}` from string contents of the body (copied as they are).
    mutating func writeInlineData(mimePrefix: String, mime: Range<Int>, data: Range<Int>) {
        let document = self.document
        writer.beginObject()
        writer.key("inlineData")
        writer.beginObject()
        writer.key("mimeType")
        writer.string(content: mime, prefix: mimePrefix, from: document)
        writer.key("data")
        writer.string(content: data, from: document)
        writer.endObject()
        writer.endObject()
    }

    func isRemoteURI(_ url: Range<Int>) -> Bool {
        document.string(url, hasPrefix: "https://") || document.string(url, hasPrefix: "http://")
            || document.string(url, hasPrefix: "gs://")
    }

    /// A data URI becomes `inlineData`; an http(s) or gs:// URI becomes `fileData` (as `Gemini.mediaPart`,
    /// which reads URLs with escapes or non-ASCII text).
    mutating func writeMediaPart(_ url: Range<Int>, param: () -> String) throws(TranslateError) {
        let document = self.document
        let bytes = document.bytes
        guard let content = document.stringContent(url) else { return }
        if document.content(of: url, hasPrefix: "data:") {
            // The header decides everything; plain ASCII up to the first comma reads the same as bytes.
            let headerStart = content.lowerBound + 5
            if let comma = document.firstIndex(of: JSONByte.comma, in: content),
                document.isPlainASCII(content: headerStart..<comma)
            {
                let suffix = Array(";base64".utf8)
                guard comma - headerStart >= suffix.count,
                    bytes[(comma - suffix.count)..<comma].elementsEqual(suffix)
                else {
                    throw .unsupported("Only base64 data URIs are supported.", param: param())
                }
                let mime = headerStart..<(comma - suffix.count)
                guard !mime.isEmpty else { throw .invalidBody("The data URI has no media type.", param: param()) }
                beginPart("user")
                writeInlineData(mimePrefix: "", mime: mime, data: (comma + 1)..<content.upperBound)
                return
            }
        } else if document.isPlainASCII(url) {
            guard isRemoteURI(url) else {
                throw .unsupported("Media URLs must be data:, http(s):// or gs:// URIs.", param: param())
            }
            beginPart("user")
            writer.beginObject()
            writer.key("fileData")
            writer.beginObject()
            if let mime = Self.guessMimeType(bytes, content) {
                writer.key("mimeType")
                writer.string(mime)
            }
            writer.key("fileUri")
            writer.copy(url, from: document)
            writer.endObject()
            writer.endObject()
            return
        }
        let part = try Gemini.mediaPart(url: document.decodedString(url) ?? "", param: param())
        beginPart("user")
        writer.raw(part)
    }

    /// `Gemini.guessMimeType` on plain ASCII content.
    static func guessMimeType(_ bytes: [UInt8], _ content: Range<Int>) -> String? {
        var end = content.upperBound
        for index in content where bytes[index] == UInt8(ascii: "?") || bytes[index] == UInt8(ascii: "#") {
            end = index
            break
        }
        var dot = end
        while dot > content.lowerBound {
            dot -= 1
            if bytes[dot] == UInt8(ascii: ".") {
                let pathExtension = String(decoding: bytes[(dot + 1)..<end].lazy.map(ValidatedJSON.asciiLowercased),
                                           as: UTF8.self)
                return Gemini.mimeType(forExtension: pathExtension)
            }
        }
        return nil
    }

    mutating func writeAssistantParts(_ message: OpenAIChatMessage, index: Int) throws(TranslateError) {
        let document = self.document
        if let text = document.stringRange(message.content) {
            if !document.isEmptyString(text) {
                beginPart("model")
                writeTextPart(text)
            }
        } else if document.isArray(message.content) {
            for (partIndex, (_, scanned)) in document.objects(in: message.content, OpenAIChatPart.keys).enumerated() {
                let fields = OpenAIChatPart(scanned)
                guard let text = document.stringRange(fields.text) ?? document.stringRange(fields.refusal) else {
                    throw .unsupported(
                        "Assistant content parts must be text or refusal.",
                        param: OpenAIChatParam.part(index, partIndex))
                }
                if !document.isEmptyString(text) {
                    beginPart("model")
                    writeTextPart(text)
                }
            }
        } else if !document.isAbsentOrNull(message.content) {
            throw .invalidBody(
                "'content' must be a string or an array of parts.", param: OpenAIChatParam.message(index, ".content"))
        }
        guard !document.isAbsentOrNull(message.toolCalls) else { return }
        guard document.isArray(message.toolCalls) else {
            throw .invalidBody("'tool_calls' must be an array.", param: OpenAIChatParam.message(index, ".tool_calls"))
        }
        for (callIndex, (_, call)) in document.objects(in: message.toolCalls, OpenAIChatToolCall.keys).enumerated() {
            try writeFunctionCall(OpenAIChatToolCall(call), param: { OpenAIChatParam.message(index, ".tool_calls[\(callIndex)]") })
        }
    }

    mutating func writeFunctionCall(_ fields: OpenAIChatToolCall, param: () -> String) throws(TranslateError) {
        let document = self.document
        let function = OpenAIChatFunction(document, fields.function)
        guard let name = document.stringRange(function.name) else {
            throw .invalidBody("A tool call needs 'function.name'.", param: param() + ".function.name")
        }
        // Later tool messages name their result by this call's id (an error in this message fails the request,
        // so registering call by call is as good as registering them all first).
        if let id = document.stringRange(fields.id), let key = document.stringKey(id) {
            toolNames.set(key, name, in: document.bytes.span)
        }
        var args: ArraySlice<UInt8>?
        if let arguments = document.stringRange(function.arguments) {
            switch request.embeddedJSON(decoding: arguments) {
            case .blank: break
            case .object(let object): args = object
            case .other:
                throw .invalidBody(
                    "'function.arguments' must be a JSON object encoded as a string.",
                    param: param() + ".function.arguments")
            }
        }
        beginPart("model")
        writer.beginObject()
        writer.key("functionCall")
        writer.beginObject()
        writer.key("name")
        writer.copy(name, from: document)
        writer.key("args")
        if let args {
            writer.raw(args)
        } else {
            writer.beginObject()
            writer.endObject()
        }
        writer.endObject()
        // Gemini 3 rejects a replayed function call without the signature it issued; the response translator
        // hands it to the client in Google's own OpenAI-compatibility field.
        if let signature = document.stringRange(
            document.member("google", "thought_signature", of: fields.extraContent))
        {
            writer.key("thoughtSignature")
            writer.copy(signature, from: document)
        }
        writer.endObject()
    }

    /// Gemini wants `response` to be an object: a JSON object result passes as is, anything else is wrapped as
    /// `{"content": ...}`.
    mutating func writeFunctionResponse(name: Range<Int>, content: Range<Int>?) {
        let document = self.document
        // The result's text: the string, or the text parts joined.
        var joined: [UInt8] = []
        let response: OpenAIChatRequest.EmbeddedJSON
        if let text = document.stringRange(content) {
            response = request.embeddedJSON(decoding: text)
        } else {
            for part in document.elements(of: content) {
                if let text = document.stringRange(document.member("text", of: part)) {
                    _ = document.appendDecoded(text, to: &joined)
                }
            }
            response = request.embeddedJSON(joined)
        }
        writer.beginObject()
        writer.key("functionResponse")
        writer.beginObject()
        writer.key("name")
        writer.copy(name, from: document)
        writer.key("response")
        if case .object(let object) = response {
            writer.raw(object)
        } else {
            writer.beginObject()
            writer.key("content")
            if let text = document.stringRange(content) {
                writer.copy(text, from: document)
            } else {
                writer.string(utf8: joined)
            }
            writer.endObject()
        }
        writer.endObject()
        writer.endObject()
    }

    // MARK: - Tools

    mutating func writeTools() throws(TranslateError) {
        let document = self.document
        guard let tools = request.tools, !document.isAbsentOrNull(tools) else { return }
        guard document.isArray(tools) else { throw .invalidBody("'tools' must be an array.", param: "tools") }
        guard !document.isEmptyContainer(tools) else { return }
        writer.key("tools")
        writer.beginArray()
        writer.beginObject()
        writer.key("functionDeclarations")
        writer.beginArray()
        for (index, (_, scanned)) in document.objects(in: tools, OpenAIChatToolCall.keys).enumerated() {
            let fields = OpenAIChatToolCall(scanned)
            if let type = document.stringRange(fields.type), !document.string(type, is: "function") {
                throw .unsupported("Only function tools are supported by Gemini.", param: "tools[\(index)].type")
            }
            guard document.isObject(fields.function) else {
                throw .unsupported("Only function tools are supported by Gemini.", param: "tools[\(index)].type")
            }
            let function = OpenAIChatFunction(document, fields.function)
            guard let name = document.stringRange(function.name) else {
                throw .invalidBody("A function tool needs 'function.name'.", param: "tools[\(index)].function.name")
            }
            writer.beginObject()
            writer.key("name")
            writer.copy(name, from: document)
            if let description = document.stringRange(function.description) {
                writer.key("description")
                writer.copy(description, from: document)
            }
            if let parameters = function.parameters, !document.isAbsentOrNull(parameters),
                !isEmptyObjectSchema(parameters)
            {
                guard document.isObject(parameters) else {
                    throw .invalidBody(
                        "'function.parameters' must be a JSON Schema object.",
                        param: "tools[\(index)].function.parameters")
                }
                writer.key("parameters")
                writeSanitizedSchema(parameters)
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        writer.endArray()
    }

    /// Gemini rejects an OBJECT schema with no properties, which is how clients declare argument-less functions;
    /// such functions are declared without `parameters`.
    func isEmptyObjectSchema(_ schema: Range<Int>) -> Bool {
        let document = self.document
        guard document.isObject(schema) else { return false }
        let properties = document.member("properties", of: schema)
        let type = document.member("type", of: schema)
        return (!document.isObject(properties) || document.isEmptyContainer(properties))
            && (!document.isString(type) || document.string(type, is: "object"))
            && document.member("anyOf", of: schema) == nil && document.member("oneOf", of: schema) == nil
            && document.member("allOf", of: schema) == nil
    }

    mutating func writeToolConfig() throws(TranslateError) {
        let document = self.document
        guard let choice = request.toolChoice, !document.isAbsentOrNull(choice) else { return }
        var mode: String
        var names: Range<Int>?
        var single: Range<Int>?
        if document.isString(choice) {
            if document.string(choice, is: "auto") {
                mode = "AUTO"
            } else if document.string(choice, is: "none") {
                mode = "NONE"
            } else if document.string(choice, is: "required") {
                mode = "ANY"
            } else {
                throw .invalidBody(
                    "Unknown tool_choice '\(document.decodedString(choice) ?? "")'.", param: "tool_choice")
            }
        } else if document.string(document.member("type", of: choice), is: "function"),
            let name = document.stringRange(document.member("function", "name", of: choice))
        {
            mode = "ANY"
            single = name
        } else if document.string(document.member("type", of: choice), is: "allowed_tools"),
            let allowed = document.member("allowed_tools", of: choice)
        {
            // Gemini honours allowedFunctionNames only in ANY mode; in AUTO mode the list is dropped.
            mode = document.string(document.member("mode", of: allowed), is: "required") ? "ANY" : "AUTO"
            if mode == "ANY" { names = document.member("tools", of: allowed) }
        } else {
            throw .invalidBody("'tool_choice' must be a string or a function choice object.", param: "tool_choice")
        }
        writer.key("toolConfig")
        writer.beginObject()
        writer.key("functionCallingConfig")
        writer.beginObject()
        writer.key("mode")
        writer.string(mode)
        if let single {
            writer.key("allowedFunctionNames")
            writer.beginArray()
            writer.copy(single, from: document)
            writer.endArray()
        } else if let names, hasAllowedName(names) {
            writer.key("allowedFunctionNames")
            writer.beginArray()
            var iterator = allowedNames(names)
            while let name = iterator.next() { writer.copy(name, from: document) }
            writer.endArray()
        }
        writer.endObject()
        writer.endObject()
    }

    func hasAllowedName(_ tools: Range<Int>) -> Bool {
        var iterator = allowedNames(tools)
        return iterator.next() != nil
    }

    /// The `function.name` strings of an `allowed_tools.tools` array.
    func allowedNames(_ tools: Range<Int>) -> some IteratorProtocol<Range<Int>> {
        let document = self.document
        return document.elements(of: tools).lazy.compactMap {
            document.stringRange(document.member("function", "name", of: $0))
        }.makeIterator()
    }

    // MARK: - Generation config

    /// `generationConfig`: every member is checked first (in the order the errors are reported), then written
    /// only if there is one.
    mutating func writeGenerationConfig() throws(TranslateError) {
        let document = self.document
        let useMaxCompletionTokens = !document.isAbsentOrNull(request.maxCompletionTokens)
        let maxOutputTokens = useMaxCompletionTokens ? request.maxCompletionTokens : request.maxTokens
        var empty = true
        try checkNumber(request.temperature, "temperature", integer: false, empty: &empty)
        try checkNumber(request.topP, "top_p", integer: false, empty: &empty)
        try checkNumber(request.topK, "top_k", integer: true, empty: &empty)
        try checkNumber(
            maxOutputTokens, useMaxCompletionTokens ? "max_completion_tokens" : "max_tokens", integer: true,
            empty: &empty)
        try checkNumber(request.n, "n", integer: true, empty: &empty)
        try checkNumber(request.seed, "seed", integer: true, empty: &empty)
        try checkNumber(request.presencePenalty, "presence_penalty", integer: false, empty: &empty)
        try checkNumber(request.frequencyPenalty, "frequency_penalty", integer: false, empty: &empty)
        var stopSequences: Range<Int>?
        if let stop = request.stop, !document.isAbsentOrNull(stop) {
            if document.isString(stop) {
                stopSequences = stop
            } else if document.isArray(stop) {
                var count = 0
                for item in document.elements(of: stop) {
                    guard document.isString(item) else {
                        throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
                    }
                    count += 1
                }
                if count > 0 { stopSequences = stop }
            } else {
                throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
            }
        }
        var jsonMode = false
        var responseSchema: Range<Int>?
        if let format = request.responseFormat, !document.isAbsentOrNull(format) {
            let type = document.member("type", of: format)
            if document.string(type, is: "text") {
            } else if document.string(type, is: "json_object") {
                jsonMode = true
            } else if document.string(type, is: "json_schema") {
                guard let schema = document.member("json_schema", "schema", of: format), document.isObject(schema)
                else {
                    throw .invalidBody("'response_format.json_schema.schema' must be an object.",
                                       param: "response_format.json_schema.schema")
                }
                jsonMode = true
                responseSchema = schema
            } else {
                throw .invalidBody("Unknown 'response_format.type'.", param: "response_format.type")
            }
        }
        let budget = try thinkingBudget()
        guard !empty || stopSequences != nil || jsonMode || budget != nil else { return }

        writer.key("generationConfig")
        writer.beginObject()
        copy(request.temperature, as: "temperature")
        copy(request.topP, as: "topP")
        copy(request.topK, as: "topK")
        copy(maxOutputTokens, as: "maxOutputTokens")
        copy(request.n, as: "candidateCount")
        copy(request.seed, as: "seed")
        copy(request.presencePenalty, as: "presencePenalty")
        copy(request.frequencyPenalty, as: "frequencyPenalty")
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
        if jsonMode {
            writer.key("responseMimeType")
            writer.string("application/json")
        }
        if let responseSchema {
            writer.key("responseSchema")
            writeSanitizedSchema(responseSchema)
        }
        if let budget {
            writer.key("thinkingConfig")
            writer.beginObject()
            writer.key("thinkingBudget")
            writer.int(budget)
            if budget != 0 {
                // Without this Gemini thinks but returns no thought summaries, and reasoning_content stays empty.
                writer.key("includeThoughts")
                writer.bool(true)
            }
            writer.endObject()
        }
        writer.endObject()
    }

    /// Checks a number member that is present and not null; it makes the config non-empty.
    func checkNumber(_ value: Range<Int>?, _ source: String, integer: Bool, empty: inout Bool) throws(TranslateError) {
        guard !document.isAbsentOrNull(value) else { return }
        guard document.kind(value) == .number, !integer || document.int64(value) != nil else {
            throw .invalidBody("'\(source)' must be \(integer ? "an integer" : "a number").", param: source)
        }
        empty = false
    }

    /// The `thinkingBudget` for `reasoning_effort` or the Anthropic-style `thinking` extension, or nil for none.
    ///
    /// Budgets follow Google's OpenAI-compatibility layer (low 1024, medium 8192, high 24576, none 0); Gemini 3
    /// models accept `thinkingBudget` too, and map it onto their thinking levels.
    func thinkingBudget() throws(TranslateError) -> Int64? {
        let document = self.document
        if let thinking = request.thinking, !document.isAbsentOrNull(thinking) {
            let type = document.member("type", of: thinking)
            if document.string(type, is: "enabled") {
                guard let budget = document.int64(document.member("budget_tokens", of: thinking)), budget >= 0 else {
                    throw .invalidBody("'thinking.budget_tokens' must be a non-negative integer.",
                                       param: "thinking.budget_tokens")
                }
                return budget
            }
            if document.string(type, is: "disabled") { return 0 }
            if document.string(type, is: "adaptive") { return -1 }
            throw .invalidBody("Unknown 'thinking.type'.", param: "thinking.type")
        }
        guard let effort = request.reasoningEffort, !document.isAbsentOrNull(effort) else { return nil }
        if document.string(effort, is: "none") { return 0 }
        if document.string(effort, is: "minimal") { return 512 }
        if document.string(effort, is: "low") { return 1024 }
        if document.string(effort, is: "medium") { return 8192 }
        if document.string(effort, is: "high") { return 24576 }
        if document.string(effort, is: "xhigh") || document.string(effort, is: "max") { return 32768 }
        throw .invalidBody("Unknown 'reasoning_effort'.", param: "reasoning_effort")
    }

    // MARK: - Schema sanitising

    /// Writes a JSON Schema in the OpenAPI 3.0 subset Gemini's `Schema` accepts (see `GeminiSchema`), reading
    /// it from the body.
    mutating func writeSanitizedSchema(_ schema: Range<Int>, depth: Int = 0) {
        let document = self.document
        // Validation bounds the depth already; this only keeps the recursion finite on its own terms.
        guard depth < 128, document.isObject(schema) else {
            writer.copy(schema, from: document)
            return
        }
        var nullable = false
        var hasNullable = false
        writer.beginObject()
        for member in document.members(of: schema) {
            let name = GeminiSchema.Keyword(document, member)
            if name == .nullable { hasNullable = true }
            if name == .dropped { continue }
            let value = member.value
            if name == .type, document.isArray(value) {
                var named = 0
                var nonNull = 0
                var only: Range<Int>?
                for item in document.elements(of: value) where document.isString(item) {
                    named += 1
                    if !document.string(item, is: "null") {
                        nonNull += 1
                        only = item
                    }
                }
                if nonNull == 1, let only {
                    writeKey(member)
                    writer.copy(only, from: document)
                    nullable = nullable || named > nonNull
                    continue
                }
            }
            if name == .const, document.isString(value) {
                writer.key("enum")
                writer.beginArray()
                writer.copy(value, from: document)
                writer.endArray()
                continue
            }
            writeKey(member)
            switch name {
            case .singleSchema:
                if document.isArray(value) {
                    writer.beginArray()
                    for item in document.elements(of: value) { writeSanitizedSchema(item, depth: depth + 1) }
                    writer.endArray()
                } else {
                    writeSanitizedSchema(value, depth: depth + 1)
                }
            case .schemaArray where document.isArray(value):
                writer.beginArray()
                for item in document.elements(of: value) { writeSanitizedSchema(item, depth: depth + 1) }
                writer.endArray()
            case .schemaMap where document.isObject(value):
                writer.beginObject()
                for property in document.members(of: value) {
                    writeKey(property)
                    writeSanitizedSchema(property.value, depth: depth + 1)
                }
                writer.endObject()
            default:
                writer.copy(value, from: document)
            }
        }
        if nullable && !hasNullable {
            writer.key("nullable")
            writer.bool(true)
        }
        writer.endObject()
    }

    /// Writes a member's name as it is in the body (escapes and all: the same name).
    mutating func writeKey(_ member: ValidatedJSON.Member) {
        writer.key(json: document.slice(member.key))
    }
}

// MARK: - Schema sanitising

/// Brings a JSON Schema into the OpenAPI 3.0 subset Gemini's `Schema` accepts.
///
/// Removed wherever they appear as schema keywords (never as property names): `$schema`, `$id`, `$comment`,
/// `additionalProperties`, `unevaluatedProperties`, `patternProperties`, `propertyNames`, `dependentRequired`,
/// `dependentSchemas`, `strict`, `examples`, `if`/`then`/`else`, `$defs`/`definitions` (no `$ref` support in
/// `parameters`). A `const` string becomes a one-value `enum`; a `type` array such as `["string","null"]`
/// becomes `type` plus `nullable: true`. Everything else passes unchanged.
enum GeminiSchema {
    static let dropped: [String] = [
        "$schema", "$id", "$comment", "additionalProperties", "unevaluatedProperties", "patternProperties",
        "propertyNames", "dependentRequired", "dependentSchemas", "strict", "examples", "if", "then", "else",
        "$defs", "definitions",
    ]

    /// Keywords whose value is a single subschema, an array of subschemas, or a map name -> subschema.
    static let singleSchema: [String] = ["items", "not", "additionalItems", "contains"]
    static let schemaArrays: [String] = ["anyOf", "oneOf", "allOf", "prefixItems"]
    static let schemaMaps: [String] = ["properties"]

    /// What a member name means to the sanitiser.
    enum Keyword: Equatable {
        case dropped, type, const, nullable, singleSchema, schemaArray, schemaMap, other

        init(_ document: ValidatedJSON, _ member: ValidatedJSON.Member) {
            let position = GeminiSchema.keywords.position(of: member.keyContent, in: document)
            let special = GeminiSchema.dropped.count
            switch position {
            case 0..<special: self = .dropped
            case special: self = .type
            case special + 1: self = .const
            case special + 2: self = .nullable
            case (special + 3)..<(special + 7): self = .singleSchema
            case (special + 7)..<(special + 11): self = .schemaArray
            case special + 11: self = .schemaMap
            default: self = .other
            }
        }
    }

    /// Every keyword the sanitiser treats specially, in the order `Keyword.init` reads positions.
    static let keywords = JSONKeys<28>(dropped + ["type", "const", "nullable"] + singleSchema + schemaArrays + schemaMaps)
}

extension JSONWriter {
    /// Writes a string made of an ASCII `prefix` and a string's content from a validated document.
    mutating func string(content: Range<Int>, prefix: String, from document: ValidatedJSON) {
        beginRawValue()
        bytes.append(JSONByte.quote)
        bytes.append(contentsOf: prefix.utf8)
        bytes.append(contentsOf: document.slice(content))
        bytes.append(JSONByte.quote)
        endRawValue()
    }
}

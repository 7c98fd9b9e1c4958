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
        let root = try parse(body, upstream: false)
        guard let request = root.objectValue else {
            throw .invalidBody("The request body must be a JSON object, got \(root.typeName).")
        }
        guard let messages = request["messages"]?.arrayValue else {
            throw .invalidBody("'messages' is required and must be an array.", param: "messages")
        }

        var builder = ContentsBuilder()
        for (index, message) in messages.enumerated() {
            try builder.add(message, at: index)
        }
        guard !builder.contents.isEmpty else {
            throw .invalidBody("'messages' must contain at least one user or assistant message.", param: "messages")
        }

        var writer = JSONWriter(reservingCapacity: body.count + 64)
        writer.beginObject()
        writer.key("contents")
        writer.beginArray()
        for content in builder.contents {
            writer.beginObject()
            writer.key("role")
            writer.string(content.role)
            writer.key("parts")
            writer.beginArray()
            for part in content.parts { writer.raw(part) }
            writer.endArray()
            writer.endObject()
        }
        writer.endArray()

        if !builder.systemParts.isEmpty {
            writer.key("systemInstruction")
            writer.beginObject()
            writer.key("parts")
            writer.beginArray()
            for part in builder.systemParts { writer.raw(part) }
            writer.endArray()
            writer.endObject()
        }

        try writeTools(request, to: &writer)
        try writeToolConfig(request, to: &writer)
        try writeGenerationConfig(request, context: context, to: &writer)

        // Gemini-native extensions a client may send alongside the OpenAI fields.
        for (key, target) in [("safety_settings", "safetySettings"), ("safetySettings", "safetySettings"),
                              ("cached_content", "cachedContent"), ("cachedContent", "cachedContent")]
        {
            if let value = request[key], !value.isNull {
                writer.key(target)
                writer.value(value)
            }
        }
        writer.endObject()
        return writer.bytes
    }

    // MARK: - Messages

    /// One Gemini `Content` under construction; parts are already-serialised JSON.
    struct PendingContent {
        var role: String
        var parts: [[UInt8]]
    }

    /// Folds OpenAI messages into Gemini contents, merging consecutive same-role turns (Gemini expects user and
    /// model turns to alternate) and remembering tool call ids, which Gemini does not have, to name responses.
    struct ContentsBuilder {
        var contents: [PendingContent] = []
        var systemParts: [[UInt8]] = []
        /// Tool call id -> function name, from earlier assistant messages.
        var toolNames: [String: String] = [:]

        mutating func add(_ message: JSONValue, at index: Int) throws(TranslateError) {
            let param = "messages[\(index)]"
            guard let object = message.objectValue else {
                throw .invalidBody("Each message must be an object.", param: param)
            }
            guard let role = object["role"]?.stringValue else {
                throw .invalidBody("Each message needs a string 'role'.", param: param + ".role")
            }
            switch role {
            case "system", "developer":
                systemParts += try textParts(object["content"], param: param + ".content")
            case "user":
                append(role: "user", parts: try userParts(object["content"], param: param + ".content"))
            case "assistant":
                noteToolCalls(message)
                append(role: "model", parts: try assistantParts(object, param: param))
            case "tool":
                append(role: "user", parts: [try toolResponsePart(object, param: param)])
            case "function":
                guard let name = object["name"]?.stringValue else {
                    throw .invalidBody("A 'function' message needs a 'name'.", param: param + ".name")
                }
                append(role: "user", parts: [functionResponsePart(name: name, content: object["content"])])
            default:
                throw .invalidBody("Unknown message role '\(role)'.", param: param + ".role")
            }
        }

        private mutating func append(role: String, parts: [[UInt8]]) {
            guard !parts.isEmpty else { return }
            if let last = contents.indices.last, contents[last].role == role {
                contents[last].parts += parts
            } else {
                contents.append(PendingContent(role: role, parts: parts))
            }
        }

        /// Text-only content (system messages): a string or an array of text parts.
        private func textParts(_ content: JSONValue?, param: String) throws(TranslateError) -> [[UInt8]] {
            guard let content, !content.isNull else { return [] }
            if let text = content.stringValue { return text.isEmpty ? [] : [textPart(text)] }
            guard let parts = content.arrayValue else {
                throw .invalidBody("'content' must be a string or an array of parts.", param: param)
            }
            var out: [[UInt8]] = []
            for (index, part) in parts.enumerated() {
                guard let type = part["type"]?.stringValue, type == "text", let text = part["text"]?.stringValue
                else {
                    throw .unsupported("Only text parts are supported here.", param: "\(param)[\(index)]")
                }
                out.append(textPart(text))
            }
            return out
        }

        private func userParts(_ content: JSONValue?, param: String) throws(TranslateError) -> [[UInt8]] {
            guard let content, !content.isNull else { return [] }
            if let text = content.stringValue { return [textPart(text)] }
            guard let parts = content.arrayValue else {
                throw .invalidBody("'content' must be a string or an array of parts.", param: param)
            }
            var out: [[UInt8]] = []
            for (index, part) in parts.enumerated() {
                out.append(try userPart(part, param: "\(param)[\(index)]"))
            }
            return out
        }

        private func userPart(_ part: JSONValue, param: String) throws(TranslateError) -> [UInt8] {
            guard let type = part["type"]?.stringValue else {
                throw .invalidBody("Each content part needs a string 'type'.", param: param + ".type")
            }
            switch type {
            case "text":
                guard let text = part["text"]?.stringValue else {
                    throw .invalidBody("A text part needs a string 'text'.", param: param + ".text")
                }
                return textPart(text)
            case "image_url":
                let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue
                guard let url else {
                    throw .invalidBody("An image_url part needs 'image_url.url'.", param: param + ".image_url.url")
                }
                return try mediaPart(url: url, param: param + ".image_url.url")
            case "file":
                if let data = part["file"]?["file_data"]?.stringValue {
                    return try mediaPart(url: data, param: param + ".file.file_data")
                }
                if let id = part["file"]?["file_id"]?.stringValue, isRemoteURI(id) {
                    return try mediaPart(url: id, param: param + ".file.file_id")
                }
                throw .unsupported(
                    "File parts need 'file_data' (a data URI) or a 'file_id' that is an https or gs:// URI.",
                    param: param + ".file")
            case "input_audio":
                guard let data = part["input_audio"]?["data"]?.stringValue,
                    let format = part["input_audio"]?["format"]?.stringValue
                else {
                    throw .invalidBody("An input_audio part needs 'data' and 'format'.", param: param + ".input_audio")
                }
                return inlineDataPart(mimeType: "audio/" + format, data: data)
            default:
                throw .unsupported("Content part type '\(type)' is not supported by Gemini.", param: param + ".type")
            }
        }

        private func assistantParts(_ message: JSONObject, param: String) throws(TranslateError) -> [[UInt8]] {
            var out: [[UInt8]] = []
            if let content = message["content"], !content.isNull {
                if let text = content.stringValue {
                    if !text.isEmpty { out.append(textPart(text)) }
                } else if let parts = content.arrayValue {
                    for (index, part) in parts.enumerated() {
                        let text = part["text"]?.stringValue ?? part["refusal"]?.stringValue
                        guard let text else {
                            throw .unsupported(
                                "Assistant content parts must be text or refusal.",
                                param: "\(param).content[\(index)]")
                        }
                        if !text.isEmpty { out.append(textPart(text)) }
                    }
                } else {
                    throw .invalidBody("'content' must be a string or an array of parts.", param: param + ".content")
                }
            }
            guard let calls = message["tool_calls"], !calls.isNull else { return out }
            guard let callArray = calls.arrayValue else {
                throw .invalidBody("'tool_calls' must be an array.", param: param + ".tool_calls")
            }
            for (index, call) in callArray.enumerated() {
                out.append(try functionCallPart(call, param: "\(param).tool_calls[\(index)]"))
            }
            return out
        }

        private func functionCallPart(_ call: JSONValue, param: String) throws(TranslateError) -> [UInt8] {
            guard let name = call["function"]?["name"]?.stringValue else {
                throw .invalidBody("A tool call needs 'function.name'.", param: param + ".function.name")
            }
            var args = JSONValue.object(JSONObject())
            if let arguments = call["function"]?["arguments"]?.stringValue,
                !arguments.utf8.allSatisfy(JSONByte.isWhitespace)
            {
                guard let parsed = try? JSONParser.parse(arguments), parsed.objectValue != nil else {
                    throw .invalidBody(
                        "'function.arguments' must be a JSON object encoded as a string.",
                        param: param + ".function.arguments")
                }
                args = parsed
            }
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("functionCall")
            writer.beginObject()
            writer.key("name")
            writer.string(name)
            writer.key("args")
            writer.value(args)
            writer.endObject()
            // Gemini 3 rejects a replayed function call without the signature it issued; the response translator
            // hands it to the client in Google's own OpenAI-compatibility field.
            if let signature = call["extra_content"]?["google"]?["thought_signature"]?.stringValue {
                writer.key("thoughtSignature")
                writer.string(signature)
            }
            writer.endObject()
            return writer.bytes
        }

        private mutating func toolResponsePart(_ message: JSONObject, param: String) throws(TranslateError)
            -> [UInt8]
        {
            guard let id = message["tool_call_id"]?.stringValue else {
                throw .invalidBody("A tool message needs 'tool_call_id'.", param: param + ".tool_call_id")
            }
            guard let name = toolNames[id] else {
                throw TranslateError(
                    status: 400, code: "unknown_tool_call_id",
                    message: "Tool message refers to tool_call_id '\(id)', which no earlier assistant message "
                        + "issued; Gemini needs the function name, so the call must be in the history.",
                    param: param + ".tool_call_id")
            }
            return functionResponsePart(name: name, content: message["content"])
        }

        /// Gemini wants `response` to be an object: a JSON object result passes as is, anything else is wrapped as
        /// `{"content": ...}`.
        private func functionResponsePart(name: String, content: JSONValue?) -> [UInt8] {
            var text = ""
            if let string = content?.stringValue {
                text = string
            } else if let parts = content?.arrayValue {
                text = parts.compactMap { $0["text"]?.stringValue }.joined()
            }
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("functionResponse")
            writer.beginObject()
            writer.key("name")
            writer.string(name)
            writer.key("response")
            if let parsed = try? JSONParser.parse(text), parsed.objectValue != nil {
                writer.value(parsed)
            } else {
                writer.beginObject()
                writer.key("content")
                writer.string(text)
                writer.endObject()
            }
            writer.endObject()
            writer.endObject()
            return writer.bytes
        }

        /// Registers the ids of an assistant message's tool calls before its parts are built.
        mutating func noteToolCalls(_ message: JSONValue) {
            guard let calls = message["tool_calls"]?.arrayValue else { return }
            for call in calls {
                if let id = call["id"]?.stringValue, let name = call["function"]?["name"]?.stringValue {
                    toolNames[id] = name
                }
            }
        }
    }

    // MARK: - Parts

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

    /// A data URI becomes `inlineData`; an http(s) or gs:// URI becomes `fileData`.
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
        switch path[path.index(after: dot)...].lowercased() {
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

    // MARK: - Tools

    static func writeTools(_ request: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        guard let tools = request["tools"], !tools.isNull else { return }
        guard let toolArray = tools.arrayValue else {
            throw .invalidBody("'tools' must be an array.", param: "tools")
        }
        guard !toolArray.isEmpty else { return }
        writer.key("tools")
        writer.beginArray()
        writer.beginObject()
        writer.key("functionDeclarations")
        writer.beginArray()
        for (index, tool) in toolArray.enumerated() {
            let param = "tools[\(index)]"
            guard tool["type"]?.stringValue ?? "function" == "function", let function = tool["function"]?.objectValue
            else {
                throw .unsupported("Only function tools are supported by Gemini.", param: param + ".type")
            }
            guard let name = function["name"]?.stringValue else {
                throw .invalidBody("A function tool needs 'function.name'.", param: param + ".function.name")
            }
            writer.beginObject()
            writer.key("name")
            writer.string(name)
            if let description = function["description"]?.stringValue {
                writer.key("description")
                writer.string(description)
            }
            if let parameters = function["parameters"], !parameters.isNull, !isEmptyObjectSchema(parameters) {
                guard parameters.objectValue != nil else {
                    throw .invalidBody("'function.parameters' must be a JSON Schema object.",
                                       param: param + ".function.parameters")
                }
                writer.key("parameters")
                writer.value(GeminiSchema.sanitized(parameters))
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        writer.endArray()
    }

    /// Gemini rejects an OBJECT schema with no properties, which is how clients declare argument-less functions;
    /// such functions are declared without `parameters`.
    static func isEmptyObjectSchema(_ schema: JSONValue) -> Bool {
        guard let object = schema.objectValue else { return false }
        let properties = object["properties"]?.objectValue
        return (properties == nil || properties?.isEmpty == true) && object["type"]?.stringValue ?? "object" == "object"
            && object["anyOf"] == nil && object["oneOf"] == nil && object["allOf"] == nil
    }

    static func writeToolConfig(_ request: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        guard let choice = request["tool_choice"], !choice.isNull else { return }
        var mode: String
        var names: [String] = []
        if let string = choice.stringValue {
            switch string {
            case "auto": mode = "AUTO"
            case "none": mode = "NONE"
            case "required": mode = "ANY"
            default: throw .invalidBody("Unknown tool_choice '\(string)'.", param: "tool_choice")
            }
        } else if let type = choice["type"]?.stringValue, type == "function",
            let name = choice["function"]?["name"]?.stringValue
        {
            mode = "ANY"
            names = [name]
        } else if let type = choice["type"]?.stringValue, type == "allowed_tools",
            let allowed = choice["allowed_tools"]
        {
            // Gemini honours allowedFunctionNames only in ANY mode; in AUTO mode the list is dropped.
            mode = allowed["mode"]?.stringValue == "required" ? "ANY" : "AUTO"
            if mode == "ANY" {
                names = (allowed["tools"]?.arrayValue ?? []).compactMap { $0["function"]?["name"]?.stringValue }
            }
        } else {
            throw .invalidBody("'tool_choice' must be a string or a function choice object.", param: "tool_choice")
        }
        writer.key("toolConfig")
        writer.beginObject()
        writer.key("functionCallingConfig")
        writer.beginObject()
        writer.key("mode")
        writer.string(mode)
        if !names.isEmpty {
            writer.key("allowedFunctionNames")
            writer.beginArray()
            for name in names { writer.string(name) }
            writer.endArray()
        }
        writer.endObject()
        writer.endObject()
    }

    // MARK: - Generation config

    static func writeGenerationConfig(_ request: JSONObject, context: TranslationContext, to writer: inout JSONWriter)
        throws(TranslateError)
    {
        var config = JSONWriter()
        config.beginObject()
        var empty = true
        func number(_ source: String, _ target: String, integer: Bool = false) throws(TranslateError) {
            guard let value = request[source], !value.isNull else { return }
            guard let number = value.numberValue, !integer || number.int64 != nil else {
                throw .invalidBody("'\(source)' must be \(integer ? "an integer" : "a number").", param: source)
            }
            config.key(target)
            config.number(number)
            empty = false
        }
        try number("temperature", "temperature")
        try number("top_p", "topP")
        try number("top_k", "topK", integer: true)
        if request["max_completion_tokens"].map({ !$0.isNull }) ?? false {
            try number("max_completion_tokens", "maxOutputTokens", integer: true)
        } else {
            try number("max_tokens", "maxOutputTokens", integer: true)
        }
        try number("n", "candidateCount", integer: true)
        try number("seed", "seed", integer: true)
        try number("presence_penalty", "presencePenalty")
        try number("frequency_penalty", "frequencyPenalty")

        if let stop = request["stop"], !stop.isNull {
            let sequences: [String]
            if let single = stop.stringValue {
                sequences = [single]
            } else if let array = stop.arrayValue {
                var collected: [String] = []
                for item in array {
                    guard let text = item.stringValue else {
                        throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
                    }
                    collected.append(text)
                }
                sequences = collected
            } else {
                throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
            }
            if !sequences.isEmpty {
                config.key("stopSequences")
                config.beginArray()
                for sequence in sequences { config.string(sequence) }
                config.endArray()
                empty = false
            }
        }

        if let format = request["response_format"], !format.isNull {
            switch format["type"]?.stringValue {
            case "text":
                break
            case "json_object":
                config.key("responseMimeType")
                config.string("application/json")
                empty = false
            case "json_schema":
                guard let schema = format["json_schema"]?["schema"], schema.objectValue != nil else {
                    throw .invalidBody("'response_format.json_schema.schema' must be an object.",
                                       param: "response_format.json_schema.schema")
                }
                config.key("responseMimeType")
                config.string("application/json")
                config.key("responseSchema")
                config.value(GeminiSchema.sanitized(schema))
                empty = false
            default:
                throw .invalidBody("Unknown 'response_format.type'.", param: "response_format.type")
            }
        }

        if let budget = try thinkingBudget(request) {
            config.key("thinkingConfig")
            config.beginObject()
            config.key("thinkingBudget")
            config.int(budget)
            if budget != 0 {
                // Without this Gemini thinks but returns no thought summaries, and reasoning_content stays empty.
                config.key("includeThoughts")
                config.bool(true)
            }
            config.endObject()
            empty = false
        }
        config.endObject()
        if !empty {
            writer.key("generationConfig")
            writer.raw(config.bytes)
        }
    }

    /// The `thinkingBudget` for `reasoning_effort` or the Anthropic-style `thinking` extension, or nil for none.
    ///
    /// Budgets follow Google's OpenAI-compatibility layer (low 1024, medium 8192, high 24576, none 0); Gemini 3
    /// models accept `thinkingBudget` too, and map it onto their thinking levels.
    static func thinkingBudget(_ request: JSONObject) throws(TranslateError) -> Int64? {
        if let thinking = request["thinking"], !thinking.isNull {
            switch thinking["type"]?.stringValue {
            case "enabled":
                guard let budget = thinking["budget_tokens"]?.int64Value, budget >= 0 else {
                    throw .invalidBody("'thinking.budget_tokens' must be a non-negative integer.",
                                       param: "thinking.budget_tokens")
                }
                return budget
            case "disabled": return 0
            case "adaptive": return -1
            default: throw .invalidBody("Unknown 'thinking.type'.", param: "thinking.type")
            }
        }
        guard let effort = request["reasoning_effort"], !effort.isNull else { return nil }
        switch effort.stringValue {
        case "none": return 0
        case "minimal": return 512
        case "low": return 1024
        case "medium": return 8192
        case "high": return 24576
        case "xhigh", "max": return 32768
        default: throw .invalidBody("Unknown 'reasoning_effort'.", param: "reasoning_effort")
        }
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
    static let dropped: Set<String> = [
        "$schema", "$id", "$comment", "additionalProperties", "unevaluatedProperties", "patternProperties",
        "propertyNames", "dependentRequired", "dependentSchemas", "strict", "examples", "if", "then", "else",
        "$defs", "definitions",
    ]

    /// Keywords whose value is a single subschema, an array of subschemas, or a map name -> subschema.
    static let singleSchema: Set<String> = ["items", "not", "additionalItems", "contains"]
    static let schemaArrays: Set<String> = ["anyOf", "oneOf", "allOf", "prefixItems"]
    static let schemaMaps: Set<String> = ["properties"]

    static func sanitized(_ schema: JSONValue, depth: Int = 0) -> JSONValue {
        // The parser already bounds depth; this only guards a hand-built value.
        guard depth < 128, let object = schema.objectValue else { return schema }
        var members: [JSONObject.Member] = []
        members.reserveCapacity(object.count)
        var nullable = false
        for (key, value) in object.members {
            if dropped.contains(key) { continue }
            if key == "type", let types = value.arrayValue {
                let named = types.compactMap(\.stringValue)
                let nonNull = named.filter { $0 != "null" }
                if nonNull.count == 1, let only = nonNull.first {
                    members.append((key, .string(only)))
                    nullable = nullable || named.count > nonNull.count
                    continue
                }
            }
            if key == "const", let text = value.stringValue {
                members.append(("enum", .array([.string(text)])))
                continue
            }
            if singleSchema.contains(key) {
                members.append((key, value.arrayValue.map { .array($0.map { sanitized($0, depth: depth + 1) }) }
                    ?? sanitized(value, depth: depth + 1)))
            } else if schemaArrays.contains(key), let array = value.arrayValue {
                members.append((key, .array(array.map { sanitized($0, depth: depth + 1) })))
            } else if schemaMaps.contains(key), let map = value.objectValue {
                members.append(
                    (key, .object(JSONObject(map.members.map { ($0.key, sanitized($0.value, depth: depth + 1)) }))))
            } else {
                members.append((key, value))
            }
        }
        if nullable && object["nullable"] == nil { members.append(("nullable", .bool(true))) }
        return .object(JSONObject(members))
    }
}

// OpenAI Chat Completions request -> Bedrock Converse / ConverseStream request ("AWS Bedrock
// Converse" in SluiceCore.docc/ProviderWireShapes.md).
//
// The model goes into the URL path, not the body. What we do beyond the reference translator:
// - same-role turns are merged (Converse requires user/assistant alternation), tool results included;
// - PDFs and other documents (data URIs in `file` or `image_url` parts) become `document` blocks;
// - `toolConfig` is kept whenever the history has toolUse/toolResult blocks (Bedrock rejects such turns
//   without it); if the client sent no tools we declare the tools the history used with an open schema;
// - `response_format` (json_schema / json_object) becomes a forced tool named `json_response`; the response
//   translators turn that tool's input back into the message content (see `BedrockConverse.jsonResponseToolName`).
// Remote (http) images cannot be fetched from inside the filter: they are a clear 400 naming the field.

/// Namespace of the Bedrock Converse translators.
public enum BedrockConverse {
    /// The tool that carries structured output when the client asked for `response_format` json.
    public static let jsonResponseToolName = "json_response"

    /// `/model/{modelId}/converse` or `/converse-stream`, with the model id (or inference profile / ARN)
    /// percent-encoded as one path segment (':' -> %3A, '/' -> %2F, everything but unreserved characters).
    public static func path(model: String, stream: Bool) -> String {
        "/model/" + SigV4Signer.uriEncode(model) + (stream ? "/converse-stream" : "/converse")
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
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(body)
        } catch {
            throw TranslateError.invalidBody("The request body is not valid JSON: \(error.description)")
        }
        guard let root = parsed.objectValue else {
            throw TranslateError.invalidBody("The request body must be a JSON object.")
        }
        var builder = RequestBuilder()
        return try builder.build(root, context: context)
    }
}

// MARK: - Building

/// One Converse content block, kept as the JSON it will be written as.
private typealias Block = JSONValue

private struct Turn {
    var role: String
    var blocks: [Block]
}

private struct RequestBuilder {
    var system: [Block] = []
    var turns: [Turn] = []
    /// Tool names used by toolUse blocks in the history, in first-seen order.
    var historyToolNames: [String] = []
    var historyHasToolBlocks = false
    var documentCount = 0

    mutating func build(_ root: JSONObject, context: TranslationContext) throws(TranslateError) -> BedrockConverse.Request {
        if let n = root["n"], !n.isNull, n.int64Value != 1 {
            throw TranslateError.unsupported("Bedrock Converse returns one choice; 'n' must be 1.", param: "n")
        }
        guard let messages = root["messages"]?.arrayValue else {
            throw TranslateError.invalidBody("'messages' must be an array.", param: "messages")
        }
        for (index, message) in messages.enumerated() {
            try add(message, at: "messages[\(index)]")
        }

        // Tools and tool choice.
        let choice = try toolChoice(root["tool_choice"])
        var tools = try clientTools(root["tools"])
        var structuredOutput = false
        if let format = root["response_format"], !format.isNull {
            guard let type = format["type"]?.stringValue else {
                throw TranslateError.invalidBody("'response_format.type' must be a string.", param: "response_format")
            }
            switch type {
            case "text": break
            case "json_schema", "json_object":
                if !tools.isEmpty {
                    throw TranslateError.unsupported(
                        "Bedrock Converse implements response_format with a forced tool; it cannot be combined with 'tools'.",
                        param: "response_format")
                }
                let schema: JSONValue
                if type == "json_schema" {
                    guard let given = format["json_schema"]?["schema"], given.objectValue != nil else {
                        throw TranslateError.invalidBody(
                            "'response_format.json_schema.schema' must be an object.", param: "response_format.json_schema")
                    }
                    schema = given
                } else {
                    schema = ["type": "object"]
                }
                let description = format["json_schema"]?["description"]?.stringValue
                tools = [toolSpec(name: BedrockConverse.jsonResponseToolName, description: description ?? "Respond with a JSON object.", schema: schema)]
                structuredOutput = true
            default:
                throw TranslateError.unsupported("Unsupported response_format type '\(type)'.", param: "response_format.type")
            }
        }
        var toolChoiceJSON: JSONValue?
        if structuredOutput {
            toolChoiceJSON = ["tool": ["name": .string(BedrockConverse.jsonResponseToolName)]]
        } else {
            switch choice {
            case .unset, .auto: toolChoiceJSON = tools.isEmpty ? nil : ["auto": [:]]
            case .required: toolChoiceJSON = ["any": [:]]
            case .named(let name): toolChoiceJSON = ["tool": ["name": .string(name)]]
            case .none:
                // Converse has no "none": omit toolChoice, and drop the tools entirely unless the history needs them.
                toolChoiceJSON = nil
                if !historyHasToolBlocks { tools = [] }
            }
            if toolChoiceJSON != nil && tools.isEmpty {
                throw TranslateError.invalidBody("'tool_choice' requires 'tools'.", param: "tool_choice")
            }
        }
        if historyHasToolBlocks && tools.isEmpty {
            tools = historyToolNames.map {
                toolSpec(name: $0, description: nil, schema: ["type": "object", "properties": [:]])
            }
            if tools.isEmpty {
                // Only tool results, no tool uses: Bedrock still wants a tool list; declare a placeholder.
                tools = [toolSpec(name: "tool", description: nil, schema: ["type": "object", "properties": [:]])]
            }
        }

        var writer = JSONWriter(reservingCapacity: 1024)
        writer.beginObject()
        writer.key("messages")
        writer.beginArray()
        for turn in turns {
            writer.beginObject()
            writer.key("role")
            writer.string(turn.role)
            writer.key("content")
            writer.value(.array(turn.blocks))
            writer.endObject()
        }
        writer.endArray()
        if !system.isEmpty {
            writer.key("system")
            writer.value(.array(system))
        }
        try writeInferenceConfig(root, to: &writer)
        if !tools.isEmpty {
            writer.key("toolConfig")
            writer.beginObject()
            writer.key("tools")
            writer.value(.array(tools))
            if let toolChoiceJSON {
                writer.key("toolChoice")
                writer.value(toolChoiceJSON)
            }
            writer.endObject()
        }
        let additional = try additionalFields(root, model: context.upstreamModel)
        if !additional.isEmpty {
            writer.key("additionalModelRequestFields")
            writer.value(.object(JSONObject(additional)))
        }
        if let tier = root["service_tier"]?.stringValue, tier != "auto" {
            writer.key("serviceTier")
            writer.beginObject()
            writer.key("type")
            writer.string(tier)
            writer.endObject()
        }
        writer.endObject()
        return BedrockConverse.Request(
            body: writer.bytes, path: BedrockConverse.path(model: context.upstreamModel, stream: context.stream),
            structuredOutput: structuredOutput)
    }

    // MARK: Messages

    mutating func add(_ message: JSONValue, at param: String) throws(TranslateError) {
        guard let object = message.objectValue, let role = object["role"]?.stringValue else {
            throw TranslateError.invalidBody("Each message must be an object with a string 'role'.", param: param)
        }
        switch role {
        case "system", "developer":
            for text in try texts(object["content"], at: "\(param).content") {
                system.append(["text": .string(text.text)])
                if text.cachePoint { system.append(["cachePoint": ["type": "default"]]) }
            }
        case "user":
            try append(role: "user", blocks: try userBlocks(object["content"], at: "\(param).content"))
        case "assistant":
            try append(role: "assistant", blocks: try assistantBlocks(object, at: param))
        case "tool":
            guard let id = object["tool_call_id"]?.stringValue else {
                throw TranslateError.invalidBody("A tool message needs a string 'tool_call_id'.", param: "\(param).tool_call_id")
            }
            let content = try texts(object["content"], at: "\(param).content").map { piece -> Block in ["text": .string(piece.text)] }
            historyHasToolBlocks = true
            try append(role: "user", blocks: [["toolResult": ["toolUseId": .string(id), "content": .array(content.isEmpty ? [["text": ""]] : content)]]])
        case "function":
            throw TranslateError.unsupported("The deprecated 'function' role is not supported; use 'tool'.", param: "\(param).role")
        default:
            throw TranslateError.invalidBody("Unknown message role '\(role)'.", param: "\(param).role")
        }
    }

    /// Appends blocks, merging into the previous turn when it has the same role; empty turns are dropped.
    mutating func append(role: String, blocks: [Block]) throws(TranslateError) {
        guard !blocks.isEmpty else { return }
        if let last = turns.indices.last, turns[last].role == role {
            turns[last].blocks += blocks
        } else {
            turns.append(Turn(role: role, blocks: blocks))
        }
    }

    struct TextPiece {
        var text: String
        var cachePoint: Bool
    }

    /// The text of a string or an array of text parts (system, developer and tool messages).
    func texts(_ content: JSONValue?, at param: String) throws(TranslateError) -> [TextPiece] {
        guard let content, !content.isNull else { return [] }
        if let text = content.stringValue { return text.isEmpty ? [] : [TextPiece(text: text, cachePoint: false)] }
        guard let parts = content.arrayValue else {
            throw TranslateError.invalidBody("'content' must be a string or an array of parts.", param: param)
        }
        var pieces: [TextPiece] = []
        for (index, part) in parts.enumerated() {
            guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                throw TranslateError(
                    code: "unsupported_content_part", message: "Only text parts are supported here.",
                    param: "\(param)[\(index)]")
            }
            pieces.append(TextPiece(text: text, cachePoint: part["cache_control"].map { !$0.isNull } ?? false))
        }
        return pieces
    }

    mutating func userBlocks(_ content: JSONValue?, at param: String) throws(TranslateError) -> [Block] {
        guard let content, !content.isNull else {
            throw TranslateError.invalidBody("A user message needs 'content'.", param: param)
        }
        if let text = content.stringValue { return [["text": .string(text)]] }
        guard let parts = content.arrayValue else {
            throw TranslateError.invalidBody("'content' must be a string or an array of parts.", param: param)
        }
        var blocks: [Block] = []
        for (index, part) in parts.enumerated() {
            let partParam = "\(param)[\(index)]"
            let type = part["type"]?.stringValue ?? ""
            switch type {
            case "text":
                guard let text = part["text"]?.stringValue else {
                    throw TranslateError.invalidBody("A text part needs a string 'text'.", param: "\(partParam).text")
                }
                blocks.append(["text": .string(text)])
            case "image_url":
                let urlParam = "\(partParam).image_url.url"
                guard let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue else {
                    throw TranslateError.invalidBody("An image_url part needs 'image_url.url'.", param: urlParam)
                }
                blocks.append(try mediaBlock(url: url, filename: nil, at: urlParam))
            case "file":
                let dataParam = "\(partParam).file.file_data"
                guard let data = part["file"]?["file_data"]?.stringValue else {
                    throw TranslateError(
                        code: "unsupported_content_part",
                        message: "Bedrock Converse needs inline file data ('file.file_data' as a data URI); file ids are not supported.",
                        param: "\(partParam).file")
                }
                blocks.append(try mediaBlock(url: data, filename: part["file"]?["filename"]?.stringValue, at: dataParam))
            default:
                throw TranslateError(
                    code: "unsupported_content_part",
                    message: "Content part type '\(type)' is not supported by Bedrock Converse.", param: "\(partParam).type")
            }
            if let cache = part["cache_control"], !cache.isNull { blocks.append(["cachePoint": ["type": "default"]]) }
        }
        return blocks
    }

    /// An image or document block from a data URI.
    mutating func mediaBlock(url: String, filename: String?, at param: String) throws(TranslateError) -> Block {
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
        switch mime {
        case "image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp":
            let format = mime == "image/jpg" ? "jpeg" : String(mime.dropFirst("image/".count))
            return ["image": ["format": .string(format), "source": ["bytes": .string(data)]]]
        default:
            guard let format = Self.documentFormats[mime] else {
                throw TranslateError(
                    code: "unsupported_content_part",
                    message: "Media type '\(mime)' is not supported by Bedrock Converse.", param: param)
            }
            documentCount += 1
            return [
                "document": [
                    "format": .string(format), "name": .string(documentName(filename)), "source": ["bytes": .string(data)],
                ]
            ]
        }
    }

    static let documentFormats: [String: String] = [
        "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
        "application/vnd.ms-excel": "xls", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
        "text/html": "html", "text/plain": "txt", "text/markdown": "md",
    ]

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

    mutating func assistantBlocks(_ object: JSONObject, at param: String) throws(TranslateError) -> [Block] {
        var blocks: [Block] = []
        // Reasoning first: Converse (like Anthropic) wants thinking before the text it led to. Only signed blocks
        // round-trip; a bare `reasoning_content` string cannot be verified by the model and is dropped.
        if let thinking = object["thinking_blocks"]?.arrayValue {
            for (index, block) in thinking.enumerated() {
                switch block["type"]?.stringValue {
                case "thinking":
                    var text: [(key: String, value: JSONValue)] = [("text", .string(block["thinking"]?.stringValue ?? ""))]
                    if let signature = block["signature"]?.stringValue { text.append(("signature", .string(signature))) }
                    blocks.append(["reasoningContent": ["reasoningText": .object(JSONObject(text))]])
                case "redacted_thinking":
                    guard let data = block["data"]?.stringValue else {
                        throw TranslateError.invalidBody("redacted_thinking needs 'data'.", param: "\(param).thinking_blocks[\(index)]")
                    }
                    blocks.append(["reasoningContent": ["redactedContent": .string(data)]])
                default:
                    throw TranslateError.invalidBody("Unknown thinking block type.", param: "\(param).thinking_blocks[\(index)].type")
                }
            }
        }
        if let content = object["content"], !content.isNull {
            if let text = content.stringValue {
                if !text.isEmpty { blocks.append(["text": .string(text)]) }
            } else if let parts = content.arrayValue {
                for (index, part) in parts.enumerated() {
                    let type = part["type"]?.stringValue
                    guard type == "text" || type == "refusal",
                        let text = part[type == "text" ? "text" : "refusal"]?.stringValue
                    else {
                        throw TranslateError(
                            code: "unsupported_content_part", message: "Assistant content parts must be text.",
                            param: "\(param).content[\(index)]")
                    }
                    if !text.isEmpty { blocks.append(["text": .string(text)]) }
                }
            } else {
                throw TranslateError.invalidBody("'content' must be a string, an array or null.", param: "\(param).content")
            }
        }
        if let calls = object["tool_calls"], !calls.isNull {
            guard let list = calls.arrayValue else {
                throw TranslateError.invalidBody("'tool_calls' must be an array.", param: "\(param).tool_calls")
            }
            for (index, call) in list.enumerated() {
                let callParam = "\(param).tool_calls[\(index)]"
                guard let id = call["id"]?.stringValue, let function = call["function"],
                    let name = function["name"]?.stringValue
                else {
                    throw TranslateError.invalidBody("A tool call needs 'id' and 'function.name'.", param: callParam)
                }
                let arguments = function["arguments"]?.stringValue ?? ""
                let input: JSONValue
                if arguments.allSatisfy(\.isWhitespace) {
                    input = [:]
                } else {
                    guard let parsed = try? JSONParser.parse(arguments), parsed.objectValue != nil else {
                        throw TranslateError.invalidBody(
                            "Tool call arguments must be a JSON object.", param: "\(callParam).function.arguments")
                    }
                    input = parsed
                }
                historyHasToolBlocks = true
                if !historyToolNames.contains(name) { historyToolNames.append(name) }
                blocks.append(["toolUse": ["toolUseId": .string(id), "name": .string(name), "input": input]])
            }
        }
        return blocks
    }

    // MARK: Tools

    enum ToolChoice {
        case unset, auto, none, required
        case named(String)
    }

    func toolChoice(_ value: JSONValue?) throws(TranslateError) -> ToolChoice {
        guard let value, !value.isNull else { return .unset }
        if let text = value.stringValue {
            switch text {
            case "auto": return .auto
            case "none": return .none
            case "required": return .required
            default: throw TranslateError.invalidBody("Unknown tool_choice '\(text)'.", param: "tool_choice")
            }
        }
        guard let name = value["function"]?["name"]?.stringValue else {
            throw TranslateError.invalidBody("tool_choice must be a string or {type:function, function:{name}}.", param: "tool_choice")
        }
        return .named(name)
    }

    func clientTools(_ value: JSONValue?) throws(TranslateError) -> [Block] {
        guard let value, !value.isNull else { return [] }
        guard let list = value.arrayValue else {
            throw TranslateError.invalidBody("'tools' must be an array.", param: "tools")
        }
        var tools: [Block] = []
        for (index, tool) in list.enumerated() {
            guard tool["type"]?.stringValue == "function", let function = tool["function"],
                let name = function["name"]?.stringValue
            else {
                throw TranslateError.unsupported(
                    "Only function tools with a name are supported by Bedrock Converse.", param: "tools[\(index)]")
            }
            let parameters = function["parameters"] ?? ["type": "object", "properties": [:]]
            guard parameters.objectValue != nil else {
                throw TranslateError.invalidBody("'parameters' must be a JSON Schema object.", param: "tools[\(index)].function.parameters")
            }
            tools.append(toolSpec(name: name, description: function["description"]?.stringValue, schema: parameters))
            if let cache = tool["cache_control"], !cache.isNull { tools.append(["cachePoint": ["type": "default"]]) }
        }
        return tools
    }

    func toolSpec(name: String, description: String?, schema: JSONValue) -> Block {
        var spec: [(key: String, value: JSONValue)] = [("name", .string(name))]
        if let description, !description.isEmpty { spec.append(("description", .string(description))) }
        spec.append(("inputSchema", ["json": schema]))
        return ["toolSpec": .object(JSONObject(spec))]
    }

    // MARK: Inference and model-specific fields

    func writeInferenceConfig(_ root: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        var config: [(key: String, value: JSONValue)] = []
        for key in ["max_completion_tokens", "max_tokens"] {
            guard let value = root[key], !value.isNull else { continue }
            guard let tokens = value.int64Value, tokens > 0 else {
                throw TranslateError.invalidBody("'\(key)' must be a positive integer.", param: key)
            }
            config.append(("maxTokens", .number(JSONNumber(tokens))))
            break
        }
        for (key, target) in [("temperature", "temperature"), ("top_p", "topP")] {
            guard let value = root[key], !value.isNull else { continue }
            guard let number = value.numberValue else {
                throw TranslateError.invalidBody("'\(key)' must be a number.", param: key)
            }
            config.append((target, .number(number)))
        }
        if let stop = root["stop"], !stop.isNull {
            if let single = stop.stringValue {
                config.append(("stopSequences", [.string(single)]))
            } else if let list = stop.arrayValue, list.allSatisfy({ $0.stringValue != nil }) {
                if !list.isEmpty { config.append(("stopSequences", .array(list))) }
            } else {
                throw TranslateError.invalidBody("'stop' must be a string or an array of strings.", param: "stop")
            }
        }
        guard !config.isEmpty else { return }
        writer.key("inferenceConfig")
        writer.value(.object(JSONObject(config)))
    }

    /// `additionalModelRequestFields`: reasoning and model-specific knobs Converse has no field for.
    func additionalFields(_ root: JSONObject, model: String) throws(TranslateError) -> [(key: String, value: JSONValue)] {
        var fields: [(key: String, value: JSONValue)] = []
        let isClaude = model.contains("anthropic.") || model.contains("claude")
        if let thinking = root["thinking"], !thinking.isNull {
            guard thinking.objectValue != nil else {
                throw TranslateError.invalidBody("'thinking' must be an object.", param: "thinking")
            }
            fields.append(("thinking", thinking))
        } else if let effort = root["reasoning_effort"], !effort.isNull {
            guard let level = effort.stringValue else {
                throw TranslateError.invalidBody("'reasoning_effort' must be a string.", param: "reasoning_effort")
            }
            if isClaude {
                // Claude on Bedrock takes a thinking budget (LiteLLM's mapping of effort to budget).
                let budget: Int64? =
                    switch level {
                    case "none", "minimal": nil
                    case "low": 1024
                    case "medium": 2048
                    default: 4096
                    }
                if let budget {
                    fields.append(("thinking", ["type": "enabled", "budget_tokens": .number(JSONNumber(budget))]))
                }
            } else {
                fields.append(("reasoning_effort", .string(level)))
            }
        }
        if let topK = root["top_k"], !topK.isNull {
            guard topK.int64Value != nil else { throw TranslateError.invalidBody("'top_k' must be an integer.", param: "top_k") }
            fields.append(("top_k", topK))
        }
        return fields
    }
}

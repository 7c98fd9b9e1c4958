// OpenAI Chat Completions request (the hub) -> Anthropic Messages request body ("Anthropic
// Messages" in SluiceCore.docc/ProviderWireShapes.md).
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

extension AnthropicTranslator {
    /// Translates a parsed OpenAI chat request into an Anthropic Messages request body.
    /// - Parameters:
    ///   - body: the client's request, parsed.
    ///   - context: upstream model and the default `max_tokens`.
    ///   - flavor: native API, Vertex rawPredict or Bedrock InvokeModel (model in the URL, not the body).
    /// - Returns: the compact JSON body to send upstream.
    /// - Throws: `TranslateError` (400) naming the field the backend cannot take.
    public static func request(
        fromOpenAIChat body: JSONValue, context: TranslationContext, flavor: Flavor = .native
    ) throws(TranslateError) -> [UInt8] {
        guard let root = body.objectValue else { throw .invalidBody("The request body must be a JSON object.") }
        if let n = root["n"], !n.isNull {
            guard let count = n.int64Value else { throw .invalidBody("'n' must be an integer.", param: "n") }
            if count > 1 {
                throw .unsupported(
                    "Anthropic models return a single choice; 'n' greater than 1 is not supported.",
                    param: "n")
            }
        }
        guard let messages = root["messages"]?.arrayValue else {
            throw .invalidBody("'messages' must be an array of messages.", param: "messages")
        }

        var system: [JSONValue] = []
        var turns: [Turn] = []
        for (index, message) in messages.enumerated() {
            try appendMessage(message, index: index, system: &system, turns: &turns)
        }

        var writer = JSONWriter(reservingCapacity: 1024)
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
        writer.key("max_tokens")
        writer.int(try maxTokens(root, context: context))
        if !system.isEmpty {
            writer.key("system")
            let plain = system.allSatisfy { $0.objectValue?.count == 2 }
            if plain, system.count == 1, let text = system[0]["text"] {
                writer.value(text)
            } else {
                writer.value(.array(system))
            }
        }
        writer.key("messages")
        writer.beginArray()
        for turn in turns {
            writer.beginObject()
            writer.key("role")
            writer.string(turn.role)
            writer.key("content")
            if turn.fromString, turn.blocks.count == 1, let text = turn.blocks[0]["text"] {
                writer.value(text)
            } else {
                writer.value(.array(turn.blocks))
            }
            writer.endObject()
        }
        writer.endArray()
        try writeSampling(root, to: &writer)
        try writeTools(root, to: &writer)
        try writeOutputConfig(root, to: &writer)
        if let thinking = root["thinking"], thinking.objectValue != nil {
            writer.key("thinking")
            writer.value(thinking)
        }
        if let user = root["user"]?.stringValue, !user.isEmpty {
            writer.key("metadata")
            writer.beginObject()
            writer.key("user_id")
            writer.string(user)
            writer.endObject()
        }
        if flavor != .bedrock, root["stream"]?.boolValue == true {
            writer.key("stream")
            writer.bool(true)
        }
        writer.endObject()
        return writer.bytes
    }

    // MARK: - Messages

    /// One Anthropic turn being assembled; same-role neighbours are merged into it.
    private struct Turn {
        var role: String
        var blocks: [JSONValue]
        /// The turn is a single OpenAI string content, sent back as a plain string.
        var fromString: Bool
    }

    private static func append(_ blocks: [JSONValue], role: String, fromString: Bool, to turns: inout [Turn]) {
        guard !blocks.isEmpty else { return }
        if let last = turns.indices.last, turns[last].role == role {
            turns[last].blocks.append(contentsOf: blocks)
            turns[last].fromString = false
        } else {
            turns.append(Turn(role: role, blocks: blocks, fromString: fromString))
        }
    }

    private static func appendMessage(
        _ message: JSONValue, index: Int, system: inout [JSONValue], turns: inout [Turn]
    ) throws(TranslateError) {
        let param = "messages[\(index)]"
        guard let role = message["role"]?.stringValue else {
            throw .invalidBody("Each message needs a string 'role'.", param: "\(param).role")
        }
        let content = message["content"]
        switch role {
        case "system", "developer":
            system.append(contentsOf: try textBlocks(content, param: "\(param).content"))
        case "user":
            if let text = content?.stringValue {
                append(
                    [object([("type", "text"), ("text", .string(text))])], role: "user", fromString: true,
                    to: &turns)
            } else {
                append(
                    try userBlocks(content, param: "\(param).content"), role: "user", fromString: false,
                    to: &turns)
            }
        case "assistant":
            append(try assistantBlocks(message, param: param), role: "assistant", fromString: false, to: &turns)
        case "tool":
            append([try toolResult(message, param: param)], role: "user", fromString: false, to: &turns)
        case "function":
            throw .unsupported(
                "Legacy 'function' messages are not supported; use 'tool' messages.",
                param: "\(param).role")
        default:
            throw .invalidBody("Unknown message role '\(role)'.", param: "\(param).role")
        }
    }

    /// System/developer content: a string or text parts, each becoming a text block (`cache_control` kept).
    private static func textBlocks(_ content: JSONValue?, param: String) throws(TranslateError) -> [JSONValue] {
        switch content {
        case .string(let text)?:
            return [object([("type", "text"), ("text", .string(text))])]
        case .array(let parts)?:
            var blocks: [JSONValue] = []
            for (index, part) in parts.enumerated() {
                guard part["type"]?.stringValue == "text", let text = part["text"] else {
                    throw .unsupported("Only text parts are allowed here.", param: "\(param)[\(index)]")
                }
                blocks.append(block([("type", "text"), ("text", text)], cacheControlFrom: part))
            }
            return blocks
        default:
            throw .invalidBody("'content' must be a string or an array of text parts.", param: param)
        }
    }

    /// A block with the part's `cache_control` appended when it has one.
    private static func block(_ members: [(String, JSONValue)], cacheControlFrom part: JSONValue) -> JSONValue {
        var members = members
        if let cache = part["cache_control"], !cache.isNull { members.append(("cache_control", cache)) }
        return object(members)
    }

    private static func userBlocks(_ content: JSONValue?, param: String) throws(TranslateError) -> [JSONValue] {
        guard let parts = content?.arrayValue else {
            throw .invalidBody("'content' must be a string or an array of content parts.", param: param)
        }
        var blocks: [JSONValue] = []
        for (index, part) in parts.enumerated() {
            let partParam = "\(param)[\(index)]"
            switch part["type"]?.stringValue {
            case "text":
                guard let text = part["text"], text.stringValue != nil else {
                    throw .invalidBody("A text part needs a string 'text'.", param: "\(partParam).text")
                }
                blocks.append(block([("type", "text"), ("text", text)], cacheControlFrom: part))
            case "image_url":
                let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue
                guard let url else {
                    throw .invalidBody("An image_url part needs 'image_url.url'.", param: "\(partParam).image_url")
                }
                blocks.append(try mediaBlock(url: url, part: part, param: "\(partParam).image_url.url"))
            case "file":
                // A PDF sent inline is a document; files by id live in OpenAI's storage and cannot be reached.
                guard let data = part["file"]?["file_data"]?.stringValue, data.hasPrefix("data:") else {
                    throw .unsupported(
                        "File parts are only supported as inline PDF data ('file.file_data' data: URI).",
                        param: partParam)
                }
                var document = try mediaBlock(url: data, part: part, param: "\(partParam).file.file_data")
                if document["type"] == "document", let name = part["file"]?["filename"]?.stringValue,
                    let members = document.objectValue?.members
                {
                    document = .object(JSONObject(members + [(key: "title", value: .string(name))]))
                }
                blocks.append(document)
            case "input_audio":
                throw .unsupported("Anthropic models do not accept audio input.", param: partParam)
            case let type?:
                throw .unsupported(
                    "Content part type '\(type)' is not supported by Anthropic models.",
                    param: partParam)
            case nil:
                throw .invalidBody("Each content part needs a string 'type'.", param: partParam)
            }
        }
        return blocks
    }

    /// Image media types Anthropic accepts.
    private static let imageTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    /// An image or document block from a data: URI or an http(s) URL.
    private static func mediaBlock(url: String, part: JSONValue, param: String) throws(TranslateError) -> JSONValue {
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
            let source = object([("type", "base64"), ("media_type", .string(mediaType)), ("data", .string(data))])
            if mediaType == "application/pdf" {
                return block([("type", "document"), ("source", source)], cacheControlFrom: part)
            }
            guard imageTypes.contains(mediaType) else {
                throw .unsupported(
                    "Media type '\(mediaType)' is not supported; use image/jpeg, image/png, image/gif, image/webp "
                        + "or application/pdf.", param: param)
            }
            return block([("type", "image"), ("source", source)], cacheControlFrom: part)
        }
        let lower = url.lowercased()
        guard lower.hasPrefix("https://") || lower.hasPrefix("http://") else {
            throw .unsupported("Only http(s) URLs and base64 data: URIs are supported.", param: param)
        }
        let source = object([("type", "url"), ("url", .string(url))])
        let path = lower.split(separator: "?", maxSplits: 1).first?.split(separator: "#", maxSplits: 1).first
        if let path, path.hasSuffix(".pdf") {
            return block([("type", "document"), ("source", source)], cacheControlFrom: part)
        }
        return block([("type", "image"), ("source", source)], cacheControlFrom: part)
    }

    /// Assistant turn: thinking blocks (which must come first), text, then tool_use blocks.
    private static func assistantBlocks(_ message: JSONValue, param: String) throws(TranslateError) -> [JSONValue] {
        var blocks: [JSONValue] = []
        if let thinking = message["thinking_blocks"], !thinking.isNull {
            guard let list = thinking.arrayValue else {
                throw .invalidBody("'thinking_blocks' must be an array.", param: "\(param).thinking_blocks")
            }
            for (index, block) in list.enumerated() {
                switch block["type"]?.stringValue {
                case "thinking", "redacted_thinking": blocks.append(block)
                default:
                    throw .invalidBody(
                        "Thinking blocks must be of type 'thinking' or 'redacted_thinking'.",
                        param: "\(param).thinking_blocks[\(index)]")
                }
            }
        }
        // `reasoning_content` without a signature cannot be replayed to Anthropic, so it is dropped.
        switch message["content"] {
        case nil, .null?: break
        case .string(let text)?:
            if !text.isEmpty { blocks.append(object([("type", "text"), ("text", .string(text))])) }
        case .array(let parts)?:
            for (index, part) in parts.enumerated() {
                let type = part["type"]?.stringValue
                guard type == "text" || type == "refusal", let type, let text = part[type]?.stringValue else {
                    throw .unsupported("Assistant content parts must be text.", param: "\(param).content[\(index)]")
                }
                if !text.isEmpty {
                    blocks.append(block([("type", "text"), ("text", .string(text))], cacheControlFrom: part))
                }
            }
        default:
            throw .invalidBody("'content' must be a string, an array or null.", param: "\(param).content")
        }
        if let calls = message["tool_calls"], !calls.isNull {
            guard let list = calls.arrayValue else {
                throw .invalidBody("'tool_calls' must be an array.", param: "\(param).tool_calls")
            }
            for (index, call) in list.enumerated() {
                blocks.append(try toolUse(call, param: "\(param).tool_calls[\(index)]"))
            }
        }
        return blocks
    }

    private static func toolUse(_ call: JSONValue, param: String) throws(TranslateError) -> JSONValue {
        if let type = call["type"]?.stringValue, type != "function" {
            throw .unsupported("Tool call type '\(type)' is not supported.", param: "\(param).type")
        }
        guard let id = call["id"]?.stringValue else {
            throw .invalidBody("A tool call needs a string 'id'.", param: "\(param).id")
        }
        guard let name = call["function"]?["name"]?.stringValue else {
            throw .invalidBody("A tool call needs 'function.name'.", param: "\(param).function.name")
        }
        let arguments = call["function"]?["arguments"]?.stringValue ?? ""
        var input = object([])
        if arguments.utf8.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) {
            guard let parsed = try? JSONParser.parse(arguments), parsed.objectValue != nil else {
                throw .invalidBody("Tool call arguments must be a JSON object.", param: "\(param).function.arguments")
            }
            input = parsed
        }
        return object([("type", "tool_use"), ("id", .string(id)), ("name", .string(name)), ("input", input)])
    }

    private static func toolResult(_ message: JSONValue, param: String) throws(TranslateError) -> JSONValue {
        guard let id = message["tool_call_id"]?.stringValue else {
            throw .invalidBody("A tool message needs a string 'tool_call_id'.", param: "\(param).tool_call_id")
        }
        var members: [(String, JSONValue)] = [("type", "tool_result"), ("tool_use_id", .string(id))]
        switch message["content"] {
        case .string(let text)?:
            members.append(("content", .string(text)))
        case .array?:
            members.append(("content", .array(try textBlocks(message["content"], param: "\(param).content"))))
        case nil, .null?:
            break
        default:
            throw .invalidBody("'content' must be a string or an array of text parts.", param: "\(param).content")
        }
        if message["is_error"]?.boolValue == true { members.append(("is_error", true)) }
        return object(members)
    }

    // MARK: - Parameters

    private static func maxTokens(_ root: JSONObject, context: TranslationContext) throws(TranslateError) -> Int64 {
        for name in ["max_completion_tokens", "max_tokens"] {
            guard let value = root[name], !value.isNull else { continue }
            guard let tokens = value.int64Value, tokens > 0 else {
                throw .invalidBody("'\(name)' must be a positive integer.", param: name)
            }
            return tokens
        }
        return Int64(max(1, context.defaultMaxTokens))
    }

    private static func writeSampling(_ root: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        if let value = root["temperature"], !value.isNull {
            guard let number = value.numberValue, let temperature = number.double else {
                throw .invalidBody("'temperature' must be a number.", param: "temperature")
            }
            writer.key("temperature")
            if temperature > 1 { writer.int(1) } else { writer.number(number) }
        }
        for name in ["top_p", "top_k"] {
            guard let value = root[name], !value.isNull else { continue }
            guard let number = value.numberValue else {
                throw .invalidBody("'\(name)' must be a number.", param: name)
            }
            writer.key(name)
            writer.number(number)
        }
        switch root["stop"] {
        case nil, .null?: break
        case .string(let stop)?:
            writer.key("stop_sequences")
            writer.beginArray()
            writer.string(stop)
            writer.endArray()
        case .array(let stops)?:
            guard stops.allSatisfy({ $0.stringValue != nil }) else {
                throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
            }
            if !stops.isEmpty {
                writer.key("stop_sequences")
                writer.value(.array(stops))
            }
        default:
            throw .invalidBody("'stop' must be a string or an array of strings.", param: "stop")
        }
    }

    private static func writeTools(_ root: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        guard let tools = root["tools"], !tools.isNull else { return }
        guard let list = tools.arrayValue else { throw .invalidBody("'tools' must be an array.", param: "tools") }
        guard !list.isEmpty else { return }
        writer.key("tools")
        writer.beginArray()
        for (index, tool) in list.enumerated() {
            let param = "tools[\(index)]"
            guard tool["type"]?.stringValue ?? "function" == "function" else {
                throw .unsupported("Only function tools are supported.", param: "\(param).type")
            }
            guard let function = tool["function"], let name = function["name"]?.stringValue else {
                throw .invalidBody("A tool needs 'function.name'.", param: "\(param).function.name")
            }
            writer.beginObject()
            writer.key("name")
            writer.string(name)
            if let description = function["description"]?.stringValue {
                writer.key("description")
                writer.string(description)
            }
            writer.key("input_schema")
            if let schema = function["parameters"], schema.objectValue != nil {
                writer.value(schema)
            } else {
                writer.value(object([("type", "object"), ("properties", object([]))]))
            }
            if let strict = function["strict"]?.boolValue {
                writer.key("strict")
                writer.bool(strict)
            }
            if let cache = tool["cache_control"], !cache.isNull {
                writer.key("cache_control")
                writer.value(cache)
            }
            writer.endObject()
        }
        writer.endArray()

        let noParallel = root["parallel_tool_calls"]?.boolValue == false
        var choice: [(String, JSONValue)] = []
        switch root["tool_choice"] {
        case nil, .null?: if noParallel { choice = [("type", "auto")] }
        case .string("auto")?: choice = [("type", "auto")]
        case .string("required")?: choice = [("type", "any")]
        case .string("none")?: choice = [("type", "none")]
        case .object(let named)?:
            guard let name = named["function"]?["name"]?.stringValue else {
                throw .invalidBody("A named tool_choice needs 'function.name'.", param: "tool_choice.function.name")
            }
            choice = [("type", "tool"), ("name", .string(name))]
        default:
            throw .invalidBody(
                "'tool_choice' must be 'auto', 'required', 'none' or a named function.",
                param: "tool_choice")
        }
        guard !choice.isEmpty else { return }
        // Anthropic's `none` choice has no parallelism flag.
        if noParallel, choice[0].1 != "none" { choice.append(("disable_parallel_tool_use", true)) }
        writer.key("tool_choice")
        writer.value(object(choice))
    }

    private static func writeOutputConfig(_ root: JSONObject, to writer: inout JSONWriter) throws(TranslateError) {
        var config: [(String, JSONValue)] = []
        if let format = root["response_format"], !format.isNull {
            switch format["type"]?.stringValue {
            case "text": break
            case "json_schema":
                guard let schema = format["json_schema"]?["schema"], schema.objectValue != nil else {
                    throw .invalidBody(
                        "'response_format.json_schema.schema' must be an object.",
                        param: "response_format.json_schema.schema")
                }
                config.append(("format", object([("type", "json_schema"), ("schema", schema)])))
            case "json_object":
                throw .unsupported(
                    "Anthropic models have no JSON mode; use response_format type 'json_schema' with a schema.",
                    param: "response_format.type")
            default:
                throw .invalidBody("Unknown 'response_format.type'.", param: "response_format.type")
            }
        }
        if let effort = root["reasoning_effort"], !effort.isNull {
            switch effort.stringValue {
            case "none"?: break
            case "minimal"?: config.append(("effort", "low"))
            case let level? where ["low", "medium", "high", "xhigh", "max"].contains(level):
                config.append(("effort", .string(level)))
            default:
                throw .invalidBody("Unknown 'reasoning_effort'.", param: "reasoning_effort")
            }
        }
        guard !config.isEmpty else { return }
        writer.key("output_config")
        writer.value(object(config))
    }
}

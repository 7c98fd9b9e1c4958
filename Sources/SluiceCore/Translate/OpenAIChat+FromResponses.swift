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

/// Translators between the OpenAI Responses API (client side) and the OpenAI Chat Completions hub.
public enum ResponsesTranslator {
    /// The Responses request, translated: the hub request and what the response must echo.
    public struct Request: Sendable {
        /// The equivalent OpenAI chat request.
        public var hub: JSONValue
        /// The request fields the Responses answer reports back.
        public var echo: ResponsesEcho
    }

    /// The largest `max_output_tokens` accepted: `TokenUsage.maxCount`, ten times any context window today.
    static let maxOutputTokens: Int64 = Int64(TokenUsage.maxCount)

    /// Translates a Responses request into the OpenAI hub request.
    /// - Parameter body: the client's Responses request, parsed.
    /// - Returns: the hub request and the echo fields for the answer.
    /// - Throws: `TranslateError` (400) naming the Responses field that is wrong or cannot be expressed.
    public static func openAIRequest(fromResponses body: JSONValue) throws(TranslateError) -> Request {
        guard let root = body.objectValue else { throw .invalidBody("The request body must be a JSON object.") }
        guard let model = root["model"]?.stringValue, !model.isEmpty else {
            throw .invalidBody("'model' must be a non-empty string.", param: "model")
        }
        for name in ["previous_response_id", "conversation"] where present(root[name]) {
            throw .unsupported(
                "'\(name)' needs a conversation stored by the provider; this gateway keeps no state for this "
                    + "backend. Send the whole conversation in 'input' instead.", param: name)
        }
        if root["background"]?.boolValue == true {
            throw .unsupported("Background responses are not available on this backend.", param: "background")
        }
        if present(root["prompt"]) {
            throw .unsupported("Stored prompts are not available on this backend.", param: "prompt")
        }

        var out: [(String, JSONValue)] = [("model", .string(model))]
        var messages: [JSONValue] = []
        switch root["instructions"] {
        case nil, .null?: break
        case .string(let text)?:
            if !text.isEmpty { messages.append(object([("role", "system"), ("content", .string(text))])) }
        default:
            throw .invalidBody("'instructions' must be a string.", param: "instructions")
        }
        switch root["input"] {
        case .string(let text)?:
            messages.append(object([("role", "user"), ("content", .string(text))]))
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                try appendHubMessages(item, param: "input[\(index)]", to: &messages)
            }
        default:
            throw .invalidBody("'input' must be a string or an array of input items.", param: "input")
        }
        guard !messages.isEmpty else {
            throw .invalidBody("'input' must hold at least one message.", param: "input")
        }
        out.append(("messages", .array(messages)))

        if let tokens = root["max_output_tokens"], !tokens.isNull {
            guard let value = tokens.int64Value, value >= 1, value <= maxOutputTokens else {
                throw .invalidBody(
                    "'max_output_tokens' must be an integer from 1 to \(maxOutputTokens).", param: "max_output_tokens")
            }
            out.append(("max_completion_tokens", .number(JSONNumber(value))))
        }
        for (name, bound) in [("temperature", 2.0), ("top_p", 1.0)] {
            guard let value = root[name], !value.isNull else { continue }
            guard let number = value.doubleValue, number >= 0, number <= bound else {
                throw .invalidBody("'\(name)' must be a number from 0 to \(Int(bound)).", param: name)
            }
            out.append((name, value))
        }
        if let parallel = root["parallel_tool_calls"], !parallel.isNull {
            guard parallel.boolValue != nil else {
                throw .invalidBody("'parallel_tool_calls' must be a boolean.", param: "parallel_tool_calls")
            }
            out.append(("parallel_tool_calls", parallel))
        }
        switch root["stop"] {
        case nil, .null?: break
        case .string(let stop)?: out.append(("stop", .string(stop)))
        case .array(let stops)? where stops.count <= 4 && stops.allSatisfy({ $0.stringValue != nil }):
            if !stops.isEmpty { out.append(("stop", .array(stops))) }
        default:
            throw .invalidBody("'stop' must be a string or an array of up to 4 strings.", param: "stop")
        }
        switch root["stream"] {
        case nil, .null?, .bool(false)?: break
        case .bool(true)?:
            out.append(("stream", true))
            out.append(("stream_options", object([("include_usage", true)])))
        default:
            throw .invalidBody("'stream' must be a boolean.", param: "stream")
        }
        switch root["user"] {
        case nil, .null?: break
        case .string(let user)?: out.append(("user", .string(user)))
        default: throw .invalidBody("'user' must be a string.", param: "user")
        }
        if let metadata = root["metadata"], !metadata.isNull, metadata.objectValue == nil {
            throw .invalidBody("'metadata' must be an object of strings.", param: "metadata")
        }
        try appendHubTools(root, to: &out)
        try appendHubTextFormat(root, to: &out)
        try appendHubReasoning(root, to: &out)
        return Request(hub: object(out), echo: ResponsesEcho(request: root))
    }

    // MARK: - Input items

    private static func appendHubMessages(
        _ item: JSONValue, param: String, to messages: inout [JSONValue]
    ) throws(TranslateError) {
        guard item.objectValue != nil else {
            throw .invalidBody("Each input item must be an object.", param: param)
        }
        // An easy input message may leave out `type`; a role is enough.
        let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : nil)
        switch type {
        case "message"?:
            messages.append(try hubMessage(item, param: param))
        case "function_call"?:
            guard let callID = item["call_id"]?.stringValue, !callID.isEmpty else {
                throw .invalidBody("A function_call item needs a string 'call_id'.", param: "\(param).call_id")
            }
            guard let name = item["name"]?.stringValue, !name.isEmpty else {
                throw .invalidBody("A function_call item needs a string 'name'.", param: "\(param).name")
            }
            guard let arguments = item["arguments"]?.stringValue else {
                throw .invalidBody("A function_call item needs 'arguments' as a string.", param: "\(param).arguments")
            }
            let call = object([
                ("id", .string(callID)), ("type", "function"),
                ("function", object([("name", .string(name)), ("arguments", .string(arguments))])),
            ])
            appendToolCall(call, to: &messages)
        case "function_call_output"?:
            guard let callID = item["call_id"]?.stringValue, !callID.isEmpty else {
                throw .invalidBody(
                    "A function_call_output item needs a string 'call_id'.", param: "\(param).call_id")
            }
            let content: JSONValue
            switch item["output"] {
            case .string(let text)?:
                content = .string(text)
            case .array(let parts)?:
                var texts: [JSONValue] = []
                for (index, part) in parts.enumerated() {
                    guard part["type"]?.stringValue == "input_text", let text = part["text"], text.stringValue != nil
                    else {
                        throw .unsupported(
                            "Function call outputs can only carry text for this backend.",
                            param: "\(param).output[\(index)]")
                    }
                    texts.append(object([("type", "text"), ("text", text)]))
                }
                content = .array(texts)
            default:
                throw .invalidBody(
                    "'output' must be a string or an array of input_text parts.", param: "\(param).output")
            }
            messages.append(object([("role", "tool"), ("tool_call_id", .string(callID)), ("content", content)]))
        case "reasoning"?:
            return  // The model's earlier reasoning: no place in the hub (see the mapping notes).
        case "item_reference"?:
            throw .unsupported(
                "Item references need items stored by the provider; this gateway keeps no state for this backend.",
                param: param)
        case let type?:
            throw .unsupported("Input item type '\(type)' cannot be sent to this backend.", param: "\(param).type")
        case nil:
            throw .invalidBody("Each input item needs a string 'type' or a 'role'.", param: param)
        }
    }

    /// A call joins the assistant message just before it (its text, or earlier calls of the same turn).
    private static func appendToolCall(_ call: JSONValue, to messages: inout [JSONValue]) {
        if let last = messages.last, last["role"]?.stringValue == "assistant", let members = last.objectValue?.members
        {
            var updated = members.filter { $0.key != "tool_calls" }
            updated.append(("tool_calls", .array((last["tool_calls"]?.arrayValue ?? []) + [call])))
            messages[messages.count - 1] = .object(JSONObject(updated))
            return
        }
        messages.append(object([("role", "assistant"), ("content", .null), ("tool_calls", .array([call]))]))
    }

    private static func hubMessage(_ item: JSONValue, param: String) throws(TranslateError) -> JSONValue {
        guard let role = item["role"]?.stringValue,
            role == "user" || role == "assistant" || role == "system" || role == "developer"
        else {
            throw .invalidBody(
                "Each message needs a 'role' of 'user', 'assistant', 'system' or 'developer'.", param: "\(param).role")
        }
        let parts: [JSONValue]
        switch item["content"] {
        case .string(let text)?:
            return object([("role", .string(role)), ("content", .string(text))])
        case .array(let list)?:
            parts = list
        default:
            throw .invalidBody("'content' must be a string or an array of content parts.", param: "\(param).content")
        }
        var hubParts: [JSONValue] = []
        var text = ""
        for (index, part) in parts.enumerated() {
            let partParam = "\(param).content[\(index)]"
            switch part["type"]?.stringValue {
            case "input_text"?, "output_text"?, "refusal"?:
                let key = part["type"]?.stringValue == "refusal" ? "refusal" : "text"
                guard let piece = part[key]?.stringValue else {
                    throw .invalidBody("A text part needs a string '\(key)'.", param: "\(partParam).\(key)")
                }
                text += piece
                hubParts.append(object([("type", "text"), ("text", .string(piece))]))
            case "input_image"?:
                guard role == "user" else {
                    throw .unsupported("Only user messages can carry images.", param: partParam)
                }
                if present(part["file_id"]) {
                    throw .unsupported(
                        "Images by 'file_id' live in OpenAI's file store and cannot be sent to this backend; "
                            + "send 'image_url' (a URL or a data: URI).", param: "\(partParam).file_id")
                }
                guard let url = part["image_url"]?.stringValue, !url.isEmpty else {
                    throw .invalidBody("An input_image part needs a string 'image_url'.", param: "\(partParam).image_url")
                }
                var image: [(String, JSONValue)] = [("url", .string(url))]
                if let detail = part["detail"]?.stringValue { image.append(("detail", .string(detail))) }
                hubParts.append(object([("type", "image_url"), ("image_url", object(image))]))
            case "input_file"?:
                guard role == "user" else { throw .unsupported("Only user messages can carry files.", param: partParam) }
                guard let data = part["file_data"]?.stringValue, !data.isEmpty else {
                    throw .unsupported(
                        "Files by 'file_id' or 'file_url' cannot be sent to this backend; send 'file_data'.",
                        param: partParam)
                }
                var file: [(String, JSONValue)] = [("file_data", .string(data))]
                if let name = part["filename"]?.stringValue { file.append(("filename", .string(name))) }
                hubParts.append(object([("type", "file"), ("file", object(file))]))
            case let type?:
                throw .unsupported("Content part type '\(type)' cannot be sent to this backend.", param: "\(partParam).type")
            case nil:
                throw .invalidBody("Each content part needs a string 'type'.", param: "\(partParam).type")
            }
        }
        // Assistant, system and developer turns are text in the chat shape (images and files were refused above).
        if role != "user" { return object([("role", .string(role)), ("content", .string(text))]) }
        return object([("role", .string(role)), ("content", .array(hubParts))])
    }

    // MARK: - Tools, format, reasoning

    private static func appendHubTools(_ root: JSONObject, to out: inout [(String, JSONValue)]) throws(TranslateError) {
        if let tools = root["tools"], !tools.isNull {
            guard let list = tools.arrayValue else { throw .invalidBody("'tools' must be an array.", param: "tools") }
            var hubTools: [JSONValue] = []
            for (index, tool) in list.enumerated() {
                let param = "tools[\(index)]"
                guard let type = tool["type"]?.stringValue else {
                    throw .invalidBody("Each tool needs a string 'type'.", param: "\(param).type")
                }
                guard type == "function" else {
                    throw .unsupported(
                        "Built-in tool '\(type)' runs inside OpenAI and cannot be sent to this backend; "
                            + "only 'function' tools can.", param: "\(param).type")
                }
                guard let name = tool["name"]?.stringValue, !name.isEmpty else {
                    throw .invalidBody("A function tool needs a string 'name'.", param: "\(param).name")
                }
                var function: [(String, JSONValue)] = [("name", .string(name))]
                if let description = tool["description"], description.stringValue != nil {
                    function.append(("description", description))
                }
                switch tool["parameters"] {
                case nil, .null?: function.append(("parameters", object([("type", "object"), ("properties", object([]))])))
                case .object?: function.append(("parameters", tool["parameters"] ?? .null))
                default: throw .invalidBody("'parameters' must be a JSON Schema object.", param: "\(param).parameters")
                }
                if let strict = tool["strict"], let flag = strict.boolValue { function.append(("strict", .bool(flag))) }
                hubTools.append(object([("type", "function"), ("function", object(function))]))
            }
            if !hubTools.isEmpty { out.append(("tools", .array(hubTools))) }
        }
        switch root["tool_choice"] {
        case nil, .null?: return
        case .string(let mode)?:
            guard mode == "auto" || mode == "none" || mode == "required" else {
                throw .invalidBody("'tool_choice' must be 'auto', 'none', 'required' or a function.", param: "tool_choice")
            }
            out.append(("tool_choice", .string(mode)))
        case .object(let choice)?:
            guard choice["type"]?.stringValue == "function" else {
                throw .unsupported(
                    "Only a 'function' tool_choice can be sent to this backend.", param: "tool_choice.type")
            }
            guard let name = choice["name"]?.stringValue, !name.isEmpty else {
                throw .invalidBody("A function tool_choice needs a string 'name'.", param: "tool_choice.name")
            }
            out.append(
                ("tool_choice", object([("type", "function"), ("function", object([("name", .string(name))]))])))
        default:
            throw .invalidBody("'tool_choice' must be a string or an object.", param: "tool_choice")
        }
    }

    private static func appendHubTextFormat(
        _ root: JSONObject, to out: inout [(String, JSONValue)]
    ) throws(TranslateError) {
        guard let text = root["text"], !text.isNull else { return }
        guard text.objectValue != nil else { throw .invalidBody("'text' must be an object.", param: "text") }
        guard let format = text["format"], !format.isNull else { return }
        switch format["type"]?.stringValue {
        case "text"?:
            return
        case "json_object"?:
            out.append(("response_format", object([("type", "json_object")])))
        case "json_schema"?:
            guard let name = format["name"]?.stringValue, !name.isEmpty else {
                throw .invalidBody("A json_schema format needs a string 'name'.", param: "text.format.name")
            }
            guard let schema = format["schema"], schema.objectValue != nil else {
                throw .invalidBody("A json_schema format needs a 'schema' object.", param: "text.format.schema")
            }
            var jsonSchema: [(String, JSONValue)] = [("name", .string(name))]
            if let description = format["description"]?.stringValue {
                jsonSchema.append(("description", .string(description)))
            }
            jsonSchema.append(("schema", schema))
            if let strict = format["strict"]?.boolValue { jsonSchema.append(("strict", .bool(strict))) }
            out.append(("response_format", object([("type", "json_schema"), ("json_schema", object(jsonSchema))])))
        default:
            throw .invalidBody(
                "'text.format.type' must be 'text', 'json_object' or 'json_schema'.", param: "text.format.type")
        }
    }

    static let reasoningEfforts: Set<String> = ["none", "minimal", "low", "medium", "high", "xhigh"]

    private static func appendHubReasoning(
        _ root: JSONObject, to out: inout [(String, JSONValue)]
    ) throws(TranslateError) {
        guard let reasoning = root["reasoning"], !reasoning.isNull else { return }
        guard reasoning.objectValue != nil else {
            throw .invalidBody("'reasoning' must be an object.", param: "reasoning")
        }
        switch reasoning["effort"] {
        case nil, .null?: return
        case .string(let effort)? where reasoningEfforts.contains(effort):
            out.append(("reasoning_effort", .string(effort)))
        default:
            throw .invalidBody(
                "'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh.", param: "reasoning.effort")
        }
    }

    // MARK: - Helpers

    static func present(_ value: JSONValue?) -> Bool {
        guard let value else { return false }
        return !value.isNull
    }

    static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(JSONObject(members.map { (key: $0.0, value: $0.1) }))
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

    public init(request root: JSONObject) {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        func echo(_ name: String, default fallback: JSONValue) {
            writer.key(name)
            if let value = root[name], !value.isNull { writer.value(value) } else { writer.value(fallback) }
        }
        echo("instructions", default: .null)
        echo("max_output_tokens", default: .null)
        echo("metadata", default: .object(JSONObject()))
        echo("parallel_tool_calls", default: true)
        echo("reasoning", default: .null)
        echo("temperature", default: .null)
        echo(
            "text", default: .object(JSONObject([(key: "format", value: .object(JSONObject([(key: "type", value: "text")])))])))
        echo("tool_choice", default: "auto")
        echo("tools", default: .array([]))
        echo("top_p", default: .null)
        echo("user", default: .null)
        writer.endObject()
        let bytes = writer.bytes
        // Without the braces: the members are spliced into a larger object.
        members = bytes.count > 2 ? Array(bytes[1..<(bytes.count - 1)]) : []
    }

    /// No echo fields beyond the defaults (tests, or a request the translator did not see).
    public init() { self.init(request: JSONObject()) }
}

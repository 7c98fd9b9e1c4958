// The tree-based translation of an Anthropic Messages request into the hub request, as it was before the
// translation read the body by range (`OpenAIChat+FromAnthropicMessages.swift`), with `OpenAIHub.serialize`,
// which turned that tree into an OpenAI backend's body. Kept as the reference the by-range translation is
// compared with (AnthropicRequestByRangeTests).

@testable import SluiceCore

enum AnthropicRequestTree {
    static func object(_ members: [(String, JSONValue)]) -> JSONValue { AnthropicTranslator.object(members) }

    static func openAIRequest(fromAnthropic body: JSONValue) throws(TranslateError) -> JSONValue {
        guard let root = body.objectValue else { throw .invalidBody("The request body must be a JSON object.") }
        guard let model = root["model"]?.stringValue else {
            throw .invalidBody("'model' must be a string.", param: "model")
        }
        guard let messages = root["messages"]?.arrayValue else {
            throw .invalidBody("'messages' must be an array of messages.", param: "messages")
        }
        var out: [(String, JSONValue)] = [("model", .string(model))]
        var hubMessages: [JSONValue] = []
        switch root["system"] {
        case nil, .null?: break
        case .string(let text)?:
            hubMessages.append(object([("role", "system"), ("content", .string(text))]))
        case .array(let blocks)?:
            var parts: [JSONValue] = []
            for (index, block) in blocks.enumerated() {
                guard block["type"]?.stringValue == "text", let text = block["text"], text.stringValue != nil else {
                    throw .invalidBody("System blocks must be text blocks.", param: "system[\(index)]")
                }
                parts.append(part([("type", "text"), ("text", text)], from: block))
            }
            hubMessages.append(object([("role", "system"), ("content", .array(parts))]))
        default:
            throw .invalidBody("'system' must be a string or an array of text blocks.", param: "system")
        }
        for (index, message) in messages.enumerated() {
            try appendHubMessages(message, param: "messages[\(index)]", to: &hubMessages)
        }
        out.append(("messages", .array(hubMessages)))

        if let maxTokens = root["max_tokens"], !maxTokens.isNull {
            guard maxTokens.int64Value != nil else {
                throw .invalidBody("'max_tokens' must be an integer.", param: "max_tokens")
            }
            out.append(("max_completion_tokens", maxTokens))
        }
        for name in ["temperature", "top_p", "top_k"] {
            guard let value = root[name], !value.isNull else { continue }
            guard value.numberValue != nil else { throw .invalidBody("'\(name)' must be a number.", param: name) }
            out.append((name, value))
        }
        if let stops = root["stop_sequences"], !stops.isNull {
            guard let list = stops.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw .invalidBody("'stop_sequences' must be an array of strings.", param: "stop_sequences")
            }
            if !list.isEmpty { out.append(("stop", stops)) }
        }
        if root["stream"]?.boolValue == true {
            out.append(("stream", true))
            out.append(("stream_options", object([("include_usage", true)])))
        }
        if let user = root["metadata"]?["user_id"]?.stringValue { out.append(("user", .string(user))) }
        try appendHubTools(root, to: &out)
        try appendHubOutputConfig(root, to: &out)
        if let thinking = root["thinking"], thinking.objectValue != nil { out.append(("thinking", thinking)) }
        return object(out)
    }

    // MARK: - Messages

    /// A hub content part with the block's `cache_control` carried over.
    private static func part(_ members: [(String, JSONValue)], from block: JSONValue) -> JSONValue {
        var members = members
        if let cache = block["cache_control"], !cache.isNull { members.append(("cache_control", cache)) }
        return object(members)
    }

    private static func appendHubMessages(
        _ message: JSONValue, param: String, to messages: inout [JSONValue]
    ) throws(TranslateError) {
        guard let role = message["role"]?.stringValue, role == "user" || role == "assistant" else {
            throw .invalidBody("Each message needs a 'role' of 'user' or 'assistant'.", param: "\(param).role")
        }
        let blocks: [JSONValue]
        switch message["content"] {
        case .string(let text)?:
            messages.append(object([("role", .string(role)), ("content", .string(text))]))
            return
        case .array(let list)?:
            blocks = list
        default:
            throw .invalidBody("'content' must be a string or an array of content blocks.", param: "\(param).content")
        }
        if role == "assistant" {
            messages.append(try hubAssistant(blocks, param: "\(param).content"))
            return
        }
        var parts: [JSONValue] = []
        for (index, block) in blocks.enumerated() {
            let blockParam = "\(param).content[\(index)]"
            switch block["type"]?.stringValue {
            case "tool_result":
                messages.append(try hubToolMessage(block, param: blockParam))
            case "text":
                guard let text = block["text"], text.stringValue != nil else {
                    throw .invalidBody("A text block needs a string 'text'.", param: "\(blockParam).text")
                }
                parts.append(part([("type", "text"), ("text", text)], from: block))
            case "image":
                parts.append(try hubMedia(block, param: blockParam, document: false))
            case "document":
                parts.append(try hubMedia(block, param: blockParam, document: true))
            case let type?:
                throw .unsupported("Content block type '\(type)' cannot be sent to this backend.", param: blockParam)
            case nil:
                throw .invalidBody("Each content block needs a string 'type'.", param: blockParam)
            }
        }
        if !parts.isEmpty { messages.append(object([("role", "user"), ("content", .array(parts))])) }
    }

    private static func hubMedia(_ block: JSONValue, param: String, document: Bool) throws(TranslateError)
        -> JSONValue
    {
        let source = block["source"]
        switch source?["type"]?.stringValue {
        case "base64":
            guard let mediaType = source?["media_type"]?.stringValue, let data = source?["data"]?.stringValue else {
                throw .invalidBody("A base64 source needs 'media_type' and 'data'.", param: "\(param).source")
            }
            let uri = "data:\(mediaType);base64,\(data)"
            if document {
                var file: [(String, JSONValue)] = [("file_data", .string(uri))]
                if let title = block["title"]?.stringValue { file.append(("filename", .string(title))) }
                return part([("type", "file"), ("file", object(file))], from: block)
            }
            return part([("type", "image_url"), ("image_url", object([("url", .string(uri))]))], from: block)
        case "url":
            guard let url = source?["url"]?.stringValue else {
                throw .invalidBody("A url source needs 'url'.", param: "\(param).source.url")
            }
            return part([("type", "image_url"), ("image_url", object([("url", .string(url))]))], from: block)
        case "text" where document:
            guard let data = source?["data"], data.stringValue != nil else {
                throw .invalidBody("A text source needs 'data'.", param: "\(param).source.data")
            }
            return part([("type", "text"), ("text", data)], from: block)
        default:
            throw .unsupported("This media source type cannot be sent to this backend.", param: "\(param).source.type")
        }
    }

    private static func hubToolMessage(_ block: JSONValue, param: String) throws(TranslateError) -> JSONValue {
        guard let id = block["tool_use_id"]?.stringValue else {
            throw .invalidBody("A tool_result block needs 'tool_use_id'.", param: "\(param).tool_use_id")
        }
        var members: [(String, JSONValue)] = [("role", "tool"), ("tool_call_id", .string(id))]
        switch block["content"] {
        case nil, .null?:
            members.append(("content", ""))
        case .string(let text)?:
            members.append(("content", .string(text)))
        case .array(let list)?:
            var parts: [JSONValue] = []
            for (index, item) in list.enumerated() {
                guard item["type"]?.stringValue == "text", let text = item["text"], text.stringValue != nil else {
                    throw .unsupported(
                        "Tool results can only carry text for this backend.",
                        param: "\(param).content[\(index)]")
                }
                parts.append(part([("type", "text"), ("text", text)], from: item))
            }
            members.append(("content", .array(parts)))
        default:
            throw .invalidBody("'content' must be a string or an array of blocks.", param: "\(param).content")
        }
        if block["is_error"]?.boolValue == true { members.append(("is_error", true)) }
        return object(members)
    }

    private static func hubAssistant(_ blocks: [JSONValue], param: String) throws(TranslateError) -> JSONValue {
        var text = ""
        var reasoning = ""
        var thinkingBlocks: [JSONValue] = []
        var toolCalls: [JSONValue] = []
        for (index, block) in blocks.enumerated() {
            let blockParam = "\(param)[\(index)]"
            switch block["type"]?.stringValue {
            case "text":
                guard let piece = block["text"]?.stringValue else {
                    throw .invalidBody("A text block needs a string 'text'.", param: "\(blockParam).text")
                }
                text += piece
            case "thinking":
                reasoning += block["thinking"]?.stringValue ?? ""
                thinkingBlocks.append(block)
            case "redacted_thinking":
                thinkingBlocks.append(block)
            case "tool_use":
                guard let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                    throw .invalidBody("A tool_use block needs 'id' and 'name'.", param: blockParam)
                }
                let input = block["input"] ?? object([])
                let arguments = String(decoding: input.serialized(), as: UTF8.self)
                toolCalls.append(
                    object([
                        ("id", .string(id)), ("type", "function"),
                        ("function", object([("name", .string(name)), ("arguments", .string(arguments))])),
                    ]))
            case let type?:
                throw .unsupported("Content block type '\(type)' cannot be sent to this backend.", param: blockParam)
            case nil:
                throw .invalidBody("Each content block needs a string 'type'.", param: blockParam)
            }
        }
        var members: [(String, JSONValue)] = [("role", "assistant")]
        members.append(("content", text.isEmpty && !toolCalls.isEmpty ? .null : .string(text)))
        if !reasoning.isEmpty { members.append(("reasoning_content", .string(reasoning))) }
        if !thinkingBlocks.isEmpty { members.append(("thinking_blocks", .array(thinkingBlocks))) }
        if !toolCalls.isEmpty { members.append(("tool_calls", .array(toolCalls))) }
        return object(members)
    }

    // MARK: - Tools and output

    private static func appendHubTools(_ root: JSONObject, to out: inout [(String, JSONValue)]) throws(TranslateError) {
        if let tools = root["tools"], !tools.isNull {
            guard let list = tools.arrayValue else { throw .invalidBody("'tools' must be an array.", param: "tools") }
            var hubTools: [JSONValue] = []
            for (index, tool) in list.enumerated() {
                let param = "tools[\(index)]"
                if let type = tool["type"]?.stringValue, type != "custom" {
                    throw .unsupported("Server tool '\(type)' cannot be sent to this backend.", param: "\(param).type")
                }
                guard let name = tool["name"]?.stringValue else {
                    throw .invalidBody("A tool needs a string 'name'.", param: "\(param).name")
                }
                var function: [(String, JSONValue)] = [("name", .string(name))]
                if let description = tool["description"], description.stringValue != nil {
                    function.append(("description", description))
                }
                function.append(("parameters", tool["input_schema"] ?? object([("type", "object")])))
                if let strict = tool["strict"], strict.boolValue != nil { function.append(("strict", strict)) }
                hubTools.append(part([("type", "function"), ("function", object(function))], from: tool))
            }
            if !hubTools.isEmpty { out.append(("tools", .array(hubTools))) }
        }
        guard let choice = root["tool_choice"], !choice.isNull else { return }
        switch choice["type"]?.stringValue {
        case "auto"?: out.append(("tool_choice", "auto"))
        case "any"?: out.append(("tool_choice", "required"))
        case "none"?: out.append(("tool_choice", "none"))
        case "tool"?:
            guard let name = choice["name"]?.stringValue else {
                throw .invalidBody("A 'tool' tool_choice needs 'name'.", param: "tool_choice.name")
            }
            out.append(
                ("tool_choice", object([("type", "function"), ("function", object([("name", .string(name))]))])))
        default:
            throw .invalidBody("Unknown 'tool_choice.type'.", param: "tool_choice.type")
        }
        if choice["disable_parallel_tool_use"]?.boolValue == true { out.append(("parallel_tool_calls", false)) }
    }

    private static func appendHubOutputConfig(
        _ root: JSONObject, to out: inout [(String, JSONValue)]
    ) throws(TranslateError) {
        guard let config = root["output_config"], !config.isNull else { return }
        if let format = config["format"], !format.isNull {
            guard format["type"]?.stringValue == "json_schema", let schema = format["schema"] else {
                throw .invalidBody(
                    "'output_config.format' must be a json_schema format.", param: "output_config.format")
            }
            let jsonSchema = object([("name", "output"), ("schema", schema), ("strict", true)])
            out.append(("response_format", object([("type", "json_schema"), ("json_schema", jsonSchema)])))
        }
        if let effort = config["effort"]?.stringValue { out.append(("reasoning_effort", .string(effort))) }
    }

    // MARK: - OpenAIHub.serialize

    static let hubOnlyRequestMembers: Set<String> = ["thinking", "top_k"]
    static let hubOnlyMessageMembers: Set<String> = ["thinking_blocks", "is_error"]

    static func serialize(_ hub: JSONValue, model: String, forceStreamUsage: Bool) -> [UInt8] {
        guard case .object(let object) = hub else { return hub.serialized() }
        var members = object.members.filter {
            $0.key != "model" && !(forceStreamUsage && $0.key == "stream_options") && !hubOnlyRequestMembers.contains($0.key)
        }
        members = members.map { member in
            switch member.key {
            case "messages":
                guard case .array(let messages) = member.value else { return member }
                return (member.key, .array(messages.map(stripMessageExtensions)))
            case "tools":
                guard case .array(let tools) = member.value else { return member }
                return (member.key, .array(tools.map { without($0, ["cache_control"]) }))
            default:
                return member
            }
        }
        members.insert(("model", .string(model)), at: 0)
        if forceStreamUsage {
            var options = object["stream_options"]?.objectValue?.members.filter { $0.key != "include_usage" } ?? []
            options.append(("include_usage", .bool(true)))
            members.append(("stream_options", .object(JSONObject(options))))
        }
        return JSONValue.object(JSONObject(members)).serialized()
    }

    private static func stripMessageExtensions(_ message: JSONValue) -> JSONValue {
        guard case .object(let object) = message else { return message }
        return .object(JSONObject(object.members.compactMap { member in
            if hubOnlyMessageMembers.contains(member.key) { return nil }
            if member.key == "content", case .array(let parts) = member.value {
                return (member.key, .array(parts.map { without($0, ["cache_control"]) }))
            }
            return member
        }))
    }

    private static func without(_ value: JSONValue, _ keys: Set<String>) -> JSONValue {
        guard case .object(let object) = value else { return value }
        return .object(JSONObject(object.members.filter { !keys.contains($0.key) }))
    }
}

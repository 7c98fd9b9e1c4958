import SluiceCore

/// Validates an OpenAI Chat Completions request and extracts the conversation.
enum OpenAIChatRequest {
    static let knownParameters: Set<String> = [
        "model", "messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
        "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "service_tier", "stop",
        "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user",
        "function_call", "functions", "metadata", "store", "reasoning_effort", "modalities", "audio", "prediction",
        "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier", "prompt_cache_retention",
    ]

    struct Parsed {
        var model: String?
        var conversation: Conversation
        var includeUsage: Bool
    }

    /// - Parameter strict: reject parameters OpenAI does not know (vLLM-like servers ignore them).
    static func parse(_ body: JSONValue, requireModel: Bool, strict: Bool) throws(SimInvalid) -> Parsed {
        guard let object = body.objectValue else {
            throw SimInvalid("Invalid type for request body: expected an object, but got \(body.typeName) instead.")
        }
        if strict, let unknown = object.keys.first(where: { !knownParameters.contains($0) }) {
            throw SimInvalid("Unrecognized request argument supplied: \(unknown)")
        }
        let model = object["model"]?.stringValue
        if requireModel, model == nil {
            throw SimInvalid("you must provide a model parameter")
        }
        guard let messagesValue = object["messages"] else {
            throw SimInvalid("Missing required parameter: 'messages'.", param: "messages")
        }
        guard let messages = messagesValue.arrayValue else {
            throw SimInvalid(
                "Invalid type for 'messages': expected an array of objects, but got \(messagesValue.typeName) instead.",
                param: "messages")
        }
        if messages.isEmpty {
            throw SimInvalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                param: "messages")
        }
        var conversation = Conversation()
        var pendingToolCallIDs: Set<String> = []
        var lastRole = ""
        for (index, message) in messages.enumerated() {
            let path = "messages[\(index)]"
            guard message.objectValue != nil else {
                throw SimInvalid(
                    "Invalid type for '\(path)': expected an object, but got \(message.typeName) instead.", param: path)
            }
            guard let role = message["role"]?.stringValue else {
                throw SimInvalid("Missing required parameter: '\(path).role'.", param: "\(path).role")
            }
            let text = try contentText(message["content"], path: path, role: role)
            switch role {
            case "system", "developer":
                conversation.addPrompt(text)
            case "user":
                conversation.lastUserText = text
                conversation.addPrompt(text)
            case "assistant":
                pendingToolCallIDs = []
                if let calls = message["tool_calls"] {
                    guard let array = calls.arrayValue else {
                        throw SimInvalid("Invalid type for '\(path).tool_calls': expected an array.", param: "\(path).tool_calls")
                    }
                    for (callIndex, call) in array.enumerated() {
                        let callPath = "\(path).tool_calls[\(callIndex)]"
                        guard let id = call["id"]?.stringValue else {
                            throw SimInvalid("Missing required parameter: '\(callPath).id'.", param: "\(callPath).id")
                        }
                        guard call["function"]?["name"]?.stringValue != nil else {
                            throw SimInvalid("Missing required parameter: '\(callPath).function.name'.",
                                param: "\(callPath).function.name")
                        }
                        guard let arguments = call["function"]?["arguments"]?.stringValue else {
                            throw SimInvalid("Missing required parameter: '\(callPath).function.arguments'.",
                                param: "\(callPath).function.arguments")
                        }
                        conversation.addPrompt(arguments)
                        pendingToolCallIDs.insert(id)
                    }
                } else if message["content"] == nil || message["content"]?.isNull == true {
                    throw SimInvalid("Missing required parameter: '\(path).content'.", param: "\(path).content")
                }
                conversation.addPrompt(text)
            case "tool":
                guard let id = message["tool_call_id"]?.stringValue else {
                    throw SimInvalid("Missing required parameter: '\(path).tool_call_id'.", param: "\(path).tool_call_id")
                }
                guard lastRole == "assistant" || lastRole == "tool", pendingToolCallIDs.contains(id) else {
                    throw SimInvalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                        param: "messages.[\(index)].role")
                }
                conversation.toolResultText = text
                conversation.addPrompt(text)
            case "function":
                conversation.toolResultText = text
                conversation.addPrompt(text)
            default:
                throw SimInvalid(
                    "Invalid value: '\(role)'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
                    param: "\(path).role")
            }
            lastRole = role
        }
        conversation.endsWithToolResult = lastRole == "tool" || lastRole == "function"

        let stream = object["stream"]
        if let stream, stream.boolValue == nil, !stream.isNull {
            throw SimInvalid("Invalid type for 'stream': expected a boolean, but got \(stream.typeName) instead.",
                param: "stream")
        }
        conversation.stream = stream?.boolValue ?? false
        var includeUsage = false
        if let options = object["stream_options"], !options.isNull {
            guard conversation.stream else {
                throw SimInvalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    param: "stream_options")
            }
            includeUsage = options["include_usage"]?.boolValue ?? false
        }
        for key in ["max_tokens", "max_completion_tokens"] {
            if let value = object[key], !value.isNull {
                guard let limit = value.int64Value, limit >= 1 else {
                    throw SimInvalid("Invalid '\(key)': expected an integer of at least 1.", param: key)
                }
                conversation.maxTokens = Int(clamping: limit)
            }
        }
        if let tools = object["tools"], !tools.isNull {
            guard let array = tools.arrayValue else {
                throw SimInvalid("Invalid type for 'tools': expected an array, but got \(tools.typeName) instead.",
                    param: "tools")
            }
            for (index, tool) in array.enumerated() {
                guard tool["type"]?.stringValue == "function" else {
                    throw SimInvalid("Missing required parameter: 'tools[\(index)].type'.", param: "tools[\(index)].type")
                }
                guard let name = tool["function"]?["name"]?.stringValue else {
                    throw SimInvalid("Missing required parameter: 'tools[\(index)].function.name'.",
                        param: "tools[\(index)].function.name")
                }
                conversation.tools.append(SimTool(name: name, schema: tool["function"]?["parameters"]))
            }
        }
        if let choice = object["tool_choice"], !choice.isNull {
            if let mode = choice.stringValue {
                guard ["none", "auto", "required"].contains(mode) else {
                    throw SimInvalid("Invalid value: '\(mode)'. Supported values are: 'none', 'auto', and 'required'.",
                        param: "tool_choice")
                }
                conversation.toolsDisabled = mode == "none"
            } else if let name = choice["function"]?["name"]?.stringValue {
                guard conversation.tools.contains(where: { $0.name == name }) else {
                    throw SimInvalid("Invalid value for 'tool_choice': tool '\(name)' not found in 'tools'.",
                        param: "tool_choice")
                }
                conversation.forcedTool = name
            } else {
                throw SimInvalid("Invalid 'tool_choice'.", param: "tool_choice")
            }
        }
        return Parsed(model: model, conversation: conversation, includeUsage: includeUsage)
    }

    /// The text of a message's content: a string, or the text of its parts.
    static func contentText(_ content: JSONValue?, path: String, role: String) throws(SimInvalid) -> String {
        guard let content, !content.isNull else { return "" }
        if let text = content.stringValue { return text }
        guard let parts = content.arrayValue else {
            throw SimInvalid(
                "Invalid type for '\(path).content': expected one of a string or array of objects, but got \(content.typeName) instead.",
                param: "\(path).content")
        }
        var texts: [String] = []
        for (index, part) in parts.enumerated() {
            let partPath = "\(path).content[\(index)]"
            guard let type = part["type"]?.stringValue else {
                throw SimInvalid("Missing required parameter: '\(partPath).type'.", param: "\(partPath).type")
            }
            switch type {
            case "text", "refusal":
                guard let text = part[type]?.stringValue else {
                    throw SimInvalid("Missing required parameter: '\(partPath).\(type)'.", param: "\(partPath).\(type)")
                }
                texts.append(text)
            case "image_url":
                guard role == "user", part["image_url"]?["url"]?.stringValue != nil else {
                    throw SimInvalid("Invalid '\(partPath)': image_url parts need image_url.url and a user role.",
                        param: partPath)
                }
            case "input_audio", "file":
                guard role == "user" else {
                    throw SimInvalid("Invalid '\(partPath)': \(type) parts are only allowed in user messages.",
                        param: partPath)
                }
            default:
                throw SimInvalid(
                    "Invalid value: '\(type)'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', and 'file'.",
                    param: "\(partPath).type")
            }
        }
        return texts.joined(separator: " ")
    }
}

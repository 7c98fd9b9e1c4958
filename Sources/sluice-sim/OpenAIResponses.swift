import SluiceCore
import SluiceSimEngine

/// OpenAI's Responses API (`POST /v1/responses`; Azure's v1 API `POST /openai/v1/responses`), as the
/// OpenAI simulator's flavours answer it: the request's input items become a conversation, the
/// planner's reply a `response` object, or its typed events (`response.created` ...
/// `response.completed`, each with a `sequence_number`) when streamed.
enum ResponsesRequest {
    static let knownParameters: Set<String> = [
        "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens",
        "max_tool_calls", "temperature", "top_p", "top_logprobs", "stream", "stream_options", "store", "metadata",
        "previous_response_id", "conversation", "reasoning", "text", "truncation", "user", "include", "background",
        "service_tier", "prompt", "prompt_cache_key", "safety_identifier",
    ]

    struct Parsed {
        var model: String?
        var conversation: Conversation
        var previousResponseID: String?
        /// `text.format` of type `json_schema`: the schema the answer must follow.
        var jsonSchema: JSONValue?
        /// The request fields the response object reports back.
        var echo: JSONObject
    }

    static func parse(_ body: JSONValue, strict: Bool) throws(SimInvalid) -> Parsed {
        guard let object = body.objectValue else {
            throw SimInvalid("Invalid type for request body: expected an object, but got \(body.typeName) instead.")
        }
        if strict, let unknown = object.keys.first(where: { !knownParameters.contains($0) }) {
            throw SimInvalid("Unknown parameter: '\(unknown)'.", param: unknown)
        }
        var conversation = Conversation()
        if let instructions = object["instructions"], !instructions.isNull {
            guard let text = instructions.stringValue else {
                throw SimInvalid("Invalid type for 'instructions': expected a string.", param: "instructions")
            }
            conversation.addPrompt(text)
        }
        var lastKind = ""
        switch object["input"] {
        case .string(let text)?:
            conversation.lastUserText = text
            conversation.addPrompt(text)
            lastKind = "user"
        case .array(let items)?:
            var calls: Set<String> = []
            for (index, item) in items.enumerated() {
                let path = "input[\(index)]"
                guard item.objectValue != nil else {
                    throw SimInvalid("Invalid type for '\(path)': expected an object.", param: path)
                }
                let type = item["type"]?.stringValue ?? (item["role"] != nil ? "message" : "")
                switch type {
                case "message":
                    guard let role = item["role"]?.stringValue, ["user", "assistant", "system", "developer"].contains(role)
                    else {
                        throw SimInvalid("Invalid value for '\(path).role'.", param: "\(path).role")
                    }
                    let text = try contentText(item["content"], path: path)
                    conversation.addPrompt(text)
                    if role == "user" { conversation.lastUserText = text }
                    lastKind = role
                case "function_call":
                    guard let id = item["call_id"]?.stringValue, item["name"]?.stringValue != nil,
                        let arguments = item["arguments"]?.stringValue
                    else {
                        throw SimInvalid("Missing required parameter: '\(path).call_id', 'name' or 'arguments'.", param: path)
                    }
                    calls.insert(id)
                    conversation.addPrompt(arguments)
                    lastKind = type
                case "function_call_output":
                    guard let id = item["call_id"]?.stringValue else {
                        throw SimInvalid("Missing required parameter: '\(path).call_id'.", param: "\(path).call_id")
                    }
                    guard calls.contains(id) else {
                        throw SimInvalid("No tool call found for function call output with call_id \(id).", param: "input")
                    }
                    let output = item["output"]?.stringValue ?? item["output"].map { String(decoding: $0.serialized(), as: UTF8.self) } ?? ""
                    conversation.toolResultText = output
                    conversation.addPrompt(output)
                    lastKind = type
                case "reasoning":
                    continue
                default:
                    throw SimInvalid("Invalid value: '\(type)'.", param: "\(path).type")
                }
            }
        default:
            throw SimInvalid("Missing required parameter: 'input'.", param: "input")
        }
        conversation.endsWithToolResult = lastKind == "function_call_output"
        if let stream = object["stream"], !stream.isNull {
            guard let flag = stream.boolValue else {
                throw SimInvalid("Invalid type for 'stream': expected a boolean.", param: "stream")
            }
            conversation.stream = flag
        }
        if let value = object["max_output_tokens"], !value.isNull {
            guard let limit = value.int64Value, limit >= 16 else {
                throw SimInvalid("Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16.",
                    param: "max_output_tokens")
            }
            conversation.maxTokens = Int(clamping: limit)
        }
        if let tools = object["tools"], !tools.isNull {
            guard let array = tools.arrayValue else {
                throw SimInvalid("Invalid type for 'tools': expected an array.", param: "tools")
            }
            for (index, tool) in array.enumerated() {
                guard tool["type"]?.stringValue == "function", let name = tool["name"]?.stringValue else {
                    throw SimInvalid("Missing required parameter: 'tools[\(index)].name'.", param: "tools[\(index)].name")
                }
                conversation.tools.append(SimTool(name: name, schema: tool["parameters"]))
            }
        }
        if let choice = object["tool_choice"], !choice.isNull {
            if let mode = choice.stringValue {
                guard ["none", "auto", "required"].contains(mode) else {
                    throw SimInvalid("Invalid value: '\(mode)'.", param: "tool_choice")
                }
                conversation.toolsDisabled = mode == "none"
            } else if let name = choice["name"]?.stringValue {
                guard conversation.tools.contains(where: { $0.name == name }) else {
                    throw SimInvalid("Tool choice '\(name)' not found in 'tools' parameter.", param: "tool_choice")
                }
                conversation.forcedTool = name
            } else {
                throw SimInvalid("Invalid 'tool_choice'.", param: "tool_choice")
            }
        }
        var echo: [JSONObject.Member] = []
        for (key, fallback) in [
            ("instructions", JSONValue.null), ("max_output_tokens", .null), ("metadata", .object(JSONObject())),
            ("parallel_tool_calls", true), ("previous_response_id", .null), ("temperature", 1.0),
            ("text", .object(JSONObject([("format", .object(JSONObject([("type", "text")])))]))),
            ("tool_choice", "auto"), ("tools", .array([])), ("top_p", 1.0), ("user", .null),
        ] {
            let value = object[key] ?? .null
            echo.append((key, value.isNull ? fallback : value))
        }
        var jsonSchema: JSONValue?
        if let format = object["text"]?["format"], format["type"]?.stringValue == "json_schema" {
            guard let schema = format["schema"], schema.objectValue != nil else {
                throw SimInvalid("Missing required parameter: 'text.format.schema'.", param: "text.format.schema")
            }
            jsonSchema = schema
        }
        return Parsed(
            model: object["model"]?.stringValue, conversation: conversation,
            previousResponseID: object["previous_response_id"]?.stringValue, jsonSchema: jsonSchema, echo: JSONObject(echo))
    }

    /// A message item's content: a string, or its `input_text` / `output_text` parts.
    static func contentText(_ content: JSONValue?, path: String) throws(SimInvalid) -> String {
        if let text = content?.stringValue { return text }
        guard let parts = content?.arrayValue else {
            throw SimInvalid("Invalid type for '\(path).content': expected a string or an array.", param: "\(path).content")
        }
        var texts: [String] = []
        for (index, part) in parts.enumerated() {
            switch part["type"]?.stringValue {
            case "input_text"?, "output_text"?:
                guard let text = part["text"]?.stringValue else {
                    throw SimInvalid("Missing required parameter: '\(path).content[\(index)].text'.", param: path)
                }
                texts.append(text)
            case "input_image"?, "input_file"?, "refusal"?:
                continue
            default:
                throw SimInvalid("Invalid value for '\(path).content[\(index)].type'.", param: "\(path).content[\(index)].type")
            }
        }
        return texts.joined(separator: " ")
    }
}

extension OpenAISimulator {
    /// `POST /v1/responses/input_tokens`: the input a Responses request would be charged for.
    func responsesInputTokens(_ body: JSONValue) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        let parsed = try ResponsesRequest.parse(body, strict: flavor != .compat)
        do {
            _ = try resolveModel(parsed.model, deployment: nil)
        } catch {
            return (modelNotFound(error), nil)
        }
        let count = Planner.reply(to: parsed.conversation).promptTokens
        return (.json(200, Array(utf8: #"{"object":"response.input_tokens","input_tokens":\#(count)}"#)), nil)
    }

    func responses(_ body: JSONValue, request: SimRequest, context: SimContext) throws(SimInvalid)
        -> (SimResponse, SimUsage?)
    {
        let parsed = try ResponsesRequest.parse(body, strict: flavor != .compat)
        let model: String
        do {
            model = try resolveModel(parsed.model, deployment: nil)
        } catch {
            return (modelNotFound(error), nil)
        }
        if let previous = parsed.previousResponseID, !previous.hasPrefix("resp_sim") {
            return (error(400, "Previous response with id '\(previous)' not found.", type: "invalid_request_error",
                param: "previous_response_id", code: "previous_response_not_found"), nil)
        }
        let conversation = parsed.conversation
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        var reply = Planner.reply(to: conversation)
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: reply.promptTokens, model: model), nil)
        }
        if let schema = parsed.jsonSchema, case .text = reply.content {
            // Structured output: an answer that follows the schema, as one token.
            let text = String(decoding: SchemaSynthesizer.value(for: schema, name: "value", depth: 0, topLevel: true).serialized(), as: UTF8.self)
            reply.content = .text([text])
            reply.completionTokens = Planner.countTokens(text)
        }
        let sequence = context.state.nextID()
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        let answer = ResponsesAnswer(
            id: "resp_sim\(sequence)", itemID: "sim\(sequence)", created: context.now, model: model, reply: reply,
            echo: parsed.echo)
        let headers = responseHeaders(sequence)
        guard conversation.stream else {
            return (.json(200, jsonObject { answer.writeMembers(&$0, status: answer.finalStatus, items: answer.items(done: true), usage: true) },
                headers: headers), usage)
        }
        return (.sse(answer.events(midstream: fault == .midstream), headers: headers), usage)
    }
}

/// One simulated Responses answer, written whole or as its stream of events.
struct ResponsesAnswer {
    let id: String
    let itemID: String
    let created: Int
    let model: String
    let reply: SimReply
    let echo: JSONObject

    var finalStatus: String { reply.finish == .length ? "incomplete" : "completed" }

    enum Item {
        case message(id: String, text: String, status: String)
        case functionCall(id: String, callID: String, name: String, arguments: String, status: String)
    }

    func items(done: Bool) -> [Item] {
        let status = done ? (reply.finish == .length ? "incomplete" : "completed") : "in_progress"
        switch reply.content {
        case .text:
            return [.message(id: "msg_\(itemID)", text: done ? reply.text : "", status: status)]
        case .toolCall(let name, _, _):
            return [.functionCall(id: "fc_\(itemID)", callID: "call_\(itemID)", name: name,
                arguments: done ? reply.argumentsText : "", status: status)]
        }
    }

    /// The members of a `response` object (inside its braces).
    func writeMembers(_ w: inout JSONWriter, status: String, items: [Item], usage: Bool) {
        w.key("id"); w.string(id)
        w.key("object"); w.string("response")
        w.key("created_at"); w.int(created)
        w.key("status"); w.string(status)
        w.key("background"); w.bool(false)
        w.key("error"); w.null()
        w.key("incomplete_details")
        if status == "incomplete" {
            w.beginObject(); w.key("reason"); w.string("max_output_tokens"); w.endObject()
        } else {
            w.null()
        }
        w.key("model"); w.string(model)
        w.key("output")
        w.beginArray()
        for item in items { Self.write(item, &w) }
        w.endArray()
        w.key("reasoning"); w.beginObject(); w.key("effort"); w.null(); w.key("summary"); w.null(); w.endObject()
        w.key("store"); w.bool(true)
        w.key("truncation"); w.string("disabled")
        for (key, value) in echo.members {
            w.key(key); w.value(value)
        }
        w.key("usage")
        if usage {
            w.beginObject()
            w.key("input_tokens"); w.int(reply.promptTokens)
            w.key("input_tokens_details"); w.beginObject(); w.key("cached_tokens"); w.int(reply.cachedTokens); w.endObject()
            w.key("output_tokens"); w.int(reply.completionTokens)
            w.key("output_tokens_details"); w.beginObject(); w.key("reasoning_tokens"); w.int(0); w.endObject()
            w.key("total_tokens"); w.int(reply.promptTokens + reply.completionTokens)
            w.endObject()
        } else {
            w.null()
        }
    }

    static func write(_ item: Item, _ w: inout JSONWriter) {
        w.beginObject()
        switch item {
        case .message(let id, let text, let status):
            w.key("id"); w.string(id)
            w.key("type"); w.string("message")
            w.key("status"); w.string(status)
            w.key("role"); w.string("assistant")
            w.key("content")
            w.beginArray()
            if status != "in_progress" { writeTextPart(text, &w) }
            w.endArray()
        case .functionCall(let id, let callID, let name, let arguments, let status):
            w.key("id"); w.string(id)
            w.key("type"); w.string("function_call")
            w.key("status"); w.string(status)
            w.key("arguments"); w.string(arguments)
            w.key("call_id"); w.string(callID)
            w.key("name"); w.string(name)
        }
        w.endObject()
    }

    static func writeTextPart(_ text: String, _ w: inout JSONWriter) {
        w.beginObject()
        w.key("type"); w.string("output_text")
        w.key("annotations"); w.beginArray(); w.endArray()
        w.key("logprobs"); w.beginArray(); w.endArray()
        w.key("text"); w.string(text)
        w.endObject()
    }

    /// The typed events of the stream, `sequence_number` counted from 0 (`midstream`: an `error`
    /// event after a few deltas instead of the end).
    func events(midstream: Bool) -> [[UInt8]] {
        var writer = ResponsesEventWriter(answer: self)
        var frames = [writer.opening()]
        switch reply.content {
        case .text(let tokens):
            for (index, token) in tokens.enumerated() {
                if midstream, index == SimFault.tokensBeforeMidstreamError { return frames + [writer.failure()] }
                frames.append(writer.delta(token))
            }
        case .toolCall(_, _, let fragments):
            for (index, fragment) in fragments.enumerated() {
                if midstream, index == 1 { return frames + [writer.failure()] }
                frames.append(writer.delta(fragment))
            }
        }
        if midstream { return frames + [writer.failure()] }
        frames.append(writer.closing())
        return frames
    }
}

/// Writes one answer's stream events as they become due (the vLLM replica paces them with its
/// engine), numbering them.
struct ResponsesEventWriter {
    let answer: ResponsesAnswer
    private var sequence = 0

    init(answer: ResponsesAnswer) { self.answer = answer }

    private var itemID: String {
        if case .toolCall = answer.reply.content { return "fc_\(answer.itemID)" }
        return "msg_\(answer.itemID)"
    }

    private mutating func event(_ type: String, _ members: (inout JSONWriter) -> Void) -> [UInt8] {
        defer { sequence += 1 }
        return sseFrame(event: type, jsonObject { w in
            w.key("type"); w.string(type)
            members(&w)
            w.key("sequence_number"); w.int(sequence)
        })
    }

    private mutating func response(_ type: String, status: String, items: [ResponsesAnswer.Item], usage: Bool) -> [UInt8] {
        let answer = answer
        return event(type) { w in
            w.key("response")
            w.beginObject()
            answer.writeMembers(&w, status: status, items: items, usage: usage)
            w.endObject()
        }
    }

    /// `response.created`, `response.in_progress`, the item's `output_item.added` (and, for text,
    /// its `content_part.added`).
    mutating func opening() -> [UInt8] {
        var out = response("response.created", status: "in_progress", items: [], usage: false)
        out += response("response.in_progress", status: "in_progress", items: [], usage: false)
        let item = answer.items(done: false)
        out += event("response.output_item.added") { w in
            w.key("output_index"); w.int(0)
            w.key("item")
            for entry in item { ResponsesAnswer.write(entry, &w) }
        }
        if case .text = answer.reply.content {
            let id = itemID
            out += event("response.content_part.added") { w in
                w.key("item_id"); w.string(id)
                w.key("output_index"); w.int(0)
                w.key("content_index"); w.int(0)
                w.key("part"); ResponsesAnswer.writeTextPart("", &w)
            }
        }
        return out
    }

    /// One text token, or one fragment of the call's arguments.
    mutating func delta(_ text: String) -> [UInt8] {
        let id = itemID
        if case .toolCall = answer.reply.content {
            return event("response.function_call_arguments.delta") { w in
                w.key("item_id"); w.string(id)
                w.key("output_index"); w.int(0)
                w.key("delta"); w.string(text)
            }
        }
        return event("response.output_text.delta") { w in
            w.key("item_id"); w.string(id)
            w.key("output_index"); w.int(0)
            w.key("content_index"); w.int(0)
            w.key("delta"); w.string(text)
            w.key("logprobs"); w.beginArray(); w.endArray()
        }
    }

    /// The item's done events, then `response.completed` (or `response.incomplete`) with usage.
    mutating func closing() -> [UInt8] {
        let id = itemID
        let reply = answer.reply
        var out: [UInt8] = []
        if case .toolCall = reply.content {
            out += event("response.function_call_arguments.done") { w in
                w.key("item_id"); w.string(id)
                w.key("output_index"); w.int(0)
                w.key("arguments"); w.string(reply.argumentsText)
            }
        } else {
            out += event("response.output_text.done") { w in
                w.key("item_id"); w.string(id)
                w.key("output_index"); w.int(0)
                w.key("content_index"); w.int(0)
                w.key("text"); w.string(reply.text)
                w.key("logprobs"); w.beginArray(); w.endArray()
            }
            out += event("response.content_part.done") { w in
                w.key("item_id"); w.string(id)
                w.key("output_index"); w.int(0)
                w.key("content_index"); w.int(0)
                w.key("part"); ResponsesAnswer.writeTextPart(reply.text, &w)
            }
        }
        let finished = answer.items(done: true)
        out += event("response.output_item.done") { w in
            w.key("output_index"); w.int(0)
            w.key("item")
            for entry in finished { ResponsesAnswer.write(entry, &w) }
        }
        let status = answer.finalStatus
        out += response(
            status == "incomplete" ? "response.incomplete" : "response.completed", status: status, items: finished,
            usage: true)
        return out
    }

    /// An `error` event: the stream fails part way.
    mutating func failure() -> [UInt8] {
        event("error") { w in
            w.key("code"); w.string("server_error")
            w.key("message"); w.string("The server had an error while processing your request. Sorry about that!")
            w.key("param"); w.null()
        }
    }
}

// MARK: - The vLLM replica's Responses endpoint

extension ResponsesRequest {
    /// A Responses request as the chat request vLLM's Responses endpoint renders through its chat
    /// template (`instructions` a system message, message items by role, tool outputs as tool
    /// messages); the echo fields for the answer.
    static func chatBody(_ body: JSONValue) throws(SimInvalid) -> (chat: JSONValue, echo: JSONObject) {
        let parsed = try parse(body, strict: false)
        guard let object = body.objectValue else { throw SimInvalid("the request body must be a JSON object") }
        var messages: [JSONValue] = []
        func message(_ role: String, _ text: String) {
            messages.append(.object(JSONObject([("role", .string(role)), ("content", .string(text))])))
        }
        if let instructions = object["instructions"]?.stringValue { message("system", instructions) }
        switch object["input"] {
        case .string(let text)?:
            message("user", text)
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                switch item["type"]?.stringValue ?? "message" {
                case "message":
                    message(item["role"]?.stringValue ?? "user", try contentText(item["content"], path: "input[\(index)]"))
                case "function_call_output":
                    message("user", item["output"]?.stringValue ?? "")
                default:
                    continue
                }
            }
        default:
            break
        }
        var members: [JSONObject.Member] = [("messages", .array(messages))]
        if let model = parsed.model { members.append(("model", .string(model))) }
        members.append(("stream", .bool(parsed.conversation.stream)))
        if let limit = parsed.conversation.maxTokens { members.append(("max_tokens", .number(JSONNumber(Int64(limit))))) }
        if let tools = object["tools"], tools.arrayValue?.isEmpty == false { members.append(("tools", tools)) }
        return (.object(JSONObject(members)), parsed.echo)
    }
}

extension PlannedGeneration {
    /// The planned reply as a Responses answer, once the engine told the cached prompt tokens.
    func responsesAnswer(echo: JSONObject, cachedTokens: Int) -> ResponsesAnswer {
        let reply = SimReply(
            content: .text((0..<outputTokens).map(token)), thinking: [], finish: engineRequest.endsAtLimit ? .length : .stop,
            promptTokens: engineRequest.promptTokens, cachedTokens: cachedTokens, completionTokens: outputTokens)
        let item = String(responseID.drop { $0 != "-" }.dropFirst())
        return ResponsesAnswer(
            id: "resp_\(item)", itemID: item, created: created, model: model, reply: reply, echo: echo)
    }
}

import SluiceCore

/// Gemini API (`/v1beta/models/{model}:{method}`, API key) and Vertex AI
/// (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{method}`, OAuth bearer).
struct GeminiSimulator: ProviderSimulator {
    let credentials: SimCredentials
    var name: String { "gemini" }

    /// Top-level request fields; proto JSON accepts lowerCamel and snake_case spellings.
    static let knownFields: Set<String> = [
        "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config", "safetySettings",
        "safety_settings", "generationConfig", "generation_config", "cachedContent", "cached_content", "labels",
        "model",
    ]

    /// A parsed route: which model, which method, and whether it came in the Vertex way.
    struct Route {
        var model: String
        var method: String
        var vertex: Bool
        /// Vertex's model publisher: `google` (Gemini) or `anthropic` (Claude, `ClaudeCloudSim.swift`).
        var publisher = "google"
    }

    static func route(_ path: String) -> Route? {
        let segments = path.split(separator: "/").map(String.init)
        guard let last = segments.last, let colon = last.lastIndex(of: ":") else { return nil }
        let model = String(last[..<colon])
        let method = String(last[last.index(after: colon)...])
        if segments.count == 3, segments[0] == "v1beta" || segments[0] == "v1", segments[1] == "models" {
            return Route(model: model, method: method, vertex: false)
        }
        if segments.count == 9, segments[0].hasPrefix("v1"), segments[1] == "projects", segments[3] == "locations",
            segments[5] == "publishers", segments[7] == "models"
        {
            return Route(model: model, method: method, vertex: true, publisher: segments[6])
        }
        return nil
    }

    func authenticate(_ request: SimRequest) -> SimResponse? {
        if Self.route(request.path)?.vertex == true {
            guard let header = request.header("authorization"), header.hasPrefix("Bearer "),
                secretsEqual(String(header.dropFirst(7)), credentials.vertexToken)
            else {
                return error(401, status: "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")
            }
            return nil
        }
        guard let key = request.header("x-goog-api-key") ?? request.query["key"] else {
            return error(403, status: "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
        }
        guard secretsEqual(key, credentials.geminiKey) else {
            return error(400, status: "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.") { w in
                w.beginObject()
                w.key("@type"); w.string("type.googleapis.com/google.rpc.ErrorInfo")
                w.key("reason"); w.string("API_KEY_INVALID")
                w.key("domain"); w.string("googleapis.com")
                w.endObject()
            }
        }
        return nil
    }

    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        guard request.method == "POST", let route = Self.route(request.path) else {
            return (error(404, status: "NOT_FOUND", "The requested URL \(request.rawPath) was not found on this server."), nil)
        }
        if route.vertex, route.publisher == "anthropic" { return claudeOnVertex(request, route: route, context: context) }
        guard let body = request.json() else {
            return (error(400, status: "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token."), nil)
        }
        do {
            switch route.method {
            case "generateContent", "streamGenerateContent":
                return try generate(body, route: route, request: request, context: context)
            case "countTokens":
                // The Gemini API counts `contents` or a whole `generateContentRequest` (which names
                // its model); Vertex takes the request's fields beside `contents`.
                var counted = body
                if let inner = body["generateContentRequest"]?.objectValue {
                    counted = .object(JSONObject(inner.members.filter { $0.key != "model" }))
                }
                let conversation = try parse(counted)
                return (.json(200, Array(utf8: #"{"totalTokens":\#(Planner.countTokens(conversation.promptText))}"#)), nil)
            case "batchEmbedContents", "embedContent", "predict":
                return try embed(body, route: route)
            default:
                return (error(404, status: "NOT_FOUND", "Method \(route.method) not found for model \(route.model)."), nil)
            }
        } catch {
            return (self.error(400, status: "INVALID_ARGUMENT", error.message), nil)
        }
    }

    // MARK: Request validation

    private func parse(_ body: JSONValue) throws(SimInvalid) -> Conversation {
        guard let object = body.objectValue else { throw SimInvalid("Invalid JSON payload received. Expected an object.") }
        if let unknown = object.keys.first(where: { !Self.knownFields.contains($0) }) {
            throw SimInvalid("Invalid JSON payload received. Unknown name \"\(unknown)\": Cannot find field.")
        }
        var conversation = Conversation()
        if let system = object["systemInstruction"] ?? object["system_instruction"] {
            for part in system["parts"]?.arrayValue ?? [] {
                if let text = part["text"]?.stringValue { conversation.addPrompt(text) }
            }
        }
        guard let contents = object["contents"]?.arrayValue, !contents.isEmpty else {
            throw SimInvalid("* GenerateContentRequest.contents: contents is not specified\n")
        }
        var previousHadCall = false
        var lastRole = ""
        var lastHadResponse = false
        for (index, content) in contents.enumerated() {
            let role = content["role"]?.stringValue ?? "user"
            guard role == "user" || role == "model" || role == "function" else {
                throw SimInvalid("Please use a valid role: user, model.")
            }
            guard let parts = content["parts"]?.arrayValue, !parts.isEmpty else {
                throw SimInvalid("* GenerateContentRequest.contents[\(index)].parts: contents.parts must not be empty.\n")
            }
            var texts: [String] = []
            var hasCall = false
            var hasResponse = false
            for (partIndex, part) in parts.enumerated() {
                guard let fields = part.objectValue, !fields.isEmpty else {
                    throw SimInvalid("* GenerateContentRequest.contents[\(index)].parts[\(partIndex)].data: required oneof field 'data' must have one initialized field\n")
                }
                if let text = part["text"] {
                    guard let value = text.stringValue else { throw SimInvalid("Invalid value at 'contents[\(index)].parts[\(partIndex)].text'") }
                    if part["thought"]?.boolValue != true { texts.append(value) }
                } else if let call = part["functionCall"] {
                    guard role == "model", call["name"]?.stringValue != nil else {
                        throw SimInvalid("* GenerateContentRequest.contents[\(index)].parts[\(partIndex)].function_call.name: Name cannot be empty.\n")
                    }
                    hasCall = true
                    conversation.addPrompt(String(decoding: (call["args"] ?? .null).serialized(), as: UTF8.self))
                } else if let response = part["functionResponse"] {
                    guard response["name"]?.stringValue != nil else {
                        throw SimInvalid("* GenerateContentRequest.contents[\(index)].parts[\(partIndex)].function_response.name: Name cannot be empty.\n")
                    }
                    guard previousHadCall else {
                        throw SimInvalid("Please ensure that function response turn comes immediately after a function call turn.")
                    }
                    hasResponse = true
                    let text: String
                    if let payload = response["response"] {
                        text = payload["result"]?.stringValue ?? payload["content"]?.stringValue
                            ?? String(decoding: payload.serialized(), as: UTF8.self)
                    } else {
                        text = ""
                    }
                    conversation.toolResultText = text
                    conversation.addPrompt(text)
                } else if part["inlineData"] != nil || part["inline_data"] != nil || part["fileData"] != nil
                    || part["file_data"] != nil || part["thoughtSignature"] != nil
                {
                    continue
                } else {
                    throw SimInvalid("Invalid JSON payload received. Unknown name \"\(fields.keys[0])\" at 'contents[\(index)].parts[\(partIndex)]': Cannot find field.")
                }
            }
            let text = texts.joined(separator: " ")
            conversation.addPrompt(text)
            if role == "user", !texts.isEmpty { conversation.lastUserText = text }
            previousHadCall = hasCall
            lastRole = role
            lastHadResponse = hasResponse
        }
        conversation.endsWithToolResult = lastRole != "model" && lastHadResponse
        for (index, tool) in (object["tools"]?.arrayValue ?? []).enumerated() {
            let declarations = tool["functionDeclarations"] ?? tool["function_declarations"]
            for (declIndex, declaration) in (declarations?.arrayValue ?? []).enumerated() {
                guard let name = declaration["name"]?.stringValue, !name.isEmpty else {
                    throw SimInvalid("* GenerateContentRequest.tools[\(index)].function_declarations[\(declIndex)].name: Name cannot be empty.\n")
                }
                let schema = declaration["parameters"] ?? declaration["parametersJsonSchema"]
                    ?? declaration["parameters_json_schema"]
                conversation.tools.append(SimTool(name: name, schema: Self.lowercasedTypes(schema)))
            }
        }
        let toolConfig = object["toolConfig"] ?? object["tool_config"]
        let callingConfig = toolConfig?["functionCallingConfig"] ?? toolConfig?["function_calling_config"]
        switch callingConfig?["mode"]?.stringValue {
        case "NONE": conversation.toolsDisabled = true
        case "ANY":
            conversation.forcedTool = (callingConfig?["allowedFunctionNames"] ?? callingConfig?["allowed_function_names"])?
                .arrayValue?.first?.stringValue
        default: break
        }
        if let config = object["generationConfig"] ?? object["generation_config"] {
            if let limit = (config["maxOutputTokens"] ?? config["max_output_tokens"])?.int64Value {
                guard limit >= 1 else { throw SimInvalid("max_output_tokens must be positive.") }
                conversation.maxTokens = Int(clamping: limit)
            }
            if let temperature = config["temperature"]?.doubleValue, temperature < 0 || temperature > 2 {
                throw SimInvalid("Unable to submit request because it has a temperature value of \(temperature) but the supported range is from 0 (inclusive) to 2.0001 (exclusive). Update the value and try again.")
            }
            let thinking = config["thinkingConfig"] ?? config["thinking_config"]
            conversation.thinking = (thinking?["includeThoughts"] ?? thinking?["include_thoughts"])?.boolValue ?? false
        }
        return conversation
    }

    /// Gemini schemas spell types in upper case (`OBJECT`, `STRING`); the synthesiser reads JSON Schema.
    private static func lowercasedTypes(_ schema: JSONValue?) -> JSONValue? {
        guard let schema else { return nil }
        switch schema {
        case .object(let object):
            return .object(JSONObject(object.members.map { member in
                if member.key == "type", let type = member.value.stringValue {
                    return (member.key, JSONValue.string(type.lowercased()))
                }
                return (member.key, lowercasedTypes(member.value) ?? member.value)
            }))
        case .array(let items):
            return .array(items.map { lowercasedTypes($0) ?? $0 })
        default:
            return schema
        }
    }

    // MARK: generateContent

    private func generate(
        _ body: JSONValue, route: Route, request: SimRequest, context: SimContext
    ) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        var conversation = try parse(body)
        let streaming = route.method == "streamGenerateContent"
        conversation.stream = streaming
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        let reply = Planner.reply(to: conversation)
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: reply.promptTokens), nil)
        }
        let responseID = "sim-\(context.state.nextID())"
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        guard streaming else {
            let bytes = response(parts: { w in writeParts(&w, reply: reply, thinking: true, text: reply.text) },
                finish: finishReason(reply.finish), usage: reply, model: route.model, id: responseID)
            return (.json(200, bytes), usage)
        }
        var payloads: [[UInt8]] = []
        switch reply.content {
        case .text(let tokens):
            if !reply.thinking.isEmpty {
                payloads.append(response(parts: { w in
                    w.beginObject()
                    w.key("text"); w.string(reply.thinkingText)
                    w.key("thought"); w.bool(true)
                    w.endObject()
                }, finish: nil, usage: nil, model: route.model, id: responseID, prompt: reply))
            }
            for (index, token) in tokens.enumerated() {
                if fault == .midstream, index == SimFault.tokensBeforeMidstreamError {
                    payloads.append(midstreamError())
                    return (streamResponse(payloads, sse: route.isSSE(request)), usage)
                }
                let last = index == tokens.count - 1
                payloads.append(response(parts: { w in
                    w.beginObject()
                    w.key("text"); w.string(token)
                    w.endObject()
                }, finish: last ? finishReason(reply.finish) : nil, usage: last ? reply : nil, model: route.model,
                    id: responseID, prompt: reply))
            }
            if tokens.isEmpty {
                payloads.append(response(parts: { _ in }, finish: finishReason(reply.finish), usage: reply,
                    model: route.model, id: responseID))
            }
        case .toolCall:
            if fault == .midstream {
                payloads.append(midstreamError())
                return (streamResponse(payloads, sse: route.isSSE(request)), usage)
            }
            // Gemini sends a function call whole, in one chunk.
            payloads.append(response(parts: { w in writeParts(&w, reply: reply, thinking: true, text: "") },
                finish: "STOP", usage: reply, model: route.model, id: responseID))
        }
        return (streamResponse(payloads, sse: route.isSSE(request)), usage)
    }

    /// SSE with `\r\n\r\n` separators (as Gemini sends them), or a streamed JSON array without `alt=sse`.
    private func streamResponse(_ payloads: [[UInt8]], sse: Bool) -> SimResponse {
        if sse {
            return .sse(payloads.map { Array(utf8: "data: ") + $0 + Array(utf8: "\r\n\r\n") })
        }
        var chunks: [[UInt8]] = []
        for (index, payload) in payloads.enumerated() {
            chunks.append(Array(utf8: index == 0 ? "[" : ",\r\n") + payload)
        }
        chunks.append(Array(utf8: "]"))
        return SimResponse(status: 200, headers: [("content-type", "application/json; charset=UTF-8")],
            body: .stream(chunks))
    }

    private func writeParts(_ w: inout JSONWriter, reply: SimReply, thinking: Bool, text: String) {
        if thinking, !reply.thinking.isEmpty {
            w.beginObject()
            w.key("text"); w.string(reply.thinkingText)
            w.key("thought"); w.bool(true)
            w.endObject()
        }
        switch reply.content {
        case .text:
            w.beginObject()
            w.key("text"); w.string(text)
            w.endObject()
        case .toolCall(let name, let arguments, _):
            w.beginObject()
            w.key("functionCall")
            w.beginObject()
            w.key("name"); w.string(name)
            w.key("args"); w.value(arguments)
            w.endObject()
            w.endObject()
        }
    }

    /// One `GenerateContentResponse`. `usage` nil writes the prompt count only (as interim chunks do).
    private func response(
        parts: (inout JSONWriter) -> Void, finish: String?, usage: SimReply?, model: String, id: String,
        prompt: SimReply? = nil
    ) -> [UInt8] {
        jsonObject { w in
            w.key("candidates")
            w.beginArray()
            w.beginObject()
            w.key("content")
            w.beginObject()
            w.key("parts")
            w.beginArray()
            parts(&w)
            w.endArray()
            w.key("role"); w.string("model")
            w.endObject()
            if let finish {
                w.key("finishReason"); w.string(finish)
            }
            w.key("index"); w.int(0)
            w.endObject()
            w.endArray()
            if let reply = usage ?? prompt {
                let thoughts = reply.thinking.count
                let candidates = usage == nil ? 0 : reply.completionTokens - thoughts
                w.key("usageMetadata")
                w.beginObject()
                w.key("promptTokenCount"); w.int(reply.promptTokens)
                if usage != nil {
                    w.key("candidatesTokenCount"); w.int(candidates)
                }
                w.key("totalTokenCount"); w.int(reply.promptTokens + candidates + (usage == nil ? 0 : thoughts))
                if reply.cachedTokens > 0 {
                    w.key("cachedContentTokenCount"); w.int(reply.cachedTokens)
                }
                w.key("promptTokensDetails")
                w.beginArray()
                w.beginObject()
                w.key("modality"); w.string("TEXT")
                w.key("tokenCount"); w.int(reply.promptTokens)
                w.endObject()
                w.endArray()
                if thoughts > 0, usage != nil {
                    w.key("thoughtsTokenCount"); w.int(thoughts)
                }
                w.endObject()
            }
            w.key("modelVersion"); w.string(model)
            w.key("responseId"); w.string(id)
        }
    }

    private func finishReason(_ finish: SimReply.Finish) -> String {
        finish == .length ? "MAX_TOKENS" : "STOP"
    }

    // MARK: Embeddings

    private func embed(_ body: JSONValue, route: Route) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        func text(of content: JSONValue?) throws(SimInvalid) -> String {
            let texts = content?["parts"]?.arrayValue?.compactMap { $0["text"]?.stringValue } ?? []
            guard !texts.isEmpty else { throw SimInvalid("* BatchEmbedContentsRequest.requests[0].content: contents.parts must not be empty.\n") }
            return texts.joined(separator: " ")
        }
        func dimensions(_ value: JSONValue?) -> Int {
            guard let requested = value?.int64Value, requested >= 1, requested <= 256 else { return 8 }
            return Int(requested)
        }
        func writeValues(_ w: inout JSONWriter, _ text: String, _ count: Int) {
            w.key("values")
            w.beginArray()
            for value in SimEmbedding.vector(for: text, dimensions: count) { w.float(value) }
            w.endArray()
        }
        switch route.method {
        case "batchEmbedContents":
            guard let requests = body["requests"]?.arrayValue, !requests.isEmpty else {
                throw SimInvalid("* BatchEmbedContentsRequest.requests: requests is not specified\n")
            }
            var items: [(String, Int)] = []
            for item in requests {
                let model = item["model"]?.stringValue ?? "models/\(route.model)"
                guard model == "models/\(route.model)" else {
                    throw SimInvalid("Model names should be the same in all requests: \(model) != models/\(route.model)")
                }
                items.append((try text(of: item["content"]), dimensions(item["outputDimensionality"])))
            }
            let tokens = items.reduce(0) { $0 + Planner.countTokens($1.0) }
            let bytes = jsonObject { w in
                w.key("embeddings")
                w.beginArray()
                for (text, count) in items {
                    w.beginObject()
                    writeValues(&w, text, count)
                    w.endObject()
                }
                w.endArray()
            }
            return (.json(200, bytes), SimUsage(promptTokens: tokens, completionTokens: 0))
        case "embedContent":
            let value = try text(of: body["content"])
            let bytes = jsonObject { w in
                w.key("embedding")
                w.beginObject()
                writeValues(&w, value, dimensions(body["outputDimensionality"]))
                w.endObject()
            }
            return (.json(200, bytes), SimUsage(promptTokens: Planner.countTokens(value), completionTokens: 0))
        default:  // Vertex `:predict` for text-embedding models
            guard let instances = body["instances"]?.arrayValue, !instances.isEmpty else {
                throw SimInvalid("instances must not be empty")
            }
            let texts = instances.map { $0["content"]?.stringValue ?? "" }
            let count = dimensions(body["parameters"]?["outputDimensionality"])
            let bytes = jsonObject { w in
                w.key("predictions")
                w.beginArray()
                for text in texts {
                    w.beginObject()
                    w.key("embeddings")
                    w.beginObject()
                    w.key("statistics")
                    w.beginObject()
                    w.key("token_count"); w.int(Planner.countTokens(text))
                    w.key("truncated"); w.bool(false)
                    w.endObject()
                    writeValues(&w, text, count)
                    w.endObject()
                    w.endObject()
                }
                w.endArray()
            }
            return (.json(200, bytes), nil)
        }
    }

    // MARK: Errors

    func error(
        _ code: Int, status: String, _ message: String, details: ((inout JSONWriter) -> Void)? = nil
    ) -> SimResponse {
        .json(code) { w in
            w.beginObject()
            w.key("error")
            w.beginObject()
            w.key("code"); w.int(code)
            w.key("message"); w.string(message)
            w.key("status"); w.string(status)
            if let details {
                w.key("details")
                w.beginArray()
                details(&w)
                w.endArray()
            }
            w.endObject()
            w.endObject()
        }
    }

    private func midstreamError() -> [UInt8] {
        jsonObject { w in
            w.key("error")
            w.beginObject()
            w.key("code"); w.int(500)
            w.key("message"); w.string("An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
            w.key("status"); w.string("INTERNAL")
            w.endObject()
        }
    }

    private func faultResponse(_ fault: SimFault, promptTokens: Int) -> SimResponse {
        switch fault {
        case .rateLimited:
            error(429, status: "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.") { w in
                w.beginObject()
                w.key("@type"); w.string("type.googleapis.com/google.rpc.RetryInfo")
                w.key("retryDelay"); w.string("1s")
                w.endObject()
            }
        case .serverError, .midstream:
            error(500, status: "INTERNAL",
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting")
        case .unavailable, .overloaded:
            error(503, status: "UNAVAILABLE", "The model is overloaded. Please try again later.")
        case .contextLength:
            error(400, status: "INVALID_ARGUMENT",
                "The input token count (\(1_048_576 + promptTokens)) exceeds the maximum number of tokens allowed (1048576).")
        }
    }
}

extension GeminiSimulator.Route {
    /// `alt=sse` asks for server-sent events; without it the stream is a JSON array.
    func isSSE(_ request: SimRequest) -> Bool {
        request.query["alt"] == "sse"
    }
}

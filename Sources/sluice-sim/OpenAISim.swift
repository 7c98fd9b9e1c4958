import SluiceCore

/// OpenAI, Azure OpenAI and a vLLM-like self-hosted server: one wire shape, three flavours of
/// auth, routing, error bodies and extras.
struct OpenAISimulator: ProviderSimulator {
    enum Flavor: Sendable {
        case openAI, azure, compat
    }

    let flavor: Flavor
    let credentials: SimCredentials

    var name: String {
        switch flavor {
        case .openAI: "openai"
        case .azure: "azure"
        case .compat: "compat"
        }
    }

    /// Models the OpenAI simulator lists; it also accepts other ids with these prefixes.
    static let listedModels = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini", "text-embedding-3-small",
        "text-embedding-3-large", "gpt-3.5-turbo-instruct"]
    static let knownPrefixes = ["gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage", "sim-"]

    // MARK: Auth

    func authenticate(_ request: SimRequest) -> SimResponse? {
        switch flavor {
        case .openAI:
            guard let header = request.header("authorization"), header.hasPrefix("Bearer ") else {
                return error(401,
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                    type: "invalid_request_error", param: nil, code: nil)
            }
            let key = String(header.dropFirst("Bearer ".count))
            guard secretsEqual(key, credentials.openAIKey) else {
                return error(401,
                    "Incorrect API key provided: \(key.prefix(6))***. You can find your API key at https://platform.openai.com/account/api-keys.",
                    type: "invalid_request_error", param: nil, code: "invalid_api_key")
            }
            return nil
        case .azure:
            guard let key = request.header("api-key"), secretsEqual(key, credentials.azureKey) else {
                return .json(401) { w in
                    w.beginObject()
                    w.key("error")
                    w.beginObject()
                    w.key("code")
                    w.string("401")
                    w.key("message")
                    w.string(
                        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
                    )
                    w.endObject()
                    w.endObject()
                }
            }
            return nil
        case .compat:
            guard let header = request.header("authorization") else { return nil }
            guard header.hasPrefix("Bearer "), secretsEqual(String(header.dropFirst(7)), credentials.compatKey) else {
                return .json(401, Array(utf8: #"{"error":"Unauthorized"}"#))
            }
            return nil
        }
    }

    // MARK: Routing

    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        let path = request.path
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var operation: String?
        var azureDeployment: String?
        switch flavor {
        case .openAI, .compat:
            if request.method == "GET", path == "/v1/models" {
                return (modelList(context: context), nil)
            }
            if request.method == "GET", segments.count == 3, segments[0] == "v1", segments[1] == "models" {
                return (model(segments[2], context: context), nil)
            }
            if request.method == "POST", segments.first == "v1" {
                operation = segments.dropFirst().joined(separator: "/")
            }
        case .azure:
            // /openai/deployments/{deployment}/{operation}, or the v1 API's /openai/v1/responses
            // (no deployment in the path: the body's `model` names it).
            if request.method == "POST", segments.starts(with: ["openai", "v1", "responses"]) {
                operation = segments.dropFirst(2).joined(separator: "/")
            } else if request.method == "POST", segments.count >= 4, segments[0] == "openai", segments[1] == "deployments" {
                azureDeployment = segments[2]
                operation = segments.dropFirst(3).joined(separator: "/")
            }
        }
        // vLLM serves rerank; OpenAI and Azure do not.
        if flavor == .compat, operation == "rerank" {
            guard let body = request.json() else { return (invalidJSON(), nil) }
            return rerank(body, request: request, context: context)
        }
        guard let operation,
            ["chat/completions", "completions", "embeddings", "responses", "responses/input_tokens"].contains(operation)
                || Self.mediaOperations.contains(operation)
        else {
            return (notFound(request), nil)
        }
        if flavor == .azure, azureDeployment != nil, (request.query["api-version"] ?? "").isEmpty {
            return (azureError(400, code: "BadRequest", "Missing required query parameter: api-version"), nil)
        }
        // Images and audio (OpenAIMedia.swift); a form is not JSON.
        if Self.mediaOperations.contains(operation) {
            return media(operation, request: request, deployment: azureDeployment, context: context)
        }
        guard let body = request.json() else {
            return (invalidJSON(), nil)
        }
        do {
            switch operation {
            case "chat/completions":
                return try chat(body, request: request, deployment: azureDeployment, context: context)
            case "responses":
                return try responses(body, request: request, context: context)
            case "responses/input_tokens":
                return try responsesInputTokens(body)
            case "completions":
                return try completion(body, request: request, deployment: azureDeployment, context: context)
            default:
                return try embeddings(body, request: request, deployment: azureDeployment)
            }
        } catch {
            return (invalid(error), nil)
        }
    }

    /// The model a response names; throws when this server does not serve the requested model.
    func resolveModel(_ requested: String?, deployment: String?) throws(SimInvalid) -> String {
        if let deployment { return deployment }
        guard let requested else { throw SimInvalid("you must provide a model parameter") }
        switch flavor {
        case .compat:
            guard requested == credentials.compatModel else {
                throw SimInvalid("The model `\(requested)` does not exist.", param: "model")
            }
        case .openAI:
            guard Self.knownPrefixes.contains(where: { requested.hasPrefix($0) }) else {
                throw SimInvalid("The model `\(requested)` does not exist or you do not have access to it.", param: nil)
            }
        case .azure:
            break
        }
        return requested
    }

    // MARK: Chat Completions

    private func chat(
        _ body: JSONValue, request: SimRequest, deployment: String?, context: SimContext
    ) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        let parsed = try OpenAIChatRequest.parse(body, requireModel: deployment == nil, strict: flavor != .compat)
        let model: String
        do {
            model = try resolveModel(parsed.model, deployment: deployment)
        } catch {
            return (modelNotFound(error), nil)
        }
        let conversation = parsed.conversation
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        let reply = Planner.reply(to: conversation)
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: reply.promptTokens, model: model), nil)
        }
        let sequence = context.state.nextID()
        let id = "chatcmpl-sim\(sequence)"
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        let headers = responseHeaders(sequence)
        if conversation.stream {
            let chunks = chatStream(
                id: id, created: context.now, model: model, reply: reply, includeUsage: parsed.includeUsage,
                midstream: fault == .midstream, callID: "call_sim\(sequence)")
            return (.sse(chunks, headers: headers), usage)
        }
        let bytes = jsonObject { w in
            w.key("id"); w.string(id)
            w.key("object"); w.string("chat.completion")
            w.key("created"); w.int(context.now)
            w.key("model"); w.string(model)
            w.key("choices")
            w.beginArray()
            w.beginObject()
            w.key("index"); w.int(0)
            w.key("message")
            w.beginObject()
            w.key("role"); w.string("assistant")
            switch reply.content {
            case .text:
                w.key("content"); w.string(reply.text)
            case .toolCall(let name, _, _):
                w.key("content"); w.null()
                w.key("tool_calls")
                w.beginArray()
                writeToolCall(&w, id: "call_sim\(sequence)", name: name, arguments: reply.argumentsText)
                w.endArray()
            }
            if flavor != .compat {
                w.key("refusal"); w.null()
                w.key("annotations"); w.beginArray(); w.endArray()
            }
            w.endObject()
            w.key("logprobs"); w.null()
            w.key("finish_reason"); w.string(finishReason(reply.finish))
            if flavor == .azure { writeContentFilterResults(&w) }
            w.endObject()
            w.endArray()
            writeUsage(&w, reply: reply, details: true)
            if flavor == .azure { writePromptFilterResults(&w) }
            if flavor == .openAI {
                w.key("service_tier"); w.string("default")
            }
            w.key("system_fingerprint"); w.string("fp_sim")
        }
        return (.json(200, bytes, headers: headers), usage)
    }

    private func chatStream(
        id: String, created: Int, model: String, reply: SimReply, includeUsage: Bool, midstream: Bool,
        callID: String
    ) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        if flavor == .azure {
            // Azure sends the prompt's content-filter verdict first, in a chunk with no choices.
            chunks.append(sseFrame(jsonObject { w in
                w.key("choices"); w.beginArray(); w.endArray()
                w.key("created"); w.int(0)
                w.key("id"); w.string("")
                w.key("model"); w.string("")
                w.key("object"); w.string("")
                writePromptFilterResults(&w)
            }))
        }
        var sequence = 0
        func chunk(finish: String?, _ delta: (inout JSONWriter) -> Void) -> [UInt8] {
            sequence += 1
            return sseFrame(jsonObject { w in
                w.key("id"); w.string(id)
                w.key("object"); w.string("chat.completion.chunk")
                w.key("created"); w.int(created)
                w.key("model"); w.string(model)
                if flavor == .openAI {
                    w.key("service_tier"); w.string("default")
                }
                w.key("system_fingerprint"); w.string("fp_sim")
                w.key("choices")
                w.beginArray()
                w.beginObject()
                w.key("index"); w.int(0)
                w.key("delta")
                w.beginObject()
                delta(&w)
                w.endObject()
                w.key("logprobs"); w.null()
                w.key("finish_reason")
                if let finish { w.string(finish) } else { w.null() }
                if flavor == .azure { writeContentFilterResults(&w) }
                w.endObject()
                w.endArray()
                if includeUsage {
                    w.key("usage"); w.null()
                }
                if flavor == .openAI {
                    // OpenAI pads chunks with a random-looking field; clients must ignore it.
                    w.key("obfuscation"); w.string(String(repeating: "x", count: sequence % 7 + 1))
                }
            })
        }
        switch reply.content {
        case .text(let tokens):
            chunks.append(chunk(finish: nil) { w in
                w.key("role"); w.string("assistant")
                w.key("content"); w.string("")
                if flavor != .compat { w.key("refusal"); w.null() }
            })
            for (index, token) in tokens.enumerated() {
                if midstream, index == SimFault.tokensBeforeMidstreamError {
                    chunks.append(midstreamError())
                    return chunks
                }
                chunks.append(chunk(finish: nil) { w in
                    w.key("content"); w.string(token)
                })
            }
        case .toolCall(let name, _, let fragments):
            chunks.append(chunk(finish: nil) { w in
                w.key("role"); w.string("assistant")
                w.key("content"); w.null()
                w.key("tool_calls")
                w.beginArray()
                w.beginObject()
                w.key("index"); w.int(0)
                w.key("id"); w.string(callID)
                w.key("type"); w.string("function")
                w.key("function")
                w.beginObject()
                w.key("name"); w.string(name)
                w.key("arguments"); w.string("")
                w.endObject()
                w.endObject()
                w.endArray()
                if flavor != .compat { w.key("refusal"); w.null() }
            })
            for (index, fragment) in fragments.enumerated() {
                if midstream, index == 1 {
                    chunks.append(midstreamError())
                    return chunks
                }
                chunks.append(chunk(finish: nil) { w in
                    w.key("tool_calls")
                    w.beginArray()
                    w.beginObject()
                    w.key("index"); w.int(0)
                    w.key("function")
                    w.beginObject()
                    w.key("arguments"); w.string(fragment)
                    w.endObject()
                    w.endObject()
                    w.endArray()
                })
            }
        }
        if midstream {
            chunks.append(midstreamError())
            return chunks
        }
        chunks.append(chunk(finish: finishReason(reply.finish)) { _ in })
        if includeUsage {
            chunks.append(sseFrame(jsonObject { w in
                w.key("id"); w.string(id)
                w.key("object"); w.string("chat.completion.chunk")
                w.key("created"); w.int(created)
                w.key("model"); w.string(model)
                w.key("system_fingerprint"); w.string("fp_sim")
                w.key("choices"); w.beginArray(); w.endArray()
                writeUsage(&w, reply: reply, details: true)
            }))
        }
        chunks.append(Array(utf8: "data: [DONE]\n\n"))
        return chunks
    }

    // MARK: Legacy completions

    private func completion(
        _ body: JSONValue, request: SimRequest, deployment: String?, context: SimContext
    ) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        guard let object = body.objectValue else {
            throw SimInvalid("Invalid type for request body: expected an object, but got \(body.typeName) instead.")
        }
        let model: String
        do {
            model = try resolveModel(object["model"]?.stringValue, deployment: deployment)
        } catch {
            return (modelNotFound(error), nil)
        }
        guard let promptValue = object["prompt"] else {
            throw SimInvalid("Missing required parameter: 'prompt'.", param: "prompt")
        }
        let prompt: String
        if let text = promptValue.stringValue {
            prompt = text
        } else if let items = promptValue.arrayValue, !items.isEmpty {
            prompt = items.map { $0.stringValue ?? String(decoding: $0.serialized(), as: UTF8.self) }
                .joined(separator: " ")
        } else {
            throw SimInvalid("Invalid type for 'prompt': expected a string or an array.", param: "prompt")
        }
        var conversation = Conversation()
        conversation.lastUserText = prompt
        conversation.addPrompt(prompt)
        conversation.stream = object["stream"]?.boolValue ?? false
        // Legacy completions default to 16 tokens.
        conversation.maxTokens = Int(clamping: object["max_tokens"]?.int64Value ?? 16)
        let includeUsage = object["stream_options"]?["include_usage"]?.boolValue ?? false
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: prompt)
        let reply = Planner.reply(to: conversation)
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: reply.promptTokens, model: model), nil)
        }
        let sequence = context.state.nextID()
        let id = "cmpl-sim\(sequence)"
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        let tokens: [String]
        if case .text(let words) = reply.content { tokens = words.map { $0.hasPrefix(" ") ? $0 : " " + $0 } } else {
            tokens = []
        }
        func chunk(text: String, finish: String?) -> [UInt8] {
            jsonObject { w in
                w.key("id"); w.string(id)
                w.key("object"); w.string("text_completion")
                w.key("created"); w.int(context.now)
                w.key("model"); w.string(model)
                w.key("choices")
                w.beginArray()
                w.beginObject()
                w.key("text"); w.string(text)
                w.key("index"); w.int(0)
                w.key("logprobs"); w.null()
                w.key("finish_reason")
                if let finish { w.string(finish) } else { w.null() }
                w.endObject()
                w.endArray()
                if finish != nil, !conversation.stream {
                    writeUsage(&w, reply: reply, details: false)
                }
            }
        }
        let headers = responseHeaders(sequence)
        if conversation.stream {
            var chunks: [[UInt8]] = []
            for (index, token) in tokens.enumerated() {
                if fault == .midstream, index == SimFault.tokensBeforeMidstreamError {
                    chunks.append(midstreamError())
                    return (.sse(chunks, headers: headers), usage)
                }
                chunks.append(sseFrame(chunk(text: token, finish: nil)))
            }
            chunks.append(sseFrame(chunk(text: "", finish: finishReason(reply.finish))))
            if includeUsage {
                chunks.append(sseFrame(jsonObject { w in
                    w.key("id"); w.string(id)
                    w.key("object"); w.string("text_completion")
                    w.key("created"); w.int(context.now)
                    w.key("model"); w.string(model)
                    w.key("choices"); w.beginArray(); w.endArray()
                    writeUsage(&w, reply: reply, details: false)
                }))
            }
            chunks.append(Array(utf8: "data: [DONE]\n\n"))
            return (.sse(chunks, headers: headers), usage)
        }
        return (.json(200, chunk(text: tokens.joined(), finish: finishReason(reply.finish)), headers: headers), usage)
    }

    // MARK: Embeddings

    private func embeddings(
        _ body: JSONValue, request: SimRequest, deployment: String?
    ) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        guard let object = body.objectValue else {
            throw SimInvalid("Invalid type for request body: expected an object, but got \(body.typeName) instead.")
        }
        let model: String
        do {
            model = try resolveModel(object["model"]?.stringValue, deployment: deployment)
        } catch {
            return (modelNotFound(error), nil)
        }
        guard let input = object["input"] else {
            throw SimInvalid("Missing required parameter: 'input'.", param: "input")
        }
        var texts: [String] = []
        if let text = input.stringValue {
            texts = [text]
        } else if let items = input.arrayValue, !items.isEmpty {
            if items.allSatisfy({ $0.numberValue != nil }) {
                texts = [String(decoding: input.serialized(), as: UTF8.self)]
            } else {
                for item in items {
                    if let text = item.stringValue {
                        texts.append(text)
                    } else if item.arrayValue != nil {
                        texts.append(String(decoding: item.serialized(), as: UTF8.self))
                    } else {
                        throw SimInvalid("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", param: "input")
                    }
                }
            }
        }
        if texts.isEmpty || texts.contains(where: \.isEmpty) {
            throw SimInvalid("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", param: "input")
        }
        let format = object["encoding_format"]?.stringValue ?? "float"
        guard format == "float" || format == "base64" else {
            throw SimInvalid("Invalid value: '\(format)'. Supported values are: 'float' and 'base64'.",
                param: "encoding_format")
        }
        var dimensions = 8
        if let requested = object["dimensions"], !requested.isNull {
            guard let value = requested.int64Value, value >= 1, value <= 256 else {
                throw SimInvalid("Invalid 'dimensions': expected an integer between 1 and 256.", param: "dimensions")
            }
            dimensions = Int(value)
        }
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: texts.joined(separator: " "))
        let promptTokens = texts.reduce(0) { $0 + Planner.countTokens($1) }
        if let fault, fault != .midstream {
            return (faultResponse(fault, promptTokens: promptTokens, model: model), nil)
        }
        let bytes = jsonObject { w in
            w.key("object"); w.string("list")
            w.key("data")
            w.beginArray()
            for (index, text) in texts.enumerated() {
                let vector = SimEmbedding.vector(for: text, dimensions: dimensions)
                w.beginObject()
                w.key("object"); w.string("embedding")
                w.key("index"); w.int(index)
                w.key("embedding")
                if format == "base64" {
                    w.string(SimEmbedding.base64(vector))
                } else {
                    w.beginArray()
                    for value in vector { w.float(value) }
                    w.endArray()
                }
                w.endObject()
            }
            w.endArray()
            w.key("model"); w.string(model)
            w.key("usage")
            w.beginObject()
            w.key("prompt_tokens"); w.int(promptTokens)
            w.key("total_tokens"); w.int(promptTokens)
            w.endObject()
        }
        return (.json(200, bytes), SimUsage(promptTokens: promptTokens, completionTokens: 0))
    }

    // MARK: Models

    private var servedModels: [String] {
        flavor == .compat ? [credentials.compatModel] : Self.listedModels
    }

    private func writeModel(_ w: inout JSONWriter, _ id: String, created: Int) {
        w.beginObject()
        w.key("id"); w.string(id)
        w.key("object"); w.string("model")
        w.key("created"); w.int(flavor == .compat ? created : 1_686_935_002)
        w.key("owned_by"); w.string(flavor == .compat ? "vllm" : "system")
        if flavor == .compat {
            w.key("root"); w.string(id)
            w.key("parent"); w.null()
            w.key("max_model_len"); w.int(8192)
        }
        w.endObject()
    }

    private func modelList(context: SimContext) -> SimResponse {
        .json(200) { w in
            w.beginObject()
            w.key("object"); w.string("list")
            w.key("data")
            w.beginArray()
            for id in servedModels { writeModel(&w, id, created: context.now) }
            w.endArray()
            w.endObject()
        }
    }

    private func model(_ id: String, context: SimContext) -> SimResponse {
        guard servedModels.contains(id) else {
            return modelNotFound(SimInvalid("The model `\(id)` does not exist or you do not have access to it."))
        }
        return .json(200) { w in writeModel(&w, id, created: context.now) }
    }

    // MARK: Writers

    private func finishReason(_ finish: SimReply.Finish) -> String {
        switch finish {
        case .stop: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        }
    }

    private func writeToolCall(_ w: inout JSONWriter, id: String, name: String, arguments: String) {
        w.beginObject()
        w.key("id"); w.string(id)
        w.key("type"); w.string("function")
        w.key("function")
        w.beginObject()
        w.key("name"); w.string(name)
        w.key("arguments"); w.string(arguments)
        w.endObject()
        w.endObject()
    }

    private func writeUsage(_ w: inout JSONWriter, reply: SimReply, details: Bool) {
        w.key("usage")
        w.beginObject()
        w.key("prompt_tokens"); w.int(reply.promptTokens)
        w.key("completion_tokens"); w.int(reply.completionTokens)
        w.key("total_tokens"); w.int(reply.promptTokens + reply.completionTokens)
        if details {
            w.key("prompt_tokens_details")
            if flavor == .compat, reply.cachedTokens == 0 {
                w.null()
            } else {
                w.beginObject()
                w.key("cached_tokens"); w.int(reply.cachedTokens)
                if flavor != .compat { w.key("audio_tokens"); w.int(0) }
                w.endObject()
            }
            if flavor != .compat {
                w.key("completion_tokens_details")
                w.beginObject()
                w.key("reasoning_tokens"); w.int(0)
                w.key("audio_tokens"); w.int(0)
                w.key("accepted_prediction_tokens"); w.int(0)
                w.key("rejected_prediction_tokens"); w.int(0)
                w.endObject()
            }
        }
        w.endObject()
    }

    private func writeContentFilterResults(_ w: inout JSONWriter) {
        w.key("content_filter_results")
        w.beginObject()
        for category in ["hate", "self_harm", "sexual", "violence"] {
            w.key(category)
            w.beginObject()
            w.key("filtered"); w.bool(false)
            w.key("severity"); w.string("safe")
            w.endObject()
        }
        w.endObject()
    }

    private func writePromptFilterResults(_ w: inout JSONWriter) {
        w.key("prompt_filter_results")
        w.beginArray()
        w.beginObject()
        w.key("prompt_index"); w.int(0)
        writeContentFilterResults(&w)
        w.endObject()
        w.endArray()
    }

    func responseHeaders(_ sequence: Int) -> [(String, String)] {
        switch flavor {
        case .openAI:
            [("x-request-id", "req_sim\(sequence)"), ("openai-processing-ms", "1"),
             ("x-ratelimit-remaining-requests", "9999"), ("x-ratelimit-remaining-tokens", "999999")]
        case .azure:
            [("apim-request-id", "sim-\(sequence)"), ("x-ms-region", "Sim Region")]
        case .compat:
            []
        }
    }

    // MARK: Errors

    /// An error body in this flavour's shape.
    func error(
        _ status: Int, _ message: String, type: String, param: String?, code: String?,
        headers: [(String, String)] = []
    ) -> SimResponse {
        .json(status, headers: headers) { w in
            w.beginObject()
            w.key("error")
            w.beginObject()
            w.key("message"); w.string(message)
            w.key("type"); w.string(type)
            w.key("param")
            if let param { w.string(param) } else { w.null() }
            w.key("code")
            if flavor == .compat {
                w.int(status)
            } else if let code {
                w.string(code)
            } else {
                w.null()
            }
            w.endObject()
            w.endObject()
        }
    }

    private func azureError(
        _ status: Int, code: String, _ message: String, headers: [(String, String)] = []
    ) -> SimResponse {
        .json(status, headers: headers) { w in
            w.beginObject()
            w.key("error")
            w.beginObject()
            w.key("code"); w.string(code)
            w.key("message"); w.string(message)
            w.endObject()
            w.endObject()
        }
    }

    private func invalid(_ error: SimInvalid) -> SimResponse {
        self.error(400, error.message, type: flavor == .compat ? "BadRequestError" : "invalid_request_error",
            param: error.param, code: nil)
    }

    func modelNotFound(_ error: SimInvalid) -> SimResponse {
        self.error(404, error.message, type: flavor == .compat ? "NotFoundError" : "invalid_request_error",
            param: error.param, code: "model_not_found")
    }

    func invalidJSON() -> SimResponse {
        if flavor == .compat {
            return error(400, "Invalid JSON in request body", type: "BadRequestError", param: nil, code: nil)
        }
        return error(400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
            type: "invalid_request_error", param: nil, code: nil)
    }

    private func notFound(_ request: SimRequest) -> SimResponse {
        switch flavor {
        case .openAI:
            error(404, "Invalid URL (\(request.method) \(request.rawPath))", type: "invalid_request_error", param: nil,
                code: nil)
        case .azure:
            azureError(404, code: "404", "Resource not found")
        case .compat:
            .json(404, Array(utf8: #"{"detail":"Not Found"}"#))
        }
    }

    private func midstreamError() -> [UInt8] {
        sseFrame(jsonObject { w in
            w.key("error")
            w.beginObject()
            w.key("message"); w.string("The server had an error while processing your request. Sorry about that!")
            w.key("type"); w.string("server_error")
            w.key("param"); w.null()
            w.key("code"); w.null()
            w.endObject()
        })
    }

    func faultResponse(_ fault: SimFault, promptTokens: Int, model: String) -> SimResponse {
        switch (fault, flavor) {
        case (.rateLimited, .azure):
            return azureError(429, code: "429",
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.",
                headers: [("retry-after", "1")])
        case (.rateLimited, _):
            return error(429,
                "Rate limit reached for \(model) in organization org-sim on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
                type: flavor == .compat ? "RateLimitError" : "requests", param: nil, code: "rate_limit_exceeded",
                headers: [("retry-after", "1"), ("x-ratelimit-remaining-requests", "0")])
        case (.serverError, _), (.midstream, _):
            return error(500, "The server had an error while processing your request. Sorry about that!",
                type: flavor == .compat ? "InternalServerError" : "server_error", param: nil, code: nil)
        case (.unavailable, .azure), (.overloaded, .azure):
            return azureError(503, code: "ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later.")
        case (.unavailable, _), (.overloaded, _):
            return error(503, "The server is overloaded or not ready yet.",
                type: flavor == .compat ? "ServiceUnavailableError" : "server_error", param: nil, code: nil)
        case (.contextLength, _):
            let limit = flavor == .compat ? 8192 : 128_000
            return error(400,
                "This model's maximum context length is \(limit) tokens. However, your messages resulted in \(limit + promptTokens) tokens. Please reduce the length of the messages.",
                type: flavor == .compat ? "BadRequestError" : "invalid_request_error", param: "messages",
                code: "context_length_exceeded")
        }
    }

    // MARK: vLLM metrics

    func serveExtra(_ request: SimRequest, state: SimState) -> SimResponse? {
        guard flavor == .compat, request.method == "GET", request.rawPath == "/metrics" else { return nil }
        let load = state.load(provider: name)
        let maxRunning = 4
        let running = min(load.inFlight, maxRunning)
        let waiting = max(0, load.inFlight - maxRunning)
        // A small KV cache (in tokens) so a handful of requests moves the gauge visibly.
        let cacheCapacity = 4096.0
        let usage = min(1.0, Double(max(0, load.inFlightTokens)) / cacheCapacity)
        let label = "model_name=\"\(credentials.compatModel)\""
        var text = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name){\(label)} \(value)\n"
        }
        metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", "\(Double(running))")
        metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", "\(Double(waiting))")
        metric("vllm:gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.", "\(usage)")
        metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", "\(usage)")
        metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", "\(Double(load.prompt))")
        metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
            "\(Double(load.generated))")
        metric("vllm:request_success_total", "counter", "Count of successfully processed requests.",
            "\(Double(load.requests))")
        return SimResponse(
            status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            body: .bytes(Array(text.utf8)))
    }
}

// Token counting: OpenAI's `POST /v1/responses/input_tokens` and Anthropic's
// `POST /v1/messages/count_tokens`, mapped to each provider's own counting endpoint. A count is
// free: the gateway neither admits it against quotas nor charges it (`GatewayStream.route`), and
// the attempt reports no usage.
//
// | client \ backend   | OpenAI, Azure          | Anthropic              | Bedrock                | Gemini, Vertex       |
// | Responses count    | passthrough            | Anthropic count_tokens | Converse CountTokens   | countTokens          |
// | Anthropic count    | 400 (no such endpoint) | passthrough            | Converse CountTokens   | countTokens          |
//
// A translated count request is the request the backend's chat translator writes for the same
// conversation (through the chat hub), trimmed to what the counting endpoint accepts; the answer
// becomes the client's count object. Counting is not routed through the adapters' chat plans:
// one table here says where each backend counts, the adapters still say how it authenticates.

extension Endpoint {
    /// A token-counting endpoint (free: neither admitted against quotas nor charged).
    public var countsTokens: Bool { self == .responsesInputTokens || self == .anthropicCountTokens }
}

public enum TokenCounting {
    /// The largest count accepted from a backend (`TokenUsage.maxCount`).
    static let maxCount = Int64(TokenUsage.maxCount)

    /// Members Anthropic's count_tokens accepts (it refuses `max_tokens`, `stream`, sampling).
    static let anthropicMembers: Set<String> = ["model", "messages", "system", "tools", "tool_choice", "thinking"]
    /// Members Bedrock's CountTokens takes inside `input.converse`.
    static let converseMembers: Set<String> = ["messages", "system", "toolConfig", "additionalModelRequestFields"]
    /// What Gemini counts: the conversation, the system instruction and the tools (Vertex takes
    /// them as they are, the Gemini API inside `generateContentRequest`). `generationConfig` is
    /// left out: it holds no prompt, only the output limit an Anthropic count had to make up.
    static let geminiMembers: Set<String> = ["contents", "systemInstruction", "tools"]

    /// Where a count goes, for `attempt.backend`.
    static func requestPlan(for attempt: ProviderAttempt, adapter: any ProviderAdapter.Type) throws(TranslateError)
        -> UpstreamRequestPlan
    {
        let backend = attempt.backend
        let model = attempt.context.upstreamModel
        var headers = [("content-type", "application/json")]
        let path: String
        switch (backend.schema, attempt.clientAPI) {
        case (.openAI, .openAI):
            // A server without the Responses API has no counting endpoint either.
            guard backend.servesResponses else { throw attempt.unsupportedEndpoint() }
            path = "/v1/responses/input_tokens"
        case (.azureOpenAI, .openAI):
            path = "/openai/v1/responses/input_tokens"
        case (.anthropic, _):
            path = "/v1/messages/count_tokens"
            headers.append(("anthropic-version", "2023-06-01"))
        case (.vertexAnthropic, _):
            let (project, location) = VertexAnthropicAdapter.location(of: backend)
            path = AnthropicOnCloud.vertexCountPath(project: project, location: location)
        case (.bedrockConverse, _), (.bedrockAnthropic, _):
            path = "/model/" + SigV4Signer.uriEncode(model) + "/count-tokens"
        case (.gemini, _), (.vertexGemini, _):
            path = Gemini.modelPath(model: model, apiFlavor: GeminiAdapter.flavor(of: backend)) + ":countTokens"
        case (.openAI, .anthropic), (.azureOpenAI, .anthropic), (.openAI, .cohere), (.azureOpenAI, .cohere), (.cohere, _):
            throw attempt.unsupportedEndpoint()
        }
        let context = attempt.context
        return UpstreamRequestPlan(
            path: backend.pathPrefix + path, setHeaders: headers, credential: adapter.credential(for: backend),
            // Same schema: only a model override (Azure: the deployment) edits the body.
            rewritesBody: !attempt.sameSchema || context.upstreamModel != context.requestModel)
    }

    /// The body of a count request for the backend.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let context = attempt.context
        if attempt.sameSchema {
            return context.upstreamModel == context.requestModel
                ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        // The conversation as the backend's chat translator writes it, unstreamed.
        var chatContext = context
        chatContext.stream = false
        let chat: OpenAIChatRequest = try attempt.countedChatRequest(body)
        let translated: [UInt8]
        switch attempt.backend.schema {
        case .anthropic, .vertexAnthropic:
            translated = try AnthropicTranslator.request(fromOpenAIChat: chat, context: chatContext)
            return JSONValue.object(try keeping(anthropicMembers, of: translated)).serialized()
        case .bedrockConverse, .bedrockAnthropic:
            translated = try BedrockConverse.request(fromOpenAIChat: chat, context: chatContext).body
            let converse = JSONValue.object(try keeping(converseMembers, of: translated))
            return JSONValue.object(JSONObject([("input", .object(JSONObject([("converse", converse)])))])).serialized()
        case .gemini, .vertexGemini:
            translated = try Gemini.request(fromOpenAIChat: chat, context: chatContext)
            if attempt.backend.schema == .vertexGemini, attempt.backend.gcp != nil {
                return JSONValue.object(try keeping(geminiMembers, of: translated)).serialized()
            }
            // The Gemini API counts a whole generateContent request, which names its model.
            let object = try keeping(geminiMembers, of: translated)
            let request = JSONObject(
                [("model", .string(Gemini.modelResourceName(context.upstreamModel)))] + object.members)
            return JSONValue.object(JSONObject([("generateContentRequest", .object(request))])).serialized()
        case .openAI, .azureOpenAI, .cohere:
            throw attempt.unsupportedEndpoint()
        }
    }

    /// A translated body with only `members` kept (a counting endpoint refuses the others).
    static func keeping(_ members: Set<String>, of body: [UInt8]) throws(TranslateError) -> JSONObject {
        JSONObject(try parsedObject(body).members.filter { members.contains($0.key) })
    }

    /// A body the translators wrote, as an object.
    static func parsedObject(_ body: [UInt8]) throws(TranslateError) -> JSONObject {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw .invalidBody("The count request could not be translated.")
        }
        return object
    }

    /// The backend's count answer as the client's count object: OpenAI
    /// `{"object":"response.input_tokens","input_tokens":N}`, Anthropic `{"input_tokens":N}`.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the answer holds no count in range.
    static func clientAnswer(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let name =
            switch attempt.backend.schema {
            case .anthropic, .openAI, .azureOpenAI, .vertexAnthropic: "input_tokens"
            case .bedrockConverse, .bedrockAnthropic: "inputTokens"
            case .gemini, .vertexGemini: "totalTokens"
            case .cohere: "input_tokens"  // not reached: Cohere has no counting endpoint (the plan refuses)
            }
        let span = body.span
        var value: UpstreamJSON.Value?
        let kind = try? UpstreamJSON.scanTopLevel(span) { member in
            if member.key(name, in: span) { value = member.value }
        }
        // Gemini leaves `totalTokens` out of an answer for an empty conversation: zero.
        let count = value == nil && kind == .object && name == "totalTokens" ? 0 : UpstreamJSON.int64(value, in: span)
        guard kind == .object, let count, (0...maxCount).contains(count) else {
            throw .badUpstreamResponse("The upstream count answer has no '\(name)' in 0...\(maxCount).")
        }
        var writer = JSONWriter(reservingCapacity: 64)
        writer.beginObject()
        if attempt.clientAPI == .openAI {
            writer.key("object")
            writer.string("response.input_tokens")
        }
        writer.key("input_tokens")
        writer.int(Int(count))
        writer.endObject()
        return writer.bytes
    }
}

extension ProviderAttempt {
    /// A count request's conversation as a chat request: a Responses count body reads as a
    /// Responses request; an Anthropic one (which has no `max_tokens`) as a Messages request
    /// with the smallest `max_tokens`, which the count leaves out again.
    mutating func countedChatRequest(_ body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        if clientAPI == .openAI { return try responsesChatRequest(body) }
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw .invalidBody("The request body must be a JSON object.")
        }
        var members = object.members.filter { $0.key != "max_tokens" && $0.key != "stream" }
        members.append(("max_tokens", .number(JSONNumber(Int64(1)))))
        let hub = try AnthropicTranslator.openAIRequest(fromAnthropic: .object(JSONObject(members)))
        do {
            return try OpenAIChatRequest(serialized: hub)
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
    }
}

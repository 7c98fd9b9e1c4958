// Google Gemini, in two API flavors with the same bodies: the Gemini API (`gemini`,
// `x-goog-api-key`) and Vertex AI (`vertex_gemini`, a bearer token, project and location in the
// path). Chat from the hub, and embeddings (Gemini API only) straight from OpenAI's.

/// `BackendSchema.gemini` and `BackendSchema.vertexGemini`.
public enum GeminiAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String {
        schema == .vertexGemini ? "Gemini on Vertex AI" : "Google's Gemini API"
    }

    public static func speaksNatively(_ client: ClientAPI) -> Bool { false }

    public static let credentialHeaderNames = ["x-goog-api-key", "authorization"]

    public static let responseHeaderNames: [String] = []

    /// Vertex AI needs its project and location besides the token.
    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings {
        schema == .vertexGemini ? [.gcp, .credential] : .credential
    }

    /// Servers that speak the Gemini API (not Vertex's) can be pooled.
    public static func servesPools(of schema: BackendSchema) -> Bool { schema == .gemini }

    /// The Gemini API's address, or Vertex AI's in the configured location.
    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        schema == .gemini ? "generativelanguage.googleapis.com" : VertexAnthropicAdapter.vertexHost(location: gcpLocation)
    }

    /// `…/models/<model>:countTokens`.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        TokenCountingPlan(
            path: Gemini.modelPath(model: attempt.context.upstreamModel, apiFlavor: flavor(of: attempt.backend)) + ":countTokens")
    }

    /// What Gemini counts: the conversation, the system instruction and the tools. `generationConfig`
    /// is left out: it holds no prompt, only the output limit an Anthropic count had to make up.
    static let countMembers: Set<String> = ["contents", "systemInstruction", "tools"]

    /// Vertex takes the trimmed request as it is; the Gemini API counts a whole generateContent
    /// request, which names its model, inside `generateContentRequest`.
    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        let translated = try Gemini.request(fromOpenAIChat: conversation.request, context: conversation.context)
        let object = try TokenCounting.keeping(countMembers, of: translated)
        if case .vertex = flavor(of: attempt.backend) { return JSONValue.object(object).serialized() }
        let request = JSONObject([("model", .string(Gemini.modelResourceName(conversation.context.upstreamModel)))] + object.members)
        return JSONValue.object(JSONObject([("generateContentRequest", .object(request))])).serialized()
    }

    /// Gemini leaves `totalTokens` out of the answer for an empty conversation: zero.
    public static let tokenCountAnswer = TokenCountAnswer(member: "totalTokens", absentMeansZero: true)

    /// Vertex AI (with its `gcp` settings) or the Gemini API.
    static func flavor(of backend: BackendConfig) -> Gemini.APIFlavor {
        if backend.schema == .vertexGemini, let gcp = backend.gcp {
            return .vertex(project: gcp.project, location: gcp.location)
        }
        return .geminiAPI
    }

    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        switch flavor(of: backend) {
        case .vertex: .header(.bearer(backend.credential))
        case .geminiAPI: .header(HeaderCredential(name: "x-goog-api-key", source: backend.credential))
        }
    }

    /// `…:generateContent`, `…:streamGenerateContent?alt=sse`, or (Gemini API) `…:batchEmbedContents`.
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        let model = attempt.context.upstreamModel
        let path: String
        switch attempt.endpoint {
        case .chatCompletions, .anthropicMessages, .responses:
            path = Gemini.path(model: model, stream: attempt.context.stream, apiFlavor: flavor(of: attempt.backend))
        case .embeddings where attempt.backend.schema == .gemini:
            path = Gemini.embeddingsPath(model: model)
        default:
            throw attempt.unsupportedEndpoint()
        }
        return UpstreamRequestPlan(
            path: attempt.backend.pathPrefix + path, setHeaders: UpstreamRequestPlan.jsonContentType,
            credential: credential(for: attempt.backend), rewritesBody: true)
    }

    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        if attempt.endpoint == .embeddings, attempt.backend.schema == .gemini {
            let request = try Gemini.embeddingsRequest(fromOpenAI: body, context: attempt.context)
            attempt.embeddingsAsBase64 = request.base64
            return request.body
        }
        return try Gemini.request(fromOpenAIChat: attempt.openAIChatRequest(body), context: attempt.context)
    }

    /// Gemini never answers a client in its own API; this reads a `generateContent` (or
    /// embeddings) body's usage all the same.
    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        (try? hubResponse(body, attempt: attempt).usage) ?? TokenUsage()
    }

    /// A chat completion, or for embeddings the OpenAI embeddings body (embeddings clients are
    /// OpenAI clients, so the exchange passes it on as it is).
    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        if attempt.endpoint == .embeddings {
            let embeddings = try Gemini.embeddingsResponse(
                fromGemini: body, context: attempt.context, base64: attempt.embeddingsAsBase64)
            return (embeddings.body, embeddings.usage)
        }
        let chat = try Gemini.chatCompletion(fromGeminiResponse: body, context: attempt.context)
        return (chat.body, chat.usage)
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        Gemini.gatewayError(status: status, body: body)
    }

    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        .gemini(GeminiStream(context: attempt.context))
    }
}

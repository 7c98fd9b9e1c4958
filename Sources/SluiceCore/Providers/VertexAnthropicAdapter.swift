// Claude on Vertex AI (`vertex_anthropic`): Anthropic's Messages API behind Google's front end. The body is
// Anthropic's without `model` (the path names it) and with `anthropic_version: vertex-2023-10-16`, sent to
// `…/publishers/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for streams) with the bearer token
// the Vertex Gemini backend uses. Answers and SSE streams are Anthropic's own, so Anthropic clients' bodies are
// edited rather than translated and their answers pass through, metered; OpenAI clients go through the
// Anthropic translators. Errors come in two shapes (the model's Anthropic ones, Vertex's Google ones) and are
// re-shaped for every client.

/// `BackendSchema.vertexAnthropic`.
public enum VertexAnthropicAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String {
        "Claude on Vertex AI (Anthropic Messages bodies)"
    }

    public static func speaksNatively(_ client: ClientAPI) -> Bool { client == .anthropic }

    /// Vertex's front end answers some errors in Google's shape even for a native request.
    public static let passesNativeErrorsThrough = false

    public static let credentialHeaderNames = ["authorization"]

    public static let responseHeaderNames: [String] = []

    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { [.gcp, .credential] }

    /// Vertex's one counter for Claude, `…/models/count-tokens:rawPredict`; the body (Anthropic's
    /// count request) names the model.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        let (project, location) = location(of: attempt.backend)
        return TokenCountingPlan(path: AnthropicOnCloud.vertexCountPath(project: project, location: location))
    }

    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        try AnthropicAdapter.tokenCountRequest(conversation, attempt: attempt)
    }

    /// The bearer token, as for `vertex_gemini`.
    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        .header(.bearer(backend.credential))
    }

    /// Vertex AI's address in the configured location.
    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        vertexHost(location: gcpLocation)
    }

    /// Vertex AI's address in `location` (the global endpoint has no location prefix).
    static func vertexHost(location: String?) -> String? {
        location.map { $0 == "global" ? "aiplatform.googleapis.com" : "\($0)-aiplatform.googleapis.com" }
    }

    /// The project and location of the backend's `gcp` settings (required for this schema by the config).
    static func location(of backend: BackendConfig) -> (project: String, location: String) {
        (backend.gcp?.project ?? "", backend.gcp?.location ?? "")
    }

    /// Chat, Messages and Responses (through the chat hub): the only thing Claude serves.
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        guard attempt.endpoint == .chatCompletions || attempt.endpoint == .anthropicMessages
            || attempt.endpoint == .responses
        else {
            throw attempt.unsupportedEndpoint()
        }
        let (project, location) = location(of: attempt.backend)
        return UpstreamRequestPlan(
            path: attempt.backend.prefixed(
                AnthropicOnCloud.vertexPath(
                    project: project, location: location, model: attempt.context.upstreamModel,
                    stream: attempt.context.stream)),
            setHeaders: UpstreamRequestPlan.jsonContentType, credential: credential(for: attempt.backend),
            rewritesBody: true)
    }

    /// An Anthropic client's body edited; anything else translated to Anthropic's, then edited.
    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let messages =
            attempt.sameSchema
            ? body : try AnthropicTranslator.request(fromOpenAIChat: attempt.openAIChatRequest(body), context: attempt.context)
        return try AnthropicOnCloud.cloudBody(messages, anthropicVersion: AnthropicOnCloud.vertexVersion, keepStream: true)
    }

    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        AnthropicTranslator.usage(ofResponse: body)
    }

    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        try AnthropicTranslator.response(toOpenAIChat: body, context: attempt.context)
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        AnthropicOnCloud.vertexError(status: status, body: body)
    }

    /// Anthropic SSE: passed on to an Anthropic client (read for usage), translated for the rest.
    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        try AnthropicAdapter.streamStage(for: attempt)
    }
}

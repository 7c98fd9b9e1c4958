// Anthropic Messages (`/v1/messages`, `x-api-key`, `anthropic-version`). Anthropic clients' bodies
// pass through (a model override is a byte-level edit); OpenAI clients' requests are translated
// from the hub, and answers and streams back to it.

/// `BackendSchema.anthropic`.
public enum AnthropicAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String { "Anthropic's Messages API" }

    /// The headers every Messages request carries, made once (a plan is made per attempt).
    static let requestHeaders: [(name: String, value: String)] = [("content-type", "application/json"), ("anthropic-version", "2023-06-01")]

    public static func speaksNatively(_ client: ClientAPI) -> Bool { client == .anthropic }

    public static let credentialHeaderNames = ["x-api-key"]

    public static let responseHeaderNames: [String] = []

    /// Self-hosted servers that speak the Messages API can be pooled too.
    public static func servesPools(of schema: BackendSchema) -> Bool { true }

    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        "api.anthropic.com"
    }

    /// `/v1/messages/count_tokens`, with the version header.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        TokenCountingPlan(path: "/v1/messages/count_tokens", setHeaders: requestHeaders)
    }

    /// Members Anthropic's count_tokens accepts (it refuses `max_tokens`, `stream`, sampling).
    static let countMembers: Set<String> = ["model", "messages", "system", "tools", "tool_choice", "thinking"]

    /// The Messages request of the conversation, with only what count_tokens accepts.
    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        let translated = try AnthropicTranslator.request(fromOpenAIChat: conversation.request, context: conversation.context)
        return JSONValue.object(try TokenCounting.keeping(countMembers, of: translated)).serialized()
    }

    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        .header(HeaderCredential(name: "x-api-key", source: backend.credential))
    }

    /// Chat only (Responses through the chat hub): Anthropic has no completions or embeddings endpoint.
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        guard attempt.endpoint == .chatCompletions || attempt.endpoint == .anthropicMessages
            || attempt.endpoint == .responses
        else {
            throw attempt.unsupportedEndpoint()
        }
        let context = attempt.context
        return UpstreamRequestPlan(
            path: attempt.backend.prefixed("/v1/messages"),
            setHeaders: Self.requestHeaders,
            credential: credential(for: attempt.backend),
            rewritesBody: !attempt.sameSchema || context.upstreamModel != context.requestModel)
    }

    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let context = attempt.context
        if attempt.sameSchema {
            return context.upstreamModel == context.requestModel
                ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        return try AnthropicTranslator.request(fromOpenAIChat: attempt.openAIChatRequest(body), context: context)
    }

    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        // Read by range, not by translating the answer the Anthropic client gets as it is.
        AnthropicTranslator.usage(ofResponse: body)
    }

    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        try AnthropicTranslator.response(toOpenAIChat: body, context: attempt.context)
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        AnthropicTranslator.error(status: status, body: body)
    }

    /// To an Anthropic client the stream passes as it is, translated only to read usage.
    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        let stage = AnthropicToOpenAIStream(context: attempt.context)
        return attempt.sameSchema ? .anthropicPassthrough(stage) : .anthropic(stage)
    }
}

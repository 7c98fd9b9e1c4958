// OpenAI and every OpenAI-compatible server (vLLM, SGLang, TGI, Groq, Mistral, Together, DeepSeek,
// ...): the hub's own API. OpenAI clients' bodies pass through with byte-level edits only;
// Anthropic clients' requests go through the hub.

/// `BackendSchema.openAI`.
public enum OpenAIAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String {
        "OpenAI, and every OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Groq, Mistral, Together, DeepSeek, ...)"
    }

    public static func speaksNatively(_ client: ClientAPI) -> Bool { client == .openAI }

    public static let credentialHeaderNames = ["authorization"]

    public static let responseHeaderNames: [String] = []

    /// Self-hosted servers often take no key; `responses_api: false` marks one without the
    /// Responses API (SGLang, TGI, llama.cpp).
    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { [] }

    public static func optionalSettings(of schema: BackendSchema) -> BackendSettings { .responsesAPI }

    /// vLLM, SGLang, TGI and llama.cpp serve the OpenAI API.
    public static func servesPools(of schema: BackendSchema) -> Bool { true }

    /// OpenAI's own paths: `/v1/images/generations`, `/v1/audio/speech`, ...
    public static func mediaPath(for attempt: ProviderAttempt) -> String? { "/v1/" + attempt.endpoint.mediaOperation }

    /// vLLM's (and Jina's) `/v1/rerank`.
    public static let rerankDialect: RerankDialect? = .openAICompatible

    /// The Responses API's counter, for Responses clients of a server that has the Responses API.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        guard attempt.clientAPI == .openAI, attempt.backend.servesResponses else { return nil }
        return TokenCountingPlan(path: "/v1/responses/input_tokens")
    }

    /// A bearer token when the backend has a key; self-hosted servers often have none.
    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        backend.credential.map { .header(.bearer($0)) } ?? .none
    }

    /// `path_prefix` + the OpenAI path. The body changes for a translation, a model override, or
    /// a chat stream (whose usage the gateway must see; a Responses stream always reports it).
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        let context = attempt.context
        return UpstreamRequestPlan(
            path: attempt.backend.prefixed(attempt.openAIPath), setHeaders: UpstreamRequestPlan.jsonContentType,
            credential: credential(for: attempt.backend),
            rewritesBody: !attempt.sameSchema || context.upstreamModel != context.requestModel
                || (context.stream && attempt.endpoint != .responses))
    }

    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let context = attempt.context
        if attempt.sameSchema {
            if context.stream, attempt.endpoint != .responses {
                // Streams carry usage only when asked: ask, and drop the usage chunk again for a
                // client that did not (OpenAIStreamUsageFilter).
                return try OpenAICompatible.prepareRequest(body, context: context, forceStreamUsage: true).body
            }
            return context.upstreamModel == context.requestModel
                ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        if attempt.endpoint == .responses {
            // A server without the Responses API (`responses_api: false`): the hub request is its
            // chat request, streams already asking for usage.
            let hub = try attempt.responsesHubBody(body)
            return context.upstreamModel == context.requestModel ? hub : try OpenAICompatible.rewriteModel(hub, to: context.upstreamModel)
        }
        // An Anthropic client's request, written as this backend's body in one pass. Anthropic clients always
        // get usage in message_delta: a stream asks the OpenAI backend for it.
        guard attempt.clientAPI == .anthropic else { throw attempt.hubRefusal(body) }
        return try AnthropicTranslator.openAIBody(
            fromAnthropic: body, model: context.upstreamModel, forceStreamUsage: context.stream)
    }

    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        if attempt.endpoint == .responses { return ResponsesUsage.read(fromResponse: body) ?? TokenUsage() }
        return OpenAICompatible.usage(fromResponse: body) ?? TokenUsage()
    }

    /// The body already is a hub body.
    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        (body, OpenAICompatible.usage(fromResponse: body) ?? TokenUsage())
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        OpenAIHub.error(status: status, body: body)
    }

    /// The stream already is hub SSE: the stage reads usage, and drops the usage chunk the gateway
    /// forced for an OpenAI client that did not ask for it. (The hub needs that chunk for
    /// Anthropic clients.)
    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        if attempt.endpoint == .responses, attempt.sameSchema { return .openAIResponses(ResponsesStreamUsageWatcher()) }
        return .openAI(OpenAIStreamUsageFilter(clientWantsUsage: attempt.context.includeUsage))
    }
}

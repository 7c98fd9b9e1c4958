// Claude on Bedrock InvokeModel (`bedrock_anthropic`): Anthropic's Messages body without `model` and `stream`
// (the path says both) and with `anthropic_version: bedrock-2023-05-31`, sent to `/model/{id}/invoke` or
// `/invoke-with-response-stream`, SigV4-signed as the Converse backend signs. The answer is an Anthropic
// message (passed through to Anthropic clients, metered); the stream is an AWS event stream whose `chunk`
// events carry Anthropic events in base64 (`BedrockInvokeStream`). Errors are Bedrock's
// (`{"message"}` with `x-amzn-errortype`), re-shaped for every client. InvokeModel takes a client's
// `anthropic-beta` header as the body's `anthropic_beta` array, so this adapter reads that header
// (`requestHeaderNames`) and the header does not go upstream. (Vertex takes the header as it is.)

/// `BackendSchema.bedrockAnthropic`.
public enum BedrockAnthropicAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String {
        "Claude on Bedrock InvokeModel (Anthropic Messages bodies)"
    }

    public static func speaksNatively(_ client: ClientAPI) -> Bool { client == .anthropic }

    /// A count goes to Bedrock's CountTokens, whose answer is not Anthropic's.
    public static func speaksNatively(_ client: ClientAPI, endpoint: Endpoint) -> Bool {
        client == .anthropic && !endpoint.countsTokens
    }

    /// Bedrock's errors are never Anthropic's shape.
    public static let passesNativeErrorsThrough = false

    public static let credentialHeaderNames = RequestSigning.sigV4HeaderNames

    public static let responseHeaderNames = BedrockConverseAdapter.responseHeaderNames

    /// The header Anthropic's clients turn betas on with.
    static let betaHeader = "anthropic-beta"

    /// `anthropic-beta`, which InvokeModel takes in the body.
    public static let requestHeaderNames = [betaHeader]

    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { .aws }

    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        BedrockConverseAdapter.defaultHost(of: schema, awsRegion: awsRegion, gcpLocation: gcpLocation)
    }

    /// Counts go to Bedrock's CountTokens in its Converse form, as the Converse backend's do.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        BedrockConverseAdapter.tokenCountingPlan(for: attempt)
    }

    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        try BedrockConverseAdapter.tokenCountRequest(conversation, attempt: attempt)
    }

    public static let tokenCountAnswer = BedrockConverseAdapter.tokenCountAnswer

    /// The Converse backend's SigV4 credential (`bedrock` signing name, the configured region and keys).
    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        BedrockConverseAdapter.credential(for: backend)
    }

    /// Chat, Messages and Responses (through the chat hub).
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        guard attempt.endpoint == .chatCompletions || attempt.endpoint == .anthropicMessages
            || attempt.endpoint == .responses
        else {
            throw attempt.unsupportedEndpoint()
        }
        return UpstreamRequestPlan(
            path: attempt.backend.prefixed(
                AnthropicOnCloud.bedrockPath(model: attempt.context.upstreamModel, stream: attempt.context.stream)),
            setHeaders: UpstreamRequestPlan.jsonContentType, credential: credential(for: attempt.backend),
            rewritesBody: true)
    }

    /// An Anthropic client's body edited; anything else translated to Anthropic's, then edited. The
    /// client's `anthropic-beta` names (any client's) become `anthropic_beta`.
    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        var betas: [String] = []
        if let header = attempt.requestHeader(betaHeader) { betas = try AnthropicOnCloud.betaNames(header: header) }
        let messages =
            attempt.sameSchema
            ? body : try AnthropicTranslator.request(fromOpenAIChat: attempt.openAIChatRequest(body), context: attempt.context)
        return try AnthropicOnCloud.cloudBody(
            messages, anthropicVersion: AnthropicOnCloud.bedrockVersion, keepStream: false, betas: betas)
    }

    /// The request id is the translated answer's fallback id, the error type kept for `gatewayError`.
    public static func noteResponseHeader(name: String, value: String, attempt: inout ProviderAttempt) {
        BedrockConverseAdapter.noteResponseHeader(name: name, value: value, attempt: &attempt)
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
        BedrockError.gatewayError(
            status: status, errorType: attempt.responseHeader(BedrockConverseAdapter.errorTypeHeader), body: body)
    }

    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        .bedrockInvoke(BedrockInvokeStream(context: attempt.context, emitsAnthropicEvents: attempt.sameSchema))
    }
}

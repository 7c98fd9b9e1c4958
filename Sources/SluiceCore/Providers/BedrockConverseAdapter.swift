// AWS Bedrock Converse / ConverseStream: requests translated from the hub, signed with SigV4 over
// the final body; answers (JSON, or binary AWS event streams) translated back. Converse bodies
// carry no id and errors carry their type in a header, so this adapter reads two response headers.

/// `BackendSchema.bedrockConverse`.
public enum BedrockConverseAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String { "AWS Bedrock's Converse API" }

    /// The request id Bedrock answers with; OpenAI answers need an id and Converse bodies have none.
    static let requestIDHeader = "x-amzn-requestid"
    /// The error type (`ThrottlingException`, ...), which Bedrock error bodies leave out.
    static let errorTypeHeader = "x-amzn-errortype"

    public static func speaksNatively(_ client: ClientAPI) -> Bool { false }

    public static let credentialHeaderNames = RequestSigning.sigV4HeaderNames

    public static let responseHeaderNames = [requestIDHeader, errorTypeHeader]

    /// Region and keys for SigV4 (no `credential`).
    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { .aws }

    /// Bedrock's runtime in the configured region.
    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        awsRegion.map { "bedrock-runtime.\($0).amazonaws.com" }
    }

    /// Bedrock's CountTokens, `/model/<model id>/count-tokens`, in its Converse form.
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        TokenCountingPlan(path: "/model/" + SigV4Signer.uriEncode(attempt.context.upstreamModel) + "/count-tokens")
    }

    /// Members CountTokens takes inside `input.converse`.
    static let countMembers: Set<String> = ["messages", "system", "toolConfig", "additionalModelRequestFields"]

    /// `{"input":{"converse":{…}}}`: the Converse request of the conversation, trimmed.
    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        let translated = try BedrockConverse.request(fromOpenAIChat: conversation.request, context: conversation.context).body
        let converse = JSONValue.object(try TokenCounting.keeping(countMembers, of: translated))
        return JSONValue.object(JSONObject([("input", .object(JSONObject([("converse", converse)])))])).serialized()
    }

    public static let tokenCountAnswer = TokenCountAnswer(member: "inputTokens")

    /// SigV4 for the `bedrock` signing name in the configured region, with the configured keys.
    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        let aws = backend.aws
        return .signature(.sigV4(SigV4Signing(
            region: aws?.region ?? "us-east-1", service: "bedrock", contentType: "application/json",
            accessKeyID: aws?.accessKeyID, secretAccessKey: aws?.secretAccessKey, sessionToken: aws?.sessionToken)))
    }

    /// `/model/<model id>/converse` or `/converse-stream`; chat only (Responses through the chat hub).
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        guard attempt.endpoint == .chatCompletions || attempt.endpoint == .anthropicMessages
            || attempt.endpoint == .responses
        else {
            throw attempt.unsupportedEndpoint()
        }
        return UpstreamRequestPlan(
            path: attempt.backend.pathPrefix
                + BedrockConverse.path(model: attempt.context.upstreamModel, stream: attempt.context.stream),
            setHeaders: UpstreamRequestPlan.jsonContentType, credential: credential(for: attempt.backend),
            rewritesBody: true)
    }

    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let request = try BedrockConverse.request(fromOpenAIChat: attempt.openAIChatRequest(body), context: attempt.context)
        attempt.structuredOutputTool = request.structuredOutput
        return request.body
    }

    /// The request id becomes the answer's id; the error type is kept for `gatewayError`.
    public static func noteResponseHeader(name: String, value: String, attempt: inout ProviderAttempt) {
        if name == requestIDHeader {
            guard !value.isEmpty else { return }
            attempt.context.fallbackResponseID = value
        } else {
            attempt.responseHeaders.append((name, value))
        }
    }

    /// Bedrock never answers a client in its own API; this reads a Converse body's usage all the same.
    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        (try? hubResponse(body, attempt: attempt).usage) ?? TokenUsage()
    }

    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        let chat = try BedrockConverse.chatCompletion(
            fromConverse: body, context: attempt.context, structuredOutput: attempt.structuredOutputTool)
        return (chat.body, chat.usage)
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        BedrockError.gatewayError(status: status, errorType: attempt.responseHeader(errorTypeHeader), body: body)
    }

    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        .bedrock(BedrockConverseStreamTranslator(context: attempt.context, structuredOutput: attempt.structuredOutputTool))
    }
}

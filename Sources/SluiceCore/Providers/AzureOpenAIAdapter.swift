// Azure OpenAI: the OpenAI API under a deployment path with an `api-version` query, keyed with
// `api-key`. Bodies, answers and streams are OpenAI's, so everything but the plan and the
// credential is `OpenAIAdapter`'s.

/// `BackendSchema.azureOpenAI`.
public enum AzureOpenAIAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String {
        "Azure OpenAI: a deployment per model, an API version"
    }

    public static func speaksNatively(_ client: ClientAPI) -> Bool { OpenAIAdapter.speaksNatively(client) }

    public static let credentialHeaderNames = ["api-key"]

    public static let responseHeaderNames: [String] = []

    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { [.azure, .credential] }

    /// The deployment path, as for chat: `/openai/deployments/<deployment>/<operation>?api-version=<version>`.
    public static func mediaPath(for attempt: ProviderAttempt) -> String? {
        let deployment = PercentEncoding.pathSegment(attempt.context.upstreamModel)
        let version = PercentEncoding.queryValue(attempt.backend.azureAPIVersion ?? "")
        return "/openai/deployments/\(deployment)/\(attempt.endpoint.mediaOperation)?api-version=\(version)"
    }

    /// The path names the deployment; Azure ignores the body's model.
    public static let mediaModelInBody = false

    /// The v1 API's Responses counter (Responses clients only; the body's `model` names the deployment).
    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? {
        attempt.clientAPI == .openAI ? TokenCountingPlan(path: "/openai/v1/responses/input_tokens") : nil
    }

    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        .header(HeaderCredential(name: "api-key", source: backend.credential))
    }

    /// `/openai/deployments/<deployment>/<operation>?api-version=<version>`: the deployment (the
    /// upstream model) is in the path, so a model override alone leaves the body as it is.
    /// Responses live only in Azure's v1 API, `/openai/v1/responses` without a version, where the
    /// body's `model` names the deployment.
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        let backend = attempt.backend
        if attempt.endpoint == .responses, attempt.sameSchema {
            return UpstreamRequestPlan(
                path: backend.prefixed("/openai/v1/responses"), setHeaders: UpstreamRequestPlan.jsonContentType,
                credential: credential(for: backend),
                rewritesBody: attempt.context.upstreamModel != attempt.context.requestModel)
        }
        let version = backend.azureAPIVersion ?? ""
        let operation = String(attempt.openAIPath.dropFirst("/v1/".count))
        let deployment = PercentEncoding.pathSegment(attempt.context.upstreamModel)
        let path = "\(backend.pathPrefix)/openai/deployments/\(deployment)/\(operation)?api-version=\(PercentEncoding.queryValue(version))"
        return UpstreamRequestPlan(
            path: path, setHeaders: UpstreamRequestPlan.jsonContentType, credential: credential(for: backend),
            rewritesBody: !attempt.sameSchema || attempt.context.stream)
    }

    /// An OpenAI body is sent with the client's `model` left as it is, streamed or not: the
    /// deployment in the path is what Azure serves, and it ignores the body's `model`. (A stream is
    /// rewritten only to ask for its usage chunk; it used to get the deployment name written into
    /// `model` as well, so the same request reached Azure with two different bodies.)
    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        guard attempt.sameSchema else { return try OpenAIAdapter.translateRequest(body, attempt: &attempt) }
        if attempt.endpoint == .responses {
            // The v1 API reads the deployment from `model`.
            let context = attempt.context
            return context.upstreamModel == context.requestModel
                ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        guard attempt.context.stream else { return body }
        var context = attempt.context
        context.upstreamModel = context.requestModel
        return try OpenAICompatible.prepareRequest(body, context: context, forceStreamUsage: true).body
    }

    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        OpenAIAdapter.usage(ofPassthrough: body, attempt: attempt)
    }

    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        try OpenAIAdapter.hubResponse(body, attempt: attempt)
    }

    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        OpenAIAdapter.gatewayError(status: status, body: body, attempt: attempt)
    }

    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        try OpenAIAdapter.streamStage(for: attempt)
    }
}

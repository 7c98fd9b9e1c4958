// Cohere's v2 API (`api.cohere.com`), for rerank only: `POST /v2/rerank` with
// `Authorization: Bearer <key>`. This adapter names its rerank dialect (`RerankDialect.cohereV2`:
// the path and the bodies' shape, which `RerankEndpoint` writes and reads the same for every
// backend that reranks), says how a Cohere backend authenticates and reads its errors, and
// refuses every other endpoint (chat, embeddings, ...) with 400 `unsupported_endpoint`: Cohere's
// chat API is not one the gateway translates.

/// `BackendSchema.cohere`.
public enum CohereAdapter: ProviderAdapter {
    public static func summary(of schema: BackendSchema) -> String { "Cohere's v2 API, rerank only" }

    /// Cohere's rerank clients (`/cohere/v2/rerank`) speak its API; rerank answers are still
    /// read and rewritten (`RerankEndpoint`).
    public static func speaksNatively(_ client: ClientAPI) -> Bool { client == .cohere }

    public static let credentialHeaderNames = ["authorization"]

    public static let responseHeaderNames: [String] = []

    /// Cohere's `/v2/rerank`.
    public static let rerankDialect: RerankDialect? = .cohereV2

    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? {
        "api.cohere.com"
    }

    public static func credential(for backend: BackendConfig) -> CredentialApplication {
        .header(.bearer(backend.credential))
    }

    /// Reached only for endpoints other than rerank (whose plan is `RerankEndpoint`'s).
    public static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan {
        throw attempt.unsupportedEndpoint()
    }

    public static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        throw attempt.unsupportedEndpoint()
    }

    /// The usage of a Cohere rerank answer: search units and tokens from `meta`, read by range.
    /// An answer that is not a JSON object is metered as nothing (it is passed through as it is).
    public static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage {
        let bytes = body.span
        guard (try? UpstreamJSON.scanTopLevel(bytes) { _ in }) == .object else { return TokenUsage() }
        return RerankAnswer.usage(of: UpstreamJSON.root(of: bytes), in: bytes, dialect: .cohereV2)
    }

    public static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)
    {
        throw attempt.unsupportedEndpoint()
    }

    /// Cohere's errors are `{"id"?, "message"}` with the HTTP status saying the kind.
    public static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        RerankAnswer.error(status: status, body: body)
    }

    public static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage {
        throw attempt.unsupportedEndpoint()
    }
}

// Rerank: `POST /v1/rerank` (Jina and vLLM's shape) and `POST /cohere/v2/rerank` (Cohere's v2
// shape), routed by `model` like every endpoint. Each adapter names the rerank dialect its
// backend speaks (`ProviderAdapter.rerankDialect`), which says the upstream path and the shape of
// the bodies:
//
// | dialect                                   | adapters                   | upstream                             |
// | `openAICompatible` (vLLM, Jina, Infinity) | `openai`                   | `POST /v1/rerank`, vLLM's shape      |
// | `cohereV2`                                | `cohere`                   | `POST /v2/rerank`, Cohere's v2 shape |
// | none (the default)                        | every other schema         | 400 `unsupported_endpoint` in the    |
// |                                           |                            | client's error shape                 |
//
// The request body is always written by the gateway (`RerankRequest`), and the answer always read
// and checked (`RerankAnswer`): indices against the request's documents, scores, usage. Nothing
// passes through unread (`ProviderAttempt.sameSchema` is false for rerank); a checked answer in
// the client's own shape that needs no change goes on as it came. Usage is tokens (vLLM
// `usage`, Cohere `meta.tokens`) and Cohere's search units, which a model's `search_unit` price
// turns into cost.

extension Endpoint {
    /// A rerank endpoint (`/v1/rerank` or `/cohere/v2/rerank`).
    public var reranks: Bool { self == .rerank || self == .cohereRerank }
}

/// A rerank API as a backend speaks it: its path and the shape of its request and answer.
public enum RerankDialect: Sendable, Equatable {
    /// `/v1/rerank` as vLLM, Jina and Infinity serve it: `usage.total_tokens`, no per-document limit.
    case openAICompatible
    /// Cohere's `/v2/rerank`: `max_tokens_per_doc`, usage in `meta` (tokens and search units).
    case cohereV2

    /// The path after the backend's `path_prefix`.
    public var path: String {
        switch self {
        case .openAICompatible: "/v1/rerank"
        case .cohereV2: "/v2/rerank"
        }
    }
}

public enum RerankEndpoint {
    /// Where a rerank goes: the path of the adapter's dialect; 400 where it has none.
    static func requestPlan(for attempt: ProviderAttempt, adapter: any ProviderAdapter.Type) throws(TranslateError)
        -> UpstreamRequestPlan
    {
        guard let dialect = adapter.rerankDialect else { throw attempt.unsupportedEndpoint() }
        let backend = attempt.backend
        return UpstreamRequestPlan(
            path: backend.prefixed(dialect.path), setHeaders: UpstreamRequestPlan.jsonContentType,
            credential: adapter.credential(for: backend), rewritesBody: true)
    }

    /// Reads the client's request (keeping it in `attempt` for the answer) and writes the backend's.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt, adapter: any ProviderAdapter.Type)
        throws(TranslateError) -> [UInt8]
    {
        guard let dialect = adapter.rerankDialect else { throw attempt.unsupportedEndpoint() }
        let request = try RerankRequest.read(body, api: attempt.clientAPI)
        attempt.rerank = request
        return request.upstreamBody(dialect: dialect, model: attempt.context.upstreamModel)
    }

    /// A 2xx answer in the client's shape, and its usage.
    static func clientAnswer(_ body: [UInt8], attempt: ProviderAttempt, adapter: any ProviderAdapter.Type)
        throws(TranslateError) -> (body: [UInt8], usage: TokenUsage)
    {
        guard let dialect = adapter.rerankDialect else { throw attempt.unsupportedEndpoint() }
        guard let request = attempt.rerank else {
            // The plan always rewrites the body, so the request was read; an answer without it is
            // the gateway's own fault.
            throw TranslateError(
                status: 500, code: "rerank_request_unread", message: "The gateway lost this rerank request before its answer.")
        }
        let answer = try RerankAnswer.read(body, dialect: dialect, documentCount: request.documents.count)
        // The backend speaks the client's shape and its answer needs no change (it kept to top_n;
        // a /v1/rerank client that wants documents got them, as vLLM always sends them): checked,
        // it goes on as it came, with whatever else the provider put in it (Cohere's meta
        // warnings, vLLM's model name).
        let sameShape = adapter.speaksNatively(attempt.clientAPI)
        let documentsAsWanted = attempt.clientAPI == .cohere || (request.returnDocuments && answer.documentsIncluded)
        if sameShape, documentsAsWanted, answer.results.count <= request.topN ?? Int.max {
            return (body, answer.usage)
        }
        let context = attempt.context
        let client = answer.clientBody(
            api: attempt.clientAPI, request: request, requestModel: context.requestModel,
            fallbackID: context.fallbackResponseID)
        return (client, answer.usage)
    }

    /// An upstream error (either backend kind's shape) as a gateway error with its status.
    static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError {
        RerankAnswer.error(status: status, body: body)
    }
}

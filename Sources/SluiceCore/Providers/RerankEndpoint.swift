// Rerank: `POST /v1/rerank` (Jina and vLLM's shape) and `POST /cohere/v2/rerank` (Cohere's v2
// shape), routed by `model` like every endpoint. One table here says where each backend reranks;
// the adapters still say how it authenticates (as for token counting):
//
// | backend schema                                    | upstream                             |
// | `openai` (vLLM and other rerank servers)          | `POST /v1/rerank`, vLLM's shape      |
// | `cohere`                                          | `POST /v2/rerank`, Cohere's v2 shape |
// | `azure_openai`, `anthropic`, `bedrock_converse`,  | 400 `unsupported_endpoint` in the    |
// | `gemini`, `vertex_gemini`                         | client's error shape                 |
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

public enum RerankEndpoint {
    /// Where a rerank goes, for `attempt.backend`.
    static func requestPlan(for attempt: ProviderAttempt, adapter: any ProviderAdapter.Type) throws(TranslateError)
        -> UpstreamRequestPlan
    {
        let backend = attempt.backend
        let path: String
        switch backend.schema {
        case .openAI: path = "/v1/rerank"
        case .cohere: path = "/v2/rerank"
        case .azureOpenAI, .anthropic, .bedrockConverse, .gemini, .vertexGemini, .vertexAnthropic, .bedrockAnthropic:
            throw attempt.unsupportedEndpoint()
        }
        return UpstreamRequestPlan(
            path: backend.prefixed(path), setHeaders: UpstreamRequestPlan.jsonContentType,
            credential: adapter.credential(for: backend), rewritesBody: true)
    }

    /// Reads the client's request (keeping it in `attempt` for the answer) and writes the backend's.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8] {
        let request = try RerankRequest.read(body, api: attempt.clientAPI)
        attempt.rerank = request
        return request.upstreamBody(schema: attempt.backend.schema, model: attempt.context.upstreamModel)
    }

    /// A 2xx answer in the client's shape, and its usage.
    static func clientAnswer(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError) -> (body: [UInt8], usage: TokenUsage) {
        guard let request = attempt.rerank else {
            // The plan always rewrites the body, so the request was read; an answer without it is
            // the gateway's own fault.
            throw TranslateError(
                status: 500, code: "rerank_request_unread", message: "The gateway lost this rerank request before its answer.")
        }
        let answer = try RerankAnswer.read(body, schema: attempt.backend.schema, documentCount: request.documents.count)
        // The backend speaks the client's shape and its answer needs no change (it kept to top_n;
        // a /v1/rerank client that wants documents got them, as vLLM always sends them): checked,
        // it goes on as it came, with whatever else the provider put in it (Cohere's meta
        // warnings, vLLM's model name).
        let sameShape = attempt.backend.schema.adapter.speaksNatively(attempt.clientAPI)
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

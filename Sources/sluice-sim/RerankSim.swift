import Foundation
import SluiceCore

/// Deterministic relevance: the share of the query's words (lower-cased letters and digits) that
/// a document contains, so tests can predict the ranking from the texts alone.
enum SimRerank {
    static func words(_ text: String) -> Set<String> {
        Set(
            text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init))
    }

    /// Scores in [0, 1], best first; ties keep the documents' order.
    static func ranked(query: String, documents: [String]) -> [(index: Int, score: Double)] {
        let wanted = words(SimFault.stripMarkers(query))
        let scored = documents.enumerated().map { (index, document) -> (index: Int, score: Double) in
            let overlap = wanted.isEmpty ? 0 : wanted.intersection(words(document)).count
            // Four decimals, so the JSON the tests read is the number computed here.
            let score = wanted.isEmpty ? 0 : (Double(overlap) / Double(wanted.count) * 10_000).rounded() / 10_000
            return (index, score)
        }
        return scored.sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
    }

    /// Tokens of a rerank: the query once per document, and every document (as a cross-encoder
    /// reads query-document pairs).
    static func tokens(query: String, documents: [String]) -> Int {
        let queryTokens = Planner.countTokens(query)
        return documents.reduce(0) { $0 + queryTokens + Planner.countTokens($1) }
    }
}

/// Cohere's v2 API, rerank only: `POST /v2/rerank` with `Authorization: Bearer <key>`, errors as
/// `{"id", "message"}`, and search units billed per query over up to 100 documents.
struct CohereSimulator: ProviderSimulator {
    let credentials: SimCredentials
    var name: String { "cohere" }

    /// Cohere's rerank models; any other id is a 404.
    static let models: Set<String> = ["rerank-v3.5", "rerank-english-v3.0", "rerank-multilingual-v3.0"]
    /// The members `/v2/rerank` takes (anything else is refused, so a translation that adds one fails).
    static let members: Set<String> = ["model", "query", "documents", "top_n", "max_tokens_per_doc"]

    func authenticate(_ request: SimRequest) -> SimResponse? {
        guard let header = request.header("authorization") else {
            return error(401, "no api key supplied")
        }
        guard header.hasPrefix("Bearer "), secretsEqual(String(header.dropFirst(7)), credentials.cohereKey) else {
            return error(401, "invalid api token")
        }
        return nil
    }

    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        guard request.method == "POST", request.path == "/v2/rerank" else {
            return (error(404, "Not Found: \(request.method) \(request.rawPath)"), nil)
        }
        guard case .object(let body)? = request.json() else {
            return (error(400, "invalid request: the request body is not valid JSON"), nil)
        }
        for member in body.members where !Self.members.contains(member.key) {
            return (error(400, "invalid request: unknown field '\(member.key)'"), nil)
        }
        guard let model = body["model"]?.stringValue else {
            return (error(400, "invalid request: a model parameter is required for this endpoint."), nil)
        }
        guard Self.models.contains(model) else {
            return (
                error(404, "model '\(model)' not found, make sure the correct model ID was used and that you have access to the model."),
                nil
            )
        }
        guard let query = body["query"]?.stringValue, !query.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return (error(400, "invalid request: query must not be empty or be only whitespace"), nil)
        }
        guard let items = body["documents"]?.arrayValue, !items.isEmpty else {
            return (error(400, "invalid request: list of documents must not be empty"), nil)
        }
        var documents: [String] = []
        for item in items {
            guard let text = item.stringValue else {
                return (error(400, "invalid request: documents must be a list of strings"), nil)
            }
            documents.append(text)
        }
        guard documents.count <= 1000 else {
            return (error(400, "invalid request: too many documents, the maximum is 1000"), nil)
        }
        var topN = documents.count
        if let value = body["top_n"] {
            guard let number = value.int64Value, number >= 1 else {
                return (error(400, "invalid request: top_n must be at least 1"), nil)
            }
            topN = Int(min(number, Int64(documents.count)))
        }
        if let value = body["max_tokens_per_doc"], (value.int64Value ?? 0) < 1 {
            return (error(400, "invalid request: max_tokens_per_doc must be at least 1"), nil)
        }
        if let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: query) {
            switch fault {
            case .rateLimited:
                return (error(429, "You are past the per minute request limit, please wait and try again later."), nil)
            case .unavailable, .overloaded:
                return (error(503, "service unavailable"), nil)
            default:
                return (error(500, "internal server error, this has been reported to our developers"), nil)
            }
        }
        let sequence = context.state.nextID()
        let ranked = SimRerank.ranked(query: query, documents: documents).prefix(topN)
        let bytes = jsonObject { w in
            w.key("id"); w.string("cohere-sim-rerank-\(sequence)")
            w.key("results")
            w.beginArray()
            for result in ranked {
                w.beginObject()
                w.key("index"); w.int(result.index)
                w.key("relevance_score"); w.double(result.score)
                w.endObject()
            }
            w.endArray()
            w.key("meta")
            w.beginObject()
            w.key("api_version"); w.beginObject(); w.key("version"); w.string("2"); w.endObject()
            // One search unit per query over up to 100 documents.
            w.key("billed_units"); w.beginObject(); w.key("search_units"); w.int((documents.count + 99) / 100); w.endObject()
            w.endObject()
        }
        return (.json(200, bytes), nil)
    }

    func error(_ status: Int, _ message: String) -> SimResponse {
        .json(status) { w in
            w.beginObject()
            w.key("id"); w.string("cohere-sim-error")
            w.key("message"); w.string(message)
            w.endObject()
        }
    }
}

extension OpenAISimulator {
    /// vLLM's `POST /v1/rerank` on the self-hosted server, for its reranker model: results carry
    /// the document text and `usage` counts the query-document pairs' tokens. A generative model
    /// is refused as vLLM refuses it.
    func rerank(_ body: JSONValue, request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        guard let model = body["model"]?.stringValue else {
            return (error(400, "you must provide a model parameter", type: "BadRequestError", param: "model", code: nil), nil)
        }
        guard model == credentials.compatRerankModel else {
            if model == credentials.compatModel {
                return (error(400, "The model does not support Rerank (Score) API", type: "BadRequestError", param: nil, code: nil), nil)
            }
            return (modelNotFound(SimInvalid("The model `\(model)` does not exist.", param: "model")), nil)
        }
        guard let query = body["query"]?.stringValue else {
            return (error(400, "query: Field required", type: "BadRequestError", param: "query", code: nil), nil)
        }
        guard let items = body["documents"]?.arrayValue else {
            return (error(400, "documents: Field required", type: "BadRequestError", param: "documents", code: nil), nil)
        }
        var documents: [String] = []
        for item in items {
            guard let text = item.stringValue else {
                return (error(400, "documents: Input should be a valid string", type: "BadRequestError", param: "documents", code: nil), nil)
            }
            documents.append(text)
        }
        var topN = documents.count
        if let value = body["top_n"] {
            guard let number = value.int64Value, number >= 0 else {
                return (error(400, "top_n: Input should be a valid integer", type: "BadRequestError", param: "top_n", code: nil), nil)
            }
            if number > 0 { topN = Int(min(number, Int64(documents.count))) }
        }
        if let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: query) {
            let status = Int(fault.rawValue) ?? 500
            return (error(status, "simulated failure", type: status == 429 ? "RateLimitError" : "InternalServerError", param: nil, code: nil), nil)
        }
        let sequence = context.state.nextID()
        let tokens = SimRerank.tokens(query: query, documents: documents)
        let ranked = SimRerank.ranked(query: query, documents: documents).prefix(topN)
        let bytes = jsonObject { w in
            w.key("id"); w.string("rerank-sim\(sequence)")
            w.key("model"); w.string(model)
            w.key("usage"); w.beginObject(); w.key("prompt_tokens"); w.int(tokens); w.key("total_tokens"); w.int(tokens); w.endObject()
            w.key("results")
            w.beginArray()
            for result in ranked {
                w.beginObject()
                w.key("index"); w.int(result.index)
                w.key("document"); w.beginObject(); w.key("text"); w.string(documents[result.index]); w.endObject()
                w.key("relevance_score"); w.double(result.score)
                w.endObject()
            }
            w.endArray()
        }
        return (.json(200, bytes), SimUsage(promptTokens: tokens, completionTokens: 0))
    }
}

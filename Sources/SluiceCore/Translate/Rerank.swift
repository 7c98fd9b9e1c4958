// Rerank: one query, a list of documents, and how relevant each document is to the query. Two
// client shapes and two backend shapes, all translated through `RerankRequest` and `RerankAnswer`:
//
// | shape                          | request                                                   | answer                                                              |
// | `/v1/rerank` (Jina, vLLM)      | model, query, documents: [string or {text}], top_n,       | id, model, results: [{index, relevance_score, document: {text}}],   |
// |                                | return_documents                                          | usage: {prompt_tokens, total_tokens}                                |
// | Cohere v2 (`/cohere/v2/rerank` | model, query, documents: [string or {text}], top_n,       | id, results: [{index, relevance_score}],                            |
// | from clients, `/v2/rerank` up) | max_tokens_per_doc                                        | meta: {api_version, billed_units: {search_units}, tokens}           |
//
// Every answer is read whole, whatever the backend: each index checked against the request's
// documents (once each), each score checked to be a finite number of sensible size, its usage
// range-checked. An answer in the client's own shape that needs no change then goes on as it came
// (`RerankEndpoint`); any other is written in the client's shape from what was read, document
// texts taken from the client's own request, so `return_documents` means the same on every
// backend. A hostile or broken answer is a 502 in the client's shape, never a trap.

/// A rerank request as either client shape gives it.
public struct RerankRequest: Sendable, Equatable {
    public var query: String
    public var documents: [String]
    /// How many results to return, best first; nil (or 0 from a `/v1/rerank` client, as vLLM
    /// reads it): all.
    public var topN: Int?
    /// `/v1/rerank`: echo each result's document text (default true, as Jina and vLLM answer).
    public var returnDocuments: Bool
    /// Cohere: the longest document in tokens before the provider truncates it.
    public var maxTokensPerDoc: Int?

    public init(query: String, documents: [String], topN: Int? = nil, returnDocuments: Bool = true, maxTokensPerDoc: Int? = nil) {
        self.query = query
        self.documents = documents
        self.topN = topN
        self.returnDocuments = returnDocuments
        self.maxTokensPerDoc = maxTokensPerDoc
    }

    /// The most documents one request may rank (Cohere's own limit is 1,000).
    public static let maxDocuments = 10_000

    /// The members each client shape takes (beyond them, a 400 names the member).
    static let openAIMembers: Set<String> = ["model", "query", "documents", "top_n", "return_documents"]
    static let cohereMembers: Set<String> = ["model", "query", "documents", "top_n", "max_tokens_per_doc"]

    /// Reads a client's rerank body (`api`: `.openAI` for `/v1/rerank`, `.cohere` for
    /// `/cohere/v2/rerank`).
    /// - Throws: `TranslateError` (400) naming the member at fault.
    public static func read(_ body: [UInt8], api: ClientAPI) throws(TranslateError) -> RerankRequest {
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(body)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        guard case .object(let object) = parsed else { throw .invalidBody("The request body must be a JSON object.") }
        let allowed = api == .cohere ? cohereMembers : openAIMembers
        for member in object.members where !allowed.contains(member.key) {
            throw .unsupported("Unknown parameter '\(member.key)' for this rerank endpoint.", param: member.key)
        }
        guard let query = object["query"]?.stringValue else {
            throw .invalidBody("'query' is required and must be a string.", param: "query")
        }
        guard query.utf8.contains(where: { !JSONByte.isWhitespace($0) }) else {
            throw .invalidBody("'query' must not be empty or only whitespace.", param: "query")
        }
        guard let items = object["documents"]?.arrayValue else {
            throw .invalidBody("'documents' is required and must be an array.", param: "documents")
        }
        guard !items.isEmpty else { throw .invalidBody("'documents' must not be empty.", param: "documents") }
        guard items.count <= maxDocuments else {
            throw .invalidBody("'documents' has \(items.count) entries; at most \(maxDocuments) are accepted.", param: "documents")
        }
        var documents: [String] = []
        documents.reserveCapacity(items.count)
        for (position, item) in items.enumerated() {
            if let text = item.stringValue {
                documents.append(text)
            } else if let text = item["text"]?.stringValue {
                documents.append(text)
            } else {
                throw .invalidBody(
                    "Each document must be a string or an object with a string 'text'.", param: "documents[\(position)]")
            }
        }
        var request = RerankRequest(query: query, documents: documents)
        if let value = object["top_n"], !value.isNull {
            // vLLM reads 0 as "all"; Cohere wants at least one.
            let least: Int64 = api == .cohere ? 1 : 0
            guard let topN = value.int64Value, topN >= least else {
                throw .invalidBody("'top_n' must be an integer of at least \(least).", param: "top_n")
            }
            request.topN = topN == 0 ? nil : Int(min(topN, Int64(maxDocuments)))
        }
        if let value = object["return_documents"], !value.isNull {
            guard let flag = value.boolValue else {
                throw .invalidBody("'return_documents' must be a boolean.", param: "return_documents")
            }
            request.returnDocuments = flag
        }
        if let value = object["max_tokens_per_doc"], !value.isNull {
            guard let tokens = value.int64Value, (1...Int64(TokenUsage.maxCount)).contains(tokens) else {
                throw .invalidBody(
                    "'max_tokens_per_doc' must be an integer in 1...\(TokenUsage.maxCount).", param: "max_tokens_per_doc")
            }
            request.maxTokensPerDoc = Int(tokens)
        }
        return request
    }

    /// The body for a backend of `dialect` (vLLM's `/v1/rerank` or Cohere's `/v2/rerank`), naming
    /// `model`. Documents go as strings, which both accept. vLLM has no per-document limit
    /// (it truncates to the model's length itself), so `max_tokens_per_doc` goes to Cohere only.
    public func upstreamBody(dialect: RerankDialect, model: String) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + query.utf8.count + documents.reduce(0) { $0 + $1.utf8.count + 3 })
        writer.beginObject()
        writer.key("model")
        writer.string(model)
        writer.key("query")
        writer.string(query)
        writer.key("documents")
        writer.beginArray()
        for document in documents { writer.string(document) }
        writer.endArray()
        if let topN {
            writer.key("top_n")
            writer.int(topN)
        }
        if dialect == .cohereV2, let maxTokensPerDoc {
            writer.key("max_tokens_per_doc")
            writer.int(maxTokensPerDoc)
        }
        writer.endObject()
        return writer.bytes
    }
}

/// One ranked document of an answer.
public struct RerankResult: Sendable, Equatable {
    /// Position of the document in the request's `documents`.
    public var index: Int
    public var relevanceScore: Double

    public init(index: Int, relevanceScore: Double) {
        self.index = index
        self.relevanceScore = relevanceScore
    }
}

/// A backend's rerank answer, checked.
public struct RerankAnswer: Sendable, Equatable {
    /// The upstream's id, when it gave a usable one.
    public var id: String?
    /// Best first, as the backend ranked them.
    public var results: [RerankResult]
    /// Tokens (vLLM `usage`, Cohere `meta.tokens`) and search units (Cohere
    /// `meta.billed_units.search_units`), range-checked.
    public var usage: TokenUsage
    /// Every result carries `document.text` (vLLM's answers do; Cohere's v2 ones do not).
    public var documentsIncluded = false

    public init(id: String? = nil, results: [RerankResult], usage: TokenUsage = TokenUsage()) {
        self.id = id
        self.results = results
        self.usage = usage
    }

    /// Scores beyond this size are refused: relevance scores are probabilities or logits, and a
    /// score of 1e300 is a broken or hostile upstream, not a ranking.
    public static let maxScoreMagnitude = 1_000_000.0
    /// Longer upstream ids are replaced by the gateway's own.
    static let maxIDBytes = 256

    /// Reads a 2xx answer of a backend of `dialect` to a request of `documentCount` documents.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) naming what is wrong: not an object,
    ///   no `results` array, a result that is not an object, an index that is not an integer in
    ///   `0..<documentCount` or repeats one, a score that is not a finite number within
    ///   `±maxScoreMagnitude`, more results than documents.
    public static func read(_ body: [UInt8], dialect: RerankDialect, documentCount: Int) throws(TranslateError) -> RerankAnswer {
        // One validating pass, then the results by range (`UpstreamJSON`: the last of repeated names wins).
        let bytes = body.span
        var idValue: UpstreamJSON.Value?
        var items: UpstreamJSON.Value?
        let kind = try? UpstreamJSON.scanTopLevel(bytes) { member in
            if member.key("results", in: bytes) {
                items = member.value
            } else if member.key("id", in: bytes) {
                idValue = member.value
            }
        }
        guard kind == .object else {
            throw .badUpstreamResponse("The upstream rerank answer is not a JSON object.")
        }
        guard let items, UpstreamJSON.kind(of: items, in: bytes) == .array else {
            throw .badUpstreamResponse("The upstream rerank answer has no 'results' array.")
        }
        var itemCount = 0
        UpstreamJSON.forEachElement(of: items, in: bytes) { _ in itemCount += 1 }
        guard itemCount <= documentCount else {
            throw .badUpstreamResponse(
                "The upstream rerank answer has \(itemCount) results for \(documentCount) documents.")
        }
        var seen = [Bool](repeating: false, count: documentCount)
        var documentsIncluded = true
        var results: [RerankResult] = []
        results.reserveCapacity(itemCount)
        var cursor = items.range.lowerBound + 1
        var position = 0
        while let item = JSONNavigation.nextElement(from: cursor, before: items.range.upperBound, in: bytes) {
            cursor = item.range.upperBound
            defer { position += 1 }
            let result = UpstreamJSON.Value(range: item.range, hasEscapes: item.hasEscapes)
            guard UpstreamJSON.kind(of: result, in: bytes) == .object else {
                throw .badUpstreamResponse("The upstream rerank answer's results[\(position)] is not an object.")
            }
            var indexValue: UpstreamJSON.Value?
            var scoreValue: UpstreamJSON.Value?
            var document: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: result, in: bytes) { member in
                if member.key("index", in: bytes) {
                    indexValue = member.value
                } else if member.key("relevance_score", in: bytes) {
                    scoreValue = member.value
                } else if member.key("document", in: bytes) {
                    document = member.value
                }
            }
            guard let index = UpstreamJSON.int64(indexValue, in: bytes), index >= 0, index < Int64(documentCount) else {
                throw .badUpstreamResponse(
                    "The upstream rerank answer's results[\(position)].index is not an integer in 0..<\(documentCount).")
            }
            let slot = Int(index)
            guard !seen[slot] else {
                throw .badUpstreamResponse("The upstream rerank answer ranks document \(slot) twice.")
            }
            seen[slot] = true
            guard let score = UpstreamJSON.double(scoreValue, in: bytes), score.isFinite, abs(score) <= maxScoreMagnitude
            else {
                throw .badUpstreamResponse(
                    "The upstream rerank answer's results[\(position)].relevance_score is not a number within ±\(Int(maxScoreMagnitude)).")
            }
            results.append(RerankResult(index: slot, relevanceScore: score))
            if !UpstreamJSON.isString(UpstreamJSON.member("text", of: document, in: bytes), in: bytes) {
                documentsIncluded = false
            }
        }
        var id: String?
        // Decoding shrinks a string at most sixfold (`\u0041` is one byte): longer content cannot fit.
        if let content = UpstreamJSON.stringContent(idValue, in: bytes), !content.isEmpty,
            content.count <= 6 * maxIDBytes, let text = UpstreamJSON.string(idValue, in: bytes), text.utf8.count <= maxIDBytes
        {
            id = text
        }
        let root = UpstreamJSON.root(of: bytes)
        var answer = RerankAnswer(id: id, results: results, usage: usage(of: root, in: bytes, dialect: dialect))
        answer.documentsIncluded = documentsIncluded
        return answer
    }

    /// The usage an answer reports, every count range-checked (`TokenCountReader`): vLLM's
    /// `usage.total_tokens` (or `prompt_tokens`; a rerank's tokens are all input), Cohere's
    /// `meta.tokens.input_tokens` (or `meta.billed_units.input_tokens`) and
    /// `meta.billed_units.search_units`. `answer` is the answer's top-level object in `bytes`.
    static func usage(of answer: UpstreamJSON.Value?, in bytes: Span<UInt8>, dialect: RerankDialect) -> TokenUsage {
        var reader = TokenCountReader()
        var usage = TokenUsage()
        switch dialect {
        case .cohereV2:
            let meta = UpstreamJSON.member("meta", of: answer, in: bytes)
            let billed = UpstreamJSON.member("billed_units", of: meta, in: bytes)
            let tokens =
                UpstreamJSON.member("input_tokens", of: UpstreamJSON.member("tokens", of: meta, in: bytes), in: bytes)
                ?? UpstreamJSON.member("input_tokens", of: billed, in: bytes)
            usage.inputTokens = reader.count(tokens, in: bytes)
            usage.searchUnits = reader.count(UpstreamJSON.member("search_units", of: billed, in: bytes), in: bytes)
        case .openAICompatible:
            let reported = UpstreamJSON.member("usage", of: answer, in: bytes)
            usage.inputTokens = reader.count(
                UpstreamJSON.member("total_tokens", of: reported, in: bytes)
                    ?? UpstreamJSON.member("prompt_tokens", of: reported, in: bytes), in: bytes)
        }
        usage.isClamped = reader.clamped
        return usage
    }

    /// The answer in the client's shape.
    /// - Parameters:
    ///   - api: The client's API (`/v1/rerank` or Cohere's `/cohere/v2/rerank`).
    ///   - request: The client's request (its documents are echoed for `return_documents`, and
    ///     its `top_n` cuts the results, whatever the backend returned).
    ///   - requestModel: The model the client named (`/v1/rerank` answers carry it).
    ///   - fallbackID: The id when the upstream gave none.
    public func clientBody(api: ClientAPI, request: RerankRequest, requestModel: String, fallbackID: String) -> [UInt8] {
        let kept = request.topN.map { results.prefix(max(0, $0)) } ?? results[...]
        var writer = JSONWriter(reservingCapacity: 128 + kept.count * 48)
        writer.beginObject()
        writer.key("id")
        writer.string(id ?? fallbackID)
        if api != .cohere {
            writer.key("model")
            writer.string(requestModel)
        }
        writer.key("results")
        writer.beginArray()
        for result in kept {
            writer.beginObject()
            writer.key("index")
            writer.int(result.index)
            writer.key("relevance_score")
            writer.double(result.relevanceScore)
            if api != .cohere, request.returnDocuments, request.documents.indices.contains(result.index) {
                writer.key("document")
                writer.beginObject()
                writer.key("text")
                writer.string(request.documents[result.index])
                writer.endObject()
            }
            writer.endObject()
        }
        writer.endArray()
        if api == .cohere {
            writer.key("meta")
            writer.beginObject()
            writer.key("api_version")
            writer.beginObject()
            writer.key("version")
            writer.string("2")
            writer.endObject()
            writer.key("billed_units")
            writer.beginObject()
            // A self-hosted backend bills no search units: none are reported, rather than made up.
            if usage.searchUnits > 0 {
                writer.key("search_units")
                writer.int(usage.searchUnits)
            }
            writer.endObject()
            if usage.inputTokens > 0 {
                writer.key("tokens")
                writer.beginObject()
                writer.key("input_tokens")
                writer.int(usage.inputTokens)
                writer.key("output_tokens")
                writer.int(0)
                writer.endObject()
            }
            writer.endObject()
        } else {
            writer.key("usage")
            writer.beginObject()
            writer.key("prompt_tokens")
            writer.int(usage.inputTokens)
            writer.key("total_tokens")
            writer.int(usage.inputTokens)
            writer.endObject()
        }
        writer.endObject()
        return writer.bytes
    }

    /// An upstream error body as a gateway error with the same status: OpenAI's
    /// `{"error":{...}}`, or a top-level `message` (Cohere; vLLM before it adopted OpenAI's
    /// shape), or the first bytes of whatever else came.
    public static func error(status: UInt32, body: [UInt8]) -> GatewayError {
        if case .object(let object)? = try? JSONParser.parse(body), object["error"]?.objectValue == nil,
            let message = object["message"]?.stringValue
        {
            let type = status == 429 ? "rate_limit_error" : (status >= 500 ? "api_error" : "invalid_request_error")
            return GatewayError(status: status, type: type, code: "upstream_error", message: message)
        }
        return OpenAIHub.error(status: status, body: body)
    }
}

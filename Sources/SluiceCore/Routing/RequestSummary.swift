// What the gateway needs from an LLM request body to route and meter it, read in one validating
// pass without building a DOM (the body is forwarded as is; translators parse it later, per
// upstream attempt, only when the backend speaks another schema).

/// The routing-relevant facts of a request body.
public struct RequestSummary: Sendable, Equatable {
    public var model: String
    public var stream: Bool
    /// OpenAI `stream_options.include_usage` (false when absent).
    public var includeUsage: Bool
    /// `max_tokens` / `max_completion_tokens` (Responses: `max_output_tokens`) when given (quota
    /// estimates use it).
    public var maxTokens: Int64?

    public init(model: String, stream: Bool = false, includeUsage: Bool = false, maxTokens: Int64? = nil) {
        self.model = model
        self.stream = stream
        self.includeUsage = includeUsage
        self.maxTokens = maxTokens
    }

    /// Reads the body of `endpoint`. Errors are 4xx in the client's terms.
    public static func read(_ body: [UInt8], endpoint: Endpoint) throws(GatewayError) -> RequestSummary {
        let scanner = JSONScanner(body)
        var modelRange: Range<Int>?
        var streamRange: Range<Int>?
        var streamOptionsRange: Range<Int>?
        var maxTokensRange: Range<Int>?
        // A repeated routing key is ambiguous (we could route on one `model` while the provider
        // reads the other), so it is refused.
        var duplicate: String?
        func note(_ range: inout Range<Int>?, _ value: Range<Int>, _ key: String) {
            if range != nil { duplicate = duplicate ?? key }
            range = value
        }
        do {
            // One validating pass: it reports members only of a top-level object, and the kind is
            // checked after it (a valid document's first non-blank byte says what it is).
            try scanner.forEachTopLevelMember { member in
                if scanner.key(of: member, equals: "model") {
                    note(&modelRange, member.value, "model")
                } else if scanner.key(of: member, equals: "stream") {
                    note(&streamRange, member.value, "stream")
                } else if scanner.key(of: member, equals: "stream_options") {
                    note(&streamOptionsRange, member.value, "stream_options")
                } else if scanner.key(of: member, equals: "max_tokens")
                    || scanner.key(of: member, equals: "max_completion_tokens")
                    || (endpoint == .responses && scanner.key(of: member, equals: "max_output_tokens"))
                {
                    note(&maxTokensRange, member.value, "max_tokens")
                }
            }
            guard body.first(where: { !JSONByte.isWhitespace($0) }) == JSONByte.openBrace else {
                throw GatewayError.invalidBody("The request body must be a JSON object.")
            }
        } catch let error as JSONParseError {
            throw GatewayError.invalidBody("We could not parse the JSON body of your request: \(error.description).")
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError.invalidBody("We could not parse the JSON body of your request.")
        }

        if let duplicate {
            throw GatewayError.invalidBody("The request body has more than one '\(duplicate)' member.")
        }
        guard let modelRange else {
            throw GatewayError.invalidParameter("you must provide a model parameter", param: "model", code: "missing_model")
        }
        guard let model = scanner.stringValue(at: modelRange), !model.isEmpty else {
            throw GatewayError.invalidParameter(
                "Invalid type for 'model': expected a non-empty string.", param: "model", code: "invalid_type")
        }
        var summary = RequestSummary(model: model)
        if let streamRange, !scanner.isNull(at: streamRange) {
            guard let stream = scanner.boolValue(at: streamRange) else {
                throw GatewayError.invalidParameter(
                    "Invalid type for 'stream': expected a boolean.", param: "stream", code: "invalid_type")
            }
            summary.stream = stream
        }
        if let streamOptionsRange, !scanner.isNull(at: streamOptionsRange) {
            let options = Array(body[streamOptionsRange])
            let optionsScanner = JSONScanner(options)
            guard (try? optionsScanner.validate()) == .object else {
                throw GatewayError.invalidParameter(
                    "Invalid type for 'stream_options': expected an object.", param: "stream_options", code: "invalid_type")
            }
            if let range = try? optionsScanner.findTopLevel("include_usage"), let flag = optionsScanner.boolValue(at: range) {
                summary.includeUsage = flag
            }
        }
        if let maxTokensRange, !scanner.isNull(at: maxTokensRange) {
            guard let value = scanner.int64Value(at: maxTokensRange), value >= 0 else {
                let name = endpoint == .responses ? "max_output_tokens" : "max_tokens"
                throw GatewayError.invalidParameter(
                    "Invalid value for '\(name)': expected a non-negative integer.", param: name, code: "invalid_value")
            }
            summary.maxTokens = value
        }
        // Anthropic requires max_tokens; the gateway applies a per-model default instead of failing.
        // A count answers with one number, never a stream.
        // A rerank answer is one object too, and generates nothing: no output to reserve for.
        if endpoint.countsTokens || endpoint.reranks { summary.stream = false }
        if endpoint.reranks { summary.maxTokens = 0 }
        return summary
    }
}

extension GatewayError {
    @inline(never)
    public static func invalidBody(_ message: String) -> GatewayError {
        GatewayError(status: 400, type: "invalid_request_error", code: "invalid_json", message: message)
    }

    @inline(never)
    public static func invalidParameter(_ message: String, param: String, code: String) -> GatewayError {
        GatewayError(status: 400, type: "invalid_request_error", code: code, message: message, param: param)
    }

    @inline(never)
    public static func modelNotFound(_ model: String) -> GatewayError {
        GatewayError(
            status: 404, type: "invalid_request_error", code: "model_not_found",
            message: "The model `\(model)` does not exist or you do not have access to it.", param: "model")
    }

    @inline(never)
    public static func bodyTooLarge(limit: Int) -> GatewayError {
        GatewayError(
            status: 413, type: "invalid_request_error", code: "request_too_large",
            message: "The request body exceeds the gateway's limit of \(limit) bytes.")
    }

    @inline(never)
    public static func missingBody() -> GatewayError {
        GatewayError(
            status: 400, type: "invalid_request_error", code: "missing_body",
            message: "This endpoint needs a JSON request body.")
    }
}

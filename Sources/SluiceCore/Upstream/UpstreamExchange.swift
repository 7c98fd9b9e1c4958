// One upstream attempt, sans I/O: the upstream filter (`sluice_upstream`, one instance per
// attempt, on the backend's cluster) reads headers/body from Envoy, asks this type what to send
// and how to read the answer, and carries that out. A retry that lands on another backend gets a
// fresh exchange configured for that backend, which is what makes cross-provider fallback work.

/// How the client's request must change for this backend.
public struct UpstreamRequestPlan: Sendable, Equatable {
    /// The `:path` to send.
    public var path: String
    /// Headers to set (non-secret: versions, content type).
    public var setHeaders: [(name: String, value: String)]
    /// Header that carries the backend credential, and the text before the secret ("Bearer ").
    public var credentialHeader: (name: String, prefix: String)?
    /// Whether the body must be rewritten (translation, model override, usage forcing, signing).
    public var rewritesBody: Bool

    public static func == (lhs: UpstreamRequestPlan, rhs: UpstreamRequestPlan) -> Bool {
        lhs.path == rhs.path && lhs.rewritesBody == rhs.rewritesBody
            && lhs.setHeaders.elementsEqual(rhs.setHeaders, by: { $0.name == $1.name && $0.value == $1.value })
            && lhs.credentialHeader?.name == rhs.credentialHeader?.name
            && lhs.credentialHeader?.prefix == rhs.credentialHeader?.prefix
    }

    /// Every header any backend uses for credentials: removed before this backend's is set, so a
    /// client's own key, or an earlier attempt's provider key, never reaches this provider.
    public static let credentialHeaders = [
        "authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-date", "x-amz-security-token",
        "x-amz-content-sha256",
    ]
}

/// What to do with the backend's response.
public enum ResponseMode: Sendable, Equatable {
    /// Same schema as the client: pass through untouched.
    case passthrough
    /// Buffer the whole body, then translate it (non-streaming success).
    case translateBody
    /// Translate chunk by chunk as it arrives (streaming success).
    case translateStream
    /// Buffer the whole error body, then re-shape it for the client with the same status.
    case translateError
}

public struct UpstreamExchange: Sendable {
    public let backend: BackendConfig
    public let clientAPI: ClientAPI
    public let endpoint: Endpoint
    public let context: TranslationContext

    public init(backend: BackendConfig, clientAPI: ClientAPI, endpoint: Endpoint, requestModel: String, stream: Bool,
                includeUsage: Bool, created: Int64, requestID: String) {
        self.backend = backend
        self.clientAPI = clientAPI
        self.endpoint = endpoint
        context = TranslationContext(
            upstreamModel: backend.upstreamModel(for: requestModel), requestModel: requestModel, stream: stream,
            includeUsage: includeUsage, defaultMaxTokens: backend.defaultMaxTokens, created: created,
            fallbackResponseID: "chatcmpl-\(requestID)")
    }

    /// Whether the backend speaks the client's own API, so bodies pass through.
    public var sameSchema: Bool {
        switch (clientAPI, backend.schema) {
        case (.openAI, .openAI), (.openAI, .azureOpenAI), (.anthropic, .anthropic): true
        default: false
        }
    }

    // MARK: - Request

    public func requestPlan() throws(TranslateError) -> UpstreamRequestPlan {
        let model = context.upstreamModel
        switch backend.schema {
        case .openAI:
            guard clientAPI == .openAI || endpoint == .anthropicMessages else { throw Self.unsupportedEndpoint(endpoint, backend) }
            let path = backend.pathPrefix + openAIPath()
            return UpstreamRequestPlan(
                path: path, setHeaders: [("content-type", "application/json")],
                credentialHeader: backend.credential == nil ? nil : ("authorization", "Bearer "),
                rewritesBody: !sameSchema || model != context.requestModel)
        case .azureOpenAI:
            let version = backend.azureAPIVersion ?? ""
            let operation = String(openAIPath().dropFirst("/v1/".count))
            let path = "\(backend.pathPrefix)/openai/deployments/\(PercentEncoding.pathSegment(model))/\(operation)?api-version=\(PercentEncoding.queryValue(version))"
            return UpstreamRequestPlan(
                path: path, setHeaders: [("content-type", "application/json")], credentialHeader: ("api-key", ""),
                rewritesBody: !sameSchema)
        case .anthropic:
            guard endpoint == .chatCompletions || endpoint == .anthropicMessages else {
                throw Self.unsupportedEndpoint(endpoint, backend)
            }
            return UpstreamRequestPlan(
                path: backend.pathPrefix + "/v1/messages",
                setHeaders: [("content-type", "application/json"), ("anthropic-version", "2023-06-01")],
                credentialHeader: ("x-api-key", ""), rewritesBody: !sameSchema || model != context.requestModel)
        case .bedrockConverse, .gemini, .vertexGemini:
            throw TranslateError(
                status: 501, code: "backend_not_supported",
                message: "The \(backend.schema.rawValue) backend '\(backend.name)' is not supported by this gateway build yet.")
        }
    }

    /// The OpenAI path of this endpoint (for OpenAI-compatible and Azure backends).
    private func openAIPath() -> String {
        switch endpoint {
        case .completions: "/v1/completions"
        case .embeddings: "/v1/embeddings"
        default: "/v1/chat/completions"
        }
    }

    /// The body to send for the client's `body`.
    public func translateRequest(_ body: [UInt8]) throws(TranslateError) -> [UInt8] {
        if sameSchema {
            return context.upstreamModel == context.requestModel ? body : try ModelRewrite.replacingModel(in: body, with: context.upstreamModel)
        }
        throw TranslateError(
            status: 501, code: "translation_not_supported",
            message: "Translating \(clientAPI) requests for the \(backend.schema.rawValue) backend '\(backend.name)' is not supported yet.")
    }

    // MARK: - Response

    public func responseMode(status: Int, contentType: String?) -> ResponseMode {
        if sameSchema { return .passthrough }
        if status >= 400 { return .translateError }
        return context.stream ? .translateStream : .translateBody
    }

    static func unsupportedEndpoint(_ endpoint: Endpoint, _ backend: BackendConfig) -> TranslateError {
        TranslateError(
            status: 400, code: "unsupported_endpoint",
            message: "The \(endpoint.name) endpoint is not available on the \(backend.schema.rawValue) backend '\(backend.name)'.")
    }
}

/// Rewrites the top-level `model` of a JSON body, leaving every other byte as it was.
public enum ModelRewrite {
    public static func replacingModel(in body: [UInt8], with model: String) throws(TranslateError) -> [UInt8] {
        let scanner = JSONScanner(body)
        let range: Range<Int>?
        do {
            range = try scanner.findTopLevel("model")
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
        guard let range else { throw .invalidBody("The request body has no model.", param: "model") }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + model.utf8.count)
        out.append(contentsOf: body[0..<range.lowerBound])
        JSONWriter.appendEscaped(model, to: &out)
        out.append(contentsOf: body[range.upperBound..<body.count])
        return out
    }
}

/// RFC 3986 percent-encoding for the pieces of paths we build from config and model names.
public enum PercentEncoding {
    /// Encodes everything but unreserved characters (so ':' and '/' in model ids are escaped).
    public static func pathSegment(_ text: String) -> String { encode(text) }

    public static func queryValue(_ text: String) -> String { encode(text) }

    private static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            let unreserved = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            if unreserved {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

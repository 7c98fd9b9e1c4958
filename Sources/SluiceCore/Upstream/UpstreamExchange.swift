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
            throw Self.notSupported(backend)
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
        let hub = try hubRequest(body)
        switch backend.schema {
        case .openAI, .azureOpenAI:
            // Anthropic clients always get usage in message_delta: ask the OpenAI backend for it.
            return OpenAIHub.serialize(hub, model: context.upstreamModel, forceStreamUsage: context.stream)
        case .anthropic:
            return try AnthropicTranslator.request(fromOpenAIChat: hub, context: context)
        case .bedrockConverse, .gemini, .vertexGemini:
            throw Self.notSupported(backend)
        }
    }

    /// The request in the OpenAI hub shape.
    private func hubRequest(_ body: [UInt8]) throws(TranslateError) -> JSONValue {
        let parsed: JSONValue
        do {
            parsed = try JSONParser.parse(body)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        switch clientAPI {
        case .openAI:
            guard endpoint == .chatCompletions else { throw Self.unsupportedEndpoint(endpoint, backend) }
            return parsed
        case .anthropic:
            return try AnthropicTranslator.openAIRequest(fromAnthropic: parsed)
        }
    }

    static func notSupported(_ backend: BackendConfig) -> TranslateError {
        TranslateError(
            status: 501, code: "backend_not_supported",
            message: "The \(backend.schema.rawValue) backend '\(backend.name)' is not supported by this gateway build yet.")
    }

    // MARK: - Response

    public func responseMode(status: Int, contentType: String?) -> ResponseMode {
        if sameSchema { return .passthrough }
        if status >= 400 { return .translateError }
        return context.stream ? .translateStream : .translateBody
    }

    /// The content type of what the client receives for `mode`.
    public func clientContentType(_ mode: ResponseMode) -> String {
        mode == .translateStream ? "text/event-stream" : "application/json"
    }

    /// Translates a complete 2xx body to the client's API. Returns the body and the usage it reports.
    public func translateResponse(_ body: [UInt8]) throws(TranslateError) -> (body: [UInt8], usage: TokenUsage) {
        let hub: (body: [UInt8], usage: TokenUsage)
        switch backend.schema {
        case .openAI, .azureOpenAI:
            hub = (body, OpenAIHub.usage(inResponse: body))
        case .anthropic:
            hub = try AnthropicTranslator.response(toOpenAIChat: body, context: context)
        case .bedrockConverse, .gemini, .vertexGemini:
            throw Self.notSupported(backend)
        }
        switch clientAPI {
        case .openAI:
            return hub
        case .anthropic:
            return (try AnthropicTranslator.anthropicResponse(fromOpenAIChat: hub.body, context: context), hub.usage)
        }
    }

    /// Re-shapes a backend error body (any status >= 400) for the client, keeping the status.
    public func translateError(status: Int, body: [UInt8]) -> (status: UInt32, body: [UInt8]) {
        let status32 = UInt32(clamping: status)
        let error: GatewayError
        switch backend.schema {
        case .anthropic:
            error = AnthropicTranslator.error(status: status32, body: body)
        case .openAI, .azureOpenAI, .bedrockConverse, .gemini, .vertexGemini:
            error = OpenAIHub.error(status: status32, body: body)
        }
        return (error.status, error.body(for: clientAPI))
    }

    /// A streaming translator from this backend's stream to the client's API.
    public func makeStreamTranslator() throws(TranslateError) -> StreamTranslator {
        var backendStage: StreamTranslator.BackendStage
        switch backend.schema {
        case .openAI, .azureOpenAI:
            backendStage = .openAI
        case .anthropic:
            backendStage = .anthropic(AnthropicToOpenAIStream(context: context))
        case .bedrockConverse, .gemini, .vertexGemini:
            throw Self.notSupported(backend)
        }
        let clientStage: OpenAIToAnthropicStream? = clientAPI == .anthropic ? OpenAIToAnthropicStream(context: context) : nil
        return StreamTranslator(backend: backendStage, client: clientStage)
    }

    static func unsupportedEndpoint(_ endpoint: Endpoint, _ backend: BackendConfig) -> TranslateError {
        TranslateError(
            status: 400, code: "unsupported_endpoint",
            message: "The \(endpoint.name) endpoint is not available on the \(backend.schema.rawValue) backend '\(backend.name)'.")
    }
}

/// A streaming response translation: the backend's stream to OpenAI SSE (the hub), then, for
/// Anthropic clients, the hub stream to Anthropic SSE. Only partial frames are buffered.
public struct StreamTranslator: Sendable {
    public enum BackendStage: Sendable {
        /// OpenAI and OpenAI-compatible streams are already hub SSE.
        case openAI
        case anthropic(AnthropicToOpenAIStream)
    }

    var backend: BackendStage
    var client: OpenAIToAnthropicStream?
    /// Usage seen in an OpenAI stream's final chunk (hub passthrough).
    private var hubUsage = OpenAIStreamUsage()

    init(backend: BackendStage, client: OpenAIToAnthropicStream?) {
        self.backend = backend
        self.client = client
    }

    /// Translates one chunk of the backend's body; returns the client bytes ready so far.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        let hub: [UInt8]
        switch backend {
        case .openAI:
            hubUsage.feed(chunk)
            hub = chunk
        case .anthropic(var stage):
            hub = stage.feed(chunk)
            backend = .anthropic(stage)
        }
        guard var client else { return hub }
        defer { self.client = client }
        return client.feed(hub)
    }

    /// End of the backend's stream: flushes what is left.
    public mutating func finish() -> [UInt8] {
        var hub: [UInt8] = []
        switch backend {
        case .openAI:
            break
        case .anthropic(var stage):
            hub = stage.finish()
            backend = .anthropic(stage)
        }
        guard var client else { return hub }
        defer { self.client = client }
        var out = hub.isEmpty ? [] : client.feed(hub)
        out += client.finish()
        return out
    }

    /// Token usage reported by the stream so far.
    public var usage: TokenUsage {
        switch backend {
        case .openAI: hubUsage.usage
        case .anthropic(let stage): stage.usage
        }
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

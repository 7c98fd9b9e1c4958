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
    /// Whether the request is signed with AWS SigV4 once its final body is known.
    public var signsWithSigV4 = false

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
    /// Same schema, not streamed: pass through, keeping a bounded copy to read token usage at the end.
    case passthroughMetered
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
    public private(set) var context: TranslationContext
    /// Gemini embeddings: the client asked for base64 vectors (the OpenAI SDK's default).
    private var embeddingsAsBase64 = false
    /// Bedrock: `response_format` became a forced tool whose input is the answer.
    private var bedrockStructuredOutput = false

    public init(backend: BackendConfig, clientAPI: ClientAPI, endpoint: Endpoint, requestModel: String, stream: Bool,
                includeUsage: Bool, created: Int64, requestID: String) {
        self.backend = backend
        self.clientAPI = clientAPI
        self.endpoint = endpoint
        // Anthropic clients always get usage (in message_delta), so the hub stream must carry it.
        context = TranslationContext(
            upstreamModel: backend.upstreamModel(for: requestModel), requestModel: requestModel, stream: stream,
            includeUsage: includeUsage || endpoint.clientAPI == .anthropic, defaultMaxTokens: backend.defaultMaxTokens, created: created,
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
                rewritesBody: !sameSchema || model != context.requestModel || context.stream)
        case .azureOpenAI:
            let version = backend.azureAPIVersion ?? ""
            let operation = String(openAIPath().dropFirst("/v1/".count))
            let path = "\(backend.pathPrefix)/openai/deployments/\(PercentEncoding.pathSegment(model))/\(operation)?api-version=\(PercentEncoding.queryValue(version))"
            return UpstreamRequestPlan(
                path: path, setHeaders: [("content-type", "application/json")], credentialHeader: ("api-key", ""),
                rewritesBody: !sameSchema || context.stream)
        case .anthropic:
            guard endpoint == .chatCompletions || endpoint == .anthropicMessages else {
                throw Self.unsupportedEndpoint(endpoint, backend)
            }
            return UpstreamRequestPlan(
                path: backend.pathPrefix + "/v1/messages",
                setHeaders: [("content-type", "application/json"), ("anthropic-version", "2023-06-01")],
                credentialHeader: ("x-api-key", ""), rewritesBody: !sameSchema || model != context.requestModel)
        case .gemini, .vertexGemini:
            let flavor: Gemini.APIFlavor
            let credential: (name: String, prefix: String)
            if backend.schema == .vertexGemini, let gcp = backend.gcp {
                flavor = .vertex(project: gcp.project, location: gcp.location)
                credential = ("authorization", "Bearer ")
            } else {
                flavor = .geminiAPI
                credential = ("x-goog-api-key", "")
            }
            let path: String
            switch endpoint {
            case .chatCompletions, .anthropicMessages:
                path = Gemini.path(model: model, stream: context.stream, apiFlavor: flavor)
            case .embeddings where backend.schema == .gemini:
                path = Gemini.embeddingsPath(model: model)
            default:
                throw Self.unsupportedEndpoint(endpoint, backend)
            }
            return UpstreamRequestPlan(
                path: backend.pathPrefix + path, setHeaders: [("content-type", "application/json")],
                credentialHeader: credential, rewritesBody: true)
        case .bedrockConverse:
            guard endpoint == .chatCompletions || endpoint == .anthropicMessages else {
                throw Self.unsupportedEndpoint(endpoint, backend)
            }
            var plan = UpstreamRequestPlan(
                path: backend.pathPrefix + BedrockConverse.path(model: model, stream: context.stream),
                setHeaders: [("content-type", "application/json")], credentialHeader: nil, rewritesBody: true)
            plan.signsWithSigV4 = true
            return plan
        }
    }

    /// SigV4 headers for the final request (`path` as sent, without query).
    public func sigV4Headers(
        host: String, path: String, body: [UInt8], accessKeyID: String, secretAccessKey: String, sessionToken: String?,
        unixSeconds: Int64, crypto: SigV4Crypto = .pureSwift
    ) -> [(name: String, value: String)] {
        var signer = SigV4Signer(
            accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken,
            region: backend.aws?.region ?? "us-east-1", service: "bedrock")
        signer.crypto = crypto
        return signer.sign(
            method: "POST", path: path, headers: [("host", host), ("content-type", "application/json")], payload: body,
            date: SigV4Date(unixSeconds: unixSeconds))
    }

    /// Bedrock bodies carry no id: responses use the `x-amzn-requestid` header instead.
    public mutating func noteUpstreamRequestID(_ id: String) {
        guard !id.isEmpty else { return }
        context.fallbackResponseID = id
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
    public mutating func translateRequest(_ body: [UInt8]) throws(TranslateError) -> [UInt8] {
        if sameSchema {
            if clientAPI == .openAI, context.stream {
                // Streams carry usage only when asked: ask, and drop the usage chunk again for a
                // client that did not (OpenAIStreamUsageFilter).
                return try OpenAICompatible.prepareRequest(body, context: context, forceStreamUsage: true).body
            }
            return context.upstreamModel == context.requestModel ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        if endpoint == .embeddings, backend.schema == .gemini {
            let request = try Gemini.embeddingsRequest(fromOpenAI: body, context: context)
            embeddingsAsBase64 = request.base64
            return request.body
        }
        let hub = try hubRequest(body)
        switch backend.schema {
        case .openAI, .azureOpenAI:
            // Anthropic clients always get usage in message_delta: ask the OpenAI backend for it.
            return OpenAIHub.serialize(hub, model: context.upstreamModel, forceStreamUsage: context.stream)
        case .anthropic:
            return try AnthropicTranslator.request(fromOpenAIChat: hub, context: context)
        case .gemini, .vertexGemini:
            return try Gemini.request(fromOpenAIChat: hub.serialized(), context: context)
        case .bedrockConverse:
            let request = try BedrockConverse.request(fromOpenAIChat: hub.serialized(), context: context)
            bedrockStructuredOutput = request.structuredOutput
            return request.body
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



    // MARK: - Response

    public func responseMode(status: Int, contentType: String?) -> ResponseMode {
        if sameSchema {
            if status >= 400 { return .passthrough }
            // Same-schema streams go through a usage watcher that passes the bytes on.
            return context.stream ? .translateStream : .passthroughMetered
        }
        if status >= 400 { return .translateError }
        return context.stream ? .translateStream : .translateBody
    }

    /// Token usage of a same-schema response body that passed through.
    public func usage(ofPassthrough body: [UInt8]) -> TokenUsage {
        switch backend.schema {
        case .anthropic:
            return (try? AnthropicTranslator.response(toOpenAIChat: body, context: context).usage) ?? TokenUsage()
        default:
            return OpenAICompatible.usage(fromResponse: body) ?? TokenUsage()
        }
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
            hub = (body, OpenAICompatible.usage(fromResponse: body) ?? TokenUsage())
        case .anthropic:
            hub = try AnthropicTranslator.response(toOpenAIChat: body, context: context)
        case .gemini, .vertexGemini:
            if endpoint == .embeddings {
                let embeddings = try Gemini.embeddingsResponse(fromGemini: body, context: context, base64: embeddingsAsBase64)
                return (embeddings.body, embeddings.usage)
            }
            let chat = try Gemini.chatCompletion(fromGeminiResponse: body, context: context)
            hub = (chat.body, chat.usage)
        case .bedrockConverse:
            let chat = try BedrockConverse.chatCompletion(
                fromConverse: body, context: context, structuredOutput: bedrockStructuredOutput)
            hub = (chat.body, chat.usage)
        }
        switch clientAPI {
        case .openAI:
            return hub
        case .anthropic:
            return (try AnthropicTranslator.anthropicResponse(fromOpenAIChat: hub.body, context: context), hub.usage)
        }
    }

    /// Re-shapes a backend error body (any status >= 400) for the client, keeping the status.
    /// `awsErrorType` is Bedrock's `x-amzn-errortype` header.
    public func translateError(status: Int, body: [UInt8], awsErrorType: String? = nil) -> (status: UInt32, body: [UInt8]) {
        let status32 = UInt32(clamping: status)
        let error: GatewayError
        switch backend.schema {
        case .anthropic:
            error = AnthropicTranslator.error(status: status32, body: body)
        case .gemini, .vertexGemini:
            error = Gemini.gatewayError(status: status32, body: body)
        case .bedrockConverse:
            error = BedrockError.gatewayError(status: status32, errorType: awsErrorType, body: body)
        case .openAI, .azureOpenAI:
            error = OpenAIHub.error(status: status32, body: body)
        }
        return (error.status, error.body(for: clientAPI))
    }

    /// A streaming translator from this backend's stream to the client's API (for a same-schema
    /// stream, a watcher that reads usage and passes the bytes on).
    public func makeStreamTranslator() throws(TranslateError) -> StreamTranslator {
        if sameSchema, backend.schema == .anthropic {
            return StreamTranslator(backend: .anthropicPassthrough(AnthropicToOpenAIStream(context: context)), client: nil)
        }
        var backendStage: StreamTranslator.BackendStage
        switch backend.schema {
        case .openAI, .azureOpenAI:
            // The hub needs the usage chunk for Anthropic clients; OpenAI clients see it only if asked.
            backendStage = .openAI(OpenAIStreamUsageFilter(clientWantsUsage: context.includeUsage))
        case .anthropic:
            backendStage = .anthropic(AnthropicToOpenAIStream(context: context))
        case .gemini, .vertexGemini:
            backendStage = .gemini(GeminiStream(context: context))
        case .bedrockConverse:
            backendStage = .bedrock(BedrockConverseStreamTranslator(context: context, structuredOutput: bedrockStructuredOutput))
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
        /// OpenAI and OpenAI-compatible streams are already hub SSE; the filter reads usage.
        case openAI(OpenAIStreamUsageFilter)
        /// An Anthropic stream to an Anthropic client: passed on, translated only to read usage.
        case anthropicPassthrough(AnthropicToOpenAIStream)
        case anthropic(AnthropicToOpenAIStream)
        case gemini(GeminiStream)
        case bedrock(BedrockConverseStreamTranslator)
    }

    var backend: BackendStage
    var client: OpenAIToAnthropicStream?

    init(backend: BackendStage, client: OpenAIToAnthropicStream?) {
        self.backend = backend
        self.client = client
    }

    /// Translates one chunk of the backend's body; returns the client bytes ready so far.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        let hub: [UInt8]
        switch backend {
        case .openAI(var stage):
            hub = stage.feed(chunk)
            backend = .openAI(stage)
        case .anthropicPassthrough(var stage):
            _ = stage.feed(chunk)
            backend = .anthropicPassthrough(stage)
            return chunk
        case .anthropic(var stage):
            hub = stage.feed(chunk)
            backend = .anthropic(stage)
        case .gemini(var stage):
            hub = stage.feed(chunk)
            backend = .gemini(stage)
        case .bedrock(var stage):
            hub = stage.feed(chunk)
            backend = .bedrock(stage)
        }
        guard var client else { return hub }
        defer { self.client = client }
        return client.feed(hub)
    }

    /// End of the backend's stream: flushes what is left.
    public mutating func finish() -> [UInt8] {
        var hub: [UInt8] = []
        switch backend {
        case .openAI(var stage):
            hub = stage.finish()
            backend = .openAI(stage)
        case .anthropicPassthrough(var stage):
            _ = stage.finish()
            backend = .anthropicPassthrough(stage)
            return []
        case .anthropic(var stage):
            hub = stage.finish()
            backend = .anthropic(stage)
        case .gemini(var stage):
            hub = stage.finish()
            backend = .gemini(stage)
        case .bedrock(var stage):
            hub = stage.finish()
            backend = .bedrock(stage)
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
        case .openAI(let stage): stage.usage ?? TokenUsage()
        case .anthropicPassthrough(let stage): stage.usage
        case .anthropic(let stage): stage.usage
        case .gemini(let stage): stage.usage
        case .bedrock(let stage): stage.usage
        }
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

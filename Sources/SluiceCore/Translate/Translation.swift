// Shared vocabulary of the provider translators (one file per target schema and direction lives
// next to this one, e.g. `Anthropic+FromOpenAIChat.swift`).
//
// Design: the OpenAI Chat Completions shape is the hub. A request arrives in the client's API
// (OpenAI or Anthropic), is brought to the hub when needed, then translated to the backend's
// schema; responses and streams go the opposite way. A client API equal to the backend schema is
// passed through untouched (no parse, no re-serialisation).

/// The wire schema a backend speaks.
public enum BackendSchema: String, Sendable, CaseIterable {
    /// OpenAI and every OpenAI-compatible server (vLLM, SGLang, TGI, Groq, Mistral, Together, DeepSeek, ...).
    case openAI = "openai"
    /// Azure OpenAI: deployment path, `api-version` query, `api-key` header.
    case azureOpenAI = "azure_openai"
    /// Anthropic Messages: `x-api-key`, `anthropic-version`.
    case anthropic
    /// AWS Bedrock Converse / ConverseStream, SigV4-signed.
    case bedrockConverse = "bedrock_converse"
    /// Google Gemini `generateContent` / `streamGenerateContent` with an API key.
    case gemini
    /// Vertex AI Gemini with a bearer token.
    case vertexGemini = "vertex_gemini"
    /// Claude on Vertex AI: Anthropic Messages bodies to `:rawPredict` / `:streamRawPredict`, a bearer token.
    case vertexAnthropic = "vertex_anthropic"
    /// Claude on Bedrock InvokeModel: Anthropic Messages bodies, SigV4-signed; streams as AWS event streams.
    case bedrockAnthropic = "bedrock_anthropic"
    /// Cohere's v2 API, rerank only (`POST /v2/rerank`), with a bearer key.
    case cohere
}

/// What a translator needs beyond the body itself.
public struct TranslationContext: Sendable, Equatable {
    /// The model name to send upstream (after any per-backend override).
    public var upstreamModel: String
    /// The model the client asked for; responses report it back.
    public var requestModel: String
    /// Whether the client asked for a stream.
    public var stream: Bool
    /// `stream_options.include_usage` of an OpenAI client: emit a final usage chunk.
    public var includeUsage: Bool
    /// `max_tokens` to send where the backend requires one and the client gave none.
    public var defaultMaxTokens: Int
    /// Unix seconds for `created` fields the backend does not provide.
    public var created: Int64
    /// An id for responses whose backend does not provide one (e.g. Bedrock: x-amzn-requestid).
    public var fallbackResponseID: String

    public init(
        upstreamModel: String, requestModel: String, stream: Bool = false, includeUsage: Bool = false,
        defaultMaxTokens: Int = 4096, created: Int64 = 0, fallbackResponseID: String = "chatcmpl-sluice"
    ) {
        self.upstreamModel = upstreamModel
        self.requestModel = requestModel
        self.stream = stream
        self.includeUsage = includeUsage
        self.defaultMaxTokens = defaultMaxTokens
        self.created = created
        self.fallbackResponseID = fallbackResponseID
    }
}

/// A translation failure: becomes a 4xx/5xx in the client's error shape.
public struct TranslateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: UInt32
    /// Stable machine code, e.g. `unsupported_content_part`.
    public var code: String
    public var message: String
    /// The request field at fault (OpenAI `error.param`), e.g. `messages[2].content[0]`.
    public var param: String?

    public init(status: UInt32 = 400, code: String, message: String, param: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.param = param
    }

    public var description: String { "\(code): \(message)" }

    /// The same error as a gateway error, ready to render in the client's shape.
    public var gatewayError: GatewayError {
        GatewayError(
            status: status, type: status >= 500 ? "api_error" : "invalid_request_error", code: code, message: message,
            param: param)
    }

    @inline(never)
    public static func invalidBody(_ message: String, param: String? = nil) -> TranslateError {
        TranslateError(status: 400, code: "invalid_request_body", message: message, param: param)
    }

    @inline(never)
    public static func unsupported(_ message: String, param: String? = nil) -> TranslateError {
        TranslateError(status: 400, code: "unsupported_parameter", message: message, param: param)
    }

    @inline(never)
    public static func badUpstreamResponse(_ message: String) -> TranslateError {
        TranslateError(status: 502, code: "bad_upstream_response", message: message)
    }
}

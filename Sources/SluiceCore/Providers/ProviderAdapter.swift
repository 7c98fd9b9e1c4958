// What the gateway knows about one backend schema, in one place: how to address it, how to
// authenticate to it, how to turn the client's request into its request and its answers (bodies,
// errors, streams) back into the OpenAI hub shape. `UpstreamExchange` drives one attempt through
// an adapter; the upstream filter in SluiceEnvoy carries out what the exchange returns and knows
// no provider by name.
//
// Adding a backend schema: a `BackendSchema` case, one `<Name>Adapter.swift` beside this file,
// and one line in `BackendSchema.adapter` below (the `AddingAProvider` article walks through it).
// The endpoint families beyond chat (images and audio, rerank, token counting), the settings the
// config reader requires and the request headers translation reads are optional requirements
// whose defaults say "this backend has none": the family code (`MediaEndpoints`,
// `RerankEndpoint`, `TokenCounting`) and `BackendConfig.read` hold only what is the same for
// every backend and ask the adapter for the rest, so no file outside the adapter switches on a
// schema.

/// One backend schema's request plan, translations and credentials.
///
/// Adapters are stateless: every requirement is static and takes the attempt it works on, whose
/// per-attempt state (`ProviderAttempt`) the exchange keeps. A requirement that throws fails the
/// attempt with the error's status in the client's error shape.
///
/// `SendableMetatype`: `UpstreamExchange` (Sendable) holds the adapter's metatype, which is shared
/// freely since adapters have no state.
public protocol ProviderAdapter: SendableMetatype {
    /// What `schema` is, in one line of plain text ("Anthropic's Messages API"): the gloss of its
    /// row in the table of schemas that sluiced's `ConfigLanguage` article generates from the
    /// adapters (a literal, so nothing is built at run time).
    static func summary(of schema: BackendSchema) -> String

    /// Whether this backend speaks `client`'s own API, so the client's body goes upstream as it is
    /// (at most with byte-level edits) and the answer comes back untranslated, only metered.
    static func speaksNatively(_ client: ClientAPI) -> Bool

    /// `speaksNatively(_:)` for one endpoint: a backend may speak a client's API but count its tokens
    /// elsewhere (Claude on Bedrock). The default is the API-wide answer.
    static func speaksNatively(_ client: ClientAPI, endpoint: Endpoint) -> Bool

    /// Whether an error answer to a client of the backend's own API passes through as it is. False for a
    /// cloud that serves a provider's API but answers errors in its own shape (Claude on Vertex and Bedrock):
    /// their errors are re-shaped like a translated backend's.
    static var passesNativeErrorsThrough: Bool { get }

    /// Every request header this backend's credentials can travel in (lower-case). Before each
    /// attempt the filter removes the union over all adapters
    /// (`UpstreamRequestPlan.credentialHeaders`), so neither a client's key nor an earlier
    /// attempt's provider credential reaches this provider.
    static var credentialHeaderNames: [String] { get }

    /// Response headers that translation needs (lower-case), e.g. a request id the body lacks.
    /// The filter reads these, and only these, and passes them to `noteResponseHeader`.
    static var responseHeaderNames: [String] { get }

    /// How a request to `backend` is authenticated: data the filter carries out without knowing
    /// the provider (a header with a secret, or a signature over the final request).
    static func credential(for backend: BackendConfig) -> CredentialApplication

    /// Where and how the attempt goes: path, headers, credential, whether the body changes.
    /// - Throws: `TranslateError` (400 `unsupported_endpoint`) for an endpoint the backend lacks.
    static func requestPlan(for attempt: ProviderAttempt) throws(TranslateError) -> UpstreamRequestPlan

    /// The body to send for the client's `body` (called only when the plan rewrites the body).
    /// May record in `attempt` what the response translation will need.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt) throws(TranslateError) -> [UInt8]

    /// Token usage of a complete 2xx body in this backend's own schema (a same-schema answer that
    /// passed through); zero when the body reports none or cannot be read.
    static func usage(ofPassthrough body: [UInt8], attempt: ProviderAttempt) -> TokenUsage

    /// A complete 2xx body as an OpenAI hub body, and the usage it reports. The exchange turns
    /// the hub body into the client's API.
    static func hubResponse(_ body: [UInt8], attempt: ProviderAttempt) throws(TranslateError)
        -> (body: [UInt8], usage: TokenUsage)

    /// An error answer (status >= 400, body as received, headers noted in `attempt`) as a gateway
    /// error. The status is kept faithful; bodies that are not the provider's error shape (an HTML
    /// page from a proxy) still become an error the client can read.
    static func gatewayError(status: UInt32, body: [UInt8], attempt: ProviderAttempt) -> GatewayError

    /// The stage that turns this backend's stream into the OpenAI hub stream (for a same-schema
    /// stream, one that passes the bytes on and reads usage).
    static func streamStage(for attempt: ProviderAttempt) throws(TranslateError) -> StreamTranslator.BackendStage

    /// Takes note of one of `responseHeaderNames` as the backend sent it, before any response
    /// translation.
    static func noteResponseHeader(name: String, value: String, attempt: inout ProviderAttempt)

    // MARK: Optional requirements (each default: the backend has no such thing)

    /// Request headers of the client that this backend's translation reads (lower-case): the
    /// attempt reads these, and only these, into `ProviderAttempt.requestHeaders` before the plan,
    /// and takes them off the request that goes upstream (the adapter carries what they say, in
    /// the body or its plan's headers). Default: none, so an attempt reads no extra header.
    static var requestHeaderNames: [String] { get }

    /// The config settings a backend of `schema` must have; `BackendConfig.read` refuses a backend
    /// without one, naming it. Default: a credential.
    static func requiredSettings(of schema: BackendSchema) -> BackendSettings

    /// Settings a backend of `schema` may have that other schemas refuse (`responses_api`).
    /// Default: none.
    static func optionalSettings(of schema: BackendSchema) -> BackendSettings

    /// Whether servers an operator runs speak `schema`, so sluiced accepts it for a `pools` entry
    /// (self-hosted replicas behind the endpoint picker). Default false: a cloud provider's API.
    static func servesPools(of schema: BackendSchema) -> Bool

    /// The provider's public address when the config gives none (sluiced's `address` may then be
    /// left out), from the config's AWS region or GCP location where the address depends on it
    /// (each a valid host label, or nil). Default nil: the config must give an address.
    static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String?

    /// The path (after `path_prefix`, with any query) where this backend serves the images or
    /// audio endpoint `attempt.endpoint` (`MediaEndpoints`). Default nil: it serves none, and the
    /// attempt fails with 400 `unsupported_endpoint`.
    static func mediaPath(for attempt: ProviderAttempt) -> String?

    /// Whether this backend reads the model of a media request from its body, so a model override
    /// edits the body (`model` member or form part). False when the path names it (Azure's
    /// deployment). Default true.
    static var mediaModelInBody: Bool { get }

    /// The rerank API this backend speaks (`RerankEndpoint`). Default nil: it has none, and a
    /// rerank fails with 400 `unsupported_endpoint`.
    static var rerankDialect: RerankDialect? { get }

    /// Where this backend counts the tokens of `attempt`'s conversation (`TokenCounting`): path and
    /// headers. Default nil: no counting endpoint (for this client), 400 `unsupported_endpoint`.
    static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan?

    /// The body of a count request for a client that does not speak this backend's API: the
    /// conversation as this backend's chat translator writes it, trimmed to what its counting
    /// endpoint takes (`TokenCounting.keeping`). Default: 400 `unsupported_endpoint`.
    static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt) throws(TranslateError)
        -> [UInt8]

    /// How the count is read from this backend's count answer. Default: `input_tokens`.
    static var tokenCountAnswer: TokenCountAnswer { get }
}

extension ProviderAdapter {
    public static func speaksNatively(_ client: ClientAPI, endpoint: Endpoint) -> Bool { speaksNatively(client) }

    public static var passesNativeErrorsThrough: Bool { true }

    /// Keeps the header for `gatewayError` and the response translations to read.
    public static func noteResponseHeader(name: String, value: String, attempt: inout ProviderAttempt) {
        attempt.responseHeaders.append((name, value))
    }

    public static var requestHeaderNames: [String] { [] }

    public static func requiredSettings(of schema: BackendSchema) -> BackendSettings { .credential }

    public static func optionalSettings(of schema: BackendSchema) -> BackendSettings { [] }

    public static func servesPools(of schema: BackendSchema) -> Bool { false }

    public static func defaultHost(of schema: BackendSchema, awsRegion: String?, gcpLocation: String?) -> String? { nil }

    public static func mediaPath(for attempt: ProviderAttempt) -> String? { nil }

    public static var mediaModelInBody: Bool { true }

    public static var rerankDialect: RerankDialect? { nil }

    public static func tokenCountingPlan(for attempt: ProviderAttempt) -> TokenCountingPlan? { nil }

    public static func tokenCountRequest(_ conversation: CountedConversation, attempt: ProviderAttempt)
        throws(TranslateError) -> [UInt8]
    {
        throw attempt.unsupportedEndpoint()
    }

    public static var tokenCountAnswer: TokenCountAnswer { .inputTokens }
}

// MARK: - Dispatch

extension BackendSchema {
    /// The adapter of this schema: the one place a schema is mapped to its code.
    ///
    /// Adapters have only static requirements, so dispatch goes through the metatype:
    /// `any ProviderAdapter.Type` is two words (type metadata and witness table), held inline in
    /// `UpstreamExchange` with no box, and each call is one indirect call through the witness
    /// table. Nothing is allocated per attempt for dispatch. (An `any ProviderAdapter` value
    /// would box on the heap once an adapter carried more than three words of state; keeping
    /// per-attempt state in `ProviderAttempt` instead keeps adapters caseless enums.)
    public var adapter: any ProviderAdapter.Type {
        switch self {
        case .openAI: OpenAIAdapter.self
        case .azureOpenAI: AzureOpenAIAdapter.self
        case .anthropic: AnthropicAdapter.self
        case .bedrockConverse: BedrockConverseAdapter.self
        case .gemini, .vertexGemini: GeminiAdapter.self
        case .vertexAnthropic: VertexAnthropicAdapter.self
        case .bedrockAnthropic: BedrockAnthropicAdapter.self
        case .cohere: CohereAdapter.self
        }
    }
}

// MARK: - Per-attempt state

/// One attempt as an adapter sees it: the backend, what the client asked, and what the request
/// translation learnt that the response translation needs.
public struct ProviderAttempt: Sendable {
    public let backend: BackendConfig
    public let clientAPI: ClientAPI
    public let endpoint: Endpoint
    public var context: TranslationContext
    /// Whether the backend speaks the client's own API (`ProviderAdapter.speaksNatively`).
    public let sameSchema: Bool
    /// A rerank request as the client sent it (set by `RerankEndpoint.translateRequest`): the
    /// answer's indices are checked against its documents and its texts echoed from them.
    public var rerank: RerankRequest?
    /// Gemini embeddings: the client asked for base64 vectors (the OpenAI SDK's default).
    public var embeddingsAsBase64 = false
    /// `response_format` became a forced tool whose input is the answer (Bedrock).
    public var structuredOutputTool = false
    /// The backend's response headers an adapter kept (`ProviderAdapter.noteResponseHeader`).
    public var responseHeaders: [(name: String, value: String)] = []
    /// A Responses client's request fields its translated answer reports back (set by the request
    /// translation, `responsesChatRequest`).
    public var responsesEcho: ResponsesEcho?
    /// Usage counted from the request itself (speech: its input's characters; MediaEndpoints.swift).
    public var requestUsage: TokenUsage?
    /// The client's `content-type` (a multipart form's boundary), for endpoints that read it.
    public var requestContentType: String?
    /// The client's request headers the adapter named in `requestHeaderNames` that were present
    /// (values of a repeated header joined with ", ").
    public var requestHeaders: [(name: String, value: String)] = []

    public init(
        backend: BackendConfig, clientAPI: ClientAPI, endpoint: Endpoint, requestModel: String, stream: Bool,
        includeUsage: Bool, created: Int64, requestID: @autoclosure () -> String
    ) {
        self.backend = backend
        self.clientAPI = clientAPI
        self.endpoint = endpoint
        // A rerank answer is always read and rewritten (indices checked against the request's
        // documents, `return_documents` honoured), so it never passes through. A server without the
        // Responses API gets a Responses client's request as chat completions.
        sameSchema =
            !endpoint.reranks && backend.schema.adapter.speaksNatively(clientAPI, endpoint: endpoint)
            && (endpoint != .responses || backend.servesResponses)
        // Anthropic clients always get usage (in message_delta), Responses clients in
        // response.completed, so the hub stream must carry it.
        context = TranslationContext(
            upstreamModel: backend.upstreamModel(for: requestModel), requestModel: requestModel, stream: stream,
            includeUsage: includeUsage || endpoint.clientAPI == .anthropic || endpoint == .responses,
            defaultMaxTokens: backend.defaultMaxTokens,
            created: created,
            // Only a translated answer needs an id the backend may not give; a same-schema one
            // passes through, so it does not read the request id or build this string.
            fallbackResponseID: sameSchema ? "" : endpoint.reranks ? "rerank-\(requestID())" : "chatcmpl-\(requestID())")
    }

    /// The value of a response header the adapter kept, if the backend sent it.
    public func responseHeader(_ name: String) -> String? {
        responseHeaders.first { $0.name == name }?.value
    }

    /// The value of one of the adapter's `requestHeaderNames`, if the client sent it.
    public func requestHeader(_ name: String) -> String? {
        requestHeaders.first { $0.name == name }?.value
    }

    /// The OpenAI path of this endpoint (OpenAI-compatible and Azure backends).
    var openAIPath: String {
        switch endpoint {
        case .completions: "/v1/completions"
        case .embeddings: "/v1/embeddings"
        case .responses: sameSchema ? "/v1/responses" : "/v1/chat/completions"
        default: "/v1/chat/completions"
        }
    }

    /// The refusal of a request the hub translations do not take (only an Anthropic client's request is
    /// translated into the hub; an OpenAI client's chat request is the hub itself and never asks): a body that
    /// is not JSON is refused as such, as everywhere, and any other as an endpoint the backend lacks.
    func hubRefusal(_ body: [UInt8]) -> TranslateError {
        var validator = JSONValidator()
        do throws(JSONParseError) {
            _ = try validator.validate(body)
        } catch {
            return .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        return unsupportedEndpoint()
    }

    /// 400 `unsupported_endpoint`: the client's endpoint does not exist on this backend.
    @inline(never)
    func unsupportedEndpoint() -> TranslateError {
        TranslateError(
            status: 400, code: "unsupported_endpoint",
            message: "The \(endpoint.name) endpoint is not available on the \(backend.schema.rawValue) backend '\(backend.name)'.")
    }
}

// MARK: - Credentials as data

/// How one attempt is authenticated. The filter carries this out: it reads the named credential
/// sources (fresh on every attempt, so SDS rotation applies) and either sets a header or hands the
/// bytes to `UpstreamExchange.signatureHeaders` once the final body is known.
public enum CredentialApplication: Sendable, Equatable {
    /// No credential (an OpenAI-compatible server without keys).
    case none
    /// The secret goes into one header, after a fixed prefix.
    case header(HeaderCredential)
    /// The final request (method, host, path, body) is signed; the signature goes into headers.
    case signature(RequestSigning)

    /// Every source this application reads.
    public var sources: [CredentialSource] {
        switch self {
        case .none: []
        case .header(let header): header.source.map { [$0] } ?? []
        case .signature(let signing): signing.credentialSources.compactMap { $0 }
        }
    }
}

/// A secret sent as `name: prefix + secret`.
public struct HeaderCredential: Sendable, Equatable {
    /// The header (lower-case).
    public var name: String
    /// The text before the secret: `"Bearer "`, or empty.
    public var prefix: String
    /// Where the secret comes from; nil when the backend has none configured (the attempt fails).
    public var source: CredentialSource?

    public init(name: String, prefix: String = "", source: CredentialSource?) {
        self.name = name
        self.prefix = prefix
        self.source = source
    }

    /// `authorization: Bearer <secret>`.
    public static func bearer(_ source: CredentialSource?) -> HeaderCredential {
        HeaderCredential(name: "authorization", prefix: "Bearer ", source: source)
    }
}

extension TranslateError {
    /// 500 `backend_credential_missing`: a credential source gave no bytes (a secret not yet
    /// delivered by SDS, or empty).
    @inline(never)
    public static func credentialMissing(backend: String, what: String = "credential") -> TranslateError {
        TranslateError(
            status: 500, code: "backend_credential_missing", message: "The gateway has no \(what) for backend '\(backend)'.")
    }
}

extension BackendConfig {
    /// Every credential source this backend's config names, for subscribing to their secrets when
    /// the config loads (read again per attempt through `CredentialApplication.sources`).
    public var configuredCredentialSources: [CredentialSource] {
        [credential, aws?.accessKeyID, aws?.secretAccessKey, aws?.sessionToken].compactMap { $0 }
    }
}

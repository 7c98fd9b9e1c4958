// Token counting: OpenAI's `POST /v1/responses/input_tokens` and Anthropic's
// `POST /v1/messages/count_tokens`, mapped to each provider's own counting endpoint. A count is
// free: the gateway neither admits it against quotas nor charges it (`GatewayStream.route`), and
// the attempt reports no usage.
//
// | client \ backend   | OpenAI, Azure          | Anthropic              | Bedrock                | Gemini, Vertex       |
// | Responses count    | passthrough            | Anthropic count_tokens | Converse CountTokens   | countTokens          |
// | Anthropic count    | 400 (no such endpoint) | passthrough            | Converse CountTokens   | countTokens          |
//
// The table is the adapters' (`ProviderAdapter.tokenCountingPlan`, `tokenCountRequest`,
// `tokenCountAnswer`; a backend without a counting endpoint keeps the defaults and answers 400
// `unsupported_endpoint`); this file holds what is the same for all: the plan around the
// adapter's path, the same-schema body, reading the client's conversation, trimming a translated
// request to the members a counting endpoint takes, and writing the client's count object. A
// translated count request is the request the backend's chat translator writes for the same
// conversation (through the chat hub), trimmed; the answer becomes the client's count object.

extension Endpoint {
    /// A token-counting endpoint (free: neither admitted against quotas nor charged).
    public var countsTokens: Bool { self == .responsesInputTokens || self == .anthropicCountTokens }
}

/// Where a backend counts tokens (`ProviderAdapter.tokenCountingPlan`).
public struct TokenCountingPlan: Sendable {
    /// The path after the backend's `path_prefix`.
    public var path: String
    /// Headers to set (non-secret: content type, versions).
    public var setHeaders: [(name: String, value: String)]

    public init(path: String, setHeaders: [(name: String, value: String)] = UpstreamRequestPlan.jsonContentType) {
        self.path = path
        self.setHeaders = setHeaders
    }
}

/// The conversation of a count request, read through the chat hub, for an adapter's chat
/// translator (`ProviderAdapter.tokenCountRequest`).
public struct CountedConversation {
    /// The conversation as a chat request.
    let request: OpenAIChatRequest
    /// The attempt's context, unstreamed.
    public let context: TranslationContext
}

/// How a backend's count answer holds the count (`ProviderAdapter.tokenCountAnswer`).
public struct TokenCountAnswer: Sendable, Equatable {
    /// The top-level member with the count.
    public var member: String
    /// An answer object without the member counts zero (Gemini leaves `totalTokens` out of the
    /// answer for an empty conversation).
    public var absentMeansZero: Bool

    public init(member: String, absentMeansZero: Bool = false) {
        self.member = member
        self.absentMeansZero = absentMeansZero
    }

    /// `input_tokens` (OpenAI's and Anthropic's count objects).
    public static let inputTokens = TokenCountAnswer(member: "input_tokens")
}

public enum TokenCounting {
    /// The largest count accepted from a backend (`TokenUsage.maxCount`).
    static let maxCount = Int64(TokenUsage.maxCount)

    /// Where a count goes: the adapter's counting path and headers, the adapter's credential.
    static func requestPlan(for attempt: ProviderAttempt, adapter: any ProviderAdapter.Type) throws(TranslateError)
        -> UpstreamRequestPlan
    {
        guard let counting = adapter.tokenCountingPlan(for: attempt) else { throw attempt.unsupportedEndpoint() }
        let backend = attempt.backend
        let context = attempt.context
        return UpstreamRequestPlan(
            path: backend.prefixed(counting.path), setHeaders: counting.setHeaders, credential: adapter.credential(for: backend),
            // Same schema: only a model override (Azure: the deployment) edits the body.
            rewritesBody: !attempt.sameSchema || context.upstreamModel != context.requestModel)
    }

    /// The body of a count request for the backend: the client's (model overridden) when it speaks
    /// the backend's API, else the adapter's translation of the conversation.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt, adapter: any ProviderAdapter.Type)
        throws(TranslateError) -> [UInt8]
    {
        let context = attempt.context
        if attempt.sameSchema {
            return context.upstreamModel == context.requestModel
                ? body : try OpenAICompatible.rewriteModel(body, to: context.upstreamModel)
        }
        // The conversation as the backend's chat translator writes it, unstreamed.
        var chatContext = context
        chatContext.stream = false
        let conversation = CountedConversation(request: try attempt.countedChatRequest(body), context: chatContext)
        return try adapter.tokenCountRequest(conversation, attempt: attempt)
    }

    /// A translated body with only `members` kept (a counting endpoint refuses the others).
    static func keeping(_ members: Set<String>, of body: [UInt8]) throws(TranslateError) -> JSONObject {
        JSONObject(try parsedObject(body).members.filter { members.contains($0.key) })
    }

    /// A body the translators wrote, as an object.
    static func parsedObject(_ body: [UInt8]) throws(TranslateError) -> JSONObject {
        guard case .object(let object)? = try? JSONParser.parse(body) else {
            throw .invalidBody("The count request could not be translated.")
        }
        return object
    }

    /// The backend's count answer as the client's count object: OpenAI
    /// `{"object":"response.input_tokens","input_tokens":N}`, Anthropic `{"input_tokens":N}`.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) when the answer holds no count in range.
    static func clientAnswer(_ body: [UInt8], attempt: ProviderAttempt, adapter: any ProviderAdapter.Type)
        throws(TranslateError) -> [UInt8]
    {
        let shape = adapter.tokenCountAnswer
        let name = shape.member
        let span = body.span
        var value: UpstreamJSON.Value?
        let kind = try? UpstreamJSON.scanTopLevel(span) { member in
            if member.key(name, in: span) { value = member.value }
        }
        let count = value == nil && kind == .object && shape.absentMeansZero ? 0 : UpstreamJSON.int64(value, in: span)
        guard kind == .object, let count, (0...maxCount).contains(count) else {
            throw .badUpstreamResponse("The upstream count answer has no '\(name)' in 0...\(maxCount).")
        }
        var writer = JSONWriter(reservingCapacity: 64)
        writer.beginObject()
        if attempt.clientAPI == .openAI {
            writer.key("object")
            writer.string("response.input_tokens")
        }
        writer.key("input_tokens")
        writer.int(Int(count))
        writer.endObject()
        return writer.bytes
    }
}

extension ProviderAttempt {
    /// A count request's conversation as a chat request: a Responses count body reads as a
    /// Responses request; an Anthropic one (which has no `max_tokens`) as a Messages request
    /// with the smallest `max_tokens`, which the count leaves out again.
    mutating func countedChatRequest(_ body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        if clientAPI == .openAI { return try responsesChatRequest(body) }
        return try AnthropicTranslator.countedChatRequest(fromAnthropic: body)
    }
}

// `POST /v1/responses` in the exchange: what the adapters need for OpenAI's Responses API besides
// the translators in `Translate/` (`ResponsesTranslator`, `OpenAIToResponsesStream`).
//
// - OpenAI and Azure speak Responses: the body passes through (a model override is a byte-level
//   edit), and usage is read from the answer's Responses `usage` (`input_tokens`,
//   `output_tokens`, `input_tokens_details.cached_tokens`,
//   `output_tokens_details.reasoning_tokens`) or, for a stream, from the `response` object of its
//   final event (`response.completed`, `response.incomplete` or `response.failed`). Streams need
//   no usage forcing: the final event always carries it.
// - Every other backend is reached through the chat hub: the Responses request becomes a chat
//   request (refusing what needs OpenAI's server-side state, such as `previous_response_id`),
//   the hub answer becomes a Responses object, the hub stream typed Responses events.

extension ProviderAttempt {
    /// A Responses client's request as a chat request the one-pass translators read, keeping the
    /// fields the answer echoes in `responsesEcho`.
    /// - Throws: `TranslateError` (400) for a body that is not JSON, or a Responses request the
    ///   chat hub cannot express (naming the field).
    mutating func responsesChatRequest(_ body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        let hub = try responsesHubBody(body)
        do {
            return try OpenAIChatRequest(translated: hub)
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
    }

    /// A Responses client's request as the hub's chat request body, keeping the fields the answer
    /// echoes in `responsesEcho`.
    mutating func responsesHubBody(_ body: [UInt8]) throws(TranslateError) -> [UInt8] {
        // Anthropic's Messages API (on its own or on the clouds: every backend that speaks it) returns
        // reasoning only with extended thinking on, which a requested summary turns on.
        let messagesAPI = backend.schema.adapter.speaksNatively(.anthropic)
        let options = ResponsesTranslationOptions(thinkingForSummaries: messagesAPI, defaultMaxTokens: backend.defaultMaxTokens)
        let translated = try ResponsesTranslator.openAIRequest(fromResponses: body, options: options)
        responsesEcho = translated.echo
        return translated.hub
    }

    /// The hub answer as the Responses object the client reads.
    func responsesAnswer(fromHub body: [UInt8]) throws(TranslateError) -> [UInt8] {
        try ResponsesTranslator.responsesResponse(
            fromOpenAIChat: body, echo: responsesEcho ?? ResponsesEcho(), context: context)
    }
}

// MARK: - Usage of a Responses answer that passed through

/// Token usage in the Responses API's own words.
public enum ResponsesUsage {
    /// The `usage` of a Responses object (a `POST /v1/responses` answer); nil when the body is not
    /// a JSON object or has no usage object.
    public static func read(fromResponse body: [UInt8]) -> TokenUsage? {
        let span = body.span
        var usage: UpstreamJSON.Value?
        do throws(JSONParseError) {
            guard
                try UpstreamJSON.scanTopLevel(span, { member in
                    if member.key("usage", in: span) { usage = member.value }
                }) == .object
            else { return nil }
        } catch {
            return nil
        }
        return read(usage, in: span)
    }

    /// A Responses `usage` object, every count range-checked (`TokenCountReader`); nil when `value`
    /// is not an object.
    static func read(_ value: UpstreamJSON.Value?, in span: Span<UInt8>) -> TokenUsage? {
        guard UpstreamJSON.kind(of: value, in: span) == .object else { return nil }
        var reader = TokenCountReader()
        var result = TokenUsage()
        result.inputTokens = reader.count(UpstreamJSON.member("input_tokens", of: value, in: span), in: span)
        result.outputTokens = reader.count(UpstreamJSON.member("output_tokens", of: value, in: span), in: span)
        let input = UpstreamJSON.member("input_tokens_details", of: value, in: span)
        result.cachedInputTokens = reader.count(UpstreamJSON.member("cached_tokens", of: input, in: span), in: span)
        let output = UpstreamJSON.member("output_tokens_details", of: value, in: span)
        result.reasoningTokens = reader.count(UpstreamJSON.member("reasoning_tokens", of: output, in: span), in: span)
        result.isClamped = reader.clamped
        return result
    }
}

// MARK: - A Responses stream that passes through

/// Passes a Responses event stream on byte for byte, reading the usage of its final event
/// (`response.completed`, `response.incomplete`, `response.failed`: each carries the whole
/// `response` with its `usage`).
///
/// Events are parsed only to find that one; an event the parser cannot take (beyond
/// `maxEventBytes`) ends the reading, never the passing on.
public struct ResponsesStreamUsageWatcher: Sendable {
    /// The usage of the final event, once it went by.
    public private(set) var usage: TokenUsage?
    private var parser: SSEParser
    /// The parser gave up (an oversized event): the rest passes unread.
    private var stopped = false

    /// A final event holds the whole answer, so the bound is the metered-body bound.
    public init(maxEventBytes: Int = 8 * 1024 * 1024) {
        parser = SSEParser(maxEventBytes: maxEventBytes)
    }

    /// Reads `chunk`; the caller passes it on unchanged.
    public mutating func feed(_ chunk: [UInt8]) {
        guard !stopped else { return }
        var found: TokenUsage?
        do {
            try parser.feed(chunk) { event in
                if let usage = Self.finalUsage(of: event) { found = usage }
            }
        } catch {
            stopped = true
        }
        if let found { usage = found }
    }

    /// End of the stream: an event without its blank line is read too.
    public mutating func finish() {
        guard !stopped else { return }
        for event in parser.finish() {
            if let found = Self.finalUsage(of: event) { usage = found }
        }
    }

    /// The event names that end a Responses stream with the whole response.
    static func isFinal(_ type: some Sequence<UInt8>) -> Bool {
        type.elementsEqual("response.completed".utf8) || type.elementsEqual("response.incomplete".utf8)
            || type.elementsEqual("response.failed".utf8)
    }

    /// The usage of a final event; nil for any other. The `event:` line names the event when the
    /// server sends one (OpenAI and Azure do); otherwise the data's `type` does.
    static func finalUsage(of event: SSEEvent) -> TokenUsage? {
        if let name = event.event, !isFinal(name.utf8) { return nil }
        let span = event.data.span
        var type: UpstreamJSON.Value?
        var response: UpstreamJSON.Value?
        guard
            (try? UpstreamJSON.scanTopLevel(span, { member in
                if member.key("type", in: span) {
                    type = member.value
                } else if member.key("response", in: span) {
                    response = member.value
                }
            })) == .object,
            let text = UpstreamJSON.string(type, in: span), isFinal(text.utf8)
        else { return nil }
        return ResponsesUsage.read(UpstreamJSON.member("usage", of: response, in: span), in: span)
    }
}

// Gemini `GenerateContentResponse` -> OpenAI `chat.completion`.
//
// Each candidate becomes a choice: text parts are concatenated into `content`, `thought: true` parts into
// `reasoning_content`, and `functionCall` parts into `tool_calls` with gateway-made ids `call_<n>` (Gemini has
// no call ids) and JSON-stringified `args`. A prompt blocked before generation (`promptFeedback.blockReason`,
// no candidates) becomes one empty choice finished by `content_filter`.
//
// One validating pass finds the top-level members; each candidate's `parts` array is then walked once per OpenAI
// field it feeds, and strings are copied from the body without becoming `String`s (see `UpstreamJSON`). The
// stream translator (`GeminiStream`) reads its events' parts with the same functions.

extension Gemini {
    /// An OpenAI response translated from Gemini, with what metering needs.
    public struct ChatResponse: Sendable, Equatable {
        /// The OpenAI `chat.completion` body.
        public var body: [UInt8]
        public var usage: TokenUsage
        /// The first choice's OpenAI finish reason, if any.
        public var finishReason: String?
    }

    /// Translates a non-streaming Gemini response body into an OpenAI chat completion.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) if the body is not a Gemini response.
    public static func chatCompletion(fromGeminiResponse body: [UInt8], context: TranslationContext)
        throws(TranslateError) -> ChatResponse
    {
        let bytes = body.span
        let response = try scanResponse(body, upstreamMessage: { "Gemini returned invalid JSON: \($0.description)" })
        if response.hasError {
            throw translateError(gatewayError(status: 0, body: body))
        }
        let usage = usage(fromMetadataAt: response.usageMetadata, in: bytes) ?? TokenUsage()

        var writer = OpenAIChatCompletionWriter(reservingCapacity: body.count + 256)
        writer.begin(created: context.created, model: context.requestModel) { json in
            UpstreamJSON.writeString(
                response.responseID, from: body, prefix: "chatcmpl-", or: context.fallbackResponseID, to: &json)
        }
        var firstFinish: String?
        var toolCounter = 0
        var position = 0
        UpstreamJSON.forEachElement(of: response.candidates, in: bytes) { element in
            defer { position += 1 }
            let candidate = scanCandidate(element, in: bytes)
            let summary = summarize(candidate.parts, in: bytes)
            let reason = openAIFinishReason(
                UpstreamJSON.string(candidate.finishReason, in: bytes) ?? "STOP", sawToolCall: summary.toolCalls > 0)
            let index = UpstreamJSON.int64(candidate.index, in: bytes).map { Int(clamping: $0) } ?? position
            writer.beginChoice(index: index)
            writer.json.key("content")
            if !summary.hasText && summary.toolCalls > 0 {
                writer.json.null()
            } else {
                writeJoined(.text, summary, of: candidate.parts, from: body, to: &writer.json)
            }
            if summary.hasReasoning {
                writer.json.key("reasoning_content")
                writeJoined(.reasoning, summary, of: candidate.parts, from: body, to: &writer.json)
            }
            if summary.toolCalls > 0 {
                writer.json.key("tool_calls")
                writer.json.beginArray()
                writeToolCalls(of: candidate.parts, from: body, toolCounter: &toolCounter, streamIndex: nil, to: &writer.json)
                writer.json.endArray()
            }
            writer.endChoice(finishReason: reason)
            if firstFinish == nil { firstFinish = reason }
        }
        if position == 0 {
            // No candidates: the prompt was blocked (blockReason) or the model produced nothing.
            let reason = response.blocked ? "content_filter" : "stop"
            writer.beginChoice(index: 0)
            writer.json.key("content")
            writer.json.string("")
            writer.endChoice(finishReason: reason)
            firstFinish = reason
        }
        writer.endChoices(usage: usage, reasoningReported: true)
        return ChatResponse(body: writer.finish(), usage: usage, finishReason: firstFinish)
    }

    // MARK: - Scanning (shared with the stream translator)

    /// The top-level members of a `GenerateContentResponse` the translators read.
    struct ScannedResponse {
        var responseID: UpstreamJSON.Value?
        var candidates: UpstreamJSON.Value?
        var usageMetadata: UpstreamJSON.Value?
        /// `promptFeedback.blockReason` is there (with any value).
        var blocked = false
        /// An `error` member is there: Google's error object, inside a 200.
        var hasError = false
    }

    /// Validates `body` and finds its members.
    /// - Parameters:
    ///   - body: Gemini's `generateContent` answer.
    ///   - upstreamMessage: the message for a body that is not valid JSON.
    /// - Throws: 502 when the body is not valid JSON or not an object.
    static func scanResponse(_ body: [UInt8], upstreamMessage: (JSONParseError) -> String) throws(TranslateError)
        -> ScannedResponse
    {
        let bytes = body.span
        var response = ScannedResponse()
        var promptFeedback: UpstreamJSON.Value?
        let kind: JSONKind
        do {
            kind = try UpstreamJSON.scanTopLevel(bytes) { member in
                if member.key("candidates", in: bytes) {
                    response.candidates = member.value
                } else if member.key("usageMetadata", in: bytes) {
                    response.usageMetadata = member.value
                } else if member.key("responseId", in: bytes) {
                    response.responseID = member.value
                } else if member.key("promptFeedback", in: bytes) {
                    promptFeedback = member.value
                } else if member.key("error", in: bytes) {
                    response.hasError = true
                }
            }
        } catch {
            throw .badUpstreamResponse(upstreamMessage(error))
        }
        guard kind == .object else {
            throw .badUpstreamResponse("Gemini returned \(kind.name) instead of a response object.")
        }
        response.blocked = UpstreamJSON.member("blockReason", of: promptFeedback, in: bytes) != nil
        return response
    }

    /// The members of one candidate the translators read.
    struct ScannedCandidate {
        /// `content.parts`.
        var parts: UpstreamJSON.Value?
        var finishReason: UpstreamJSON.Value?
        var index: UpstreamJSON.Value?
    }

    static func scanCandidate(_ value: UpstreamJSON.Value, in bytes: Span<UInt8>) -> ScannedCandidate {
        var candidate = ScannedCandidate()
        var content: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: value, in: bytes) { member in
            if member.key("content", in: bytes) {
                content = member.value
            } else if member.key("finishReason", in: bytes) {
                candidate.finishReason = member.value
            } else if member.key("index", in: bytes) {
                candidate.index = member.value
            }
        }
        candidate.parts = UpstreamJSON.member("parts", of: content, in: bytes)
        return candidate
    }

    /// What a part becomes in OpenAI's terms.
    enum PartKind { case text, reasoning, toolCall }

    /// The members of one part the translators read.
    struct ScannedPart {
        var text: UpstreamJSON.Value?
        /// `functionCall`, present with any value.
        var functionCall: UpstreamJSON.Value?
        var thoughtSignature: UpstreamJSON.Value?
    }

    /// Calls `body` for each part with an OpenAI counterpart, in order: a `functionCall` part is a tool call; a
    /// string `text` is reasoning when `thought` is true and content otherwise; anything else is passed over.
    static func forEachPart(
        of parts: UpstreamJSON.Value?, in bytes: Span<UInt8>, _ body: (PartKind, ScannedPart) -> Void
    ) {
        guard let parts else { return }
        UpstreamJSON.forEachElement(of: parts, in: bytes) { element in
            var part = ScannedPart()
            var thought: UpstreamJSON.Value?
            UpstreamJSON.forEachMember(of: element, in: bytes) { member in
                if member.key("text", in: bytes) {
                    part.text = member.value
                } else if member.key("thought", in: bytes) {
                    thought = member.value
                } else if member.key("functionCall", in: bytes) {
                    part.functionCall = member.value
                } else if member.key("thoughtSignature", in: bytes) {
                    part.thoughtSignature = member.value
                }
            }
            if part.functionCall != nil {
                body(.toolCall, part)
            } else if UpstreamJSON.isString(part.text, in: bytes) {
                body(UpstreamJSON.bool(thought, in: bytes) == true ? .reasoning : .text, part)
            }
        }
    }

    /// Which OpenAI fields a candidate's parts fill.
    struct PartsSummary {
        var text = UpstreamJSON.TextPieces()
        var reasoning = UpstreamJSON.TextPieces()
        var toolCalls = 0

        /// Some text part has text.
        var hasText: Bool { !text.isEmpty }
        /// Some thought part has text.
        var hasReasoning: Bool { !reasoning.isEmpty }
        var isEmpty: Bool { !hasText && !hasReasoning && toolCalls == 0 }
    }

    static func summarize(_ parts: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> PartsSummary {
        var summary = PartsSummary()
        forEachPart(of: parts, in: bytes) { kind, part in
            switch kind {
            case .text: summary.text.add(part.text, in: bytes)
            case .reasoning: summary.reasoning.add(part.text, in: bytes)
            case .toolCall: summary.toolCalls += 1
            }
        }
        return summary
    }

    /// Writes one string: the text of every part of `wanted` kind (`.text` or `.reasoning`), joined.
    static func writeJoined(
        _ wanted: PartKind, _ summary: PartsSummary, of parts: UpstreamJSON.Value?, from body: [UInt8],
        to json: inout JSONWriter
    ) {
        let pieces = wanted == .text ? summary.text : summary.reasoning
        pieces.write(from: body, to: &json) { piece in
            forEachPart(of: parts, in: body.span) { kind, part in
                if kind == wanted, let text = part.text { piece(text) }
            }
        }
    }

    /// Writes each function call of `parts` as an OpenAI tool call (the elements of a `tool_calls` array).
    /// - Parameters:
    ///   - parts: the candidate's `content.parts` array, by range in `body`.
    ///   - body: the upstream bytes `parts` points into.
    ///   - toolCounter: the next `call_<n>` id; advanced for each call.
    ///   - streamIndex: for chunk deltas, the `index` of the first call (then counting up); nil in a response.
    ///   - json: where the calls are written.
    /// - Returns: the number of calls written.
    @discardableResult
    static func writeToolCalls(
        of parts: UpstreamJSON.Value?, from body: [UInt8], toolCounter: inout Int, streamIndex: Int?,
        to json: inout JSONWriter
    ) -> Int {
        let bytes = body.span
        var written = 0
        forEachPart(of: parts, in: bytes) { kind, part in
            guard kind == .toolCall else { return }
            var name: UpstreamJSON.Value?
            var args: UpstreamJSON.Value?
            if let call = part.functionCall {
                UpstreamJSON.forEachMember(of: call, in: bytes) { member in
                    if member.key("name", in: bytes) {
                        name = member.value
                    } else if member.key("args", in: bytes) {
                        args = member.value
                    }
                }
            }
            json.beginObject()
            if let streamIndex {
                json.key("index")
                json.int(streamIndex &+ written)
            }
            json.key("id")
            json.beginRawValue()
            json.bytes.append(contentsOf: "\"call_".utf8)
            writeDigits(toolCounter, to: &json.bytes)
            json.bytes.append(JSONByte.quote)
            json.endRawValue()
            json.key("type")
            json.string("function")
            json.key("function")
            json.beginObject()
            json.key("name")
            UpstreamJSON.writeString(name, from: body, or: "", to: &json)
            json.key("arguments")
            // OpenAI carries arguments as a string of JSON: `args` compacted, `{}` when there are none.
            if let args { UpstreamJSON.writeCompactAsString(args, from: body, to: &json) } else { json.string("{}") }
            json.endObject()
            if UpstreamJSON.isString(part.thoughtSignature, in: bytes) {
                // Google's OpenAI-compatibility field; the request translator sends it back as `thoughtSignature`.
                json.key("extra_content")
                json.beginObject()
                json.key("google")
                json.beginObject()
                json.key("thought_signature")
                UpstreamJSON.writeString(part.thoughtSignature, from: body, or: "", to: &json)
                json.endObject()
                json.endObject()
            }
            json.endObject()
            toolCounter &+= 1
            written &+= 1
        }
        return written
    }

    /// Appends the decimal digits of a non-negative counter.
    private static func writeDigits(_ value: Int, to bytes: inout [UInt8]) {
        var writer = JSONWriter()
        swap(&writer.bytes, &bytes)
        writer.int(value)
        swap(&writer.bytes, &bytes)
    }

    // MARK: - Usage

    /// Token usage from the `usageMetadata` object at `value`, or nil when there is none.
    ///
    /// `promptTokenCount` already includes `cachedContentTokenCount`. Thinking tokens are reported apart from
    /// `candidatesTokenCount` but billed as output, so they are added to the completion tokens (as OpenAI counts
    /// reasoning tokens). Tool-use prompt tokens (e.g. search results fed back to the model) are billed as input.
    static func usage(fromMetadataAt value: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> TokenUsage? {
        guard let value, UpstreamJSON.kind(of: value, in: bytes) == .object else { return nil }
        var prompt: UpstreamJSON.Value?
        var toolUsePrompt: UpstreamJSON.Value?
        var candidates: UpstreamJSON.Value?
        var thoughtsCount: UpstreamJSON.Value?
        var cachedCount: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: value, in: bytes) { member in
            if member.key("promptTokenCount", in: bytes) {
                prompt = member.value
            } else if member.key("candidatesTokenCount", in: bytes) {
                candidates = member.value
            } else if member.key("thoughtsTokenCount", in: bytes) {
                thoughtsCount = member.value
            } else if member.key("cachedContentTokenCount", in: bytes) {
                cachedCount = member.value
            } else if member.key("toolUsePromptTokenCount", in: bytes) {
                toolUsePrompt = member.value
            }
        }
        var reader = TokenCountReader()
        let thoughts = reader.count(thoughtsCount, in: bytes)
        let input = reader.sum(reader.count(prompt, in: bytes), reader.count(toolUsePrompt, in: bytes))
        let output = reader.sum(reader.count(candidates, in: bytes), thoughts)
        let cached = reader.count(cachedCount, in: bytes)
        return TokenUsage(
            inputTokens: input, outputTokens: output, cachedInputTokens: cached, reasoningTokens: thoughts,
            isClamped: reader.clamped)
    }
}

// The OpenAI shapes every translated backend answers in: one writer for a `chat.completion` body, one for the
// `chat.completion.chunk` SSE events of a stream, one for the `usage` object. The Anthropic, Gemini and Bedrock
// Converse translators (responses and streams) write only the members that are theirs (message content, deltas)
// between the calls of these writers, so the envelope, the member order and the usage shape cannot drift apart.
//
// Usage, for every provider, as OpenAI writes it:
//
//     "usage": {
//       "prompt_tokens": 132,            all prompt tokens, cache reads and writes included
//       "completion_tokens": 57,         all output tokens, reasoning included
//       "total_tokens": 189,             the two summed (saturating at TokenUsage.maxCount)
//       "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
//       "completion_tokens_details": {"reasoning_tokens": 20}
//     }
//
// - `prompt_tokens_details.cached_tokens` is always written: every provider here reports cache reads, so 0 is
//   a reported 0.
// - `prompt_tokens_details.cache_write_tokens` is the hub's extension for cache writes (Anthropic cache
//   creation, Bedrock cache write; see `AnthropicTranslator`'s header), written only when non-zero so that
//   without writes the object is OpenAI's own. `OpenAICompatible.usage` reads it back (and EAIG's older
//   top-level `cache_creation_tokens`), so the gateway meters the writes an Anthropic client is shown.
// - `completion_tokens_details.reasoning_tokens` is written only for a provider that counts reasoning apart
//   (Gemini's `thoughtsTokenCount`, 0 included). Anthropic and Bedrock bill thinking inside their output count
//   without a breakdown: a 0 there would be false, so the member is left out, as OpenAI-compatible servers
//   without reasoning counts do.
// - Embeddings carry OpenAI's embedding usage, `{"prompt_tokens", "total_tokens"}`.
//
// A `chat.completion` choice always has `logprobs: null`, as OpenAI's has; chunks leave it out (OpenAI's SDKs
// default it) so that every streamed delta stays as small as it can be.

/// Writes OpenAI `usage` objects.
enum OpenAIUsageWriter {
    /// Writes `usage` as the object value of the member the caller has keyed.
    /// - Parameters:
    ///   - usage: the counts to write.
    ///   - reasoningReported: whether the provider counts reasoning tokens apart from output tokens.
    ///   - writer: where the object is written.
    static func write(_ usage: TokenUsage, reasoningReported: Bool, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("prompt_tokens")
        writer.int(usage.inputTokens)
        writer.key("completion_tokens")
        writer.int(usage.outputTokens)
        writer.key("total_tokens")
        writer.int(usage.totalTokens)
        writer.key("prompt_tokens_details")
        writer.beginObject()
        writer.key("cached_tokens")
        writer.int(usage.cachedInputTokens)
        if usage.cacheWriteInputTokens > 0 {
            writer.key("cache_write_tokens")
            writer.int(usage.cacheWriteInputTokens)
        }
        writer.endObject()
        if reasoningReported {
            writer.key("completion_tokens_details")
            writer.beginObject()
            writer.key("reasoning_tokens")
            writer.int(usage.reasoningTokens)
            writer.endObject()
        }
        writer.endObject()
    }

    /// Writes an embeddings response's `usage` value: prompt and total tokens.
    static func writeEmbeddings(_ usage: TokenUsage, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("prompt_tokens")
        writer.int(usage.inputTokens)
        writer.key("total_tokens")
        writer.int(usage.inputTokens)
        writer.endObject()
    }
}

/// Writes one OpenAI `chat.completion` body, in OpenAI's member order:
/// `begin` (id, object, created, model, `choices: [`), for each choice `beginChoice`, the message's members
/// after `role` written by the caller into `json`, `endChoice`; then `endChoices` (usage), members that follow
/// usage (`service_tier`) written by the caller, and `finish`.
struct OpenAIChatCompletionWriter {
    var json: JSONWriter

    /// - Parameter capacity: the body's expected size; the translators pass the upstream body's size plus a
    ///   margin, so the body is one allocation.
    init(reservingCapacity capacity: Int) {
        json = JSONWriter(reservingCapacity: capacity)
    }

    /// `{"id":<id>,"object":"chat.completion","created":…,"model":…,"choices":[`; `id` writes the id value.
    mutating func begin(created: Int64, model: String, id: (inout JSONWriter) -> Void) {
        json.beginObject()
        json.key("id")
        id(&json)
        json.key("object")
        json.string("chat.completion")
        json.key("created")
        json.int(created)
        json.key("model")
        json.string(model)
        json.key("choices")
        json.beginArray()
    }

    /// `{"index":…,"message":{"role":"assistant"`, leaving the message open for its other members.
    mutating func beginChoice(index: Int) {
        json.beginObject()
        json.key("index")
        json.int(index)
        json.key("message")
        json.beginObject()
        json.key("role")
        json.string("assistant")
    }

    /// One `tool_calls` entry with every value copied from the upstream body `source`:
    /// `{"id":…,"type":"function","function":{"name":…,"arguments":…}}`. OpenAI carries the
    /// arguments as a string of JSON: `input` compacted, `{}` when there is none.
    mutating func appendToolCall(
        id: UpstreamJSON.Value?, name: UpstreamJSON.Value?, input: UpstreamJSON.Value?, from source: [UInt8]
    ) {
        json.beginObject()
        json.key("id")
        UpstreamJSON.writeString(id, from: source, or: "", to: &json)
        json.key("type")
        json.string("function")
        json.key("function")
        json.beginObject()
        json.key("name")
        UpstreamJSON.writeString(name, from: source, or: "", to: &json)
        json.key("arguments")
        if let input {
            UpstreamJSON.writeCompactAsString(input, from: source, to: &json)
        } else {
            json.string("{}")
        }
        json.endObject()
        json.endObject()
    }

    /// Closes the message: `},"logprobs":null,"finish_reason":…}`.
    mutating func endChoice(finishReason: String) {
        json.endObject()
        json.key("logprobs")
        json.null()
        json.key("finish_reason")
        json.string(finishReason)
        json.endObject()
    }

    /// `],"usage":{…}`.
    mutating func endChoices(usage: TokenUsage, reasoningReported: Bool) {
        json.endArray()
        json.key("usage")
        OpenAIUsageWriter.write(usage, reasoningReported: reasoningReported, to: &json)
    }

    /// Closes the body and hands it over.
    mutating func finish() -> [UInt8] {
        json.endObject()
        return json.bytes
    }
}

/// Writes the `chat.completion.chunk` SSE events of one stream: `data: {…}\n\n` frames, then `data: [DONE]\n\n`.
///
/// Every chunk repeats `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":`; that prefix
/// (with `data: `) is encoded once per stream and copied into each event.
struct OpenAIChunkWriter: Sendable {
    let created: Int64
    let model: String
    /// The id while no prefix has been built from it.
    private var id: String
    /// `data: {"id":…,…,"choices":`, built on first use and when the id changes.
    private var prefix: [UInt8] = []

    init(id: String, created: Int64, model: String) {
        self.id = id
        self.created = created
        self.model = model
    }

    /// Uses `id` for the chunks from now on.
    mutating func setID(_ id: String) {
        self.id = id
        prefix = []
    }

    /// Uses the string `value` of `source` (after `idPrefix`) as the id from now on; ignored if not a string.
    mutating func setID(_ value: UpstreamJSON.Value, from source: [UInt8], idPrefix: String = "") {
        guard UpstreamJSON.isString(value, in: source.span) else { return }
        var writer = Self.prefixWriter(capacity: value.range.count + idPrefix.utf8.count + model.utf8.count + 96)
        UpstreamJSON.writeString(value, from: source, prefix: idPrefix, or: "", to: &writer)
        prefix = Self.prefixTail(writer, created: created, model: model)
    }

    /// Appends one chunk of one choice: `{"index":…,"delta":{` the role when `role`, the members `delta` writes,
    /// `},"finish_reason":…}`.
    /// - Parameters:
    ///   - out: the client stream the chunk is appended to.
    ///   - index: the choice's index.
    ///   - role: whether the delta opens with `"role":"assistant"` (the stream's first chunk).
    ///   - finishReason: the choice's finish reason, or nil (`null`).
    ///   - reserving: the room the delta's members are likely to take (the size of the upstream event
    ///     they come from), so that the chunk is written without regrowing `out`.
    ///   - delta: writes the delta's members.
    mutating func appendDelta(
        to out: inout [UInt8], index: Int = 0, role: Bool, finishReason: String? = nil, reserving: Int = 0,
        _ delta: (inout JSONWriter) -> Void
    ) {
        buildPrefixIfNeeded()
        var writer = JSONWriter()
        swap(&writer.bytes, &out)
        Self.reserve(&writer.bytes, additional: prefix.count + 96 + reserving)
        writer.bytes.append(contentsOf: prefix)
        writer.beginArray()
        writer.beginObject()
        writer.key("index")
        writer.int(index)
        writer.key("delta")
        writer.beginObject()
        if role {
            writer.key("role")
            writer.string("assistant")
        }
        delta(&writer)
        writer.endObject()
        writer.key("finish_reason")
        if let finishReason { writer.string(finishReason) } else { writer.null() }
        writer.endObject()
        writer.endArray()
        Self.endEvent(&writer.bytes)
        swap(&writer.bytes, &out)
    }

    /// Appends the usage chunk: `"choices":[]` and the usage object.
    mutating func appendUsage(_ usage: TokenUsage, reasoningReported: Bool, to out: inout [UInt8]) {
        buildPrefixIfNeeded()
        var writer = JSONWriter()
        swap(&writer.bytes, &out)
        Self.reserve(&writer.bytes, additional: prefix.count + 192)
        writer.bytes.append(contentsOf: prefix)
        writer.beginArray()
        writer.endArray()
        writer.bytes.append(JSONByte.comma)
        writer.key("usage")
        OpenAIUsageWriter.write(usage, reasoningReported: reasoningReported, to: &writer)
        Self.endEvent(&writer.bytes)
        swap(&writer.bytes, &out)
    }

    /// Appends `data: [DONE]\n\n`.
    static func appendDone(to out: inout [UInt8]) {
        SSEWriter.appendDone(to: &out)
    }

    /// Ends a stream with an error: headers are sent, so the error is an OpenAI error event, then `[DONE]`.
    static func appendError(_ error: GatewayError, to out: inout [UInt8]) {
        SSEWriter.appendData(error.body(for: .openAI), to: &out)
        SSEWriter.appendDone(to: &out)
    }

    /// Makes room for `additional` bytes, growing geometrically (a bare `reserveCapacity` per event would
    /// reallocate on every event).
    static func reserve(_ out: inout [UInt8], additional: Int) {
        let needed = out.count + max(additional, 0)
        if needed > out.capacity { out.reserveCapacity(max(needed, out.capacity * 2)) }
    }

    // MARK: - Private

    private mutating func buildPrefixIfNeeded() {
        guard prefix.isEmpty else { return }
        var writer = Self.prefixWriter(capacity: id.utf8.count + model.utf8.count + 96)
        writer.string(id)
        prefix = Self.prefixTail(writer, created: created, model: model)
    }

    /// `data: {"id":` with the id value still to write.
    private static func prefixWriter(capacity: Int) -> JSONWriter {
        var writer = JSONWriter(reservingCapacity: capacity)
        writer.bytes.append(contentsOf: "data: ".utf8)
        writer.beginObject()
        writer.key("id")
        return writer
    }

    /// The members after the id, up to `"choices":`.
    private static func prefixTail(_ writer: JSONWriter, created: Int64, model: String) -> [UInt8] {
        var writer = writer
        writer.key("object")
        writer.string("chat.completion.chunk")
        writer.key("created")
        writer.int(created)
        writer.key("model")
        writer.string(model)
        writer.key("choices")
        return writer.bytes
    }

    /// `}` closing the chunk object (opened in the prefix) and the event's blank line.
    private static func endEvent(_ bytes: inout [UInt8]) {
        bytes.append(JSONByte.closeBrace)
        bytes.append(0x0A)
        bytes.append(0x0A)
    }
}

// OpenAI and OpenAI-compatible backends (vLLM, SGLang, TGI, Groq, Azure OpenAI, ...): the body passes through.
//
// Only byte-level edits are made, each located with `JSONScanner` so every other byte stays identical:
//  - the top-level `model` value becomes the upstream model when it differs;
//  - for a streaming request whose usage the gateway must meter, `stream_options.include_usage` is forced to
//    `true` upstream, and `OpenAIStreamUsageFilter` later drops the final usage chunk if the client itself did
//    not ask for it.
// Errors pass through when they are OpenAI-shaped; anything else (an HTML 502 page) is wrapped.

/// Helpers for OpenAI-schema backends.
public enum OpenAICompatible {
    /// A request ready for an OpenAI-compatible upstream.
    public struct PreparedRequest: Sendable, Equatable {
        public var body: [UInt8]
        /// Whether the request streams (`"stream": true`).
        public var stream: Bool
        /// Whether the client itself asked for `stream_options.include_usage`; when false and usage was forced,
        /// the response must go through `OpenAIStreamUsageFilter(clientWantsUsage: false)`.
        public var clientWantsUsage: Bool
        /// Whether `include_usage` was forced on the upstream request.
        public var forcedUsage: Bool
    }

    /// Prepares a client body for an OpenAI-compatible upstream.
    /// - Parameters:
    ///   - body: The client's request (chat completions, completions or embeddings).
    ///   - context: `upstreamModel` replaces the top-level `model` when it differs.
    ///   - forceStreamUsage: For a streaming request, make the upstream report usage (costs or quotas are on).
    /// - Throws: `TranslateError` (400) if the body is not a JSON object, or has two `model` or `stream_options`
    ///   members (routing on one while the upstream reads the other must not be possible).
    public static func prepareRequest(_ body: [UInt8], context: TranslationContext, forceStreamUsage: Bool)
        throws(TranslateError) -> PreparedRequest
    {
        let scanner = JSONScanner(body)
        var model: Range<Int>?
        var stream: Range<Int>?
        var streamOptions: Range<Int>?
        var duplicate: String?
        var memberCount = 0
        do {
            try scanner.forEachTopLevelMember { member in
                memberCount += 1
                if scanner.key(of: member, equals: "model") {
                    if model != nil { duplicate = "model" }
                    model = member.value
                } else if scanner.key(of: member, equals: "stream") {
                    if stream != nil { duplicate = "stream" }
                    stream = member.value
                } else if scanner.key(of: member, equals: "stream_options") {
                    if streamOptions != nil { duplicate = "stream_options" }
                    streamOptions = member.value
                }
            }
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
        guard let open = firstNonWhitespace(body), body[open] == JSONByte.openBrace else {
            throw .invalidBody("The request body must be a JSON object.")
        }
        if let duplicate { throw .invalidBody("Duplicate '\(duplicate)' member.", param: duplicate) }

        var edits: [(range: Range<Int>, bytes: [UInt8])] = []
        /// Members to insert right after the top-level `{`.
        var inserted: [[UInt8]] = []

        if let model {
            if scanner.stringValue(at: model) != context.upstreamModel {
                edits.append((model, JSONWriter.escaped(context.upstreamModel)))
            }
        } else if !context.upstreamModel.isEmpty {
            inserted.append(Array("\"model\":".utf8) + JSONWriter.escaped(context.upstreamModel))
        }

        let streaming = stream.flatMap { scanner.boolValue(at: $0) } ?? false
        var clientWantsUsage = false
        var forced = false
        if streaming {
            if let options = streamOptions, scanner.kind(at: options) == .object {
                let usage = try includeUsage(in: body, options: options)
                clientWantsUsage = usage.value == true
                if forceStreamUsage && !clientWantsUsage {
                    forced = true
                    if let existing = usage.range {
                        edits.append((existing, Array("true".utf8)))
                    } else {
                        let insertAt = options.lowerBound + 1
                        var member = Array("\"include_usage\":true".utf8)
                        if !usage.objectIsEmpty { member.append(JSONByte.comma) }
                        edits.append((insertAt..<insertAt, member))
                    }
                }
            } else if forceStreamUsage {
                forced = true
                let value = Array("{\"include_usage\":true}".utf8)
                if let options = streamOptions {
                    edits.append((options, value))
                } else {
                    inserted.append(Array("\"stream_options\":".utf8) + value)
                }
            }
        }

        if !inserted.isEmpty {
            var bytes: [UInt8] = []
            for (index, member) in inserted.enumerated() {
                if index > 0 { bytes.append(JSONByte.comma) }
                bytes += member
            }
            if memberCount > 0 { bytes.append(JSONByte.comma) }
            edits.append(((open + 1)..<(open + 1), bytes))
        }

        var output = body
        // Apply from the back so earlier ranges stay valid; the ranges never overlap (distinct members).
        for edit in edits.sorted(by: { $0.range.lowerBound > $1.range.lowerBound }) {
            output.replaceSubrange(edit.range, with: edit.bytes)
        }
        return PreparedRequest(body: output, stream: streaming, clientWantsUsage: clientWantsUsage, forcedUsage: forced)
    }

    /// Replaces only the top-level `model` value (inserting one if absent); every other byte is kept.
    /// - Throws: `TranslateError` (400) as `prepareRequest`.
    public static func rewriteModel(_ body: [UInt8], to model: String) throws(TranslateError) -> [UInt8] {
        try prepareRequest(
            body, context: TranslationContext(upstreamModel: model, requestModel: model), forceStreamUsage: false
        ).body
    }

    /// `stream_options.include_usage`: its value range, its boolean value, and whether the object is empty.
    private static func includeUsage(in body: [UInt8], options: Range<Int>) throws(TranslateError)
        -> (range: Range<Int>?, value: Bool?, objectIsEmpty: Bool)
    {
        guard options.lowerBound >= 0, options.upperBound <= body.count else { return (nil, nil, true) }
        let span = body.span.extracting(options)
        var count = 0
        let found: Range<Int>?
        do {
            found = try JSONScanner.findTopLevel("include_usage", in: span)
            try JSONScanner.forEachTopLevelMember(in: span) { _ in count += 1 }
        } catch {
            throw .invalidBody("Invalid 'stream_options': \(error.description)", param: "stream_options")
        }
        guard let found else { return (nil, nil, count == 0) }
        let absolute = (options.lowerBound + found.lowerBound)..<(options.lowerBound + found.upperBound)
        return (absolute, JSONScanner.boolValue(at: found, in: span), count == 0)
    }

    private static func firstNonWhitespace(_ body: [UInt8]) -> Int? {
        body.firstIndex { !JSONByte.isWhitespace($0) }
    }

    // MARK: - Azure OpenAI

    /// An Azure OpenAI deployment operation.
    public enum AzureOperation: String, Sendable, CaseIterable {
        case chatCompletions = "chat/completions"
        case completions
        case embeddings
    }

    /// `/openai/deployments/{deployment}/{operation}?api-version={version}`, with the deployment and version
    /// percent-encoded so neither can change the path or add query parameters.
    public static func azurePath(deployment: String, operation: AzureOperation, apiVersion: String) -> String {
        "/openai/deployments/" + Gemini.percentEncoded(deployment) + "/" + operation.rawValue + "?api-version="
            + Gemini.percentEncoded(apiVersion)
    }

    // MARK: - Errors

    /// The error body to send the client for an upstream error response.
    ///
    /// A JSON object with a top-level `error` passes through byte for byte. Anything else (an HTML 502 page from a
    /// load balancer, FastAPI's `{"detail": ...}`, vLLM's flat `{"object":"error","message":...}`) is wrapped
    /// into OpenAI's error shape with the same status.
    public static func errorBody(status: UInt32, body: [UInt8]) -> [UInt8] {
        let scanner = JSONScanner(body)
        if let error = try? scanner.findTopLevel("error"), scanner.kind(at: error) == .object {
            return body
        }
        var message: String?
        for key in ["message", "detail"] {
            if let range = try? scanner.findTopLevel(key), let text = scanner.stringValue(at: range) {
                message = text
                break
            }
        }
        let text = message ?? "Upstream returned HTTP \(status): " + Gemini.snippet(body)
        return GatewayError(
            status: status, type: Gemini.openAIType(forStatus: status), code: "upstream_error", message: text
        ).body(for: .openAI)
    }

    // MARK: - Usage

    /// Token usage from an OpenAI response body or stream chunk, or nil if it has no (non-null) `usage` object.
    ///
    /// One validating pass over the document, then one walk over `usage` and its two detail objects: a
    /// search per field would lex the usage object seven times. As everywhere an upstream's JSON is read,
    /// the last of repeated member names wins, which is the usage the client's own parser shows it.
    public static func usage(fromResponse body: [UInt8]) -> TokenUsage? {
        let span = body.span
        var usage: UpstreamJSON.Value?
        do throws(JSONParseError) {
            try UpstreamJSON.scanTopLevel(span) { member in
                if member.key("usage", in: span) { usage = member.value }
            }
        } catch {
            return nil
        }
        guard UpstreamJSON.kind(of: usage, in: span) == .object else { return nil }
        return Self.usage(ofUsageObject: usage, in: span)
    }

    /// The counts of an OpenAI `usage` object (all zero when `usage` is absent or not an object), each
    /// range-checked (`TokenCountReader`): one walk over it and its two detail objects.
    static func usage(ofUsageObject usage: UpstreamJSON.Value?, in span: Span<UInt8>) -> TokenUsage {
        var prompt: UpstreamJSON.Value?
        var completion: UpstreamJSON.Value?
        var promptDetails: UpstreamJSON.Value?
        var completionDetails: UpstreamJSON.Value?
        var cacheCreation: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: usage, in: span) { member in
            if member.key("prompt_tokens", in: span) {
                prompt = member.value
            } else if member.key("completion_tokens", in: span) {
                completion = member.value
            } else if member.key("prompt_tokens_details", in: span) {
                promptDetails = member.value
            } else if member.key("completion_tokens_details", in: span) {
                completionDetails = member.value
            } else if member.key("cache_creation_tokens", in: span) {
                cacheCreation = member.value
            }
        }
        var cached: UpstreamJSON.Value?
        var cacheWrite: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: promptDetails, in: span) { member in
            if member.key("cached_tokens", in: span) {
                cached = member.value
            } else if member.key("cache_write_tokens", in: span) {
                cacheWrite = member.value
            }
        }
        var reasoning: UpstreamJSON.Value?
        UpstreamJSON.forEachMember(of: completionDetails, in: span) { member in
            if member.key("reasoning_tokens", in: span) { reasoning = member.value }
        }
        var reader = TokenCountReader()
        var result = TokenUsage(inputTokens: reader.count(prompt, in: span), outputTokens: reader.count(completion, in: span))
        result.cachedInputTokens = reader.count(cached, in: span)
        // Cache writes, as the hub carries them (our extension first, the older top-level name
        // second), so they are metered and priced as the Anthropic client stage shows them.
        result.cacheWriteInputTokens = reader.count(cacheWrite ?? cacheCreation, in: span)
        result.reasoningTokens = reader.count(reasoning, in: span)
        result.isClamped = reader.clamped
        return result
    }
}

// MARK: - Stream usage filter

/// Passes an OpenAI SSE stream through byte for byte while reading usage from it, and drops the final usage chunk
/// (`"choices": []` with `usage`) when the gateway forced `include_usage` and the client did not ask for it.
///
/// Events are buffered only until their terminating blank line; an event larger than `maxEventBytes` is passed
/// through unexamined rather than buffered.
public struct OpenAIStreamUsageFilter: Sendable {
    public let clientWantsUsage: Bool
    public let maxEventBytes: Int
    /// The last usage seen in the stream, if any.
    public private(set) var usage: TokenUsage?

    private var pending: [UInt8] = []
    private var lineLength = 0
    private var eventHasLines = false
    private var lastWasCR = false
    /// The event just dropped ended with a CR whose LF has not arrived yet; that LF is dropped with it.
    private var dropPendingLF = false
    /// The current event outgrew `maxEventBytes` and streams through untouched until its end.
    private var passingThrough = false
    /// `data: [DONE]` went by: later events pass through unread.
    private var sawDone = false

    public init(clientWantsUsage: Bool, maxEventBytes: Int = 1024 * 1024) {
        self.clientWantsUsage = clientWantsUsage
        self.maxEventBytes = maxEventBytes
    }

    /// Feeds upstream bytes; returns the bytes to send to the client now.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for byte in chunk {
            let afterCR = lastWasCR
            lastWasCR = byte == 0x0D
            let dropLF = dropPendingLF
            dropPendingLF = false
            if byte == 0x0A && afterCR {
                if dropLF { continue }
                // The LF of a CRLF whose CR already ended the line.
                if passingThrough || eventHasLines || !pending.isEmpty { append(byte, &out) } else { out.append(byte) }
                continue
            }
            append(byte, &out)
            guard byte == 0x0D || byte == 0x0A else {
                lineLength &+= 1
                continue
            }
            if lineLength > 0 {
                eventHasLines = true
                lineLength = 0
            } else if eventHasLines {
                dispatch(&out)
            } else if !passingThrough {
                // Blank lines between events carry nothing to inspect.
                out += pending
                pending.removeAll(keepingCapacity: true)
            }
        }
        return out
    }

    /// Flushes an unterminated last event.
    public mutating func finish() -> [UInt8] {
        var out: [UInt8] = []
        if !pending.isEmpty { dispatch(&out) }
        return out
    }

    private mutating func append(_ byte: UInt8, _ out: inout [UInt8]) {
        if passingThrough {
            out.append(byte)
            return
        }
        pending.append(byte)
        if pending.count > maxEventBytes {
            passingThrough = true
            out += pending
            pending.removeAll(keepingCapacity: true)
        }
    }

    private mutating func dispatch(_ out: inout [UInt8]) {
        defer {
            pending.removeAll(keepingCapacity: true)
            eventHasLines = false
            lineLength = 0
            passingThrough = false
        }
        guard !passingThrough else { return }
        guard !sawDone else {
            out += pending
            return
        }
        let data = Self.data(of: pending)
        if data.elementsEqual("[DONE]".utf8) {
            // The stream is over for clients; nothing after it is usage the client was shown.
            sawDone = true
            out += pending
            return
        }
        if let found = OpenAICompatible.usage(fromResponse: data) {
            usage = found
            if !clientWantsUsage && Self.hasEmptyChoices(data) {
                dropPendingLF = pending.last == 0x0D
                return
            }
        }
        out += pending
    }

    /// The `data:` lines of one raw event, joined with "\n".
    static func data(of event: [UInt8]) -> [UInt8] {
        var data: [UInt8] = []
        var sawData = false
        var index = 0
        while index < event.count {
            var end = index
            while end < event.count && event[end] != 0x0A && event[end] != 0x0D { end += 1 }
            let line = event[index..<end]
            if line.starts(with: "data:".utf8) {
                var value = line.dropFirst(5)
                if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
                if sawData { data.append(0x0A) }
                data += value
                sawData = true
            }
            index = end + 1
        }
        return data
    }

    /// Whether the chunk's `choices` is an empty array (OpenAI's final usage chunk).
    static func hasEmptyChoices(_ data: [UInt8]) -> Bool {
        let span = data.span
        guard let choices = try? JSONScanner.findTopLevel("choices", in: span),
            JSONScanner.kind(at: choices, in: span) == .array
        else { return false }
        var index = choices.lowerBound + 1
        while index < choices.upperBound && JSONByte.isWhitespace(data[index]) { index += 1 }
        return index < data.count && data[index] == JSONByte.closeBracket
    }
}

// Images and audio: OpenAI's `POST /v1/images/generations`, `/v1/audio/speech`,
// `/v1/audio/transcriptions` and `/v1/audio/translations`, to OpenAI-shaped backends only.
//
// | endpoint              | request            | OpenAI (and compatible)   | Azure OpenAI (deployment path)                   |
// | images/generations    | JSON               | /v1/images/generations    | /openai/deployments/{d}/images/generations?api-… |
// | audio/speech          | JSON → audio bytes | /v1/audio/speech          | /openai/deployments/{d}/audio/speech?api-…       |
// | audio/transcriptions  | multipart          | /v1/audio/transcriptions  | /openai/deployments/{d}/audio/transcriptions?…   |
// | audio/translations    | multipart          | /v1/audio/translations    | /openai/deployments/{d}/audio/translations?…     |
//
// The paths are the adapters' (`ProviderAdapter.mediaPath`); every other backend schema keeps the
// default (none) and answers 400 `unsupported_endpoint`. Bodies pass through; the only edit is a
// model override where the backend reads the model from the body (`mediaModelInBody`: OpenAI; a
// JSON `model` member, or the multipart `model` part, by byte edit; Azure reads the deployment
// from the path and ignores the body's model, as for chat).
//
// Metering: the answer's usage is read where it reports one, else what can be counted is:
// - images: `usage` (gpt-image-1: tokens), else the number of images returned;
// - speech: the input's characters, counted from the request (the answer is audio, streamed
//   through untouched, and its usage is reported with the response headers);
// - transcriptions, translations: `usage` (`type: tokens` for the gpt-4o transcribe models,
//   `type: duration` in seconds for whisper), else verbose_json's `duration`; a text answer
//   (`text`, `srt`, `vtt`) reports nothing.
// The counts go into `TokenUsage` as the model's billing units (`UsageUnit`), priced by the price
// table's per-million rates (`input` for characters and seconds, `output` for images), and only
// token counts are recorded in the token metrics.

/// What a usage report counts.
public enum UsageUnit: String, Sendable, Equatable, CaseIterable {
    case tokens
    /// Speech: input characters (in `inputTokens`).
    case characters
    /// Transcription and translation by duration: audio seconds, rounded up (in `inputTokens`).
    case seconds
    /// Images returned (in `outputTokens`).
    case images
}

extension Endpoint {
    /// The images and audio endpoints.
    public var isMedia: Bool {
        switch self {
        case .imagesGenerations, .audioSpeech, .audioTranscriptions, .audioTranslations: true
        default: false
        }
    }

    /// The model is read from a `multipart/form-data` body.
    public var readsMultipart: Bool { self == .audioTranscriptions || self == .audioTranslations }

    /// The answer streams through untouched while its usage was counted from the request (speech):
    /// the cost is known with the response headers, which are not held for it.
    public var usageKnownBeforeAnswer: Bool { self == .audioSpeech }

    static func classifyMedia(_ route: ArraySlice<UInt8>) -> Endpoint? {
        if route.elementsEqual("/v1/images/generations".utf8) { return .imagesGenerations }
        if route.elementsEqual("/v1/audio/speech".utf8) { return .audioSpeech }
        if route.elementsEqual("/v1/audio/transcriptions".utf8) { return .audioTranscriptions }
        if route.elementsEqual("/v1/audio/translations".utf8) { return .audioTranslations }
        return nil
    }

    /// `gen_ai.operation.name` (the GenAI conventions name none for these: ours, in their style).
    var mediaOperationName: String {
        switch self {
        case .imagesGenerations: "image_generation"
        case .audioSpeech: "text_to_speech"
        case .audioTranscriptions: "transcription"
        default: "translation"
        }
    }

    /// The OpenAI operation path after `/v1/`.
    var mediaOperation: String {
        switch self {
        case .imagesGenerations: "images/generations"
        case .audioSpeech: "audio/speech"
        case .audioTranscriptions: "audio/transcriptions"
        default: "audio/translations"
        }
    }
}

public enum MediaEndpoints {
    // MARK: - Routing

    /// The routing facts of a transcription or translation form: its `model` field, and `stream`.
    /// - Throws: `GatewayError` 400 for a body that is not readable multipart, or has no usable
    ///   `model` field.
    public static func summary(multipart body: [UInt8], contentType: String?) throws(GatewayError) -> RequestSummary {
        let boundary = try MultipartForm.boundary(contentType: contentType)
        let form = try MultipartForm.read(body, boundary: boundary)
        guard let model = try form.textField("model", in: body) else {
            throw .invalidParameter("you must provide a model parameter", param: "model", code: "missing_model")
        }
        guard !model.isEmpty else {
            throw .invalidParameter("Invalid value for 'model': expected a non-empty string.", param: "model", code: "invalid_type")
        }
        var summary = RequestSummary(model: model)
        if let stream = try form.textField("stream", in: body) {
            switch stream.lowercased() {
            case "true": summary.stream = true
            case "false": summary.stream = false
            default:
                throw .invalidParameter("Invalid value for 'stream': expected true or false.", param: "stream", code: "invalid_type")
            }
        }
        return summary
    }

    /// The output the quota admission estimates (`RequestSummary.maxTokens`), in the endpoint's
    /// output unit: an image request's `n` (1 when absent or out of OpenAI's 1...10: the backend
    /// refuses those anyway), nothing for audio (speech and transcripts are metered on input).
    /// Without this the gateway's default output estimate, counted as images, would price a
    /// single dall-e image as a thousand.
    public static func outputEstimate(_ endpoint: Endpoint, body: [UInt8]) -> Int64 {
        guard endpoint == .imagesGenerations else { return 0 }
        let scanner = JSONScanner(body)
        guard let range = try? scanner.findTopLevel("n"), let n = scanner.int64Value(at: range), (1...10).contains(n) else {
            return 1
        }
        return n
    }

    // MARK: - Request

    /// Where the attempt goes: the adapter's path (`ProviderAdapter.mediaPath`); 400 where it has none.
    static func requestPlan(for attempt: ProviderAttempt, adapter: any ProviderAdapter.Type) throws(TranslateError)
        -> UpstreamRequestPlan
    {
        guard let path = adapter.mediaPath(for: attempt) else { throw attempt.unsupportedEndpoint() }
        let endpoint = attempt.endpoint
        let backend = attempt.backend
        let context = attempt.context
        // Speech counts its input's characters from the body.
        let countsRequest = endpoint == .audioSpeech
        return UpstreamRequestPlan(
            path: backend.prefixed(path),
            // A form keeps the client's content-type (its boundary).
            setHeaders: endpoint.readsMultipart ? [] : UpstreamRequestPlan.jsonContentType,
            credential: adapter.credential(for: backend),
            rewritesBody: countsRequest || (adapter.mediaModelInBody && context.upstreamModel != context.requestModel))
    }

    /// The body to send: the client's, with the model overridden where the backend reads it from
    /// the body; speech's input characters are counted into `attempt.requestUsage`.
    static func translateRequest(_ body: [UInt8], attempt: inout ProviderAttempt, adapter: any ProviderAdapter.Type)
        throws(TranslateError) -> [UInt8]
    {
        let context = attempt.context
        if attempt.endpoint == .audioSpeech { attempt.requestUsage = try speechInputUsage(body) }
        guard adapter.mediaModelInBody, context.upstreamModel != context.requestModel else { return body }
        guard attempt.endpoint.readsMultipart else { return try OpenAICompatible.rewriteModel(body, to: context.upstreamModel) }
        let form: MultipartForm
        do throws(GatewayError) {
            form = try MultipartForm.read(body, boundary: try MultipartForm.boundary(contentType: attempt.requestContentType))
        } catch {
            throw TranslateError(status: error.status, code: error.code, message: error.message, param: error.param)
        }
        guard let model = form.parts(named: "model").first else {
            throw .invalidBody("The multipart body has no 'model' field.", param: "model")
        }
        return try MultipartForm.replacing(model, in: body, with: context.upstreamModel)
    }

    /// The characters of a speech request's `input` (OpenAI prices tts-1 per character).
    static func speechInputUsage(_ body: [UInt8]) throws(TranslateError) -> TokenUsage {
        let span = body.span
        var input: UpstreamJSON.Value?
        let kind: JSONKind
        do throws(JSONParseError) {
            kind = try UpstreamJSON.scanTopLevel(span, { member in if member.key("input", in: span) { input = member.value } })
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        guard kind == .object else { throw .invalidBody("The request body must be a JSON object.") }
        guard let text = UpstreamJSON.string(input, in: span) else {
            throw .invalidBody("Invalid type for 'input': expected a string.", param: "input")
        }
        return TokenUsage(inputTokens: TokenUsage.count(text.count))
    }

    // MARK: - Response

    /// Errors pass through (OpenAI's and Azure's are OpenAI-shaped); speech audio passes through
    /// untouched with the usage counted from the request; other answers pass through metered.
    static func responseMode(status: Int, endpoint: Endpoint) -> ResponseMode {
        if status >= 400 { return .passthrough }
        return endpoint == .audioSpeech ? .passthroughReported : .passthroughMetered
    }

    /// The usage an answer reports, or what it lets us count, and its unit.
    /// - Parameters:
    ///   - body: the whole answer (JSON; a streamed answer's SSE events; text formats).
    ///   - endpoint: the client endpoint, which decides the unit when the answer reports no tokens.
    public static func usage(ofAnswer body: [UInt8], endpoint: Endpoint) -> (usage: TokenUsage, unit: UsageUnit) {
        if let first = body.first(where: { !JSONByte.isWhitespace($0) }), first != JSONByte.openBrace {
            // A stream: the last event that carries a usage object (images'
            // `image_generation.completed`, transcription's `transcript.text.done`).
            var found: (TokenUsage, UsageUnit)?
            for event in sseDataPayloads(body) {
                if let usage = usage(ofObject: event, endpoint: endpoint, requireUsage: true) { found = usage }
            }
            return found ?? (TokenUsage(), .tokens)
        }
        return usage(ofObject: body, endpoint: endpoint, requireUsage: false) ?? (TokenUsage(), .tokens)
    }

    /// The usage of one JSON answer object; nil when it is not an object (or, with
    /// `requireUsage`, has no `usage`).
    static func usage(ofObject body: [UInt8], endpoint: Endpoint, requireUsage: Bool) -> (TokenUsage, UsageUnit)? {
        let span = body.span
        var usage: UpstreamJSON.Value?
        var data: UpstreamJSON.Value?
        var duration: UpstreamJSON.Value?
        do throws(JSONParseError) {
            guard
                try UpstreamJSON.scanTopLevel(span, { member in
                    if member.key("usage", in: span) {
                        usage = member.value
                    } else if member.key("data", in: span) {
                        data = member.value
                    } else if member.key("duration", in: span) {
                        duration = member.value
                    }
                }) == .object
            else { return nil }
        } catch {
            return nil
        }
        if UpstreamJSON.kind(of: usage, in: span) == .object {
            if UpstreamJSON.string(UpstreamJSON.member("type", of: usage, in: span), equals: "duration", in: span) {
                var seconds = TokenUsage(inputTokens: 0)
                seconds.inputTokens = secondsCount(UpstreamJSON.member("seconds", of: usage, in: span), in: span, clamped: &seconds.isClamped)
                return (seconds, .seconds)
            }
            if let tokens = ResponsesUsage.read(usage, in: span) { return (tokens, .tokens) }
        }
        if requireUsage { return nil }
        switch endpoint {
        case .imagesGenerations:
            var images = 0
            UpstreamJSON.forEachElement(of: data, in: span) { _ in images += 1 }
            return (TokenUsage(outputTokens: TokenUsage.count(images)), .images)
        case .audioTranscriptions, .audioTranslations:
            guard duration != nil else { return nil }
            var seconds = TokenUsage()
            seconds.inputTokens = secondsCount(duration, in: span, clamped: &seconds.isClamped)
            return (seconds, .seconds)
        default:
            return nil
        }
    }

    /// Audio seconds, rounded up; anything but a number in `0...maxCount` is clamped and noted.
    static func secondsCount(_ value: UpstreamJSON.Value?, in span: Span<UInt8>, clamped: inout Bool) -> Int {
        guard let value, JSONScanner.kind(at: value.range, in: span) == .number,
            let seconds = JSONScanner.doubleValue(at: value.range, in: span)
        else {
            if value != nil { clamped = true }
            return 0
        }
        guard seconds.isFinite, seconds >= 0, seconds <= Double(TokenUsage.maxCount) else {
            clamped = true
            return seconds > 0 ? TokenUsage.maxCount : 0
        }
        return TokenUsage.count(seconds.rounded(.up))
    }

    /// The `data:` payloads of an SSE body, one per event (multi-line data joined with LF).
    static func sseDataPayloads(_ body: [UInt8]) -> [[UInt8]] {
        var payloads: [[UInt8]] = []
        var current: [UInt8]? = nil
        var index = 0
        while index < body.count {
            var end = index
            while end < body.count, body[end] != 10, body[end] != 13 { end += 1 }
            let line = body[index..<end]
            // CRLF, CR or LF ends a line.
            var next = end
            if next < body.count {
                next += 1
                if body[end] == 13, next < body.count, body[next] == 10 { next += 1 }
            }
            index = next
            if line.isEmpty {
                if let payload = current { payloads.append(payload) }
                current = nil
            } else if line.starts(with: "data:".utf8) {
                var value = line.dropFirst(5)
                if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
                if var joined = current {
                    joined.append(10)
                    joined += value
                    current = joined
                } else {
                    current = Array(value)
                }
            }
        }
        if let payload = current { payloads.append(payload) }
        return payloads
    }
}

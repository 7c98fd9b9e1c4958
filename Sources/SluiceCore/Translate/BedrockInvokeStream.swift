// Bedrock InvokeModelWithResponseStream for Claude (binary `application/vnd.amazon.eventstream`) -> Anthropic SSE
// for Anthropic clients, or OpenAI hub chunks (through `AnthropicToOpenAIStream`) for everyone else. The caller
// rewrites the response content type to `text/event-stream`.
//
// Each `chunk` event's payload is `{"bytes":"<base64>"}`, the base64 of one Anthropic stream event's JSON
// (`message_start`, `content_block_delta`, ..., `message_stop`). The event is decoded with the project's one
// base64 decoder (`Base64URL`, which reads both alphabets) and handed to the Anthropic stream machine, so usage,
// tools and thinking read exactly as they do from Anthropic itself.
//
// Incremental like the other stream stages: only an unfinished event-stream message is buffered. Whatever goes
// wrong — an exception message mid-stream, a corrupt frame, a chunk whose bytes are not base64 or not one JSON
// event, a stream cut inside a message or before `message_stop` — ends the client's stream with one error in its
// API's shape (an Anthropic `error` event, or an OpenAI error chunk and `[DONE]`), and nothing after it.

/// Translates a Bedrock InvokeModel event stream of Anthropic events.
public struct BedrockInvokeStream: Sendable, AWSEventStreamStage {
    /// Anthropic clients get Anthropic SSE events; every other client the hub's chat chunks.
    public let emitsAnthropicEvents: Bool
    /// The error the stream ended with, if any.
    public private(set) var failure: GatewayError?

    /// Reads every event: the hub translation, and usage for both kinds of client.
    private var anthropic: AnthropicToOpenAIStream
    var decoder = AWSEventStreamDecoder()
    private var sawMessageStop = false
    private(set) var done = false

    /// Token usage the events reported so far (`message_start` and `message_delta`).
    public var usage: TokenUsage { anthropic.usage }

    public init(context: TranslationContext, emitsAnthropicEvents: Bool) {
        self.emitsAnthropicEvents = emitsAnthropicEvents
        anthropic = AnthropicToOpenAIStream(context: context)
    }

    /// Feeds raw event-stream bytes; returns the client bytes they complete (possibly none).
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] { feedEventStream(chunk) }

    /// End of the upstream body: a stream cut inside a message or before `message_stop` ends with an error.
    public mutating func finish() -> [UInt8] {
        guard !done else { return [] }
        var out: [UInt8] = []
        guard finishEventStream(into: &out) else { return out }
        if emitsAnthropicEvents {
            if !sawMessageStop {
                fail(
                    GatewayError(
                        status: 502, type: "api_error", code: "upstream_stream_truncated",
                        message: "The Bedrock stream ended before the message was complete."), into: &out)
            }
            done = true
            return out
        }
        done = true
        return anthropic.finish()
    }

    // MARK: - Events

    mutating func handle(_ message: AWSEventMessage, into out: inout [UInt8]) {
        switch message.messageType {
        case "exception":
            fail(BedrockError.gatewayError(status: nil, errorType: message.exceptionType, body: message.payload), into: &out)
            return
        case "error":
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("message")
            writer.string(message.headers[":error-message"]?.stringValue ?? "")
            writer.endObject()
            let code = message.headers[":error-code"]?.stringValue
            fail(BedrockError.gatewayError(status: nil, errorType: code, body: writer.bytes), into: &out)
            return
        default:
            break
        }
        // InvokeModel streams carry only `chunk` events; anything else is a later addition with nothing for us.
        guard message.eventType == "chunk" else { return }
        guard let event = Self.anthropicEvent(inChunk: message.payload) else {
            fail(
                TranslateError.badUpstreamResponse(
                    "Bedrock sent a stream chunk that is not {\"bytes\": <base64 of one Anthropic event>}.").gatewayError,
                into: &out)
            return
        }
        let type = event.json[event.type]
        if type.elementsEqual("message_stop".utf8) { sawMessageStop = true }
        if emitsAnthropicEvents {
            Self.appendSSE(event: type, data: event.json, to: &out)
            _ = anthropic.feedEvent(json: event.json)  // usage only
            if type.elementsEqual("error".utf8) { done = true }
        } else {
            out += anthropic.feedEvent(json: event.json)
            if anthropic.error != nil { done = true }
        }
    }

    /// The Anthropic event a `chunk` payload carries: its JSON (on one line) and the range of its `type` name
    /// in it, or nil when the payload is not `{"bytes": "<base64>"}` of a JSON object with a plain `type`
    /// name. Read by range: the base64 text is decoded from the payload's bytes, and the name stays in the
    /// event's (no `String` for either).
    static func anthropicEvent(inChunk payload: [UInt8]) -> (json: [UInt8], type: Range<Int>)? {
        let span = payload.span
        var encoded: UpstreamJSON.Value?
        guard (try? UpstreamJSON.scanTopLevel(span, { member in
            if member.key("bytes", in: span) { encoded = member.value }
        })) == .object, let encoded, UpstreamJSON.isString(encoded, in: span) else { return nil }
        let decoded: [UInt8]?
        if encoded.hasEscapes {
            // Base64 needs no escaping, but JSON allows it (`\/`): decode the string first.
            decoded = UpstreamJSON.string(encoded, in: span).flatMap { Base64URL.decode(Array($0.utf8)) }
        } else {
            let content = (encoded.range.lowerBound + 1)..<(encoded.range.upperBound - 1)
            guard content.lowerBound <= content.upperBound, content.upperBound <= payload.count else { return nil }
            decoded = Base64URL.decode(payload[content])
        }
        guard var json = decoded, let type = typeName(in: json) else { return nil }
        // Valid JSON has line breaks only between tokens, where a space means the same; an SSE data line must
        // hold none.
        for index in json.indices where json[index] == 0x0A || json[index] == 0x0D { json[index] = 0x20 }
        return (json, type)
    }

    /// The range of the `type` name of a JSON object event, if it is a plain name (1 to 64 lower-case letters
    /// and '_', written without escapes), as an SSE `event:` line may carry it.
    private static func typeName(in json: [UInt8]) -> Range<Int>? {
        let bytes = json.span
        var typeValue: UpstreamJSON.Value?
        guard (try? UpstreamJSON.scanTopLevel(bytes, { member in
            if member.key("type", in: bytes) { typeValue = member.value }
        })) == .object, let typeValue, UpstreamJSON.isString(typeValue, in: bytes), !typeValue.hasEscapes else { return nil }
        let name = (typeValue.range.lowerBound + 1)..<(typeValue.range.upperBound - 1)
        guard name.lowerBound < name.upperBound, name.count <= 64, name.upperBound <= json.count,
            json[name].allSatisfy({ (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "_") })
        else { return nil }
        return name
    }

    /// `event: <type>\ndata: <json>\n\n`, as Anthropic frames its events.
    static func appendSSE<Name: Collection<UInt8>>(event: Name, data: [UInt8], to out: inout [UInt8]) {
        // Sized once when it is the chunk's first output (five appends to an empty buffer
        // reallocated it three times); later events grow it geometrically as appends do.
        if out.isEmpty { out.reserveCapacity(event.count + data.count + 16) }
        out.append(contentsOf: "event: ".utf8)
        out.append(contentsOf: event)
        out.append(contentsOf: "\ndata: ".utf8)
        out.append(contentsOf: data)
        out.append(contentsOf: "\n\n".utf8)
    }

    /// Ends the stream with `error` in the client's shape: an Anthropic `error` event, or (through the
    /// Anthropic machine, as an `error` event would) an OpenAI error chunk and `[DONE]`.
    mutating func fail(_ error: GatewayError, into out: inout [UInt8]) {
        guard !done else { return }
        failure = error
        let event = error.body(for: .anthropic)
        if emitsAnthropicEvents {
            Self.appendSSE(event: "error".utf8, data: event, to: &out)
        } else {
            out += anthropic.feedEvent(json: event)
        }
        done = true
    }
}

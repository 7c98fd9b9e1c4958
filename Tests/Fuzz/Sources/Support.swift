// Input framing and invariant checks shared by the targets.
//
// Plain inputs are `[flags] body`; chunked inputs (streams) are
// `[flags] [n] [n little-endian u16 split offsets] body`, where each offset is taken modulo the
// length of the bytes being split, so the fuzzer chooses where a stream is cut into body chunks.

import SluiceCore

/// Fails the run (libFuzzer reports a crash) when an invariant does not hold.
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition {
        fatalError("invariant violated: \(message())", file: file, line: line)
    }
}

struct FuzzInput {
    var flags: UInt8
    var body: [UInt8]
    var splitOffsets: [Int] = []

    /// `[flags] body`.
    init(plain bytes: [UInt8]) {
        flags = bytes.first ?? 0
        body = Array(bytes.dropFirst())
    }

    /// `[flags] [n] [n x u16 LE] body`, n < 16.
    init(chunked bytes: [UInt8]) {
        flags = bytes.first ?? 0
        let count = bytes.count > 1 ? Int(bytes[1] & 0x0F) : 0
        var index = 2
        for _ in 0..<count {
            guard index + 1 < bytes.count else { break }
            splitOffsets.append(Int(bytes[index]) | Int(bytes[index + 1]) << 8)
            index += 2
        }
        body = index < bytes.count ? Array(bytes[index...]) : []
    }

    func flag(_ bit: Int) -> Bool { flags & (1 << UInt8(bit)) != 0 }

    /// `data` cut at the fuzzer's offsets (modulo its length + 1; empty chunks included).
    func chunks(of data: [UInt8]) -> [[UInt8]] {
        let cuts = splitOffsets.map { $0 % (data.count + 1) }.sorted()
        var chunks: [[UInt8]] = []
        var start = 0
        for cut in cuts {
            chunks.append(Array(data[start..<cut]))
            start = cut
        }
        chunks.append(Array(data[start...]))
        return chunks
    }
}

/// Limits that accept any JSON the translators can produce (input depth is bounded by the
/// default limits; translators add a few levels).
let outputLimits = JSONLimits(maxDepth: JSONLimits.maxSupportedDepth, maxBytes: Int.max)

/// Translated output must be valid JSON.
func requireValidJSON(_ bytes: [UInt8], _ what: @autoclosure () -> String) {
    do {
        try JSONScanner(bytes, limits: outputLimits).validate()
    } catch {
        require(false, "\(what()) is not valid JSON (\(error)): \(String(decoding: bytes.prefix(2000), as: UTF8.self))")
    }
}

/// Every usage count a reader reports is a count in 0...TokenUsage.maxCount.
func requireBounded(_ usage: TokenUsage, _ what: @autoclosure () -> String) {
    for (name, value) in [
        ("input", usage.inputTokens), ("output", usage.outputTokens), ("cached", usage.cachedInputTokens),
        ("cacheWrite", usage.cacheWriteInputTokens), ("reasoning", usage.reasoningTokens),
        ("searchUnits", usage.searchUnits),
    ] {
        require(value >= 0 && value <= TokenUsage.maxCount, "\(what()): usage.\(name) = \(value) out of bounds")
    }
    require(usage.totalTokens >= 0 && usage.totalTokens <= TokenUsage.maxCount, "\(what()): totalTokens out of bounds")
}

/// A translated stream must be SSE whose every `data` is JSON or `[DONE]`.
func requireSSEOfJSON(_ bytes: [UInt8], _ what: @autoclosure () -> String) {
    var parser = SSEParser(maxEventBytes: Int.max)
    var events: [SSEEvent] = []
    do {
        try parser.feed(bytes) { events.append($0) }
    } catch {
        require(false, "\(what()): output is not SSE: \(error)")
    }
    events += parser.finish()
    for event in events where event.data != Array("[DONE]".utf8) {
        requireValidJSON(event.data, "\(what()): event \(event.event ?? "message") data")
    }
}

/// A backend of `schema` with everything its schema needs, read from config as the filter reads it.
func makeBackend(_ schema: BackendSchema) -> BackendConfig {
    backendsBySchema[schema.rawValue]!
}

private let backendsBySchema: [String: BackendConfig] = {
    var result: [String: BackendConfig] = [:]
    for schema in BackendSchema.allCases {
        // Whatever the schema's adapter requires, so a new schema needs no line here.
        let required = schema.adapter.requiredSettings(of: schema)
        var config = #"{"backend": "fuzz-\#(schema.rawValue)", "schema": "\#(schema.rawValue)", "credential": {"value": "key"}"#
        if required.contains(.azure) { config += #", "azure": {"api_version": "2024-10-21"}"# }
        if required.contains(.aws) {
            config += #", "aws": {"region": "us-east-1", "access_key_id": {"value": "AKID"}, "secret_access_key": {"value": "s"}}"#
        }
        if required.contains(.gcp) { config += #", "gcp": {"project": "p", "location": "us-central1"}"# }
        config += "}"
        do {
            result[schema.rawValue] = try BackendConfig.parse(Array(config.utf8))
        } catch {
            fatalError("fuzz backend config for \(schema.rawValue): \(error)")
        }
    }
    return result
}()

/// Exchanges for every schema, as the upstream filter makes them per attempt.
func makeExchange(
    _ schema: BackendSchema, client: ClientAPI, endpoint: Endpoint, model: String = "fuzz-model", stream: Bool,
    includeUsage: Bool, override: String? = nil
) -> UpstreamExchange {
    var backend = makeBackend(schema)
    if let override { backend.modelOverrides[model] = override }
    return UpstreamExchange(
        backend: backend, clientAPI: client, endpoint: endpoint, requestModel: model, stream: stream,
        includeUsage: includeUsage, created: 1_700_000_000, requestID: "fuzz")
}

let allSchemas = BackendSchema.allCases

/// Schema number `index` (modulo the number of schemas).
func schema(_ index: UInt8) -> BackendSchema { allSchemas[Int(index) % allSchemas.count] }

/// The events of an SSE byte stream (the translators' output).
func sseEvents(_ bytes: [UInt8]) -> [SSEEvent] {
    var parser = SSEParser(maxEventBytes: Int.max)
    var events: [SSEEvent] = (try? parser.feed(bytes)) ?? []
    events += parser.finish()
    return events
}

/// A translated stream for an Anthropic client follows Anthropic's event grammar, which the SDKs
/// rely on: message_start first; blocks numbered 0, 1, 2... that never interleave, each opened by
/// content_block_start, given deltas of its own kind and closed by content_block_stop; then
/// message_delta and message_stop last; or an `error` event, after which nothing follows.
/// Returns the usage of its message_delta, if any.
@discardableResult
func requireAnthropicStreamGrammar(_ bytes: [UInt8], _ what: @autoclosure () -> String) -> JSONValue? {
    var usage: JSONValue?
    var started = false
    var open: (index: Int64, type: String)?
    var nextIndex: Int64 = 0
    var sawMessageDelta = false
    var ended = false
    for event in sseEvents(bytes) {
        let name = event.event ?? "message"
        guard let data = try? JSONParser.parse(event.data, limits: outputLimits), data.objectValue != nil else {
            require(false, "\(what()): \(name) data is not a JSON object")
            return nil
        }
        require(!ended, "\(what()): \(name) after the stream ended")
        require(data["type"]?.stringValue == name, "\(what()): event \(name) carries type \(String(describing: data["type"]))")
        let index = data["index"]?.int64Value
        switch name {
        case "ping": break
        case "error":
            ended = true
        case "message_start":
            require(!started, "\(what()): second message_start")
            started = true
        case "content_block_start":
            require(started, "\(what()): content_block_start before message_start")
            require(open == nil, "\(what()): content_block_start \(String(describing: index)) while block \(open!.index) is open")
            require(index == nextIndex, "\(what()): content_block_start index \(String(describing: index)), expected \(nextIndex)")
            require(!sawMessageDelta, "\(what()): content block after message_delta")
            open = (nextIndex, data["content_block"]?["type"]?.stringValue ?? "?")
        case "content_block_delta":
            guard let block = open else {
                require(false, "\(what()): content_block_delta \(String(describing: index)) with no open block")
                return nil
            }
            require(index == block.index, "\(what()): delta for block \(String(describing: index)) while \(block.index) is open")
            let kind = data["delta"]?["type"]?.stringValue ?? "?"
            let allowed: [String] = switch block.type {
            case "text": ["text_delta", "citations_delta"]
            case "thinking": ["thinking_delta", "signature_delta"]
            case "tool_use", "server_tool_use": ["input_json_delta"]
            default: []
            }
            require(allowed.contains(kind), "\(what()): \(kind) in a \(block.type) block")
        case "content_block_stop":
            require(open != nil && index == open!.index, "\(what()): content_block_stop \(String(describing: index)) of a block not open")
            open = nil
            nextIndex += 1
        case "message_delta":
            require(started && open == nil && !sawMessageDelta, "\(what()): message_delta out of place")
            sawMessageDelta = true
            usage = data["usage"]
        case "message_stop":
            require(sawMessageDelta, "\(what()): message_stop without message_delta")
            ended = true
        default:
            require(false, "\(what()): unknown event \(name)")
        }
    }
    require(ended, "\(what()): the stream ends without message_stop or error")
    return usage
}

/// A translated stream for an OpenAI client: JSON chunks, `[DONE]` at most once and last.
/// Returns the last usage object a chunk carried, if any.
@discardableResult
func requireOpenAIStreamGrammar(_ bytes: [UInt8], _ what: @autoclosure () -> String) -> JSONValue? {
    var usage: JSONValue?
    var done = false
    for event in sseEvents(bytes) {
        require(!done, "\(what()): an event after [DONE]")
        if event.data == Array("[DONE]".utf8) {
            done = true
            continue
        }
        guard let chunk = try? JSONParser.parse(event.data, limits: outputLimits), chunk.objectValue != nil else {
            require(false, "\(what()): a chunk that is not a JSON object")
            return nil
        }
        if chunk["error"] != nil { continue }
        if let found = chunk["usage"], !found.isNull { usage = found }
        require(chunk["object"]?.stringValue == "chat.completion.chunk", "\(what()): chunk object \(String(describing: chunk["object"]))")
        require(chunk["choices"]?.arrayValue != nil, "\(what()): chunk without a choices array")
    }
    return usage
}

// MARK: - Metering

/// A gateway that limits and prices everything at the most expensive rate the config accepts.
private let meterConfig: GatewayConfig = {
    let json = #"""
        {"api_keys":[{"name":"k","key":"sk-fuzz","team":"t",
                      "limits":{"requests_per_minute":1000,"tokens_per_minute":1000000,"budget_usd_per_day":1000000,"budget_usd_per_month":1000000}}],
         "team_limits":{"t":{"tokens_per_minute":5000000,"budget_usd_per_day":10}},
         "model_limits":{"fuzz-model":{"requests_per_minute":5,"tokens_per_minute":100}},
         "prices":{"fuzz-model":{"input":1000000,"cached_input":1000000,"cache_write":1000000,"output":1000000}},
         "models":[{"id":"fuzz-model","route":"r"}]}
        """#
    do {
        return try GatewayConfig.parse(Array(json.utf8))
    } catch {
        fatalError("fuzz meter config: \(error)")
    }
}()

/// Admits a request with the client's `max_tokens`, then charges `usage` as the filter does at the
/// end of a response: price, settle, rate-limit headers. Nothing may trap and no cost may be negative.
func meter(_ usage: TokenUsage, maxTokens: Int64? = nil, bodyByteCount: Int = 1000) {
    let gateway = Gateway(config: meterConfig)
    let now: Int64 = 1_700_000_000_000
    guard let cost = gateway.config.prices.cost(usage: usage, model: "fuzz-model") else {
        require(false, "no price for fuzz-model")
        return
    }
    require(cost >= 0, "negative cost \(cost) for \(usage)")
    let estimate = QuotaEstimate(
        bodyByteCount: bodyByteCount, maxTokens: maxTokens.map { Int(clamping: $0) },
        defaultMaxTokens: gateway.config.defaultOutputTokensEstimate, price: gateway.config.prices.price(for: "fuzz-model"))
    require(estimate.inputTokens >= 0 && estimate.outputTokens >= 0 && estimate.costMicros >= 0, "negative estimate \(estimate)")
    let request = QuotaRequest(key: "k", team: "t", model: "fuzz-model", estimate: estimate)
    for _ in 0..<2 {
        if case .admitted(let ticket) = gateway.quotas.admit(request, now: now) {
            gateway.quotas.settle(ticket, actual: usage, costMicros: cost, now: now)
        }
    }
    _ = gateway.quotas.rateLimitHeaders(for: request, now: now)
}

/// Checks a Responses event stream: every event's data is a JSON object whose `type` is the event's
/// name and whose `sequence_number` counts from 0; `response.created` first; one final event
/// (`response.completed`, `response.incomplete` or `response.failed`) last. Returns the usage the
/// final event shows.
func requireResponsesStreamGrammar(_ bytes: [UInt8], _ what: @autoclosure () -> String) -> JSONValue? {
    let events = sseEvents(bytes)
    var usage: JSONValue?
    var ended = false
    for (index, event) in events.enumerated() {
        let name = event.event ?? "message"
        guard let data = try? JSONParser.parse(event.data, limits: outputLimits), data.objectValue != nil else {
            require(false, "\(what()): \(name) data is not a JSON object")
            return nil
        }
        require(!ended, "\(what()): \(name) after the final event")
        require(data["type"]?.stringValue == name, "\(what()): event \(name) carries type \(String(describing: data["type"]))")
        require(data["sequence_number"]?.int64Value == Int64(index), "\(what()): event \(index) numbered \(String(describing: data["sequence_number"]))")
        if index == 0 { require(name == "response.created" || name == "response.failed", "\(what()): first event \(name)") }
        switch name {
        case "response.completed", "response.incomplete", "response.failed":
            ended = true
            usage = data["response"]?["usage"]
        default:
            break
        }
    }
    require(events.isEmpty || ended, "\(what()): no final event")
    return usage?.objectValue != nil ? usage : nil
}

// Stream decoders and translators, fed in chunks cut where the fuzzer says (see Support.swift).
// A stream must translate to the same bytes and the same usage however it is cut.
//
// sse flags: bit 0 a small event limit.
// aws_eventstream flags: bit 0 fix up both CRCs (so the fuzzer reaches header parsing), bit 1 small limits.
// stream_* flags: bit 0 a translated client: Anthropic, or with bit 1 Responses (bit 1 is otherwise
//   include_usage, which both clients always get), bit 2 the second schema (Azure, Vertex),
//   bit 5 (not Bedrock) the translators built directly with a small event limit (bits 6-7 choose it),
//   stream_anthropic: bit 2 Claude on Vertex AI (the same SSE),
//   stream_bedrock: bit 2 Claude on Bedrock InvokeModel (each record's payload is an Anthropic event, sent
//   base64 in a chunk's `{"bytes"}` unless the type starts with `~`), bit 3 structured output (Converse),
//   bit 4 the body is raw event-stream bytes (CRCs fixed up) instead of records `type 0x1F payload`
//   separated by 0x1E (a type starting with `!` is an exception).

import SluiceCore

// MARK: - SSE

func fuzzSSE(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    let limit = input.flag(0) ? 64 : 4 * 1024 * 1024
    let whole = parseSSE([input.body], limit: limit)
    let chunked = parseSSE(input.chunks(of: input.body), limit: limit)
    require(whole.events == chunked.events, "SSE events depend on chunking")
    require(whole.error == chunked.error, "SSE error depends on chunking")
    // What the writer produces parses back to the same data.
    for event in whole.events where !event.data.contains(0x0A) && !event.data.contains(0x0D) {
        var out: [UInt8] = []
        if let name = event.event, !name.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            SSEWriter.appendEvent(name, data: event.data, to: &out)
        } else {
            SSEWriter.appendData(event.data, to: &out)
        }
        let again = parseSSE([out], limit: Int.max)
        require(again.events.count == 1 && again.events[0].data == event.data, "SSEWriter output does not parse back")
    }
}

private func parseSSE(_ chunks: [[UInt8]], limit: Int) -> (events: [SSEEvent], error: SSEError?) {
    var parser = SSEParser(maxEventBytes: limit)
    var events: [SSEEvent] = []
    for chunk in chunks {
        do {
            try parser.feed(chunk) { events.append($0) }
        } catch {
            return (events, error)
        }
    }
    events += parser.finish()
    return (events, nil)
}

// MARK: - AWS event stream

func fuzzAWSEventStream(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    let body = input.flag(0) ? fixEventStreamCRCs(input.body) : input.body
    let limits = input.flag(1) ? (message: 128, headers: 48) : (message: 1 << 24, headers: 128 * 1024)
    let whole = decodeEventStream([body], limits: limits)
    let chunked = decodeEventStream(input.chunks(of: body), limits: limits)
    require(whole.messages == chunked.messages, "event-stream messages depend on chunking")
    require(whole.error == chunked.error, "event-stream error depends on chunking: \(String(describing: whole.error)) vs \(String(describing: chunked.error))")
    // Every decoded message encodes and decodes back to itself.
    for message in whole.messages {
        let headers = message.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        do {
            let encoded = try AWSEventStreamEncoder.encode(headers: headers, payload: message.payload)
            let again = decodeEventStream([encoded], limits: (message: 1 << 24, headers: 128 * 1024))
            require(again.error == nil && again.messages == [message], "re-encoded message decodes differently")
        } catch {
            require(false, "a decoded message cannot be encoded: \(error)")
        }
    }
}

private func decodeEventStream(_ chunks: [[UInt8]], limits: (message: Int, headers: Int))
    -> (messages: [AWSEventMessage], error: AWSEventStreamError?)
{
    var decoder = AWSEventStreamDecoder(maxMessageLength: limits.message, maxHeadersLength: limits.headers)
    var messages: [AWSEventMessage] = []
    do {
        for chunk in chunks {
            try decoder.feed(chunk) { messages.append($0) }
            require(decoder.bufferedByteCount <= max(limits.message, 12), "decoder buffers more than one message")
        }
        try decoder.finish()
    } catch {
        return (messages, error)
    }
    return (messages, nil)
}

/// Makes the frames' lengths and CRCs consistent, keeping everything else the fuzzer wrote.
func fixEventStreamCRCs(_ bytes: [UInt8]) -> [UInt8] {
    var out = bytes
    var start = 0
    while out.count - start >= 16 {
        let remaining = out.count - start
        var total = Int(readUInt32(out, start))
        if total < 16 || total > remaining { total = remaining }
        writeUInt32(UInt32(total), &out, start)
        writeUInt32(CRC32.checksum(out[start..<(start + 8)]), &out, start + 8)
        writeUInt32(CRC32.checksum(out[start..<(start + total - 4)]), &out, start + total - 4)
        start += total
    }
    return out
}

private func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
}

private func writeUInt32(_ value: UInt32, _ bytes: inout [UInt8], _ at: Int) {
    for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * index)) }
}

// MARK: - Stream translators

func fuzzStreamOpenAI(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    if input.flag(5) { return runSmallLimitStream(input, .openAI) }
    runStream(input.flag(2) ? .azureOpenAI : .openAI, input: input, body: input.body)
}

func fuzzStreamAnthropic(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    if input.flag(5) { return runSmallLimitStream(input, .anthropic) }
    runStream(input.flag(2) ? .vertexAnthropic : .anthropic, input: input, body: input.body)
}

func fuzzStreamGemini(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    if input.flag(5) { return runSmallLimitStream(input, .gemini) }
    runStream(input.flag(2) ? .vertexGemini : .gemini, input: input, body: input.body)
}

func fuzzStreamBedrock(_ bytes: [UInt8]) {
    let input = FuzzInput(chunked: bytes)
    let invoke = input.flag(2)
    let body = input.flag(4) ? fixEventStreamCRCs(input.body) : encodeRecords(input.body, invoke: invoke)
    runStream(invoke ? .bedrockAnthropic : .bedrockConverse, input: input, body: body, structuredOutput: !invoke && input.flag(3))
}

/// Records `type 0x1F payload`, separated by 0x1E, as Bedrock event-stream messages.
private func encodeRecords(_ body: [UInt8], invoke: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    for record in body.split(separator: 0x1E, omittingEmptySubsequences: true) {
        let separator = record.firstIndex(of: 0x1F) ?? record.endIndex
        var name = String(decoding: record[record.startIndex..<separator], as: UTF8.self)
        var payload = separator < record.endIndex ? Array(record[(separator + 1)...]) : []
        if invoke, !name.hasPrefix("!") {
            // InvokeModel: the record is one Anthropic event, wrapped as Bedrock wraps it (or, after `~`, not).
            if name.hasPrefix("~") {
                name.removeFirst()
            } else {
                payload = Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(payload).utf8) + Array(#""}"#.utf8)
            }
            if name.isEmpty { name = "chunk" }
        }
        let frame = name.hasPrefix("!")
            ? try? AWSEventStreamEncoder.exception(String(name.dropFirst()), payload: payload)
            : try? AWSEventStreamEncoder.event(name, payload: payload)
        out += frame ?? []
    }
    return out
}

private let structuredRequest = Array(
    #"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"}}}}"#
        .utf8)

private func runStream(_ schema: BackendSchema, input: FuzzInput, body: [UInt8], structuredOutput: Bool = false) {
    let responses = input.flag(0) && input.flag(1)
    let client: ClientAPI = input.flag(0) && !responses ? .anthropic : .openAI
    let endpoint: Endpoint = responses ? .responses : client == .anthropic ? .anthropicMessages : .chatCompletions
    var exchange = makeExchange(schema, client: client, endpoint: endpoint, stream: true, includeUsage: input.flag(1))
    if structuredOutput, endpoint == .chatCompletions { _ = try? exchange.translateRequest(structuredRequest) }
    let what = "\(schema.rawValue) stream to \(endpoint.name) client"
    require(exchange.responseMode(status: 200, contentType: "text/event-stream") == .translateStream, "\(what): mode")
    guard var chunked = try? exchange.makeStreamTranslator(), var whole = try? exchange.makeStreamTranslator() else {
        require(false, "\(what): no stream translator")
        return
    }
    var chunkedOut: [UInt8] = []
    for chunk in input.chunks(of: body) {
        chunkedOut += chunked.feed(chunk)
        requireBounded(chunked.usage, what)
    }
    chunkedOut += chunked.finish()
    requireBounded(chunked.usage, what)
    meter(chunked.usage)
    if !input.splitOffsets.isEmpty {  // (without cuts the two runs would be the same run)
        let wholeOut = whole.feed(body) + whole.finish()
        require(chunked.usage == whole.usage, "\(what): usage depends on chunking: \(chunked.usage) vs \(whole.usage)")
        require(chunkedOut == wholeOut, "\(what): output depends on chunking")
    }

    if exchange.sameSchema, schema == .bedrockAnthropic {
        // Bedrock's chunks re-framed as Anthropic SSE: each event's data is one JSON object whose type names
        // the event; one error at most, and nothing after it.
        let events = sseEvents(chunkedOut)
        for (index, event) in events.enumerated() {
            let type = (try? JSONParser.parse(event.data))?["type"]?.stringValue
            require(type != nil && type == event.event, "\(what): event \(String(describing: event.event)) with type \(String(describing: type))")
            if event.event == "error" { require(index == events.count - 1, "\(what): events after an error") }
        }
    } else if exchange.sameSchema {
        // Same schema: the client gets the backend's bytes, minus a usage chunk it did not ask for
        // (a Responses stream is never edited: its final event always carries usage).
        if client == .anthropic || input.flag(1) {
            require(chunkedOut == body, "\(what): passthrough changed the stream")
        }
    } else {
        // (The grammar checks below also require every event's data to be JSON.)
        // The client is never shown more tokens than the gateway meters (and charges). Not equality: the
        // hub's cache_write_tokens extension is read by the Anthropic client stage only.
        let metered = chunked.usage
        if responses {
            if let shown = requireResponsesStreamGrammar(chunkedOut, what) {
                let output = shown["output_tokens"]?.int64Value ?? 0
                let input = shown["input_tokens"]?.int64Value ?? 0
                require(output <= Int64(metered.outputTokens), "\(what): client shown \(output) output tokens, metered \(metered.outputTokens)")
                require(input <= Int64(metered.inputTokens), "\(what): client shown \(input) input tokens, metered \(metered.inputTokens)")
            }
        } else if client == .anthropic {
            if let shown = requireAnthropicStreamGrammar(chunkedOut, what) {
                let output = shown["output_tokens"]?.int64Value ?? 0
                require(output <= Int64(metered.outputTokens), "\(what): client shown \(output) output tokens, metered \(metered.outputTokens)")
                let shownInput = (shown["input_tokens"]?.int64Value ?? 0) + (shown["cache_read_input_tokens"]?.int64Value ?? 0)
                    + (shown["cache_creation_input_tokens"]?.int64Value ?? 0)
                require(shownInput <= Int64(max(metered.inputTokens, metered.cachedInputTokens + metered.cacheWriteInputTokens)),
                        "\(what): client shown \(shownInput) input tokens, metered \(metered)")
            }
        } else if let shown = requireOpenAIStreamGrammar(chunkedOut, what) {
            require(input.flag(1), "\(what): a usage chunk the client did not ask for")
            let prompt = shown["prompt_tokens"]?.int64Value ?? 0
            let completion = shown["completion_tokens"]?.int64Value ?? 0
            require(prompt <= Int64(metered.inputTokens), "\(what): client shown \(prompt) prompt tokens, metered \(metered.inputTokens)")
            require(completion <= Int64(metered.outputTokens), "\(what): client shown \(completion) completion tokens, metered \(metered.outputTokens)")
        }
    }
}

/// The backend and client stages built by hand with a small `maxEventBytes` (the exchange uses the
/// 4 MiB default, beyond what the fuzzer's inputs reach), chained as StreamTranslator chains them.
private func runSmallLimitStream(_ input: FuzzInput, _ schema: BackendSchema) {
    let limit = [16, 64, 256, 1024][Int(input.flags >> 6)]
    let client: ClientAPI = input.flag(0) ? .anthropic : .openAI
    let context = TranslationContext(
        upstreamModel: "fuzz-model", requestModel: "fuzz-model", stream: true,
        includeUsage: input.flag(1) || client == .anthropic, created: 1_700_000_000, fallbackResponseID: "chatcmpl-fuzz")
    let what = "\(schema.rawValue) stream to \(client), event limit \(limit)"
    func translate(_ chunks: [[UInt8]]) -> (out: [UInt8], usage: TokenUsage) {
        var openAI = OpenAIStreamUsageFilter(clientWantsUsage: context.includeUsage, maxEventBytes: limit)
        var anthropic = AnthropicToOpenAIStream(context: context, maxEventBytes: limit)
        var gemini = GeminiStream(context: context, maxEventBytes: limit)
        var toAnthropic = OpenAIToAnthropicStream(context: context, maxEventBytes: limit)
        var out: [UInt8] = []
        func backend(_ chunk: [UInt8]?) -> [UInt8] {
            switch schema {
            case .anthropic: chunk.map { anthropic.feed($0) } ?? anthropic.finish()
            case .gemini, .vertexGemini: chunk.map { gemini.feed($0) } ?? gemini.finish()
            default: chunk.map { openAI.feed($0) } ?? openAI.finish()
            }
        }
        for chunk in chunks + [nil] {
            let hub = backend(chunk)
            if client == .anthropic {
                out += toAnthropic.feed(hub)
                if chunk == nil { out += toAnthropic.finish() }
            } else {
                out += hub
            }
        }
        let usage: TokenUsage = switch schema {
        case .anthropic: anthropic.usage
        case .gemini, .vertexGemini: gemini.usage
        default: openAI.usage ?? TokenUsage()
        }
        return (out, usage)
    }
    let chunked = translate(input.chunks(of: input.body))
    requireBounded(chunked.usage, what)
    if !input.splitOffsets.isEmpty {
        let whole = translate([input.body])
        require(chunked.usage == whole.usage, "\(what): usage depends on chunking")
        require(chunked.out == whole.out, "\(what): output depends on chunking")
    }
    if schema == .openAI, client == .openAI {
        if context.includeUsage { require(chunked.out == input.body, "\(what): passthrough changed the stream") }
        return
    }
    if client == .anthropic {
        requireAnthropicStreamGrammar(chunked.out, what)
    } else {
        requireOpenAIStreamGrammar(chunked.out, what)
    }
}

// `response`: a backend's complete 2xx body as the upstream filter handles it (translateBody, or
// passthroughMetered and its usage reading). `error`: a backend's error body re-shaped for the client.
//
// response flags: bits 0-2 schema, bit 3 Anthropic client, bit 4 embeddings endpoint,
//   bit 5 base64 embeddings requested, bit 6 Bedrock structured output (response_format),
//   bit 7 the Responses API (OpenAI client) or, with bit 4, a token count (either client).
// error input: [flags] [status hi] [status lo] body; flags bits 0-2 schema, bit 3 Anthropic client,
//   bit 4 a status beyond 16 bits, bit 5 the body's first line is Bedrock's x-amzn-errortype,
//   bit 6 the request was a stream.

import SluiceCore

private let embeddingsBase64Request = Array(#"{"model":"m","input":["a"],"encoding_format":"base64"}"#.utf8)
private let structuredRequest = Array(
    #"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"}}}}"#
        .utf8)

func fuzzResponse(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    let schema = schema(input.flags & 7)
    let client: ClientAPI = input.flag(3) ? .anthropic : .openAI
    var endpoint: Endpoint = client == .anthropic ? .anthropicMessages : (input.flag(4) ? .embeddings : .chatCompletions)
    if input.flag(7) {
        endpoint = input.flag(4) ? (client == .anthropic ? .anthropicCountTokens : .responsesInputTokens) : client == .anthropic ? .anthropicMessages : .responses
    }
    var exchange = makeExchange(schema, client: client, endpoint: endpoint, stream: false, includeUsage: false)
    if input.flag(5), endpoint == .embeddings {
        _ = try? exchange.translateRequest(embeddingsBase64Request)
    }
    if input.flag(6), schema == .bedrockConverse, client == .openAI {
        _ = try? exchange.translateRequest(structuredRequest)
    }
    if schema == .bedrockConverse { exchange.noteResponseHeader(name: "x-amzn-requestid", value: "req-fuzz") }
    let what = "\(schema.rawValue) response to \(client) \(endpoint.name)"
    switch exchange.responseMode(status: 200, contentType: "application/json") {
    case .passthroughMetered, .passthrough, .passthroughReported:
        let usage = exchange.usage(ofPassthrough: input.body)
        requireBounded(usage, what)
        meter(usage)
        if endpoint.countsTokens { require(usage == TokenUsage(), "\(what): a count reported usage") }
    case .translateBody:
        do {
            let translated = try exchange.translateResponse(input.body)
            requireValidJSON(translated.body, what)
            requireBounded(translated.usage, what)
            meter(translated.usage)
            if endpoint.countsTokens {
                // A count is free, and its answer is one count in range.
                require(translated.usage == TokenUsage(), "\(what): a count reported usage")
                let count = (try? JSONParser.parse(translated.body))?["input_tokens"]?.int64Value
                require(count.map { (0...Int64(TokenUsage.maxCount)).contains($0) } == true, "\(what): count \(String(describing: count))")
            } else if endpoint == .responses {
                // The Responses object shows exactly the usage metered.
                let usage = (try? JSONParser.parse(translated.body))?["usage"]
                require(usage?["input_tokens"]?.int64Value == Int64(translated.usage.inputTokens)
                    && usage?["output_tokens"]?.int64Value == Int64(translated.usage.outputTokens), "\(what): usage shown \(String(describing: usage)), metered \(translated.usage)")
            } else {
                requireBodyUsage(translated.body, matches: translated.usage, client: client, what)
            }
        } catch {
            require(error.status >= 400 && error.status < 600, "\(what): TranslateError status \(error.status)")
            requireValidJSON(error.gatewayError.body(for: client), "\(what): error body")
        }
    case .translateStream, .translateError:
        require(false, "\(what): unexpected response mode")
    }
    // The readers behind usage(ofPassthrough:) see every body too.
    if let usage = OpenAICompatible.usage(fromResponse: input.body) { requireBounded(usage, "OpenAI usage reader") }
    if let usage = ResponsesUsage.read(fromResponse: input.body) { requireBounded(usage, "Responses usage reader") }
}

func fuzzError(_ bytes: [UInt8]) {
    var input = FuzzInput(plain: bytes)
    var status = 400
    if input.body.count >= 2 {
        status = Int(input.body[0]) << 8 | Int(input.body[1])
        input.body.removeFirst(2)
    }
    if input.flag(4) { status = status &* 65_537 &- 1 << 31 }
    var awsErrorType: String?
    if input.flag(5), let newline = input.body.firstIndex(of: 0x0A) {
        awsErrorType = String(decoding: input.body[..<newline], as: UTF8.self)
        input.body.removeSubrange(...newline)
    }
    let schema = schema(input.flags & 7)
    let client: ClientAPI = input.flag(3) ? .anthropic : .openAI
    let endpoint: Endpoint = client == .anthropic ? .anthropicMessages : .chatCompletions
    var exchange = makeExchange(schema, client: client, endpoint: endpoint, stream: input.flag(6), includeUsage: false)
    if let awsErrorType { exchange.noteResponseHeader(name: "x-amzn-errortype", value: awsErrorType) }
    let what = "\(schema.rawValue) error \(status) to \(client)"
    let mode = exchange.responseMode(status: status, contentType: "application/json")
    if status >= 400 {
        require(mode == .translateError || mode == .passthrough, "\(what): mode \(mode)")
    }
    let translated = exchange.translateError(status: status, body: input.body)
    requireValidJSON(translated.body, what)
    let openAI = OpenAICompatible.errorBody(status: UInt32(clamping: status), body: input.body)
    requireValidJSON(openAI, "OpenAICompatible.errorBody")
    if let type = awsErrorType { _ = BedrockError.status(forErrorType: type) }
    _ = Gemini.httpStatus(forGoogleStatus: String(decoding: input.body.prefix(64), as: UTF8.self))
}

/// The usage a translated body shows the client is the usage the gateway meters.
private func requireBodyUsage(_ body: [UInt8], matches usage: TokenUsage, client: ClientAPI, _ what: String) {
    guard let root = try? JSONParser.parse(body, limits: outputLimits), let shown = root["usage"] else {
        require(false, "\(what): translated body without usage")
        return
    }
    func count(_ value: JSONValue?) -> Int64? { value?.int64Value }
    switch client {
    case .openAI:
        require(count(shown["prompt_tokens"]) == Int64(usage.inputTokens), "\(what): prompt_tokens \(String(describing: shown["prompt_tokens"])) != metered \(usage.inputTokens)")
        if let completion = shown["completion_tokens"] {
            require(count(completion) == Int64(usage.outputTokens), "\(what): completion_tokens \(completion) != metered \(usage.outputTokens)")
        }
        if let total = shown["total_tokens"] {
            require(count(total) == Int64(usage.totalTokens), "\(what): total_tokens \(total) != metered \(usage.totalTokens)")
        }
        if let cached = shown["prompt_tokens_details"]?["cached_tokens"] {
            require(count(cached) == Int64(usage.cachedInputTokens), "\(what): cached_tokens \(cached) != metered \(usage.cachedInputTokens)")
        }
    case .cohere:
        require(false, "\(what): a Cohere client outside rerank")
    case .anthropic:
        require(count(shown["output_tokens"]) == Int64(usage.outputTokens), "\(what): output_tokens != metered \(usage.outputTokens)")
        let uncached = max(0, usage.inputTokens - usage.cachedInputTokens - usage.cacheWriteInputTokens)
        require(count(shown["input_tokens"]) == Int64(uncached), "\(what): input_tokens \(String(describing: shown["input_tokens"])) != metered uncached \(uncached)")
        require(count(shown["cache_read_input_tokens"]) ?? 0 == Int64(usage.cachedInputTokens), "\(what): cache_read_input_tokens != metered")
        require(count(shown["cache_creation_input_tokens"]) ?? 0 == Int64(usage.cacheWriteInputTokens), "\(what): cache_creation_input_tokens != metered")
    }
}

// `openai_request`, `anthropic_request`: a client's body as the gateway reads it (RequestSummary),
// then as each upstream attempt translates it for its backend (UpstreamExchange). Flags:
// bits 0-1 the OpenAI endpoint (chat, completions, embeddings, responses); bit 2 a model override; bit 3 a
// stream for the Anthropic flavours the exchange does not use (Vertex, Bedrock InvokeModel).

import SluiceCore

func fuzzOpenAIRequest(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    let endpoint: Endpoint = switch input.flags & 3 {
    case 1: .completions
    case 2: .embeddings
    case 3: .responses
    default: .chatCompletions
    }
    translateForEveryBackend(input, client: .openAI, endpoint: endpoint)

    // The Anthropic flavours the exchange does not use (Vertex rawPredict, Bedrock InvokeModel).
    if endpoint == .chatCompletions, let hub = try? JSONParser.parse(input.body) {
        let context = TranslationContext(upstreamModel: "m", requestModel: "m", stream: input.flag(3))
        for flavor in [AnthropicTranslator.Flavor.vertex, .bedrock] {
            if let out = try? AnthropicTranslator.request(fromOpenAIChat: hub, context: context, flavor: flavor) {
                requireValidJSON(out, "Anthropic \(flavor) request")
            }
        }
    }
}

func fuzzAnthropicRequest(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    translateForEveryBackend(input, client: .anthropic, endpoint: .anthropicMessages)
}

private func translateForEveryBackend(_ input: FuzzInput, client: ClientAPI, endpoint: Endpoint) {
    let summary: RequestSummary
    do {
        summary = try RequestSummary.read(input.body, endpoint: endpoint)
    } catch {
        require(error.status >= 400 && error.status < 500, "RequestSummary error status \(error.status)")
        requireValidJSON(error.body(for: client), "RequestSummary error body")
        return
    }
    require(!summary.model.isEmpty, "RequestSummary accepted an empty model")
    if let maxTokens = summary.maxTokens { require(maxTokens >= 0, "negative max_tokens accepted") }
    meter(TokenUsage(), maxTokens: summary.maxTokens, bodyByteCount: input.body.count)
    let override: String? = input.flag(2) ? "over/ride:\(summary.model) é" : nil
    for schema in allSchemas {
        var exchange = makeExchange(
            schema, client: client, endpoint: endpoint, model: summary.model, stream: summary.stream,
            includeUsage: summary.includeUsage, override: override)
        let plan: UpstreamRequestPlan
        do {
            plan = try exchange.requestPlan()
        } catch {
            requireValidJSON(error.gatewayError.body(for: client), "plan error body")
            continue
        }
        require(plan.path.hasPrefix("/"), "\(schema.rawValue): path \(plan.path) does not start with /")
        require(!plan.path.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }), "\(schema.rawValue): path \(plan.path) has raw bytes")
        do {
            let body = try exchange.translateRequest(input.body)
            requireValidJSON(body, "\(schema.rawValue) request from \(client)")
        } catch {
            require(error.status >= 400 && error.status < 600, "TranslateError status \(error.status)")
            requireValidJSON(error.gatewayError.body(for: client), "TranslateError body")
        }
    }
}

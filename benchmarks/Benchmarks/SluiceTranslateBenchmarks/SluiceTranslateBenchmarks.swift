// Per-backend translation cost in SluiceCore (no host): a 1 KB OpenAI chat request to each
// backend schema, each backend's answer back to OpenAI, and one streamed chunk per backend,
// next to `Baseline.copy1KB` (copying the same request) measured in the same run.
import Benchmark
import BenchmarkFixtures
import SluiceCore

let context = TranslationContext(
    upstreamModel: "model-x", requestModel: "model-x", stream: false, includeUsage: true, defaultMaxTokens: 1024,
    created: 1_764_201_600, fallbackResponseID: "chatcmpl-bench")

/// A 1 KiB OpenAI chat request (system + user), like the filter benchmarks' body.
let chatRequest: [UInt8] = {
    let head = #"{"model":"model-x","temperature":0.2,"max_tokens":256,"messages":["#
        + #"{"role":"system","content":"You are a concise assistant. Answer in plain English."},"#
        + #"{"role":"user","content":""#
    let tail = #""}]}"#
    var content = ""
    while head.utf8.count + content.utf8.count + tail.utf8.count < 1024 { content += "Summarise the trade-offs. " }
    return Array((head + content).utf8.prefix(1024 - tail.utf8.count)) + Array(tail.utf8)
}()

/// The same 1 KiB conversation as an OpenAI Responses request (instructions + string input).
let responsesRequest: [UInt8] = {
    let head = #"{"model":"model-x","temperature":0.2,"max_output_tokens":256,"#
        + #""instructions":"You are a concise assistant. Answer in plain English.","input":""#
    let tail = #""}"#
    var content = ""
    while head.utf8.count + content.utf8.count + tail.utf8.count < 1024 { content += "Summarise the trade-offs. " }
    return Array((head + content).utf8.prefix(1024 - tail.utf8.count)) + Array(tail.utf8)
}()

let anthropicResponse = Array(
    #"{"id":"msg_1","type":"message","role":"assistant","model":"model-x","content":[{"type":"text","text":"In-process filters avoid a network hop per request."}],"stop_reason":"end_turn","usage":{"input_tokens":212,"output_tokens":12}}"#
        .utf8)
let bedrockResponse = Array(
    #"{"output":{"message":{"role":"assistant","content":[{"text":"In-process filters avoid a network hop per request."}]}},"stopReason":"end_turn","usage":{"inputTokens":212,"outputTokens":12,"totalTokens":224}}"#
        .utf8)
let geminiResponse = Array(
    #"{"candidates":[{"content":{"role":"model","parts":[{"text":"In-process filters avoid a network hop per request."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":212,"candidatesTokenCount":12,"totalTokenCount":224}}"#
        .utf8)
let openAIResponse = Array(
    #"{"id":"chatcmpl-1","object":"chat.completion","created":1721172741,"model":"model-x","choices":[{"index":0,"message":{"role":"assistant","content":"In-process filters avoid a network hop per request."},"finish_reason":"stop"}],"usage":{"prompt_tokens":212,"completion_tokens":12,"total_tokens":224}}"#
        .utf8)

/// A vLLM rerank answer (four documents ranked, texts included), as `/v1/rerank` backends answer.
let rerankAnswer = Array(
    #"{"id":"rerank-5f1c2d8e9a0b4c3d","model":"BAAI/bge-reranker-v2-m3","usage":{"prompt_tokens":61,"total_tokens":61},"results":[{"index":1,"document":{"text":"Paris is the capital and largest city of France."},"relevance_score":0.99951171875},{"index":2,"document":{"text":"The Eiffel Tower is in \"Paris\"."},"relevance_score":0.4794921875},{"index":0,"document":{"text":"Berlin is the capital of Germany."},"relevance_score":0.0185546875},{"index":3,"document":{"text":"Bananas are rich in potassium."},"relevance_score":1.6e-05}]}"#
        .utf8)

/// An OpenAI Responses answer as it passes through to a Responses client (metered from its usage).
let responsesObject = Array(
    #"{"id":"resp_1","object":"response","created_at":1721172741,"status":"completed","model":"model-x","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In-process filters avoid a network hop per request.","annotations":[]}]}],"parallel_tool_calls":true,"tool_choice":"auto","tools":[],"usage":{"input_tokens":212,"input_tokens_details":{"cached_tokens":0},"output_tokens":12,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":224}}"#
        .utf8)
/// One `response.output_text.delta` event of a Responses stream that passes through.
let responsesDeltaEvent = Array(
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" network\",\"sequence_number\":7}\n\n"
        .utf8)

let anthropicChunk = Array(
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" network\"}}\n\n"
        .utf8)
let geminiChunk = Array(
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" network\"}]},\"index\":0}]}\r\n\r\n".utf8)
let openAIChunk = Array(
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" network\"},\"finish_reason\":null}]}\n\n"
        .utf8)
let bedrockChunk: [UInt8] =
    (try? AWSEventStreamEncoder.event(
        "contentBlockDelta", payload: Array(#"{"contentBlockIndex":0,"delta":{"text":" network"},"p":"abc"}"#.utf8)))
    ?? []

/// The same 1 KiB conversation as an Anthropic client's Messages request (Claude on the clouds edits it).
let anthropicRequest: [UInt8] = {
    let head = #"{"model":"model-x","max_tokens":256,"stream":true,"system":"You are a concise assistant. Answer in plain English.","#
        + #""messages":[{"role":"user","content":""#
    let tail = #""}]}"#
    var content = ""
    while head.utf8.count + content.utf8.count + tail.utf8.count < 1024 { content += "Summarise the trade-offs. " }
    return Array((head + content).utf8.prefix(1024 - tail.utf8.count)) + Array(tail.utf8)
}()

/// One Bedrock InvokeModel stream chunk: a text delta, base64 in `{"bytes"}`, in a `chunk` event.
let bedrockInvokeChunk: [UInt8] =
    (try? AWSEventStreamEncoder.event(
        "chunk",
        payload: Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(Array(anthropicChunk.split(separator: 0x0A)[1].dropFirst(6))).utf8)
            + Array(#""}"#.utf8))) ?? []
/// The events an InvokeModel stream opens with, as chunks.
let bedrockInvokeStart: [UInt8] = {
    let events = [
        #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
        #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ]
    return events.flatMap { event in
        (try? AWSEventStreamEncoder.event(
            "chunk", payload: Array(#"{"bytes":""#.utf8) + Array(Base64URL.encode(Array(event.utf8)).utf8) + Array(#""}"#.utf8)))
            ?? []
    }
}()

let benchmarks: @Sendable () -> Void = {
    // Per-request rows and the malloc tolerance of the other hot-path targets (check-allocations.sh).
    Benchmark.defaultConfiguration = perRequestConfiguration(localMetrics: [.wallClock, .mallocCountTotal])

    let hub = (try? JSONParser.parse(chatRequest)) ?? .null

    Benchmark("Baseline.copy1KB") { benchmark in
        for _ in benchmark.scaledIterations {
            var copy: [UInt8] = []
            copy.reserveCapacity(chatRequest.count)
            copy.append(contentsOf: chatRequest)
            blackHole(copy)
        }
    }

    // MARK: Requests (1 KB OpenAI chat in)

    // An Anthropic client's body for Claude on Bedrock: `model` and `stream` out, `anthropic_version` in.
    Benchmark("Translate.request.anthropicCloudEdit") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? AnthropicOnCloud.cloudBody(anthropicRequest, anthropicVersion: AnthropicOnCloud.bedrockVersion, keepStream: false))
        }
    }
    Benchmark("Translate.request.openaiModelRewrite") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? OpenAICompatible.rewriteModel(chatRequest, to: "other-model")) }
    }
    Benchmark("Translate.request.anthropic") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? AnthropicTranslator.request(fromOpenAIChat: chatRequest, context: context))
        }
    }
    Benchmark("Translate.request.bedrockConverse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? BedrockConverse.request(fromOpenAIChat: chatRequest, context: context)) }
    }
    Benchmark("Translate.request.gemini") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? Gemini.request(fromOpenAIChat: chatRequest, context: context)) }
    }
    // A Responses client's request brought to the hub as the exchange does (validate, write the hub and the echo).
    Benchmark("Translate.request.responses") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? ResponsesTranslator.openAIRequest(fromResponses: responsesRequest)) }
    }
    // The whole request step of an upstream attempt for a Responses client on Anthropic (what the
    // upstream filter calls): Responses -> hub -> one-pass Anthropic writer, echo kept for the answer.
    Benchmark("Translate.request.responses.anthropic") { benchmark in
        let backend = BackendConfig(name: "anthropic", schema: .anthropic, credential: .value("k"))
        for _ in benchmark.scaledIterations {
            var exchange = UpstreamExchange(
                backend: backend, clientAPI: .openAI, endpoint: .responses, requestModel: "model-x", stream: false,
                includeUsage: false, created: 1_764_201_600, requestID: "bench")
            blackHole(try? exchange.translateRequest(responsesRequest))
        }
    }
    // The same step for the same conversation from a chat client, for comparison.
    Benchmark("Translate.request.chat.anthropic") { benchmark in
        let backend = BackendConfig(name: "anthropic", schema: .anthropic, credential: .value("k"))
        for _ in benchmark.scaledIterations {
            var exchange = UpstreamExchange(
                backend: backend, clientAPI: .openAI, endpoint: .chatCompletions, requestModel: "model-x", stream: false,
                includeUsage: false, created: 1_764_201_600, requestID: "bench")
            blackHole(try? exchange.translateRequest(chatRequest))
        }
    }
    // An Anthropic Messages client's 1 KiB request (`anthropicRequest`, a stream) through the same step to
    // backends that do not speak Messages: the hub request itself for an OpenAI-compatible server (vLLM,
    // Azure, ...), and the hub read by the Bedrock Converse writer.
    Benchmark("Translate.request.anthropicClient.openai") { benchmark in
        let backend = BackendConfig(name: "vllm", schema: .openAI)
        for _ in benchmark.scaledIterations {
            var exchange = UpstreamExchange(
                backend: backend, clientAPI: .anthropic, endpoint: .anthropicMessages, requestModel: "model-x",
                stream: true, includeUsage: false, created: 1_764_201_600, requestID: "bench")
            blackHole(try? exchange.translateRequest(anthropicRequest))
        }
    }
    Benchmark("Translate.request.anthropicClient.bedrockConverse") { benchmark in
        let backend = BackendConfig(name: "bedrock", schema: .bedrockConverse)
        for _ in benchmark.scaledIterations {
            var exchange = UpstreamExchange(
                backend: backend, clientAPI: .anthropic, endpoint: .anthropicMessages, requestModel: "model-x",
                stream: true, includeUsage: false, created: 1_764_201_600, requestID: "bench")
            blackHole(try? exchange.translateRequest(anthropicRequest))
        }
    }
    Benchmark("Translate.request.parseOnly") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? JSONParser.parse(chatRequest)) }
    }
    blackHole(hub)

    // MARK: Responses (back to OpenAI)

    Benchmark("Translate.response.openaiUsage") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(OpenAICompatible.usage(fromResponse: openAIResponse)) }
    }
    // A Responses answer passed through to a Responses client (OpenAI, Azure): its usage read.
    Benchmark("Translate.response.responsesUsage") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(ResponsesUsage.read(fromResponse: responsesObject)) }
    }
    // A hub answer (any translated backend) as a Responses object.
    Benchmark("Translate.response.responses") { benchmark in
        let echo = ResponsesEcho()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try? ResponsesTranslator.responsesResponse(fromOpenAIChat: openAIResponse, echo: echo, context: context))
        }
    }
    // A rerank backend's answer read and checked (indices, scores, usage) for a four-document request.
    Benchmark("Translate.response.rerank") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? RerankAnswer.read(rerankAnswer, dialect: .openAICompatible, documentCount: 4))
        }
    }
    Benchmark("Translate.response.anthropic") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? AnthropicTranslator.response(toOpenAIChat: anthropicResponse, context: context)) }
    }
    // The hub's answer for an Anthropic Messages client (any non-Anthropic backend).
    Benchmark("Translate.response.toAnthropicClient") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? AnthropicTranslator.anthropicResponse(fromOpenAIChat: openAIResponse, context: context))
        }
    }
    Benchmark("Translate.response.bedrockConverse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? BedrockConverse.chatCompletion(fromConverse: bedrockResponse, context: context)) }
    }
    Benchmark("Translate.response.gemini") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? Gemini.chatCompletion(fromGeminiResponse: geminiResponse, context: context)) }
    }

    // MARK: One streamed chunk (translator already past the stream's start)

    Benchmark("Stream.chunk.openaiUsageFilter") { benchmark in
        var filter = OpenAIStreamUsageFilter(clientWantsUsage: true)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(filter.feed(openAIChunk)) }
    }
    Benchmark("Stream.chunk.anthropic") { benchmark in
        var stream = AnthropicToOpenAIStream(context: context)
        _ = stream.feed(Array("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".utf8))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(anthropicChunk)) }
    }
    // One Bedrock InvokeModel chunk (a base64 Anthropic text delta) to the hub, and to an Anthropic client.
    Benchmark("Stream.chunk.bedrockInvoke") { benchmark in
        var stream = BedrockInvokeStream(context: context, emitsAnthropicEvents: false)
        _ = stream.feed(bedrockInvokeStart)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(bedrockInvokeChunk)) }
    }
    Benchmark("Stream.chunk.bedrockInvoke.anthropic") { benchmark in
        var stream = BedrockInvokeStream(context: context, emitsAnthropicEvents: true)
        _ = stream.feed(bedrockInvokeStart)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(bedrockInvokeChunk)) }
    }
    // One hub text chunk to a Responses client (an `output_text.delta` event), the message item open.
    Benchmark("Stream.chunk.responses") { benchmark in
        var stream = OpenAIToResponsesStream(echo: ResponsesEcho(), context: context)
        _ = stream.feed(openAIChunk)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(openAIChunk)) }
    }
    // The same hub text chunk to an Anthropic Messages client (a `content_block_delta` event), the text block open.
    Benchmark("Stream.chunk.toAnthropicClient") { benchmark in
        var stream = OpenAIToAnthropicStream(context: context)
        _ = stream.feed(openAIChunk)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(openAIChunk)) }
    }
    // One event of a Responses stream passed through to a Responses client, read for its final usage.
    Benchmark("Stream.chunk.responsesPassthrough") { benchmark in
        var watcher = ResponsesStreamUsageWatcher()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            watcher.feed(responsesDeltaEvent)
            blackHole(watcher.usage)
        }
    }
    Benchmark("Stream.chunk.bedrockConverse") { benchmark in
        var stream = BedrockConverseStreamTranslator(context: context)
        if let start = try? AWSEventStreamEncoder.event("messageStart", payload: Array(#"{"role":"assistant"}"#.utf8)) {
            _ = stream.feed(start)
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(bedrockChunk)) }
    }
    Benchmark("Stream.chunk.gemini") { benchmark in
        var stream = GeminiStream(context: context)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(stream.feed(geminiChunk)) }
    }
}

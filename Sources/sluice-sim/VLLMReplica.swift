import Foundation
import HTTPTypes
import Hummingbird
import SluiceCore
import SluiceSimEngine
import Synchronization

/// The vLLM-like pool's settings (`--vllm-*` options).
struct VLLMPoolSettings: Sendable {
    var model = "llama-3.1-8b-instruct"
    var adapters: [String] = []
    var engine = VLLMEngineConfig()
    var legacyCacheMetric = false
}

/// One vLLM-like replica: an OpenAI-compatible server whose answers are timed by a `VLLMEngine`
/// stepping on the real clock. Each step sleeps for the simulated forward pass, so a replica costs
/// a timer and some bookkeeping per step, not a busy core.
final class VLLMReplica: Sendable {
    let index: Int
    let settings: VLLMPoolSettings
    private let engine: Mutex<VLLMEngine>
    private let sinks = Mutex<[Int: AsyncStream<EngineEvent>.Continuation]>([:])
    private let wakeStream: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let sequence = Atomic<Int>(0)
    private let origin = ContinuousClock.now
    /// A fault the tests set on `/metrics` (`POST /__sim/metrics-fault`): answer with this status
    /// instead of the page (0: none), after this many milliseconds (a slow or hung scrape).
    private let metricsFaultStatus = Atomic<Int>(0)
    private let metricsFaultDelayMilliseconds = Atomic<Int>(0)

    init(index: Int, settings: VLLMPoolSettings) {
        self.index = index
        self.settings = settings
        engine = Mutex(VLLMEngine(config: settings.engine))
        (wakeStream, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Microseconds since the replica started: the engine's clock.
    private func now() -> Int {
        let elapsed = ContinuousClock.now - origin
        return Int(elapsed.components.seconds) * 1_000_000 + Int(elapsed.components.attoseconds / 1_000_000_000_000)
    }

    /// The engine loop: step while there is work, sleep on the wake signal while idle.
    func run() async {
        var iterator = wakeStream.makeAsyncIterator()
        var clock = now()
        while !Task.isCancelled {
            // A step starts when the previous one ended, or now if the timer woke late.
            let start = max(clock, now())
            guard let duration = engine.withLock({ $0.beginStep(now: start) }) else {
                guard await iterator.next() != nil else { return }
                clock = now()
                continue
            }
            let end = start + duration
            try? await Task.sleep(until: origin + .microseconds(end), clock: .continuous)
            let events = engine.withLock { $0.endStep(now: end) }
            clock = end
            deliver(events)
        }
    }

    private func deliver(_ events: [EngineEvent]) {
        sinks.withLock { sinks in
            for event in events {
                switch event {
                case .firstToken(let id, _), .token(let id):
                    sinks[id]?.yield(event)
                case .finished(let id):
                    sinks[id]?.yield(event)
                    sinks.removeValue(forKey: id)?.finish()
                }
            }
        }
    }

    /// Queues a request; its events arrive on the returned stream until `.finished`.
    private func submit(_ request: EngineRequest) throws(EngineRefusal) -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream<EngineEvent>.makeStream(bufferingPolicy: .unbounded)
        let id = request.id
        sinks.withLock { $0[id] = continuation }
        do {
            let time = now()
            try engine.withLock { (engine) throws(EngineRefusal) in try engine.add(request, now: time) }
        } catch {
            sinks.withLock { _ = $0.removeValue(forKey: id) }
            throw error
        }
        // A client that goes away frees its sequence, as vLLM aborts a request on disconnect.
        continuation.onTermination = { [weak self] reason in
            if case .cancelled = reason { self?.abort(id) }
        }
        wake.yield()
        return stream
    }

    private func abort(_ id: Int) {
        engine.withLock { $0.abort(id: id) }
        sinks.withLock { _ = $0.removeValue(forKey: id) }
    }

    // MARK: HTTP

    func respond(to request: Request) async -> Response {
        let path = request.uri.path
        let method = request.method.rawValue
        switch (method, path) {
        case ("GET", "/health"):
            return Self.response(SimResponse(status: 200, body: .bytes([])))
        case ("GET", "/healthz"):
            return Self.response(.json(200, Array(utf8: #"{"status":"ok","provider":"vllm-\#(index)"}"#)))
        case ("POST", "/__sim/metrics-fault"):
            // ?status=503&delay_ms=3000 (either may be absent: 0); both 0 clears the fault.
            let query = SimRequest(method: method, rawPath: path, rawQuery: request.uri.query ?? "", headers: [], body: []).query
            let status = Int(query["status"] ?? "0") ?? -1
            let delay = Int(query["delay_ms"] ?? "0") ?? -1
            guard status == 0 || (200...599).contains(status), (0...600_000).contains(delay) else {
                return Self.response(Self.error(400, "status must be 0 or 200...599, delay_ms 0...600000", type: "BadRequestError"))
            }
            metricsFaultStatus.store(status, ordering: .relaxed)
            metricsFaultDelayMilliseconds.store(delay, ordering: .relaxed)
            return Self.response(.json(200, Array(utf8: #"{"status":\#(status),"delay_ms":\#(delay)}"#)))
        case ("GET", "/metrics"):
            let delay = metricsFaultDelayMilliseconds.load(ordering: .relaxed)
            if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
            let faultStatus = metricsFaultStatus.load(ordering: .relaxed)
            if faultStatus != 0 {
                return Self.response(SimResponse(status: faultStatus, body: .bytes([])))
            }
            let page = VLLMMetricsPage(
                modelName: settings.model, legacyCacheName: settings.legacyCacheMetric,
                loRAEnabled: !settings.adapters.isEmpty)
            let text = engine.withLock { page.render($0, epochSeconds: Date().timeIntervalSince1970) }
            return Self.response(SimResponse(
                status: 200, headers: [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                body: .bytes(Array(text.utf8))))
        case ("GET", "/v1/models"):
            return Self.response(modelList())
        case ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/responses"):
            break
        default:
            return Self.response(.json(404, Array(utf8: #"{"detail":"Not Found"}"#)))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: SimListener.maxBodyBytes)
        } catch {
            return Self.response(Self.error(413, "request body too large", type: "BadRequestError"))
        }
        guard let json = try? JSONParser.parse(Array(body.readableBytesView)) else {
            return Self.response(Self.error(400, "Invalid JSON in request body", type: "BadRequestError"))
        }
        // A Responses request is generated as the chat request it renders to, and answered in
        // the Responses API's shapes (`OpenAIResponses.swift`).
        var responsesEcho: JSONObject?
        var generation = json
        if path == "/v1/responses" {
            do {
                (generation, responsesEcho) = try ResponsesRequest.chatBody(json)
            } catch {
                return Self.response(Self.error(400, error.message, type: "BadRequestError"))
            }
        }
        let planned: PlannedGeneration
        do {
            planned = try plan(generation, chat: path != "/v1/completions")
        } catch {
            return Self.response(error.response)
        }
        let stream: AsyncStream<EngineEvent>
        do {
            stream = try submit(planned.engineRequest)
        } catch {
            switch error {
            case .tooLong(let prompt, let output, let limit):
                return Self.response(Self.error(400,
                    "This model's maximum context length is \(limit) tokens. However, you requested \(prompt + output) tokens (\(prompt) in the messages, \(output) in the completion). Please reduce the length of the messages or completion.",
                    type: "BadRequestError"))
            case .duplicateID, .invalid:
                return Self.response(Self.error(500, "engine refused the request", type: "InternalServerError"))
            }
        }
        let headers = [("x-sluice-sim-replica", "\(index)")]
        if planned.stream {
            if let responsesEcho {
                return responsesStream(planned, echo: responsesEcho, events: stream, headers: headers)
            }
            return streamingResponse(planned, events: stream, headers: headers)
        }
        var cached = 0
        for await event in stream {
            if case .firstToken(_, let hit) = event { cached = hit }
        }
        if let responsesEcho {
            let answer = planned.responsesAnswer(echo: responsesEcho, cachedTokens: cached)
            let body = jsonObject { answer.writeMembers(&$0, status: answer.finalStatus, items: answer.items(done: true), usage: true) }
            return Self.response(.json(200, body, headers: headers))
        }
        return Self.response(.json(200, planned.wholeBody(cachedTokens: cached), headers: headers))
    }

    private func streamingResponse(
        _ planned: PlannedGeneration, events: AsyncStream<EngineEvent>, headers: [(String, String)]
    ) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache"
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        let body = ResponseBody { writer in
            var sent = 0
            var cached = 0
            for await event in events {
                switch event {
                case .firstToken(_, let hit):
                    cached = hit
                    var bytes = planned.chat ? planned.roleChunk() : []
                    bytes += planned.tokenChunk(sent)
                    sent += 1
                    try await writer.write(ByteBuffer(bytes: bytes))
                case .token:
                    try await writer.write(ByteBuffer(bytes: planned.tokenChunk(sent)))
                    sent += 1
                case .finished:
                    try await writer.write(ByteBuffer(bytes: planned.closingChunks(cachedTokens: cached)))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: fields, body: body)
    }

    /// A Responses stream paced by the engine: the opening events with the first token, a delta
    /// per token, the closing events (usage included) when it finishes.
    private func responsesStream(
        _ planned: PlannedGeneration, echo: JSONObject, events: AsyncStream<EngineEvent>, headers: [(String, String)]
    ) -> Response {
        var fields = HTTPFields()
        fields[.contentType] = "text/event-stream"
        fields[.cacheControl] = "no-cache"
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        let body = ResponseBody { writer in
            var sent = 0
            var responseEvents = ResponsesEventWriter(answer: planned.responsesAnswer(echo: echo, cachedTokens: 0))
            for await event in events {
                switch event {
                case .firstToken(_, let hit):
                    // The cached count is known now; the answer's usage reports it.
                    responseEvents = ResponsesEventWriter(answer: planned.responsesAnswer(echo: echo, cachedTokens: hit))
                    try await writer.write(ByteBuffer(bytes: responseEvents.opening() + responseEvents.delta(planned.token(sent))))
                    sent += 1
                case .token:
                    try await writer.write(ByteBuffer(bytes: responseEvents.delta(planned.token(sent))))
                    sent += 1
                case .finished:
                    try await writer.write(ByteBuffer(bytes: responseEvents.closing()))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: fields, body: body)
    }

    private func modelList() -> SimResponse {
        let created = Int(Date().timeIntervalSince1970)
        return .json(200) { w in
            w.beginObject()
            w.key("object"); w.string("list")
            w.key("data")
            w.beginArray()
            for id in [settings.model] + settings.adapters {
                w.beginObject()
                w.key("id"); w.string(id)
                w.key("object"); w.string("model")
                w.key("created"); w.int(created)
                w.key("owned_by"); w.string("vllm")
                w.key("root"); w.string(id == settings.model ? settings.model : "/adapters/\(id)")
                w.key("parent")
                if id == settings.model { w.null() } else { w.string(settings.model) }
                w.key("max_model_len"); w.int(settings.engine.maxModelLen)
                w.endObject()
            }
            w.endArray()
            w.endObject()
        }
    }

    // MARK: Planning a request

    struct Refusal: Error {
        var response: SimResponse
    }

    /// Validates a request and plans its reply: prompt bytes (the chat rendered with Llama 3's
    /// template, so a shared system prompt is a shared byte prefix), block hashes, reply tokens.
    private func plan(_ json: JSONValue, chat: Bool) throws(Refusal) -> PlannedGeneration {
        guard let object = json.objectValue else {
            throw Refusal(response: Self.error(400, "the request body must be a JSON object", type: "BadRequestError"))
        }
        guard let model = object["model"]?.stringValue else {
            throw Refusal(response: Self.error(400, "you must provide a model parameter", type: "BadRequestError"))
        }
        let adapter: String?
        if model == settings.model {
            adapter = nil
        } else if settings.adapters.contains(model) {
            adapter = model
        } else {
            throw Refusal(response: Self.error(404, "The model `\(model)` does not exist.", type: "NotFoundError"))
        }
        var conversation: Conversation
        var prompt: [UInt8] = []
        var includeUsage = false
        if chat {
            let parsed: OpenAIChatRequest.Parsed
            do {
                parsed = try OpenAIChatRequest.parse(json, requireModel: true, strict: false)
            } catch {
                throw Refusal(response: Self.error(400, error.message, type: "BadRequestError"))
            }
            conversation = parsed.conversation
            includeUsage = parsed.includeUsage
            if !conversation.tools.isEmpty, !conversation.toolsDisabled {
                throw Refusal(response: Self.error(400,
                    "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                    type: "BadRequestError"))
            }
            prompt = Array("<|begin_of_text|>".utf8)
            for (index, message) in (object["messages"]?.arrayValue ?? []).enumerated() {
                let role = message["role"]?.stringValue ?? "user"
                let text = (try? OpenAIChatRequest.contentText(message["content"], path: "messages[\(index)]", role: role)) ?? ""
                prompt += Array("<|start_header_id|>\(role)<|end_header_id|>\n\n".utf8)
                prompt += Array(text.utf8)
                prompt += Array("<|eot_id|>".utf8)
            }
            prompt += Array("<|start_header_id|>assistant<|end_header_id|>\n\n".utf8)
        } else {
            let text: String
            if let single = object["prompt"]?.stringValue {
                text = single
            } else if let items = object["prompt"]?.arrayValue, let first = items.first?.stringValue, items.count == 1 {
                text = first
            } else {
                throw Refusal(response: Self.error(400, "'prompt' must be a string", type: "BadRequestError"))
            }
            conversation = Conversation()
            conversation.lastUserText = text
            conversation.addPrompt(text)
            conversation.stream = object["stream"]?.boolValue ?? false
            // vLLM's completions default to 16 tokens, as OpenAI's did.
            conversation.maxTokens = 16
            if let value = object["max_tokens"], !value.isNull {
                guard let limit = value.int64Value, limit >= 1 else {
                    throw Refusal(response: Self.error(400, "max_tokens must be at least 1", type: "BadRequestError"))
                }
                conversation.maxTokens = Int(clamping: limit)
            }
            includeUsage = object["stream_options"]?["include_usage"]?.boolValue ?? false
            prompt = Array(text.utf8)
        }
        var ignoreEOS = false
        if let value = object["ignore_eos"], !value.isNull {
            guard let flag = value.boolValue else {
                throw Refusal(response: Self.error(400, "ignore_eos must be a boolean", type: "BadRequestError"))
            }
            ignoreEOS = flag
        }
        let reply = Planner.reply(to: conversation)
        var words: [String] = []
        if case .text(let tokens) = reply.content { words = tokens }
        if words.isEmpty { words = ["Sim"] }
        let promptTokens = PromptBlocks.tokens(byteCount: prompt.count)
        var outputTokens = words.count
        // The planner already cuts the reply at max_tokens (finish `length`).
        var endsAtLimit = reply.finish == .length
        if let limit = conversation.maxTokens, ignoreEOS || limit < outputTokens {
            // `ignore_eos` generates exactly max_tokens, as vLLM's benchmarks ask it to.
            outputTokens = limit
            endsAtLimit = true
        }
        let id = sequence.add(1, ordering: .relaxed).newValue
        return PlannedGeneration(
            engineRequest: EngineRequest(
                id: id, blockHashes: PromptBlocks.hashes(prompt), promptTokens: promptTokens, outputTokens: outputTokens,
                adapter: adapter, endsAtLimit: endsAtLimit),
            chat: chat, stream: conversation.stream, includeUsage: includeUsage, model: model,
            words: words, responseID: (chat ? "chatcmpl-" : "cmpl-") + "vllm\(index)-\(id)",
            created: Int(Date().timeIntervalSince1970))
    }

    // MARK: Responses

    static func error(_ status: Int, _ message: String, type: String) -> SimResponse {
        .json(status) { w in
            w.beginObject()
            w.key("error")
            w.beginObject()
            w.key("message"); w.string(message)
            w.key("type"); w.string(type)
            w.key("param"); w.null()
            w.key("code"); w.int(status)
            w.endObject()
            w.endObject()
        }
    }

    static func response(_ response: SimResponse) -> Response {
        makeResponse(response, paceMilliseconds: 0) {}
    }
}

/// A request's reply, planned before the engine times it.
struct PlannedGeneration: Sendable {
    var engineRequest: EngineRequest
    var chat: Bool
    var stream: Bool
    var includeUsage: Bool
    var model: String
    /// The natural reply's word tokens; tokens past them (with `ignore_eos`) are filler.
    var words: [String]
    var responseID: String
    var created: Int

    var outputTokens: Int { engineRequest.outputTokens }
    var finishReason: String { engineRequest.endsAtLimit ? "length" : "stop" }

    func token(_ index: Int) -> String {
        index < words.count ? words[index] : " sim"
    }

    var text: String { (0..<outputTokens).map(token).joined() }

    private func writeHead(_ w: inout JSONWriter, chunk: Bool) {
        w.key("id"); w.string(responseID)
        w.key("object"); w.string(chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion")
        w.key("created"); w.int(created)
        w.key("model"); w.string(model)
    }

    private func writeUsage(_ w: inout JSONWriter, cachedTokens: Int) {
        w.key("usage")
        w.beginObject()
        w.key("prompt_tokens"); w.int(engineRequest.promptTokens)
        w.key("total_tokens"); w.int(engineRequest.promptTokens + outputTokens)
        w.key("completion_tokens"); w.int(outputTokens)
        w.key("prompt_tokens_details")
        w.beginObject()
        w.key("cached_tokens"); w.int(cachedTokens)
        w.endObject()
        w.endObject()
    }

    private func chunk(_ write: (inout JSONWriter) -> Void, finish: String?) -> [UInt8] {
        sseFrame(jsonObject { w in
            writeHead(&w, chunk: true)
            w.key("choices")
            w.beginArray()
            w.beginObject()
            w.key("index"); w.int(0)
            write(&w)
            w.key("logprobs"); w.null()
            w.key("finish_reason")
            if let finish { w.string(finish) } else { w.null() }
            w.endObject()
            w.endArray()
        })
    }

    func roleChunk() -> [UInt8] {
        chunk({ w in
            w.key("delta")
            w.beginObject()
            w.key("role"); w.string("assistant")
            w.key("content"); w.string("")
            w.endObject()
        }, finish: nil)
    }

    func tokenChunk(_ index: Int) -> [UInt8] {
        chunk({ w in
            if chat {
                w.key("delta")
                w.beginObject()
                w.key("content"); w.string(token(index))
                w.endObject()
            } else {
                w.key("text"); w.string(token(index))
            }
        }, finish: nil)
    }

    func closingChunks(cachedTokens: Int) -> [UInt8] {
        var bytes = chunk({ w in
            if chat {
                w.key("delta")
                w.beginObject()
                w.key("content"); w.string("")
                w.endObject()
            } else {
                w.key("text"); w.string("")
            }
        }, finish: finishReason)
        if includeUsage {
            bytes += sseFrame(jsonObject { w in
                writeHead(&w, chunk: true)
                w.key("choices"); w.beginArray(); w.endArray()
                writeUsage(&w, cachedTokens: cachedTokens)
            })
        }
        bytes += Array("data: [DONE]\n\n".utf8)
        return bytes
    }

    func wholeBody(cachedTokens: Int) -> [UInt8] {
        jsonObject { w in
            writeHead(&w, chunk: false)
            w.key("choices")
            w.beginArray()
            w.beginObject()
            w.key("index"); w.int(0)
            if chat {
                w.key("message")
                w.beginObject()
                w.key("role"); w.string("assistant")
                w.key("content"); w.string(text)
                w.key("tool_calls"); w.beginArray(); w.endArray()
                w.endObject()
            } else {
                w.key("text"); w.string(text)
            }
            w.key("logprobs"); w.null()
            w.key("finish_reason"); w.string(finishReason)
            w.key("stop_reason"); w.null()
            w.endObject()
            w.endArray()
            writeUsage(&w, cachedTokens: cachedTokens)
        }
    }
}

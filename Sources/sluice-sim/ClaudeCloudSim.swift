import SluiceCore

// Claude served by the clouds, as the clouds serve it: the Anthropic simulator's validation and replies behind
// Vertex AI's paths (on the Gemini/Vertex listener, with its bearer-token check) and Bedrock InvokeModel's (on
// the Bedrock listener, with its SigV4 check). Each cloud checks what it adds to Anthropic's API — the model in
// the path and not in the body, its own `anthropic_version` — and answers its front end's errors in its own
// shape, the model's in Anthropic's.

/// The body a cloud received as the Anthropic API would read it: `anthropic_version` checked and removed,
/// the path's model put back in. A cloud-specific refusal comes back as `.failure(message)`.
private func anthropicBody(
    _ object: JSONObject, version: String, model: String, forbidden: [String]
) -> Result<JSONValue, SimInvalid> {
    for key in forbidden where object[key] != nil {
        return .failure(SimInvalid("\(key): Extra inputs are not permitted"))
    }
    guard let given = object["anthropic_version"]?.stringValue else {
        return .failure(SimInvalid("anthropic_version: Field required"))
    }
    guard given == version else {
        return .failure(SimInvalid("anthropic_version: Input should be '\(version)'"))
    }
    var members = object.members.filter { $0.key != "anthropic_version" }
    members.append(("model", .string(model)))
    return .success(.object(JSONObject(members)))
}

extension GeminiSimulator {
    /// Vertex AI's Claude: `…/publishers/anthropic/models/{model}:rawPredict` and `:streamRawPredict`, and the
    /// counter `…/models/count-tokens:rawPredict` (its body names the model).
    func claudeOnVertex(_ request: SimRequest, route: Route, context: SimContext) -> (SimResponse, SimUsage?) {
        let anthropic = AnthropicSimulator(credentials: credentials)
        guard route.method == "rawPredict" || route.method == "streamRawPredict" else {
            return (error(404, status: "NOT_FOUND", "Method \(route.method) not found for publisher model anthropic/\(route.model)."), nil)
        }
        guard let object = request.json()?.objectValue else {
            return (error(400, status: "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token."), nil)
        }
        if route.model == "count-tokens" {
            guard route.method == "rawPredict" else {
                return (error(400, status: "FAILED_PRECONDITION", "count-tokens does not stream."), nil)
            }
            // The body names the model; an `anthropic_version` (Anthropic's Vertex SDK sends one) is Vertex's.
            if let version = object["anthropic_version"], version.stringValue != AnthropicOnCloud.vertexVersion {
                return (anthropic.error(400, type: "invalid_request_error", "anthropic_version: Input should be '\(AnthropicOnCloud.vertexVersion)'"), nil)
            }
            let counted = JSONObject(object.members.filter { $0.key != "anthropic_version" })
            do {
                let (model, conversation) = try anthropic.parse(.object(counted), countOnly: true)
                guard model.hasPrefix("claude") else {
                    return (error(404, status: "NOT_FOUND", "Publisher Model `anthropic/\(model)` not found."), nil)
                }
                let count = Planner.reply(to: conversation).promptTokens
                return (.json(200, Array(utf8: #"{"input_tokens":\#(count)}"#)), nil)
            } catch {
                return (anthropic.error(400, type: "invalid_request_error", error.message), nil)
            }
        }
        guard route.model.hasPrefix("claude") else {
            return (error(404, status: "NOT_FOUND", "Publisher Model `publishers/anthropic/models/\(route.model)` not found."), nil)
        }
        let conversation: Conversation
        do {
            let body = try anthropicBody(object, version: AnthropicOnCloud.vertexVersion, model: route.model, forbidden: ["model"]).get()
            conversation = try anthropic.parse(body, countOnly: false).1
        } catch {
            return (anthropic.error(400, type: "invalid_request_error", error.message), nil)
        }
        guard conversation.stream == (route.method == "streamRawPredict") else {
            return (anthropic.error(400, type: "invalid_request_error",
                conversation.stream ? "stream: streaming requests go to :streamRawPredict" : "stream: :streamRawPredict needs \"stream\": true"), nil)
        }
        let reply = Planner.reply(to: conversation)
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        if fault == .rateLimited {
            // Vertex's quota is enforced by its front end, in Google's shape.
            return (error(429, status: "RESOURCE_EXHAUSTED",
                "Quota exceeded for aiplatform.googleapis.com/online_prediction_input_tokens_per_minute_per_base_model with base model: anthropic-claude. Please submit a quota increase request."), nil)
        }
        if let fault, fault != .midstream {
            return (anthropic.faultResponse(fault, promptTokens: reply.promptTokens), nil)
        }
        let sequence = context.state.nextID()
        let id = "msg_vrtx_sim\(sequence)"
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        if conversation.stream {
            let events = anthropic.streamEvents(
                id: id, model: route.model, reply: reply, midstream: fault == .midstream, toolID: "toolu_vrtx_sim\(sequence)")
            return (.sse(events.map { sseFrame(event: $0.type, $0.json) }), usage)
        }
        return (.json(200, anthropic.message(id: id, model: route.model, reply: reply, toolID: "toolu_vrtx_sim\(sequence)")), usage)
    }
}

extension BedrockSimulator {
    /// The header that echoes the betas a request turned on (`anthropic_beta`, comma-joined), so a test can
    /// see what arrived.
    static let betaEchoHeader = "x-sim-anthropic-beta"

    /// The body's `anthropic_beta`, as InvokeModel reads it: an array of strings (nil when absent); a body
    /// with anything else there fails (`.failure`).
    static func betas(of object: JSONObject) -> Result<[String]?, SimInvalid> {
        guard let value = object["anthropic_beta"] else { return .success(nil) }
        guard case .array(let items) = value else {
            return .failure(SimInvalid("#/anthropic_beta: expected type: JSONArray, found: \(value.typeName)"))
        }
        var names: [String] = []
        for item in items {
            guard let name = item.stringValue else {
                return .failure(SimInvalid("#/anthropic_beta: expected type: String, found: \(item.typeName)"))
            }
            names.append(name)
        }
        return .success(names)
    }

    /// Bedrock InvokeModel for Claude: `/model/{id}/invoke` answers an Anthropic message,
    /// `/invoke-with-response-stream` an AWS event stream whose `chunk` events carry each Anthropic event as
    /// `{"bytes": "<base64>"}`; a mid-stream failure is an exception message, as Bedrock sends it. Betas come
    /// in the body (`anthropic_beta`); the ones turned on are echoed in `x-sim-anthropic-beta`.
    func invokeModel(
        _ request: SimRequest, model: String, streaming: Bool, requestID: String, context: SimContext
    ) -> (SimResponse, SimUsage?) {
        let anthropic = AnthropicSimulator(credentials: credentials)
        guard let object = request.json()?.objectValue else {
            return (modelError(400, type: "ValidationException", "Malformed input request, please reformat your input and try again.",
                requestID: requestID), nil)
        }
        guard model.contains("anthropic.claude") else {
            return (modelError(404, type: "ResourceNotFoundException", "Could not resolve the foundation model from the model identifier \(model).",
                requestID: requestID), nil)
        }
        let conversation: Conversation
        let betas: [String]?
        do {
            betas = try Self.betas(of: object).get()
            let withoutBetas = JSONObject(object.members.filter { $0.key != "anthropic_beta" })
            let body = try anthropicBody(
                withoutBetas, version: AnthropicOnCloud.bedrockVersion, model: model, forbidden: ["model", "stream"]
            ).get()
            conversation = try anthropic.parse(body, countOnly: false).1
        } catch {
            return (modelError(400, type: "ValidationException", "Malformed input request: \(error.message), please reformat your input and try again.",
                requestID: requestID), nil)
        }
        let reply = Planner.reply(to: conversation)
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        if let fault, fault != .midstream {
            return (faultResponse(fault, requestID: requestID), nil)
        }
        let sequence = context.state.nextID()
        let id = "msg_bdrk_sim\(sequence)"
        let toolID = "toolu_bdrk_sim\(sequence)"
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        let counts = [
            ("x-amzn-bedrock-input-token-count", String(reply.promptTokens)),
            ("x-amzn-bedrock-output-token-count", String(reply.completionTokens)),
        ] + (betas.map { [(Self.betaEchoHeader, $0.joined(separator: ","))] } ?? [])
        guard streaming else {
            return (.json(200, anthropic.message(id: id, model: model, reply: reply, toolID: toolID),
                headers: [("x-amzn-requestid", requestID)] + counts), usage)
        }
        var frames: [[UInt8]] = []
        for event in anthropic.streamEvents(id: id, model: model, reply: reply, midstream: fault == .midstream, toolID: toolID) {
            if event.type == "error" {
                let payload = jsonObject { w in
                    w.key("message"); w.string("The model stream encountered an error. Retry your request.")
                    w.key("originalStatusCode"); w.int(529)
                    w.key("originalMessage"); w.string("Overloaded")
                }
                if let frame = try? AWSEventStreamEncoder.exception("modelStreamErrorException", payload: payload) {
                    frames.append(frame)
                }
                break
            }
            var json = event.json
            if event.type == "message_stop" {
                // Bedrock adds its own metrics to the last event.
                json = jsonObject { w in
                    w.key("type"); w.string("message_stop")
                    w.key("amazon-bedrock-invocationMetrics")
                    w.beginObject()
                    w.key("inputTokenCount"); w.int(reply.promptTokens)
                    w.key("outputTokenCount"); w.int(reply.completionTokens)
                    w.key("invocationLatency"); w.int(reply.completionTokens * 10)
                    w.key("firstByteLatency"); w.int(5)
                    w.endObject()
                }
            }
            let payload = jsonObject { w in w.key("bytes"); w.string(Base64.encode(json)) }
            if let frame = try? AWSEventStreamEncoder.event("chunk", payload: payload) { frames.append(frame) }
        }
        return (SimResponse(status: 200, headers: [
            ("content-type", "application/vnd.amazon.eventstream"), ("x-amzn-requestid", requestID),
            ("x-amzn-bedrock-content-type", "application/json"),
        ] + (betas.map { [(Self.betaEchoHeader, $0.joined(separator: ","))] } ?? []), body: .stream(frames)), usage)
    }
}

import Foundation
import SluiceCore

/// Bedrock runtime Converse API: `POST /model/{modelId}/converse` and `/converse-stream`, SigV4 verified.
struct BedrockSimulator: ProviderSimulator {
    let credentials: SimCredentials
    var name: String { "bedrock" }

    /// How far `x-amz-date` may be from the simulator's clock, as AWS allows.
    static let maxClockSkewSeconds: Int64 = 15 * 60

    // MARK: SigV4 verification

    func authenticate(_ request: SimRequest) -> SimResponse? {
        let invalid = authError(
            403, type: "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
        guard let authorization = request.header("authorization"),
            let parsed = Self.parseAuthorization(authorization)
        else {
            return invalid
        }
        let scope = parsed.credential.split(separator: "/").map(String.init)
        guard scope.count == 5, scope[4] == "aws4_request" else { return invalid }
        guard secretsEqual(scope[0], credentials.awsAccessKeyID) else {
            return authError(403, type: "UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        guard scope[2] == credentials.awsRegion, scope[3] == credentials.awsService else {
            return authError(403, type: "InvalidSignatureException",
                "Credential should be scoped to a valid region, and to the service '\(credentials.awsService)' in '\(credentials.awsRegion)'.")
        }
        guard let amzDate = request.header("x-amz-date"), let date = Self.parseAmzDate(amzDate),
            date.dateStamp == scope[1]
        else {
            return invalid
        }
        let skew = Self.unixSeconds(date) - Int64(Date().timeIntervalSince1970)
        guard abs(skew) <= Self.maxClockSkewSeconds else {
            return authError(403, type: "InvalidSignatureException",
                "Signature expired: \(amzDate) is now earlier or later than the allowed 15 minute window.")
        }
        let payloadHash = SHA256.hash(request.body).hex
        if let claimed = request.header("x-amz-content-sha256"), claimed != "UNSIGNED-PAYLOAD", claimed != payloadHash {
            return authError(400, type: "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.")
        }
        // Re-sign exactly the headers the client says it signed; a missing one cannot match.
        var signed: [(name: String, value: String)] = []
        for name in parsed.signedHeaders {
            let values = request.headers.filter { $0.name.lowercased() == name }.map(\.value)
            guard !values.isEmpty else { return invalid }
            for value in values { signed.append((name: name, value: value)) }
        }
        guard parsed.signedHeaders.contains("host") else { return invalid }
        let signer = SigV4Signer(
            accessKeyID: credentials.awsAccessKeyID, secretAccessKey: credentials.awsSecretAccessKey,
            region: credentials.awsRegion, service: credentials.awsService)
        let canonical = signer.canonicalRequest(
            method: request.method, path: request.rawPath, query: request.rawQuery, headers: signed,
            payloadHash: request.header("x-amz-content-sha256") ?? payloadHash)
        let expected = signer.signature(
            stringToSign: signer.stringToSign(canonicalRequest: canonical.text, date: date), date: date)
        guard canonical.signedHeaders == parsed.signedHeaders.joined(separator: ";"),
            secretsEqual(expected, parsed.signature)
        else {
            return invalid
        }
        return nil
    }

    struct Authorization {
        var credential: String
        var signedHeaders: [String]
        var signature: String
    }

    /// Parses `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    static func parseAuthorization(_ header: String) -> Authorization? {
        let prefix = "AWS4-HMAC-SHA256 "
        guard header.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        for part in header.dropFirst(prefix.count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { return nil }
            fields[String(pair[0])] = String(pair[1])
        }
        guard let credential = fields["Credential"], let signedHeaders = fields["SignedHeaders"],
            let signature = fields["Signature"]
        else { return nil }
        return Authorization(
            credential: credential, signedHeaders: signedHeaders.split(separator: ";").map(String.init),
            signature: signature)
    }

    /// Parses `YYYYMMDD'T'HHMMSS'Z'`.
    static func parseAmzDate(_ text: String) -> SigV4Date? {
        let chars = Array(text.utf8)
        guard chars.count == 16, chars[8] == UInt8(ascii: "T"), chars[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let c = chars[index]
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
            let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        return SigV4Date(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// Seconds since the epoch of a UTC date (days-from-civil, H. Hinnant).
    static func unixSeconds(_ date: SigV4Date) -> Int64 {
        let y = Int64(date.month <= 2 ? date.year - 1 : date.year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(date.month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(date.day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + Int64(date.hour) * 3600 + Int64(date.minute) * 60 + Int64(date.second)
    }

    // MARK: Routing

    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) {
        let requestID = Self.requestID(context.state.nextID())
        let segments = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if request.method == "POST", segments.count == 3, segments[0] == "model",
            segments[2] == "invoke" || segments[2] == "invoke-with-response-stream"
        {
            return invokeModel(request, model: segments[1], streaming: segments[2] != "invoke", requestID: requestID, context: context)
        }
        guard request.method == "POST", segments.count == 3, segments[0] == "model",
            segments[2] == "converse" || segments[2] == "converse-stream" || segments[2] == "count-tokens"
        else {
            return (modelError(404, type: "UnknownOperationException", "Unknown operation", requestID: requestID), nil)
        }
        if segments[2] == "count-tokens" {
            // CountTokens: `{"input":{"converse":{messages, system, toolConfig}}}` -> `{"inputTokens":N}`.
            guard let converse = request.json()?["input"]?["converse"], converse.objectValue != nil else {
                return (modelError(400, type: "ValidationException", "input.converse is required.", requestID: requestID), nil)
            }
            do {
                let conversation = try parse(converse)
                return (.json(200, Array(utf8: #"{"inputTokens":\#(Planner.countTokens(conversation.promptText))}"#),
                    headers: [("x-amzn-requestid", requestID)]), nil)
            } catch {
                return (modelError(400, type: "ValidationException", error.message, requestID: requestID), nil)
            }
        }
        let streaming = segments[2] == "converse-stream"
        guard let body = request.json(), body.objectValue != nil else {
            return (modelError(400, type: "SerializationException", "Unable to parse request body as JSON.",
                requestID: requestID), nil)
        }
        let conversation: Conversation
        do {
            conversation = try parse(body)
        } catch {
            return (modelError(400, type: "ValidationException", error.message, requestID: requestID), nil)
        }
        let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: conversation.lastUserText)
        let reply = Planner.reply(to: conversation)
        if let fault, fault != .midstream {
            return (faultResponse(fault, requestID: requestID), nil)
        }
        let usage = SimUsage(promptTokens: reply.promptTokens, completionTokens: reply.completionTokens)
        let toolUseID = "tooluse_sim\(context.state.nextID())"
        if streaming {
            let frames = stream(reply: reply, midstream: fault == .midstream, toolUseID: toolUseID)
            return (SimResponse(status: 200, headers: [
                ("content-type", "application/vnd.amazon.eventstream"), ("x-amzn-requestid", requestID),
            ], body: .stream(frames)), usage)
        }
        let bytes = jsonObject { w in
            w.key("metrics")
            w.beginObject()
            w.key("latencyMs"); w.int(reply.completionTokens * 10)
            w.endObject()
            w.key("output")
            w.beginObject()
            w.key("message")
            w.beginObject()
            w.key("content")
            w.beginArray()
            if !reply.thinking.isEmpty {
                w.beginObject()
                w.key("reasoningContent")
                w.beginObject()
                w.key("reasoningText")
                w.beginObject()
                w.key("text"); w.string(reply.thinkingText)
                w.key("signature"); w.string(signature(reply.thinkingText))
                w.endObject()
                w.endObject()
                w.endObject()
            }
            switch reply.content {
            case .text:
                w.beginObject()
                w.key("text"); w.string(reply.text)
                w.endObject()
            case .toolCall(let name, let arguments, _):
                w.beginObject()
                w.key("toolUse")
                w.beginObject()
                w.key("toolUseId"); w.string(toolUseID)
                w.key("name"); w.string(name)
                w.key("input"); w.value(arguments)
                w.endObject()
                w.endObject()
            }
            w.endArray()
            w.key("role"); w.string("assistant")
            w.endObject()
            w.endObject()
            w.key("stopReason"); w.string(stopReason(reply.finish))
            writeUsage(&w, reply: reply)
        }
        return (.json(200, bytes, headers: [("x-amzn-requestid", requestID)]), usage)
    }

    // MARK: Request validation

    private func parse(_ body: JSONValue) throws(SimInvalid) -> Conversation {
        var conversation = Conversation()
        for (index, block) in (body["system"]?.arrayValue ?? []).enumerated() {
            if let text = block["text"]?.stringValue {
                guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw SimInvalid("The text field in the SystemContentBlock object at system.\(index) is blank. Add text to the text field, and try again.")
                }
                conversation.addPrompt(text)
            } else if block["cachePoint"] == nil, block["guardContent"] == nil {
                throw SimInvalid("The SystemContentBlock object at system.\(index) must set one of the following keys: text, guardContent, cachePoint.")
            }
        }
        guard let messagesValue = body["messages"], !messagesValue.isNull else {
            throw SimInvalid("1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null")
        }
        guard let messages = messagesValue.arrayValue, !messages.isEmpty else {
            throw SimInvalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
        }
        var usesTools = false
        var previousRole = ""
        var pendingToolUses: [String] = []
        var lastHadResult = false
        for (index, message) in messages.enumerated() {
            guard let role = message["role"]?.stringValue, role == "user" || role == "assistant" else {
                let shown = message["role"]?.stringValue ?? "null"
                throw SimInvalid("1 validation error detected: Value '\(shown)' at 'messages.\(index + 1).member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]")
            }
            if index == 0, role != "user" {
                throw SimInvalid("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
            }
            if role == previousRole {
                throw SimInvalid("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.")
            }
            guard let content = message["content"]?.arrayValue, !content.isEmpty else {
                throw SimInvalid("The content field in the Message object at messages.\(index) is empty. Add a ContentBlock object to the content field and try again.")
            }
            var texts: [String] = []
            var toolUses: [String] = []
            var results: [String] = []
            var resultTexts: [String] = []
            for (blockIndex, block) in content.enumerated() {
                let path = "messages.\(index).content.\(blockIndex)"
                if let text = block["text"] {
                    guard let value = text.stringValue,
                        !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                    else {
                        throw SimInvalid("The text field in the ContentBlock object at \(path) is blank. Add text to the text field, and try again.")
                    }
                    texts.append(value)
                } else if let toolUse = block["toolUse"] {
                    guard role == "assistant", let id = toolUse["toolUseId"]?.stringValue,
                        toolUse["name"]?.stringValue != nil, toolUse["input"] != nil
                    else {
                        throw SimInvalid("The toolUse block at \(path) must be in an assistant message and set toolUseId, name and input.")
                    }
                    usesTools = true
                    toolUses.append(id)
                    conversation.addPrompt(String(decoding: (toolUse["input"] ?? .null).serialized(), as: UTF8.self))
                } else if let result = block["toolResult"] {
                    guard role == "user", let id = result["toolUseId"]?.stringValue,
                        let parts = result["content"]?.arrayValue
                    else {
                        throw SimInvalid("The toolResult block at \(path) must be in a user message and set toolUseId and content.")
                    }
                    usesTools = true
                    results.append(id)
                    let text = parts.map { part in
                        part["text"]?.stringValue ?? part["json"].map { String(decoding: $0.serialized(), as: UTF8.self) } ?? ""
                    }.joined(separator: " ")
                    resultTexts.append(text)
                    conversation.addPrompt(text)
                } else if block["image"] != nil || block["document"] != nil || block["cachePoint"] != nil
                    || block["reasoningContent"] != nil || block["guardContent"] != nil || block["video"] != nil
                {
                    continue
                } else {
                    throw SimInvalid("The ContentBlock object at \(path) must set one of the following keys: text, image, toolUse, toolResult, document, video, cachePoint, reasoningContent, guardContent.")
                }
            }
            if !pendingToolUses.isEmpty, role == "user" {
                let missing = pendingToolUses.filter { !results.contains($0) }
                if !missing.isEmpty {
                    throw SimInvalid("Expected toolResult blocks at messages.\(index).content for the following Ids: \(missing.joined(separator: ", "))")
                }
            }
            if let stray = results.first(where: { !pendingToolUses.contains($0) }) {
                throw SimInvalid("The toolResult block at messages.\(index).content references toolUseId \(stray), which the previous turn did not request.")
            }
            pendingToolUses = toolUses
            let text = texts.joined(separator: " ")
            conversation.addPrompt(text)
            if role == "user", !texts.isEmpty { conversation.lastUserText = text }
            if !resultTexts.isEmpty { conversation.toolResultText = resultTexts.joined(separator: " ") }
            previousRole = role
            lastHadResult = !results.isEmpty
        }
        conversation.endsWithToolResult = previousRole == "user" && lastHadResult
        let toolConfig = body["toolConfig"]
        if usesTools, toolConfig == nil || toolConfig?.isNull == true {
            throw SimInvalid("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
        }
        if let toolConfig, !toolConfig.isNull {
            guard let tools = toolConfig["tools"]?.arrayValue, !tools.isEmpty else {
                throw SimInvalid("1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1")
            }
            for (index, tool) in tools.enumerated() {
                if tool["cachePoint"] != nil { continue }
                guard let spec = tool["toolSpec"], let name = spec["name"]?.stringValue,
                    let schema = spec["inputSchema"]?["json"]
                else {
                    throw SimInvalid("The toolSpec at toolConfig.tools.\(index) must set name and inputSchema.json.")
                }
                conversation.tools.append(SimTool(name: name, schema: schema))
            }
            if let choice = toolConfig["toolChoice"] {
                if let name = choice["tool"]?["name"]?.stringValue {
                    conversation.forcedTool = name
                } else if choice["auto"] == nil, choice["any"] == nil {
                    throw SimInvalid("The toolChoice field must set one of: auto, any, tool.")
                }
            }
        }
        if let inference = body["inferenceConfig"], !inference.isNull {
            if let maxTokens = inference["maxTokens"] {
                guard let limit = maxTokens.int64Value, limit >= 1 else {
                    throw SimInvalid("1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1")
                }
                conversation.maxTokens = Int(clamping: limit)
            }
            if let temperature = inference["temperature"]?.doubleValue, temperature < 0 || temperature > 1 {
                throw SimInvalid("1 validation error detected: Value '\(temperature)' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1")
            }
        }
        let thinking = body["additionalModelRequestFields"]?["thinking"]
        conversation.thinking = thinking?["type"]?.stringValue == "enabled"
        return conversation
    }

    // MARK: Stream

    private func stream(reply: SimReply, midstream: Bool, toolUseID: String) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var padding = 0
        func event(_ type: String, _ write: (inout JSONWriter) -> Void) {
            padding += 1
            let payload = jsonObject { w in
                write(&w)
                // Bedrock pads events with a "p" field of varying length; clients must ignore it.
                w.key("p"); w.string(String("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123".prefix(padding % 40 + 1)))
            }
            if let frame = try? AWSEventStreamEncoder.event(type, payload: payload) { frames.append(frame) }
        }
        func exception() {
            let payload = jsonObject { w in
                w.key("message"); w.string("The model stream encountered an error. Retry your request.")
                w.key("originalStatusCode"); w.int(500)
                w.key("originalMessage"); w.string("Internal server error")
            }
            if let frame = try? AWSEventStreamEncoder.exception("modelStreamErrorException", payload: payload) {
                frames.append(frame)
            }
        }
        event("messageStart") { w in w.key("role"); w.string("assistant") }
        var index = 0
        if !reply.thinking.isEmpty {
            for token in reply.thinking {
                event("contentBlockDelta") { w in
                    w.key("contentBlockIndex"); w.int(index)
                    w.key("delta")
                    w.beginObject()
                    w.key("reasoningContent"); w.beginObject(); w.key("text"); w.string(token); w.endObject()
                    w.endObject()
                }
            }
            event("contentBlockDelta") { w in
                w.key("contentBlockIndex"); w.int(index)
                w.key("delta")
                w.beginObject()
                w.key("reasoningContent")
                w.beginObject(); w.key("signature"); w.string(signature(reply.thinkingText)); w.endObject()
                w.endObject()
            }
            event("contentBlockStop") { w in w.key("contentBlockIndex"); w.int(index) }
            index += 1
        }
        switch reply.content {
        case .text(let tokens):
            for (position, token) in tokens.enumerated() {
                if midstream, position == SimFault.tokensBeforeMidstreamError {
                    exception()
                    return frames
                }
                event("contentBlockDelta") { w in
                    w.key("contentBlockIndex"); w.int(index)
                    w.key("delta"); w.beginObject(); w.key("text"); w.string(token); w.endObject()
                }
            }
        case .toolCall(let name, _, let fragments):
            event("contentBlockStart") { w in
                w.key("contentBlockIndex"); w.int(index)
                w.key("start")
                w.beginObject()
                w.key("toolUse")
                w.beginObject()
                w.key("toolUseId"); w.string(toolUseID)
                w.key("name"); w.string(name)
                w.endObject()
                w.endObject()
            }
            for (position, fragment) in fragments.enumerated() {
                if midstream, position == 1 {
                    exception()
                    return frames
                }
                event("contentBlockDelta") { w in
                    w.key("contentBlockIndex"); w.int(index)
                    w.key("delta")
                    w.beginObject()
                    w.key("toolUse"); w.beginObject(); w.key("input"); w.string(fragment); w.endObject()
                    w.endObject()
                }
            }
        }
        if midstream {
            exception()
            return frames
        }
        event("contentBlockStop") { w in w.key("contentBlockIndex"); w.int(index) }
        event("messageStop") { w in w.key("stopReason"); w.string(stopReason(reply.finish)) }
        event("metadata") { w in
            w.key("metrics"); w.beginObject(); w.key("latencyMs"); w.int(reply.completionTokens * 10); w.endObject()
            writeUsage(&w, reply: reply)
        }
        return frames
    }

    // MARK: Writers

    private func stopReason(_ finish: SimReply.Finish) -> String {
        switch finish {
        case .stop: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        }
    }

    /// Converse's `inputTokens` excludes cache reads, reported as `cacheReadInputTokens`.
    private func writeUsage(_ w: inout JSONWriter, reply: SimReply) {
        w.key("usage")
        w.beginObject()
        w.key("inputTokens"); w.int(reply.promptTokens - reply.cachedTokens)
        w.key("outputTokens"); w.int(reply.completionTokens)
        w.key("totalTokens"); w.int(reply.promptTokens + reply.completionTokens)
        if reply.cachedTokens > 0 {
            w.key("cacheReadInputTokens"); w.int(reply.cachedTokens)
            w.key("cacheWriteInputTokens"); w.int(0)
        }
        w.endObject()
    }

    private func signature(_ thinking: String) -> String {
        Base64.encode(SHA256.hash("sim-signature:" + thinking).bytes)
    }

    /// A UUID-shaped request id derived from a sequence number.
    static func requestID(_ sequence: Int) -> String {
        let hex = SHA256.hash("sim-request-\(sequence)").hex
        let c = Array(hex)
        return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
    }

    // MARK: Errors

    /// Auth errors: the bare type name in `x-amzn-errortype`.
    private func authError(_ status: Int, type: String, _ message: String) -> SimResponse {
        .json(status, headers: [("x-amzn-errortype", type), ("x-amzn-requestid", Self.requestID(0))]) { w in
            w.beginObject()
            w.key("message"); w.string(message)
            w.endObject()
        }
    }

    /// Service errors: the type suffixed with its namespace, as Bedrock sends it.
    func modelError(_ status: Int, type: String, _ message: String, requestID: String) -> SimResponse {
        .json(status, headers: [
            ("x-amzn-errortype", "\(type):http://internal.amazon.com/coral/com.amazon.bedrock/"),
            ("x-amzn-requestid", requestID),
        ]) { w in
            w.beginObject()
            w.key("message"); w.string(message)
            w.endObject()
        }
    }

    func faultResponse(_ fault: SimFault, requestID: String) -> SimResponse {
        switch fault {
        case .rateLimited:
            modelError(429, type: "ThrottlingException", "Too many requests, please wait before trying again.",
                requestID: requestID)
        case .serverError, .midstream:
            modelError(500, type: "InternalServerException",
                "The system encountered an unexpected error during processing. Try your request again.",
                requestID: requestID)
        case .unavailable, .overloaded:
            modelError(503, type: "ServiceUnavailableException", "Bedrock is unable to process your request.",
                requestID: requestID)
        case .contextLength:
            modelError(400, type: "ValidationException", "Input is too long for requested model.", requestID: requestID)
        }
    }
}

// Gemini `GenerateContentResponse` -> OpenAI `chat.completion`.
//
// Each candidate becomes a choice: text parts are concatenated into `content`, `thought: true` parts into
// `reasoning_content`, and `functionCall` parts into `tool_calls` with gateway-made ids `call_<n>` (Gemini has
// no call ids) and JSON-stringified `args`. A prompt blocked before generation (`promptFeedback.blockReason`,
// no candidates) becomes one empty choice finished by `content_filter`.

extension Gemini {
    /// An OpenAI response translated from Gemini, with what metering needs.
    public struct ChatResponse: Sendable, Equatable {
        /// The OpenAI `chat.completion` body.
        public var body: [UInt8]
        public var usage: TokenUsage
        /// The first choice's OpenAI finish reason, if any.
        public var finishReason: String?
    }

    /// Translates a non-streaming Gemini response body into an OpenAI chat completion.
    /// - Throws: `TranslateError.badUpstreamResponse` (502) if the body is not a Gemini response.
    public static func chatCompletion(fromGeminiResponse body: [UInt8], context: TranslationContext)
        throws(TranslateError) -> ChatResponse
    {
        let root = try parse(body, upstream: true)
        guard let response = root.objectValue else {
            throw .badUpstreamResponse("Gemini returned \(root.typeName) instead of a response object.")
        }
        if response["error"] != nil {
            throw translateError(gatewayError(status: 0, body: body))
        }
        let usage = usage(fromMetadata: response["usageMetadata"]) ?? TokenUsage()
        var writer = JSONWriter(reservingCapacity: body.count + 256)
        writer.beginObject()
        writer.key("id")
        writer.string(response["responseId"]?.stringValue.map { "chatcmpl-" + $0 } ?? context.fallbackResponseID)
        writer.key("object")
        writer.string("chat.completion")
        writer.key("created")
        writer.int(context.created)
        writer.key("model")
        writer.string(context.requestModel)
        writer.key("choices")
        writer.beginArray()
        var firstFinish: String?
        var toolCounter = 0
        let candidates = response["candidates"]?.arrayValue ?? []
        if candidates.isEmpty {
            // No candidates: the prompt was blocked (blockReason) or the model produced nothing.
            let blocked = response["promptFeedback"]?["blockReason"] != nil
            let reason = blocked ? "content_filter" : "stop"
            writeChoice(index: 0, content: "", reasoning: "", toolCalls: [], finishReason: reason, to: &writer)
            firstFinish = reason
        }
        for (position, candidate) in candidates.enumerated() {
            var collected = CandidateParts()
            collected.collect(candidate["content"]?["parts"], toolCounter: &toolCounter)
            let reason = openAIFinishReason(
                candidate["finishReason"]?.stringValue ?? "STOP", sawToolCall: !collected.toolCalls.isEmpty)
            let index = candidate["index"]?.int64Value.map { Int(clamping: $0) } ?? position
            writeChoice(
                index: index, content: collected.text, reasoning: collected.reasoning, toolCalls: collected.toolCalls,
                finishReason: reason, to: &writer)
            if firstFinish == nil { firstFinish = reason }
        }
        writer.endArray()
        writer.key("usage")
        writeUsage(usage, to: &writer)
        writer.endObject()
        return ChatResponse(body: writer.bytes, usage: usage, finishReason: firstFinish)
    }

    /// One function call found in a candidate, ready for OpenAI.
    struct ToolCall {
        var id: String
        var name: String
        /// The `args` object serialised: OpenAI carries arguments as a JSON string.
        var arguments: String
        var thoughtSignature: String?
    }

    /// The parts of one candidate (or one streamed chunk of it), sorted into OpenAI's fields.
    struct CandidateParts {
        var text = ""
        var reasoning = ""
        var toolCalls: [ToolCall] = []

        mutating func collect(_ parts: JSONValue?, toolCounter: inout Int) {
            for part in parts?.arrayValue ?? [] {
                if let call = part["functionCall"] {
                    let arguments = call["args"].map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "{}"
                    toolCalls.append(
                        ToolCall(
                            id: "call_\(toolCounter)", name: call["name"]?.stringValue ?? "",
                            arguments: arguments, thoughtSignature: part["thoughtSignature"]?.stringValue))
                    toolCounter &+= 1
                } else if let text = part["text"]?.stringValue {
                    if part["thought"]?.boolValue == true {
                        reasoning += text
                    } else {
                        text.isEmpty ? () : (self.text += text)
                    }
                }
            }
        }
    }

    static func writeChoice(
        index: Int, content: String, reasoning: String, toolCalls: [ToolCall], finishReason: String,
        to writer: inout JSONWriter
    ) {
        writer.beginObject()
        writer.key("index")
        writer.int(index)
        writer.key("message")
        writer.beginObject()
        writer.key("role")
        writer.string("assistant")
        writer.key("content")
        if content.isEmpty && !toolCalls.isEmpty { writer.null() } else { writer.string(content) }
        if !reasoning.isEmpty {
            writer.key("reasoning_content")
            writer.string(reasoning)
        }
        if !toolCalls.isEmpty {
            writer.key("tool_calls")
            writer.beginArray()
            for (_, call) in toolCalls.enumerated() {
                writeToolCall(call, streamIndex: nil, to: &writer)
            }
            writer.endArray()
        }
        writer.endObject()
        writer.key("finish_reason")
        writer.string(finishReason)
        writer.endObject()
    }

    /// Writes one OpenAI tool call; `streamIndex` adds the `index` member chunk deltas carry.
    static func writeToolCall(_ call: ToolCall, streamIndex: Int?, to writer: inout JSONWriter) {
        writer.beginObject()
        if let streamIndex {
            writer.key("index")
            writer.int(streamIndex)
        }
        writer.key("id")
        writer.string(call.id)
        writer.key("type")
        writer.string("function")
        writer.key("function")
        writer.beginObject()
        writer.key("name")
        writer.string(call.name)
        writer.key("arguments")
        writer.string(call.arguments)
        writer.endObject()
        if let signature = call.thoughtSignature {
            // Google's OpenAI-compatibility field; the request translator sends it back as `thoughtSignature`.
            writer.key("extra_content")
            writer.beginObject()
            writer.key("google")
            writer.beginObject()
            writer.key("thought_signature")
            writer.string(signature)
            writer.endObject()
            writer.endObject()
        }
        writer.endObject()
    }
}

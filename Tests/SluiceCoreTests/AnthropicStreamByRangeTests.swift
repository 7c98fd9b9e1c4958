// The hub's stream for an Anthropic client read by range (`OpenAIToAnthropicStream`) against the tree-based
// stage it replaced, kept here as the reference (`TreeOpenAIToAnthropicStream`, the old code with only its name
// and access changed, and `finishHub` as it was): on the hub stream fixtures, on hand-made edge cases (each
// also cut at every byte), and on thousands of mutated streams, both give the same bytes, usage, finish reason
// and error. As for the answers (`AnthropicByRangeTests`), a stream with a chunk that repeats a member name is
// left out: the tree's parser refuses the chunk, the range reader takes the last occurrence.

import Foundation
import Testing

@testable import SluiceCore

@Suite struct AnthropicStreamByRangeTests {
    static let context = TranslationContext(
        upstreamModel: "m", requestModel: "claude-x", stream: true, includeUsage: true, created: 1_700_000_000,
        fallbackResponseID: "msg_fallback")

    /// Hub streams from the fixtures of every backend that turns into the hub's chunks.
    static func fixtures() throws -> [[UInt8]] {
        let root = AnthropicFixtures.directory.deletingLastPathComponent()
        let names = [
            "anthropic/hub-stream.openai.sse", "anthropic/stream-error.openai.sse", "anthropic/stream-text.openai.sse",
            "anthropic/stream-thinking.openai.sse", "anthropic/stream-tools.openai.sse",
            "bedrock/stream-exception.openai.sse", "bedrock/stream-structured.openai.sse", "bedrock/stream.openai.sse",
            "gemini/stream-error.openai.sse", "gemini/stream.openai.sse", "responses/hub-stream-error.openai.sse",
            "responses/hub-stream-short.openai.sse", "responses/hub-stream.openai.sse",
        ]
        return try names.map { name in
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(name).path) else {
                throw AnthropicFixtures.FixtureMissing(name: name)
            }
            return [UInt8](data)
        }
    }

    /// `data: <chunk>\n\n` for each chunk.
    static func sse(_ chunks: [String], done: Bool = true) -> String {
        (chunks + (done ? ["[DONE]"] : [])).map { "data: \($0)\n\n" }.joined()
    }

    /// Streams made by hand for what the fixtures do not show.
    static let handMade: [String] = [
        // Errors: an object with type, code and message; other shapes; null (no error).
        sse([#"{"id":"c","choices":[{"delta":{"content":"x"}}]}"#, #"{"error":{"type":"rate_limit_error","code":"rate_limit_exceeded","message":"slow \"down\" \u00e9"}}"#]),
        sse([#"{"error":{"type":"invalid_request_error","code":"context_length_exceeded","message":5}}"#]),
        sse([#"{"error":"boom"}"#]), sse([#"{"error":5,"choices":[{"delta":{"content":"x"}}]}"#]),
        sse([#"{"error":null,"id":"c","choices":[{"delta":{"content":"kept"},"finish_reason":"stop"}]}"#]),
        sse([#"{"error":{"type":7,"code":null}}"#]), sse([#"{"error":{}}"#], done: false),
        // Usage: an object (in a chunk with no choices, or beside a delta), other shapes, repeated.
        sse([#"{"id":"c","choices":[{"delta":{"content":"a"},"finish_reason":"length"}]}"#, #"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2,"cache_write_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}}"#]),
        sse([#"{"usage":{"prompt_tokens":1.5,"completion_tokens":-3,"cache_creation_tokens":7},"choices":[{"delta":{"content":"b"}}]}"#, #"{"usage":"x"}"#, #"{"usage":null}"#, #"{"usage":[],"choices":5}"#]),
        sse([#"{"usage":{"prompt_tokens":99999999999999999999,"completion_tokens":1e3}}"#, #"{"usage":{"prompt_tokens":2}}"#]),
        // Tool calls: several indices, back to one without an id, odd indices and shapes.
        sse([#"{"id":"c","choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"name":"f\u00e9","arguments":""}},{"index":1,"id":"call_b","function":{"name":"g","arguments":"{\"x\":"}}]}}]}"#, #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":\"\\u00e9\"}"}},{"index":1,"function":{"arguments":"1}"}}]}}]}"#, #"{"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"arguments":" "}}]},"finish_reason":"tool_calls"}]}"#]),
        sse([#"{"choices":[{"delta":{"tool_calls":[{"function":{"name":"noindex","arguments":"{}"}},{"index":"1","function":{"arguments":"a"}},{"index":1.0,"function":{"arguments":"b"}},{"index":-5,"function":{"arguments":"c"}},{"index":99999999999999999999,"function":{"arguments":"d"}}]}}]}"#]),
        sse([#"{"choices":[{"delta":{"tool_calls":[5,null,{"id":7,"function":"x"},{"id":"","function":{"name":5,"arguments":{"a":1}}},{"index":2,"id":"c2"},{"index":2,"id":"c2","function":{"arguments":"\n"}}]}}]}"#]),
        sse([#"{"choices":[{"delta":{"tool_calls":{"index":0}}}]}"#, #"{"choices":[{"delta":{"tool_calls":[]}}]}"#]),
        sse([#"{"choices":[{"delta":{"content":"text then tool"}}]}"#, #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"x"}}]}}]}"#, #"{"choices":[{"delta":{"content":"back to text"}}]}"#, #"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"y"}}]}}]}"#]),
        // Thinking: reasoning text, signed and unsigned blocks, redacted ones, other entries.
        sse([#"{"choices":[{"delta":{"reasoning_content":"r\u0001\n\u2028"}}]}"#, #"{"choices":[{"delta":{"reasoning_content":"","content":"c"}}]}"#, #"{"choices":[{"delta":{"reasoning_content":"again"}}]}"#]),
        sse([#"{"choices":[{"delta":{"thinking_blocks":[{"type":"thinking","thinking":"t1","signature":"s1"},{"type":"thinking","thinking":"t2"},{"type":"thinking","signature":"s2"},{"type":"thinking","thinking":"","signature":""},{"type":"redacted_thinking","data":"d\/1"},{"type":"redacted_thinking"},{"type":"other"},5,{"type":"th\u0069nking","thinking":"esc"}],"reasoning_content":"first"}}]}"#, #"{"choices":[{"delta":{"thinking_blocks":{"type":"thinking"},"content":"after"}}]}"#]),
        sse([#"{"choices":[{"delta":{"thinking_blocks":[{"type":"redacted_thinking","data":"d"}]}}]}"#, #"{"choices":[{"delta":{"thinking_blocks":[{"type":"thinking","thinking":5,"signature":7}]},"finish_reason":"stop"}]}"#]),
        // Empty and odd deltas and choices.
        sse([#"{"id":"c","choices":[{"delta":{}}]}"#, #"{"choices":[{"delta":null}]}"#, #"{"choices":[{"delta":"x"}]}"#, #"{"choices":[5]}"#, #"{"choices":[]}"#, #"{"choices":{}}"#, #"{"choices":[{}]}"#, #"{}"#]),
        sse([#"{"choices":[{"delta":{"content":""},"finish_reason":null},{"delta":{"content":"second choice"}}]}"#, #"{"choices":[{"delta":{"content":{"text":"x"},"refusal":"no"}}]}"#, #"{"choices":[{"delta":{"content":["a"]}}]}"#]),
        // Ids: escaped, not a string, only in a later chunk.
        sse([#"{"id":"chatcmpl-\u00e9t\u00e9 \ud83d\ude00/\"x\"","choices":[{"delta":{"content":"hi"}}]}"#]),
        sse([#"{"id":42,"choices":[{"delta":{"content":"hi"}}]}"#, #"{"id":"late"}"#]),
        sse([#"{"choices":[{"delta":{"content":"hi"}}]}"#, #"{"id":"late","choices":[{"finish_reason":"stop"}]}"#]),
        // Finish reasons: escaped, long, not a string, later ones.
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":"st\u006fp"}]}"#]),
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":"a_finish_reason_longer_than_fifteen"}]}"#]),
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":5}]}"#, #"{"choices":[{"finish_reason":"content_filter"}]}"#, #"{"choices":[{"finish_reason":"tool_calls"}]}"#]),
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":"function_call"}]}"#], done: false),
        // `[DONE]` missing: with and without a finish reason; a last event without its blank line, whole or cut.
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#], done: false),
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}"#], done: false)
            + #"data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2}}"#,
        sse([#"{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}]}"#], done: false)
            + #"data: {"choices":[],"usage":{"prompt_tok"#,
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#], done: false) + #"data: {"choices":[{"delta":{"content":"z"},"finish_reason":"stop"}]}"#,
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#], done: false) + "data: [DONE]",
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#], done: false) + "data: [DONE]\n",
        // Chunks that are not JSON objects, and bytes after the end.
        sse(["[]"]), sse(["5"]), sse([#""x""#]), sse(["null"]), sse(["{"]), sse(["garbage"]), sse([""]),
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#, "{\"a\":\u{01}}"]),
        sse([#"{"choices":[{"delta":{"content":"a"}}]}"#]) + sse([#"{"choices":[{"delta":{"content":"after done"}}]}"#, "x"]),
        // Whitespace, named events, comments and CRLF framing.
        "data:   {\"choices\":[{\"delta\":{\"content\":\"spaced\"}}]}  \r\n\r\n: comment\n\nevent: chunk\ndata: {\"choices\":[{\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"two data lines\"}}]}\n\ndata: [DONE]\n\n",
        // A refusal alone (not an Anthropic block) and content with every kind of escape.
        sse([#"{"choices":[{"delta":{"refusal":"I can't"},"finish_reason":"stop"}]}"#]),
        sse([#"{"choices":[{"delta":{"content":"\"\\\/\b\f\n\r\t\u0000\u001f\u007f\u00e9\ud834\udd1e \u2028\u2029 é 𝄞"}}]}"#]),
        "", "data: [DONE]\n\n", ": only a comment\n\n",
    ]

    static func seeds() throws -> [[UInt8]] {
        try fixtures() + handMade.map { Array($0.utf8) }
    }

    /// Whether some event of `stream` repeats a member name (the tree refuses it, the range reader does not).
    static func repeatsAName(_ stream: [UInt8]) -> Bool {
        for event in AnthropicFixtures.events(stream) {
            if case .failure(let error) = Result(catching: { () throws(JSONParseError) in
                try JSONParser.parse(event.data)
            }), case .duplicateKey = error.kind {
                return true
            }
        }
        return false
    }

    /// What a stage left: its output and its outcome.
    struct Outcome: Equatable {
        var out: [UInt8]
        var usage: TokenUsage
        var finishReason: String?
        var stopReason: String
        var error: GatewayError?

        var text: String {
            "\(String(decoding: out, as: UTF8.self).debugDescription) \(usage) \(String(describing: finishReason)) "
                + "\(String(describing: error))"
        }
    }

    static func tree(_ stream: [UInt8], cuts: [Int], maxEventBytes: Int = 4 * 1024 * 1024) -> Outcome {
        let (out, stage) = AnthropicFixtures.run(
            { TreeOpenAIToAnthropicStream(context: context, maxEventBytes: maxEventBytes) }, stream, cuts: cuts,
            feed: { $0.feed($1) }, finish: { $0.finish() })
        return Outcome(
            out: out, usage: stage.usage, finishReason: stage.finishReason, stopReason: stage.stopReason,
            error: stage.error)
    }

    static func range(_ stream: [UInt8], cuts: [Int], maxEventBytes: Int = 4 * 1024 * 1024) -> Outcome {
        let (out, stage) = AnthropicFixtures.run(
            { OpenAIToAnthropicStream(context: context, maxEventBytes: maxEventBytes) }, stream, cuts: cuts,
            feed: { $0.feed($1) }, finish: { $0.finish() })
        return Outcome(
            out: out, usage: stage.usage, finishReason: stage.finishReason, stopReason: stage.stopReason,
            error: stage.error)
    }

    /// Nil when the range stage, fed `stream` cut at `cuts`, ends as the tree stage did on the whole stream (the
    /// tree's own independence from cuts is `AnthropicInTests`'); otherwise what differs.
    static func disagreement(
        _ stream: [UInt8], cuts: [Int], tree expected: Outcome, maxEventBytes: Int = 4 * 1024 * 1024
    ) -> String? {
        let actual = range(stream, cuts: cuts, maxEventBytes: maxEventBytes)
        if actual == expected { return nil }
        return "\(String(decoding: stream, as: UTF8.self).debugDescription) cut at \(cuts)\n tree:  \(expected.text)\n"
            + " range: \(actual.text)"
    }

    @Test func fixturesTranslateAsTheTreeDid() throws {
        var random = SplitMix64(seed: 0xf1_c5)
        var failures: [String] = []
        for stream in try Self.fixtures() {
            #expect(!Self.repeatsAName(stream))
            let tree = Self.tree(stream, cuts: [])
            for _ in 0..<20 {
                let cuts = (0..<Int.random(in: 0...6, using: &random)).map { _ in
                    Int.random(in: 0...stream.count, using: &random)
                }
                if let failure = Self.disagreement(stream, cuts: cuts.sorted(), tree: tree) { failures.append(failure) }
            }
        }
        // The golden fixture at every byte boundary.
        let hub = try AnthropicFixtures.bytes("hub-stream.openai.sse")
        let tree = Self.tree(hub, cuts: [])
        for split in 0...hub.count where failures.count < 3 {
            if let failure = Self.disagreement(hub, cuts: [split], tree: tree) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
    }

    @Test func edgeCasesTranslateAsTheTreeDidAtEveryByteBoundary() {
        var failures: [String] = []
        for text in Self.handMade {
            let stream = Array(text.utf8)
            #expect(!Self.repeatsAName(stream))
            let tree = Self.tree(stream, cuts: [])
            for split in 0...stream.count where failures.count < 3 {
                if let failure = Self.disagreement(stream, cuts: [split], tree: tree) { failures.append(failure) }
            }
            // With a small event limit: what precedes an oversized event is translated as if it came alone.
            let small = Self.tree(stream, cuts: [], maxEventBytes: 64)
            if let failure = Self.disagreement(stream, cuts: [], tree: small, maxEventBytes: 64) {
                failures.append(failure)
            }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
    }

    @Test func mutatedStreamsTranslateAsTheTreeDid() throws {
        let seeds = try Self.seeds()
        var random = SplitMix64(seed: 0xa17_5173)
        var failures: [String] = []
        var completed = 0
        for iteration in 0..<3_000 where failures.count < 3 {
            let seed = seeds[iteration % seeds.count]
            let stream =
                iteration % 2 == 0
                ? AnthropicFuzzTests.mutate(seed, &random) : ResponsesByRangeTests.mildMutate(seed, &random)
            let cuts = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                Int.random(in: 0...stream.count, using: &random)
            }
            if Self.repeatsAName(stream) { continue }
            let tree = Self.tree(stream, cuts: [])
            if let failure = Self.disagreement(stream, cuts: cuts.sorted(), tree: tree) { failures.append(failure) }
            if tree.error == nil { completed += 1 }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n\n"))")
        // Enough mutants still complete for the comparison to be about translation, not only errors.
        #expect(completed > 500, "only \(completed) mutants completed")
    }

    /// The one difference from the tree, by design: a chunk repeating a member name is read (the last one wins,
    /// as everywhere an upstream's JSON is read by range) instead of ending the stream.
    @Test func aRepeatedNameTakesTheLastOccurrence() {
        var stream = OpenAIToAnthropicStream(context: Self.context)
        let out = stream.feed(Array(Self.sse([#"{"choices":[{"delta":{"content":"first","content":"last"},"finish_reason":"stop"}]}"#]).utf8))
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.contains(#""text":"last""#) && !text.contains("first"))
        #expect(stream.error == nil && stream.finishReason == "stop")
    }
}

/// `OpenAIToAnthropicStream` as it was before it read by range (one `JSONParser` tree per chunk).
struct TreeOpenAIToAnthropicStream: HubStreamClientStage {
    /// Token usage from the hub's usage chunk (zero when the hub sent none).
    private(set) var usage = TokenUsage()
    /// The hub's OpenAI finish reason, once seen.
    private(set) var finishReason: String?
    /// The Anthropic stop reason sent (or to be sent) in message_delta.
    var stopReason: String { AnthropicTranslator.stopReason(fromFinishReason: finishReason) }
    /// The error that ended the stream, if one did.
    private(set) var error: GatewayError?

    /// The content block currently open.
    private enum Block: Equatable {
        case none
        case text
        case thinking
        /// A tool call, by its OpenAI index.
        case tool(Int64)
    }

    private let context: TranslationContext
    var parser: SSEParser
    private var started = false
    private var done = false
    private var block = Block.none
    /// The Anthropic index of the open block, or of the next one when none is open.
    private var blockIndex = 0

    /// - Parameters:
    ///   - context: `requestModel` (reported as the message's model) and the fallback id.
    ///   - maxEventBytes: the largest single SSE event accepted.
    init(context: TranslationContext, maxEventBytes: Int = 4 * 1024 * 1024) {
        self.context = context
        self.parser = SSEParser(maxEventBytes: maxEventBytes)
    }

    /// Feeds hub bytes and returns the Anthropic events they complete (possibly none).
    mutating func feed(_ chunk: [UInt8]) -> [UInt8] { feedHub(chunk) }

    /// `finishHub` as it was: a trailing event without its blank line is handled only if `JSONParser` parses it.
    mutating func finish() -> [UInt8] {
        guard !isDone else { return [] }
        var out: [UInt8] = []
        for event in parser.finish() where !isDone {
            guard event.data.elementsEqual("[DONE]".utf8) || (try? JSONParser.parse(event.data)) != nil else { break }
            handle(event.data, &out)
        }
        guard !isDone else { return out }
        if finishReason != nil {
            complete(&out)
        } else {
            failStream(Self.unfinishedMessage, &out)
        }
        return out
    }

    // MARK: - Chunks

    mutating func handle(_ data: [UInt8], _ out: inout [UInt8]) {
        if data.elementsEqual("[DONE]".utf8) {
            complete(&out)
            return
        }
        guard let chunk = try? JSONParser.parse(data), chunk.objectValue != nil else {
            fail(type: "api_error", message: "The upstream stream sent a chunk that is not a JSON object.", &out)
            return
        }
        if let error = chunk["error"], !error.isNull {
            let type = AnthropicTranslator.anthropicErrorType(
                openAIType: error["type"]?.stringValue, code: error["code"]?.stringValue)
            fail(type: type, message: error["message"]?.stringValue ?? "The upstream stream reported an error.", &out)
            return
        }
        start(id: chunk["id"]?.stringValue, &out)
        if let usage = chunk["usage"], usage.objectValue != nil {
            self.usage = AnthropicTranslator.usage(fromOpenAI: usage)
        }
        guard let choice = chunk["choices"]?.arrayValue?.first else { return }
        if let delta = choice["delta"] {
            if let reasoning = delta["reasoning_content"]?.stringValue, !reasoning.isEmpty {
                thinkingDelta(reasoning, &out)
            }
            for entry in delta["thinking_blocks"]?.arrayValue ?? [] {
                thinkingBlock(entry, &out)
            }
            if let text = delta["content"]?.stringValue, !text.isEmpty {
                open(.text, &out)
                event("content_block_delta", &out) { writer in
                    writer.key("delta")
                    writer.beginObject()
                    writer.key("type")
                    writer.string("text_delta")
                    writer.key("text")
                    writer.string(text)
                    writer.endObject()
                }
            }
            for call in delta["tool_calls"]?.arrayValue ?? [] {
                toolCall(call, &out)
            }
        }
        if let reason = choice["finish_reason"]?.stringValue { finishReason = reason }
    }

    private mutating func thinkingDelta(_ text: String, _ out: inout [UInt8]) {
        open(.thinking, &out)
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("thinking_delta")
            writer.key("thinking")
            writer.string(text)
            writer.endObject()
        }
    }

    private mutating func thinkingBlock(_ entry: JSONValue, _ out: inout [UInt8]) {
        switch entry["type"]?.stringValue {
        case "thinking":
            if let text = entry["thinking"]?.stringValue, !text.isEmpty { thinkingDelta(text, &out) }
            guard let signature = entry["signature"]?.stringValue, !signature.isEmpty else { return }
            open(.thinking, &out)
            event("content_block_delta", &out) { writer in
                writer.key("delta")
                writer.beginObject()
                writer.key("type")
                writer.string("signature_delta")
                writer.key("signature")
                writer.string(signature)
                writer.endObject()
            }
            // A signature completes its thinking block; more reasoning starts a new one.
            close(&out)
        case "redacted_thinking":
            close(&out)
            let data = entry["data"]?.stringValue ?? ""
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("redacted_thinking")
                writer.key("data")
                writer.string(data)
                writer.endObject()
            }
            event("content_block_stop", &out) { _ in }
            blockIndex += 1
        default:
            break
        }
    }

    private mutating func toolCall(_ call: JSONValue, _ out: inout [UInt8]) {
        let index = call["index"]?.int64Value ?? 0
        let id = call["id"]?.stringValue
        if id != nil || block != .tool(index) {
            close(&out)
            let toolID = id ?? "toolu_\(blockIndex)"
            let name = call["function"]?["name"]?.stringValue ?? ""
            event("content_block_start", &out) { writer in
                writer.key("content_block")
                writer.beginObject()
                writer.key("type")
                writer.string("tool_use")
                writer.key("id")
                writer.string(toolID)
                writer.key("name")
                writer.string(name)
                writer.key("input")
                writer.beginObject()
                writer.endObject()
                writer.endObject()
            }
            block = .tool(index)
        }
        guard let arguments = call["function"]?["arguments"]?.stringValue, !arguments.isEmpty else { return }
        event("content_block_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("type")
            writer.string("input_json_delta")
            writer.key("partial_json")
            writer.string(arguments)
            writer.endObject()
        }
    }

    // MARK: - Blocks and events

    /// Opens a text or thinking block unless one of that kind is already open.
    private mutating func open(_ kind: Block, _ out: inout [UInt8]) {
        guard block != kind else { return }
        close(&out)
        event("content_block_start", &out) { writer in
            writer.key("content_block")
            writer.beginObject()
            writer.key("type")
            if kind == .thinking {
                writer.string("thinking")
                writer.key("thinking")
                writer.string("")
                writer.key("signature")
                writer.string("")
            } else {
                writer.string("text")
                writer.key("text")
                writer.string("")
            }
            writer.endObject()
        }
        block = kind
    }

    private mutating func close(_ out: inout [UInt8]) {
        guard block != .none else { return }
        event("content_block_stop", &out) { _ in }
        block = .none
        blockIndex += 1
    }

    /// Writes `event: <type>` with `{"type": <type>, "index": <block>, ...}` (index only for block events).
    private func event(_ type: String, _ out: inout [UInt8], _ members: (inout JSONWriter) -> Void) {
        var writer = JSONWriter(reservingCapacity: 128)
        writer.beginObject()
        writer.key("type")
        writer.string(type)
        if type.hasPrefix("content_block") {
            writer.key("index")
            writer.int(blockIndex)
        }
        members(&writer)
        writer.endObject()
        SSEWriter.appendEvent(type, data: writer.bytes, to: &out)
    }

    private mutating func start(id: String?, _ out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let id = id ?? context.fallbackResponseID
        event("message_start", &out) { writer in
            writer.key("message")
            writer.beginObject()
            writer.key("id")
            writer.string(id)
            writer.key("type")
            writer.string("message")
            writer.key("role")
            writer.string("assistant")
            writer.key("model")
            writer.string(context.requestModel)
            writer.key("content")
            writer.beginArray()
            writer.endArray()
            writer.key("stop_reason")
            writer.null()
            writer.key("stop_sequence")
            writer.null()
            // Counts are unknown until the hub's usage chunk; message_delta reports them.
            AnthropicTranslator.writeAnthropicUsage(TokenUsage(), to: &writer)
            writer.endObject()
        }
    }

    mutating func complete(_ out: inout [UInt8]) {
        start(id: nil, &out)
        close(&out)
        done = true
        let reason = stopReason
        let usage = usage
        event("message_delta", &out) { writer in
            writer.key("delta")
            writer.beginObject()
            writer.key("stop_reason")
            writer.string(reason)
            writer.key("stop_sequence")
            writer.null()
            writer.endObject()
            AnthropicTranslator.writeAnthropicUsage(usage, to: &writer)
        }
        event("message_stop", &out) { _ in }
    }

    /// Headers are already sent, so an error ends the stream with Anthropic's `error` event.
    static let unfinishedMessage = "The upstream stream ended before the message was complete."

    var isDone: Bool { done }

    mutating func failStream(_ message: String, _ out: inout [UInt8]) { fail(type: "api_error", message: message, &out) }

    private mutating func fail(type: String, message: String, _ out: inout [UInt8]) {
        done = true
        error = GatewayError(
            status: AnthropicTranslator.status(forErrorType: type), type: type, code: type, message: message)
        event("error", &out) { writer in
            writer.key("error")
            writer.beginObject()
            writer.key("type")
            writer.string(type)
            writer.key("message")
            writer.string(message)
            writer.endObject()
        }
    }
}

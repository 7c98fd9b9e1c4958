// A fixed-seed fuzz loop over every Anthropic translator: random and mutated bodies and streams must give a
// result or a well-formed error, never a trap.

import Testing

@testable import SluiceCore

@Suite struct AnthropicFuzzTests {
    static let context = TranslationContext(
        upstreamModel: "claude-x", requestModel: "claude", stream: true, includeUsage: true)

    static let seeds: [String] = [
        "request-full.openai.json", "response-full.anthropic.json", "in-full.anthropic.json",
        "hub-response.openai.json", "stream-text.anthropic.sse", "stream-tools.anthropic.sse",
        "stream-thinking.anthropic.sse", "stream-error.anthropic.sse", "hub-stream.openai.sse",
    ]

    /// Interesting bytes to splice in: structure, escapes, SSE framing, multi-byte UTF-8.
    static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u0000", "\n\n", "\r", "data: ", "event: error\n", "null",
        "-1", "1e999", "99999999999999999999", "\"type\":\"tool_use\"", "\"index\":-5", "é", "\u{10FFFF}",
        "data: [DONE]\n\n", "\"role\":\"tool\"", "\"content\":[]",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...6, using: &random) {
            guard !bytes.isEmpty else { break }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes.remove(at: at)
            case 2: bytes.insert(contentsOf: tokens[Int.random(in: 0..<tokens.count, using: &random)], at: at)
            case 3: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...64, using: &random)))
            default: bytes = Array(bytes.prefix(at))
            }
        }
        return bytes
    }

    /// Runs every translator on `bytes` and checks each outcome is a result or a well-formed error.
    static func exercise(_ bytes: [UInt8], _ random: inout SplitMix64) {
        if let value = try? JSONParser.parse(bytes) {
            expectWellFormed { () throws(TranslateError) in
                _ = try AnthropicTranslator.request(fromOpenAIChat: value, context: context)
            }
            expectWellFormed { () throws(TranslateError) in
                let hub = try AnthropicTranslator.openAIRequest(fromAnthropic: value)
                _ = try AnthropicTranslator.request(fromOpenAIChat: hub, context: context)
            }
        }
        expectWellFormed { () throws(TranslateError) in
            _ = try AnthropicTranslator.response(toOpenAIChat: bytes, context: context)
        }
        expectWellFormed { () throws(TranslateError) in
            _ = try AnthropicTranslator.anthropicResponse(fromOpenAIChat: bytes, context: context)
        }
        let error = AnthropicTranslator.error(status: UInt32.random(in: 0...600, using: &random), body: bytes)
        #expect((400...599).contains(error.status))
        #expect((try? JSONParser.parse(error.body(for: .openAI))) != nil)

        var cuts = (0..<Int.random(in: 0...6, using: &random)).map { _ in
            Int.random(in: 0...bytes.count, using: &random)
        }
        cuts.sort()
        let (toOpenAI, openAIStream) = AnthropicFixtures.run(
            { AnthropicToOpenAIStream(context: context, maxEventBytes: 4096) }, bytes, cuts: cuts,
            feed: { $0.feed($1) }, finish: { $0.finish() })
        checkOpenAIFrames(toOpenAI)
        #expect(openAIStream.error != nil || openAIStream.finishReason != nil)
        let (toAnthropic, anthropicStream) = AnthropicFixtures.run(
            { OpenAIToAnthropicStream(context: context, maxEventBytes: 4096) }, bytes, cuts: cuts,
            feed: { $0.feed($1) }, finish: { $0.finish() })
        checkAnthropicEvents(toAnthropic)
        _ = anthropicStream.usage
    }

    static func expectWellFormed(_ body: () throws(TranslateError) -> Void) {
        do {
            try body()
        } catch {
            #expect((400...599).contains(error.status))
            #expect(!error.code.isEmpty && !error.message.isEmpty)
        }
    }

    /// Every frame is JSON or [DONE], and the stream ends with exactly one [DONE].
    static func checkOpenAIFrames(_ out: [UInt8]) {
        let events = AnthropicFixtures.events(out)
        #expect(events.last?.data == Array("[DONE]".utf8))
        #expect(events.filter { $0.data == Array("[DONE]".utf8) }.count == 1)
        for event in events.dropLast() {
            #expect(
                (try? JSONParser.parse(event.data))?.objectValue != nil,
                "\(String(decoding: event.data, as: UTF8.self))")
        }
    }

    /// Every event is named, carries JSON whose `type` is its name, and the stream ends in message_stop or error.
    static func checkAnthropicEvents(_ out: [UInt8]) {
        let events = AnthropicFixtures.events(out)
        for event in events {
            let data = try? JSONParser.parse(event.data)
            #expect(data?["type"]?.stringValue == event.name)
        }
        #expect(events.last?.name == "message_stop" || events.last?.name == "error")
    }

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func mutatedFixturesNeverTrap() async {
        await #expect(processExitsWith: .success) { try AnthropicFuzzTests.mutatedFixturesNeverTrapRun() }
    }

    static func mutatedFixturesNeverTrapRun() throws {
        var random = SplitMix64(seed: 0x5EED_A17)
        let inputs = try Self.seeds.map { try AnthropicFixtures.bytes($0) }
        for round in 0..<400 {
            let input = inputs[round % inputs.count]
            Self.exercise(Self.mutate(input, &random), &random)
        }
    }

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func randomBytesNeverTrap() async {
        await #expect(processExitsWith: .success) { AnthropicFuzzTests.randomBytesNeverTrapRun() }
    }

    static func randomBytesNeverTrapRun() {
        var random = SplitMix64(seed: 42)
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in
                Self.tokens[Int.random(in: 0..<Self.tokens.count, using: &random)].first ?? 0
            }
            Self.exercise(bytes, &random)
        }
    }

    @Test func unmodifiedFixturesPass() throws {
        var random = SplitMix64(seed: 7)
        for name in Self.seeds { Self.exercise(try AnthropicFixtures.bytes(name), &random) }
    }
}

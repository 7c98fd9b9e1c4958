// Findings of the libFuzzer targets (Tests/Fuzz), each pinned by a unit test; the minimised inputs
// live in Tests/Fuzz/Regressions/<target>/ and run before every fuzzing run.

import Testing

@testable import SluiceCore

@Suite struct FuzzRegressionTests {
    static let context = TranslationContext(
        upstreamModel: "m", requestModel: "m", stream: true, includeUsage: true, created: 1_700_000_000,
        fallbackResponseID: "chatcmpl-fuzz")

    /// Feeds `stream` whole and cut at every offset; every cut must give the bytes the whole gives.
    static func expectCutIndependent(
        _ stream: [UInt8], _ translate: ([[UInt8]]) -> [UInt8], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let whole = String(decoding: translate([stream]), as: UTF8.self)
        for cut in 0...stream.count {
            let pieces = String(decoding: translate([Array(stream[..<cut]), Array(stream[cut...])]), as: UTF8.self)
            #expect(pieces == whole, "cut at \(cut)", sourceLocation: sourceLocation)
            if pieces != whole { return }
        }
    }

    /// stream_anthropic: an event that completes in the same chunk as an oversized one was dropped
    /// (the throwing `SSEParser.feed` returns no events), so the output depended on the cut.
    @Test func anthropicStreamTranslatesEventsBeforeAnOversizedOne() {
        let stream = Array("""
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":3}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"kept"}}

            data: \(String(repeating: "x", count: 300))
            """.utf8)
        Self.expectCutIndependent(stream) { chunks in
            var translator = AnthropicToOpenAIStream(context: Self.context, maxEventBytes: 200)
            return chunks.flatMap { translator.feed($0) } + translator.finish()
        }
        var translator = AnthropicToOpenAIStream(context: Self.context, maxEventBytes: 200)
        let out = String(decoding: translator.feed(stream) + translator.finish(), as: UTF8.self)
        #expect(out.contains(#""content":"kept""#))
        #expect(out.contains("exceeded 200 bytes"))
    }

    /// stream_openai: the same in the hub -> Anthropic client stage.
    @Test func hubToAnthropicStreamTranslatesEventsBeforeAnOversizedOne() {
        let stream = Array("""
            data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"kept"}}]}

            data: \(String(repeating: "x", count: 300))
            """.utf8)
        Self.expectCutIndependent(stream) { chunks in
            var translator = OpenAIToAnthropicStream(context: Self.context, maxEventBytes: 200)
            return chunks.flatMap { translator.feed($0) } + translator.finish()
        }
        var translator = OpenAIToAnthropicStream(context: Self.context, maxEventBytes: 200)
        let out = String(decoding: translator.feed(stream) + translator.finish(), as: UTF8.self)
        #expect(out.contains(#""text":"kept""#))
        #expect(out.contains("exceeded 200 bytes"))
    }

    /// The minimised fuzzer inputs themselves (flags, split offsets, body; see Tests/Fuzz/Sources/Support.swift).
    @Test func minimisedInputsAreCutIndependent() {
        // stream_anthropic: `data\r\r` (an empty event), then 17 bytes over a 16-byte limit.
        let anthropic = Array("data\r\reYYrYrreYYrrrrYrr".utf8)
        Self.expectCutIndependent(anthropic) { chunks in
            var translator = AnthropicToOpenAIStream(context: Self.context, maxEventBytes: 16)
            return chunks.flatMap { translator.feed($0) } + translator.finish()
        }
        let hub = Array("data: {}\n\ndata: \(String(repeating: "y", count: 80))".utf8)
        Self.expectCutIndependent(hub) { chunks in
            var translator = OpenAIToAnthropicStream(context: Self.context, maxEventBytes: 64)
            return chunks.flatMap { translator.feed($0) } + translator.finish()
        }
    }
}

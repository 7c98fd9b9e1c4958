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

/// Gaps the fuzz targets' invariants found in metering and config, fixed.
@Suite struct FuzzFoundGapTests {
    @Test func openAIUsageMetersCacheWritesAsTheHubCarriesThem() {
        let details = OpenAICompatible.usage(fromResponse: Array(
            #"{"usage":{"prompt_tokens":10,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2,"cache_write_tokens":300}}}"#.utf8))
        #expect(details?.cacheWriteInputTokens == 300)
        #expect(details?.cachedInputTokens == 2)
        let topLevel = OpenAICompatible.usage(fromResponse: Array(
            #"{"usage":{"prompt_tokens":10,"completion_tokens":1,"cache_creation_tokens":7}}"#.utf8))
        #expect(topLevel?.cacheWriteInputTokens == 7)
    }

    @Test func theStreamMeterStopsAtDone() {
        var filter = OpenAIStreamUsageFilter(clientWantsUsage: true)
        let stream = "data: {\"usage\":{\"completion_tokens\":7}}\n\ndata: [DONE]\n\ndata: {\"usage\":{}}\n\n"
        let out = filter.feed(Array(stream.utf8)) + filter.finish()
        #expect(out == Array(stream.utf8))  // the bytes pass through unchanged
        #expect(filter.usage?.outputTokens == 7)
    }

    @Test(arguments: ["us-east-1\u{7F}", "US-EAST-1", "us east 1", "", String(repeating: "a", count: 65)])
    func awsRegionsAreNamesOnly(region: String) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("backend"); writer.string("b")
        writer.key("schema"); writer.string("bedrock_converse")
        writer.key("aws"); writer.beginObject()
        writer.key("region"); writer.string(region)
        writer.key("access_key_id"); writer.beginObject(); writer.key("value"); writer.string("AKID"); writer.endObject()
        writer.key("secret_access_key"); writer.beginObject(); writer.key("value"); writer.string("s"); writer.endObject()
        writer.endObject()
        writer.endObject()
        #expect(throws: ConfigError.self) { try BackendConfig.parse(writer.bytes) }
    }

    @Test func emptyCredentialValuesAreRefused() {
        let config = #"{"backend":"b","schema":"openai","credential":{"value":""}}"#
        #expect(throws: ConfigError(path: "credential.value", problem: "must not be empty")) {
            try BackendConfig.parse(Array(config.utf8))
        }
    }
}

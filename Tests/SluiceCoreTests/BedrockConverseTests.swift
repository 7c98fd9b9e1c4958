import Testing

@testable import SluiceCore

@Suite struct BedrockConverseTests {
    static let claude = "anthropic.claude-3-5-sonnet-20241022-v2:0"

    static func context(stream: Bool = false, includeUsage: Bool = false) -> TranslationContext {
        TranslationContext(
            upstreamModel: claude, requestModel: "claude", stream: stream, includeUsage: includeUsage, created: 1_700_000_000,
            fallbackResponseID: "req-1234")
    }

    // MARK: Requests

    @Test(arguments: ["full", "structured", "tool-history-none"])
    func requestGolden(_ name: String) throws {
        let request = try BedrockConverse.request(fromOpenAIChat: try BedrockFixtures.bytes("\(name).json"), context: Self.context())
        try BedrockFixtures.expectJSON(request.body, matches: "\(name).converse.json")
        #expect(request.path == "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse")
        #expect(request.structuredOutput == (name == "structured"))
    }

    @Test func streamPath() {
        #expect(BedrockConverse.path(model: "us.meta.llama3-2-1b-instruct-v1:0", stream: true)
            == "/model/us.meta.llama3-2-1b-instruct-v1%3A0/converse-stream")
        #expect(BedrockConverse.path(model: "a b/c", stream: false) == "/model/a%20b%2Fc/converse")
    }

    static let badRequests: [(String, String, String?)] = [
        (#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
         "unsupported_content_part", "messages[0].content[0].image_url.url"),
        (#"{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
         "unsupported_content_part", "messages[0].content[0].type"),
        (#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AA"}}]}]}"#,
         "unsupported_content_part", "messages[0].content[0].image_url.url"),
        (#"{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]}"#,
         "invalid_request_body", "messages[0].tool_calls[0].function.arguments"),
        (#"{"messages":[],"n":2}"#, "unsupported_parameter", "n"),
        (#"{"messages":{}}"#, "invalid_request_body", "messages"),
        (#"{"messages":[{"role":"wizard","content":"x"}]}"#, "invalid_request_body", "messages[0].role"),
        (#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}"#, "invalid_request_body", "tool_choice"),
        (#"{"messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}"#,
         "unsupported_parameter", "response_format"),
        ("[1]", "invalid_request_body", nil),
        ("{", "invalid_request_body", nil),
    ]

    @Test(arguments: badRequests)
    func badRequestsAreClear400s(body: String, code: String, param: String?) {
        #expect {
            _ = try BedrockConverse.request(fromOpenAIChat: Array(body.utf8), context: Self.context())
        } throws: { error in
            guard let error = error as? TranslateError else { return false }
            return error.status == 400 && error.code == code && error.param == param
        }
    }

    // MARK: Responses

    @Test(arguments: [("response", false), ("structured-response", true), ("guardrail-response", false)])
    func responseGolden(_ name: String, structured: Bool) throws {
        let response = try BedrockConverse.chatCompletion(
            fromConverse: try BedrockFixtures.bytes("\(name).json"), context: Self.context(), structuredOutput: structured)
        try BedrockFixtures.expectJSON(response.body, matches: "\(name).openai.json")
        if name == "response" {
            #expect(response.usage == TokenUsage(inputTokens: 25, outputTokens: 20, cachedInputTokens: 5, cacheWriteInputTokens: 10))
            #expect(response.finishReason == "tool_calls")
        }
        if name == "guardrail-response" { #expect(response.finishReason == "content_filter") }
        if name == "structured-response" { #expect(response.finishReason == "stop") }
    }

    @Test(arguments: [#"{"stopReason":"guardrail_intervened"}"#, #"{"output":{}}"#, "[]", "nope"])
    func okWithoutOutputIsAnError(body: String) {
        #expect {
            _ = try BedrockConverse.chatCompletion(fromConverse: Array(body.utf8), context: Self.context())
        } throws: { error in
            (error as? TranslateError)?.code == "bad_upstream_response" && (error as? TranslateError)?.status == 502
        }
    }

    // MARK: Errors

    static let errorCases: [(UInt32?, String?, String, UInt32, String, String)] = [
        (400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", #"{"message":"bad"}"#, 400,
         "validation_exception", "bad"),
        (429, "ThrottlingException", #"{"message":"slow down"}"#, 429, "throttling_exception", "slow down"),
        (nil, "throttlingException", #"{"message":"slow"}"#, 429, "throttling_exception", "slow"),
        (nil, "modelStreamErrorException", #"{"message":"m"}"#, 424, "model_stream_error_exception", "m"),
        (nil, "ModelTimeoutException", "{}", 408, "model_timeout_exception", "Bedrock returned ModelTimeoutException."),
        (nil, "ModelNotReadyException", #"{"Message":"warming"}"#, 429, "model_not_ready_exception", "warming"),
        (nil, "AccessDeniedException", "{}", 403, "access_denied_exception", "Bedrock returned AccessDeniedException."),
        (nil, "ResourceNotFoundException", "{}", 404, "resource_not_found_exception", "Bedrock returned ResourceNotFoundException."),
        (nil, "serviceUnavailableException", "{}", 503, "service_unavailable_exception", "Bedrock returned ServiceUnavailableException."),
        (nil, "internalServerException", "{}", 500, "internal_server_exception", "Bedrock returned InternalServerException."),
        (504, nil, "<html>Gateway Timeout</html>\n", 504, "bedrock_error", "<html>Gateway Timeout</html>"),
        (nil, "SomethingNew", "", 502, "something_new", "Bedrock returned SomethingNew."),
    ]

    @Test(arguments: errorCases)
    func errorsKeepAFaithfulStatus(
        status: UInt32?, type: String?, body: String, expectedStatus: UInt32, code: String, message: String
    ) {
        let error = BedrockError.gatewayError(status: status, errorType: type, body: Array(body.utf8))
        #expect(error.status == expectedStatus)
        #expect(error.code == code)
        #expect(error.message == message)
    }

    // MARK: Streams

    static let streams: [(String, Bool, Bool)] = [
        ("stream", true, false), ("stream-exception", true, false), ("stream-structured", false, true),
    ]

    static func translate(_ bytes: [UInt8], chunks: [Range<Int>], includeUsage: Bool, structured: Bool)
        -> (out: [UInt8], translator: BedrockConverseStreamTranslator)
    {
        var translator = BedrockConverseStreamTranslator(
            context: context(stream: true, includeUsage: includeUsage), structuredOutput: structured)
        var out: [UInt8] = []
        for range in chunks { out += translator.feed(Array(bytes[range])) }
        out += translator.finish()
        return (out, translator)
    }

    @Test(arguments: streams)
    func streamGoldenAtEverySplit(_ name: String, includeUsage: Bool, structured: Bool) throws {
        let bytes = try BedrockFixtures.eventStream("\(name).events.json")
        let (whole, translator) = Self.translate(bytes, chunks: [0..<bytes.count], includeUsage: includeUsage, structured: structured)
        try BedrockFixtures.expectBytes(whole, matches: "\(name).openai.sse")
        for split in 0...bytes.count {
            let (out, _) = Self.translate(
                bytes, chunks: [0..<split, split..<bytes.count], includeUsage: includeUsage, structured: structured)
            #expect(out == whole, "split at \(split)")
        }
        let (bytewise, _) = Self.translate(
            bytes, chunks: (0..<bytes.count).map { $0..<($0 + 1) }, includeUsage: includeUsage, structured: structured)
        #expect(bytewise == whole)
        // Every frame parses as SSE: JSON objects, then [DONE].
        var parser = SSEParser()
        let events = try parser.feed(whole) + parser.finish()
        #expect(events.last?.dataString == "[DONE]")
        for event in events.dropLast() { #expect((try? JSONParser.parse(event.data))?.objectValue != nil) }
        switch name {
        case "stream":
            #expect(translator.usage == TokenUsage(inputTokens: 16, outputTokens: 34, cachedInputTokens: 4))
            #expect(translator.finishReason == "tool_calls")
            #expect(translator.failure == nil)
        case "stream-exception":
            #expect(translator.failure?.status == 429)
            #expect(translator.failure?.code == "throttling_exception")
        default:
            #expect(translator.finishReason == "stop")
        }
    }

    @Test func corruptFrameMidStreamBecomesAnErrorEvent() throws {
        var bytes = try BedrockFixtures.eventStream("stream.events.json")
        bytes[bytes.count / 2] ^= 0xFF
        let (out, translator) = Self.translate(bytes, chunks: [0..<bytes.count], includeUsage: true, structured: false)
        #expect(translator.failure?.code == "bad_upstream_response")
        #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
        #expect(String(decoding: out, as: UTF8.self).contains(#"data: {"error":"#))
    }

    @Test func truncatedStreamEndsWithAnError() throws {
        let bytes = try BedrockFixtures.eventStream("stream.events.json")
        for cut in [bytes.count - 1, 10, 0] {
            let (out, translator) = Self.translate(bytes, chunks: [0..<cut], includeUsage: false, structured: false)
            #expect(translator.failure?.status == 502, "cut at \(cut)")
            #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
        }
    }

    // MARK: Fuzz

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func fuzzTranslatorsNeverTrap() async {
        await #expect(processExitsWith: .success) { try BedrockConverseTests.fuzzTranslatorsNeverTrapRun() }
    }

    static func fuzzTranslatorsNeverTrapRun() throws {
        var rng = SplitMix64(seed: 0x5EED_BEDC)
        let requests = try ["full", "structured", "tool-history-none"].map { try BedrockFixtures.bytes("\($0).json") }
        let responses = try ["response", "structured-response"].map { try BedrockFixtures.bytes("\($0).json") }
        let stream = try BedrockFixtures.eventStream("stream.events.json")
        func mutate(_ input: [UInt8]) -> [UInt8] {
            var bytes = input
            for _ in 0..<Int.random(in: 1...6, using: &rng) where !bytes.isEmpty {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: index)
                default: bytes.insert(Array(#"{}[]",:0"#.utf8).randomElement(using: &rng) ?? 0, at: index)
                }
            }
            return bytes
        }
        for round in 0..<1500 {
            let request = mutate(requests[round % requests.count])
            do {
                let translated = try BedrockConverse.request(fromOpenAIChat: request, context: Self.context())
                #expect((try? JSONParser.parse(translated.body)) != nil)
            } catch {
                #expect(error.status == 400)
            }
            do {
                let response = try BedrockConverse.chatCompletion(
                    fromConverse: mutate(responses[round % responses.count]), context: Self.context(), structuredOutput: round % 2 == 0)
                #expect((try? JSONParser.parse(response.body)) != nil)
            } catch {
                #expect(error.status == 502)
            }
            let corrupted = round % 4 == 0 ? mutate(stream) : stream
            var translator = BedrockConverseStreamTranslator(context: Self.context(stream: true, includeUsage: true))
            var out: [UInt8] = []
            var offset = 0
            while offset < corrupted.count {
                let end = min(offset + Int.random(in: 1...97, using: &rng), corrupted.count)
                out += translator.feed(Array(corrupted[offset..<end]))
                offset = end
            }
            out += translator.finish()
            #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
        }
    }
}

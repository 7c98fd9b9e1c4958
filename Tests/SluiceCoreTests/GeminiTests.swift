import Testing

@testable import SluiceCore

@Suite struct GeminiTests {
    static let context = TranslationContext(
        upstreamModel: "gemini-2.5-flash", requestModel: "gemini-pro-alias", stream: true, includeUsage: true,
        created: 1_700_000_000, fallbackResponseID: "chatcmpl-fallback")

    // MARK: Paths

    @Test func paths() {
        #expect(
            Gemini.path(model: "gemini-2.5-flash", stream: false, apiFlavor: .geminiAPI)
                == "/v1beta/models/gemini-2.5-flash:generateContent")
        #expect(
            Gemini.path(model: "models/gemini-2.5-flash", stream: true, apiFlavor: .geminiAPI)
                == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        #expect(
            Gemini.path(
                model: "gemini-2.5-pro", stream: false, apiFlavor: .vertex(project: "p-1", location: "us-central1"))
                == "/v1/projects/p-1/locations/us-central1/publishers/google/models/"
                + "gemini-2.5-pro:generateContent")
        #expect(
            Gemini.path(model: "gemini-2.5-pro", stream: true, apiFlavor: .vertex(project: "p", location: "global"))
                == "/v1/projects/p/locations/global/publishers/google/models/"
                + "gemini-2.5-pro:streamGenerateContent?alt=sse")
        // A hostile model name cannot add a path segment or a query.
        #expect(
            Gemini.path(model: "x/../y?key=1", stream: false, apiFlavor: .geminiAPI)
                == "/v1beta/models/x%2F..%2Fy%3Fkey%3D1:generateContent")
        #expect(
            Gemini.embeddingsPath(model: "text-embedding-004")
                == "/v1beta/models/text-embedding-004:batchEmbedContents")
    }

    // MARK: Requests

    @Test func fullRequestGolden() throws {
        let body = try Gemini.request(
            fromOpenAIChat: try GeminiFixtureSupport.load("gemini/full.request.json"), context: Self.context)
        try GeminiFixtureSupport.expectJSON(body, matches: "gemini/full.request.gemini.json")
    }

    @Test func consecutiveSameRoleTurnsMerge() throws {
        let body = Array(
            (#"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},"#
                + #"{"role":"assistant","content":"c"},{"role":"assistant","content":"d"}]}"#).utf8)
        let value = try JSONParser.parse(try Gemini.request(fromOpenAIChat: body, context: Self.context))
        let contents = value["contents"]?.arrayValue ?? []
        #expect(contents.count == 2)
        #expect(contents.first?["parts"]?.arrayValue?.count == 2)
        #expect(contents.last?["role"]?.stringValue == "model")
        #expect(value["generationConfig"] == nil)
        #expect(value["systemInstruction"] == nil)
    }

    @Test(arguments: [
        (#""auto""#, #"{"mode":"AUTO"}"#),
        (#""none""#, #"{"mode":"NONE"}"#),
        (#""required""#, #"{"mode":"ANY"}"#),
        (#"{"type":"function","function":{"name":"f"}}"#, #"{"mode":"ANY","allowedFunctionNames":["f"]}"#),
        (
            #"{"type":"allowed_tools","allowed_tools":{"mode":"required","#
                + #""tools":[{"type":"function","function":{"name":"f"}}]}}"#,
            #"{"mode":"ANY","allowedFunctionNames":["f"]}"#
        ),
    ])
    func toolChoice(choice: String, expected: String) throws {
        let body = Array(#"{"messages":[{"role":"user","content":"x"}],"tool_choice":\#(choice)}"#.utf8)
        let value = try JSONParser.parse(try Gemini.request(fromOpenAIChat: body, context: Self.context))
        #expect(value["toolConfig"]?["functionCallingConfig"] == (try JSONParser.parse(expected)))
    }

    @Test(arguments: [
        (#"{"messages":[{"role":"tool","tool_call_id":"call_x","content":"1"}]}"#, "unknown_tool_call_id", 400),
        (#"{"messages":[{"role":"user","content":[{"type":"video","video":{}}]}]}"#, "unsupported_parameter", 400),
        (#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#,
         "unsupported_parameter", 400),
        (#"{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]}"#,
         "invalid_request_body", 400),
        (#"{"messages":[]}"#, "invalid_request_body", 400),
        (#"{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}"#, "invalid_request_body", 400),
        (#"{"messages":"#, "invalid_request_body", 400),
        (#"[]"#, "invalid_request_body", 400),
    ])
    func requestErrors(body: String, code: String, status: UInt32) {
        do {
            _ = try Gemini.request(fromOpenAIChat: Array(body.utf8), context: Self.context)
            Issue.record("expected \(code)")
        } catch {
            #expect(error.code == code)
            #expect(error.status == status)
        }
    }

    // MARK: Responses

    @Test(arguments: ["full", "blocked", "candidates"])
    func responseGolden(name: String) throws {
        let response = try Gemini.chatCompletion(
            fromGeminiResponse: try GeminiFixtureSupport.load("gemini/\(name).response.gemini.json"),
            context: Self.context)
        try GeminiFixtureSupport.expectJSON(response.body, matches: "gemini/\(name).response.openai.json")
    }

    @Test func responseUsageCountsThoughtsAsOutput() throws {
        let response = try Gemini.chatCompletion(
            fromGeminiResponse: try GeminiFixtureSupport.load("gemini/full.response.gemini.json"),
            context: Self.context)
        #expect(
            response.usage
                == TokenUsage(inputTokens: 100, outputTokens: 50, cachedInputTokens: 40, reasoningTokens: 20))
        #expect(response.finishReason == "tool_calls")
    }

    @Test(arguments: [
        ("STOP", false, "stop"), ("STOP", true, "tool_calls"), ("MAX_TOKENS", true, "length"),
        ("SAFETY", false, "content_filter"), ("RECITATION", false, "content_filter"),
        ("BLOCKLIST", false, "content_filter"), ("PROHIBITED_CONTENT", false, "content_filter"),
        ("SPII", false, "content_filter"), ("OTHER", false, "stop"), ("MALFORMED_FUNCTION_CALL", false, "stop"),
    ])
    func finishReasons(reason: String, sawTool: Bool, expected: String) {
        #expect(Gemini.openAIFinishReason(reason, sawToolCall: sawTool) == expected)
    }

    @Test func errorInsideA200IsAnError() {
        let body = Array(#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#.utf8)
        #expect(throws: TranslateError(status: 503, code: "unavailable", message: "overloaded")) {
            _ = try Gemini.chatCompletion(fromGeminiResponse: body, context: Self.context)
        }
    }

    // MARK: Errors

    @Test(arguments: [
        ("RESOURCE_EXHAUSTED", 429, "rate_limit_error"), ("INVALID_ARGUMENT", 400, "invalid_request_error"),
        ("PERMISSION_DENIED", 403, "permission_error"), ("NOT_FOUND", 404, "not_found_error"),
        ("UNAVAILABLE", 503, "api_error"), ("DEADLINE_EXCEEDED", 504, "api_error"),
        ("UNAUTHENTICATED", 401, "authentication_error"), ("INTERNAL", 500, "api_error"),
    ])
    func errorMapping(status: String, http: UInt32, type: String) {
        let body = Array(#"{"error":{"code":\#(http),"message":"m","status":"\#(status)"}}"#.utf8)
        let fromStatus = Gemini.gatewayError(status: http, body: body)
        #expect(fromStatus == GatewayError(status: http, type: type, code: status.lowercased(), message: "m"))
        // Without an HTTP status (inside a stream) the body's own status name decides.
        let noCode = Array(#"[{"error":{"message":"m","status":"\#(status)"}}]"#.utf8)
        #expect(Gemini.gatewayError(status: 0, body: noCode).status == http)
        #expect(Gemini.httpStatus(forGoogleStatus: status) == http)
    }

    @Test func nonJSONErrorKeepsStatus() {
        let error = Gemini.gatewayError(status: 502, body: Array("<html>Bad Gateway</html>".utf8))
        #expect(error.status == 502)
        #expect(error.code == "upstream_error")
        #expect(error.message.contains("<html>Bad Gateway</html>"))
    }

    // MARK: Streams

    static func translate(_ chunks: [[UInt8]], context: TranslationContext = GeminiTests.context) -> (
        [UInt8], GeminiStream
    ) {
        var stream = GeminiStream(context: context)
        var out: [UInt8] = []
        for chunk in chunks { out += stream.feed(chunk) }
        out += stream.finish()
        return (out, stream)
    }

    @Test(arguments: ["stream", "stream-error"])
    func streamGolden(name: String) throws {
        let input = try GeminiFixtureSupport.load("gemini/\(name).gemini.sse")
        let (whole, _) = Self.translate([input])
        try GeminiFixtureSupport.expectBytes(whole, matches: "gemini/\(name).openai.sse")
        for split in 0...input.count {
            let (out, _) = Self.translate([Array(input[..<split]), Array(input[split...])])
            #expect(out == whole, "split at \(split)")
        }
        let (bytewise, _) = Self.translate(input.map { [$0] })
        #expect(bytewise == whole)
        var random = GeminiFuzzRandom(state: 7)
        for _ in 0..<50 {
            #expect(Self.translate(random.chunks(input)).0 == whole)
        }
    }

    @Test func streamStateAndUsage() throws {
        let input = try GeminiFixtureSupport.load("gemini/stream.gemini.sse")
        let (_, stream) = Self.translate([input])
        #expect(stream.usage == TokenUsage(inputTokens: 12, outputTokens: 13, cachedInputTokens: 2, reasoningTokens: 4))
        #expect(stream.finishReason == "tool_calls")
        #expect(stream.error == nil)

        var noUsage = Self.context
        noUsage.includeUsage = false
        let (out, _) = Self.translate([input], context: noUsage)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("\"usage\""))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func streamErrorEndsTheStream() throws {
        let input = try GeminiFixtureSupport.load("gemini/stream-error.gemini.sse")
        let (out, stream) = Self.translate([input])
        #expect(stream.error?.status == 429)
        let text = String(decoding: out, as: UTF8.self)
        #expect(!text.contains("ignored"))
        #expect(text.split(separator: "[DONE]", omittingEmptySubsequences: false).count == 2)
    }

    @Test func oversizedStreamEventBecomesAnErrorEvent() {
        var stream = GeminiStream(context: Self.context, maxEventBytes: 64)
        let out = stream.feed(Array(("data: " + String(repeating: "x", count: 100)).utf8)) + stream.finish()
        #expect(stream.error?.status == 502)
        #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
    }

    // MARK: Embeddings

    @Test func embeddingsGolden() throws {
        var context = Self.context
        context.upstreamModel = "text-embedding-004"
        context.requestModel = "text-embedding-3-small"
        let request = try Gemini.embeddingsRequest(
            fromOpenAI: try GeminiFixtureSupport.load("gemini/embeddings.request.json"), context: context)
        #expect(!request.base64)
        #expect(request.inputCount == 2)
        try GeminiFixtureSupport.expectJSON(request.body, matches: "gemini/embeddings.request.gemini.json")

        let upstream = try GeminiFixtureSupport.load("gemini/embeddings.response.gemini.json")
        let response = try Gemini.embeddingsResponse(fromGemini: upstream, context: context)
        try GeminiFixtureSupport.expectJSON(response.body, matches: "gemini/embeddings.response.openai.json")
        // Numbers keep their exact source text, digits beyond Double precision included.
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.contains("[0.0123456789012345678901, -1.5e-7, 3]"))
        #expect(text.contains("[1.0, -0.000000000000000000001, 2.718281828459045235360287]"))
    }

    @Test func embeddingsBase64() throws {
        let upstream = Array(#"{"embeddings":[{"values":[1.0,-2,0.5]}],"usageMetadata":{"promptTokenCount":4}}"#.utf8)
        let response = try Gemini.embeddingsResponse(fromGemini: upstream, context: Self.context, base64: true)
        let value = try JSONParser.parse(response.body)
        // Float32 little-endian 1.0, -2.0, 0.5 = 00 00 80 3F | 00 00 00 C0 | 00 00 00 3F
        #expect(value["data"]?.arrayValue?.first?["embedding"]?.stringValue == "AACAPwAAAMAAAAA/")
        #expect(response.usage.inputTokens == 4)
        #expect(value["usage"]?["prompt_tokens"]?.int64Value == 4)
    }

    @Test(arguments: [
        #"{"embeddings":[{"values":[1,"x"]}]}"#, #"{"embeddings":[{"other":[1]}]}"#, #"{"nothing":1}"#, "[1,2",
    ])
    func embeddingsBadUpstream(body: String) {
        #expect(throws: TranslateError.self) {
            _ = try Gemini.embeddingsResponse(fromGemini: Array(body.utf8), context: Self.context)
        }
    }

    @Test func embeddingsRejectTokenInput() {
        let body = Array(#"{"model":"m","input":[[1,2,3]]}"#.utf8)
        #expect(throws: TranslateError.self) {
            _ = try Gemini.embeddingsRequest(fromOpenAI: body, context: Self.context)
        }
    }

    // MARK: Fuzz

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func fuzzNeverTraps() async {
        await #expect(processExitsWith: .success) { try GeminiTests.fuzzNeverTrapsRun() }
    }

    static func fuzzNeverTrapsRun() throws {
        let seeds = try [
            "gemini/full.request.json", "gemini/full.response.gemini.json", "gemini/blocked.response.gemini.json",
            "gemini/candidates.response.gemini.json", "gemini/stream.gemini.sse", "gemini/stream-error.gemini.sse",
            "gemini/embeddings.request.json", "gemini/embeddings.response.gemini.json",
        ].map { try GeminiFixtureSupport.load($0) }
        var random = GeminiFuzzRandom(state: 0x5EED)
        for _ in 0..<3000 {
            let input = random.mutated(seeds)
            let context = Self.context
            if let error = Self.error({ () throws(TranslateError) in
                _ = try Gemini.request(fromOpenAIChat: input, context: context)
            }) {
                #expect(error.status == 400)
            }
            if let error = Self.error({ () throws(TranslateError) in
                _ = try Gemini.chatCompletion(fromGeminiResponse: input, context: context)
            }) {
                #expect(error.status >= 400)
            }
            _ = Self.error({ () throws(TranslateError) in
                _ = try Gemini.embeddingsRequest(fromOpenAI: input, context: context)
            })
            let base64 = random.below(2) == 0
            _ = Self.error({ () throws(TranslateError) in
                _ = try Gemini.embeddingsResponse(fromGemini: input, context: context, base64: base64)
            })
            let gatewayError = Gemini.gatewayError(status: UInt32(random.below(600)), body: input)
            #expect(gatewayError.status >= 400)
            let (out, stream) = Self.translate(random.chunks(input))
            #expect(String(decoding: out, as: UTF8.self).hasSuffix("data: [DONE]\n\n"))
            if let error = stream.error { #expect(error.status >= 400) }
        }
    }

    static func error(_ body: () throws(TranslateError) -> Void) -> TranslateError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }
}

import Testing

@testable import SluiceCore

@Suite struct OpenAICompatibleTests {
    static func context(_ model: String) -> TranslationContext {
        TranslationContext(upstreamModel: model, requestModel: "alias")
    }

    // MARK: Model rewrite

    @Test func modelRewriteKeepsEveryOtherByte() throws {
        let prefix = "{ \"messages\" : [ {\"role\":\"user\",\"content\":\"model \\\"x\\\"\", "
            + "\"model\": \"nested\"} ],\n\t\"mod\\u0065l\" :  "
        let suffix = " , \"temperature\":1.50 }"
        let body = Array((prefix + "\"alias\"" + suffix).utf8)
        let out = try OpenAICompatible.rewriteModel(body, to: "gpt-4o-2024-08-06")
        #expect(String(decoding: out, as: UTF8.self) == prefix + "\"gpt-4o-2024-08-06\"" + suffix)
        // Same model: untouched.
        #expect(try OpenAICompatible.rewriteModel(body, to: "alias") == body)
        // Escapes in the new name are written as JSON.
        let escaped = try OpenAICompatible.rewriteModel(Array(#"{"model":"a"}"#.utf8), to: "we\"ird")
        #expect(String(decoding: escaped, as: UTF8.self) == #"{"model":"we\"ird"}"#)
    }

    @Test func missingModelIsInserted() throws {
        #expect(
            String(decoding: try OpenAICompatible.rewriteModel(Array(#" {"input":"x"}"#.utf8), to: "m"), as: UTF8.self)
                == #" {"model":"m","input":"x"}"#)
        #expect(
            String(decoding: try OpenAICompatible.rewriteModel(Array("{}".utf8), to: "m"), as: UTF8.self)
                == #"{"model":"m"}"#)
    }

    @Test(arguments: [
        #"{"model":"a","model":"b"}"#, "[]", #"{"model":"a""#, "", #"{"stream_options":{},"stream_options":{}}"#,
    ])
    func rejectsAmbiguousOrInvalidBodies(body: String) {
        #expect(throws: TranslateError.self) {
            _ = try OpenAICompatible.rewriteModel(Array(body.utf8), to: "m")
        }
    }

    // MARK: stream_options

    @Test(arguments: [
        // (client body, expected upstream body, client wants usage, forced)
        (#"{"model":"m","stream":true}"#, #"{"stream_options":{"include_usage":true},"model":"m","stream":true}"#,
         false, true),
        (#"{"model":"m","stream":true,"stream_options":{}}"#,
         #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#, false, true),
        (#"{"model":"m","stream":true,"stream_options":{"x":1}}"#,
         #"{"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1}}"#, false, true),
        (#"{"model":"m","stream":true,"stream_options":{"include_usage": false}}"#,
         #"{"model":"m","stream":true,"stream_options":{"include_usage": true}}"#, false, true),
        (#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
         #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#, true, false),
        (#"{"model":"m","stream":true,"stream_options":null}"#,
         #"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#, false, true),
        (#"{"model":"m","stream":false}"#, #"{"model":"m","stream":false}"#, false, false),
        (#"{"model":"m"}"#, #"{"model":"m"}"#, false, false),
    ])
    func streamUsageForcing(body: String, expected: String, wants: Bool, forced: Bool) throws {
        let prepared = try OpenAICompatible.prepareRequest(
            Array(body.utf8), context: Self.context("m"), forceStreamUsage: true)
        #expect(String(decoding: prepared.body, as: UTF8.self) == expected)
        #expect(prepared.clientWantsUsage == wants)
        #expect(prepared.forcedUsage == forced)
        _ = try JSONParser.parse(prepared.body)
    }

    @Test func modelRewriteAndUsageForcingTogether() throws {
        let prepared = try OpenAICompatible.prepareRequest(
            Array(#"{"stream":true,"messages":[],"model":"alias"}"#.utf8), context: Self.context("real"),
            forceStreamUsage: true)
        #expect(
            String(decoding: prepared.body, as: UTF8.self)
                == #"{"stream_options":{"include_usage":true},"stream":true,"messages":[],"model":"real"}"#)
        #expect(prepared.stream)
    }

    @Test func noForcingLeavesStreamOptionsAlone() throws {
        let body = Array(#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#.utf8)
        let prepared = try OpenAICompatible.prepareRequest(body, context: Self.context("m"), forceStreamUsage: false)
        #expect(prepared.body == body)
        #expect(prepared.clientWantsUsage)
        #expect(!prepared.forcedUsage)
    }

    // MARK: Azure, errors, usage

    @Test func azurePaths() {
        #expect(
            OpenAICompatible.azurePath(
                deployment: "gpt4o-prod", operation: .chatCompletions, apiVersion: "2024-10-21")
                == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21")
        #expect(
            OpenAICompatible.azurePath(deployment: "emb", operation: .embeddings, apiVersion: "2024-10-21")
                == "/openai/deployments/emb/embeddings?api-version=2024-10-21")
        #expect(
            OpenAICompatible.azurePath(deployment: "a/b?c", operation: .completions, apiVersion: "v&x=1")
                == "/openai/deployments/a%2Fb%3Fc/completions?api-version=v%26x%3D1")
    }

    @Test func errorBodies() throws {
        let openAI = Array(#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"x"}}"#.utf8)
        #expect(OpenAICompatible.errorBody(status: 400, body: openAI) == openAI)

        let page = Array("<html><body>502 Bad Gateway</body></html>".utf8)
        let html = OpenAICompatible.errorBody(status: 502, body: page)
        let value = try JSONParser.parse(html)
        #expect(value["error"]?["type"]?.stringValue == "api_error")
        #expect(value["error"]?["code"]?.stringValue == "upstream_error")
        #expect(value["error"]?["message"]?.stringValue?.contains("502 Bad Gateway") == true)

        let fastAPI = try JSONParser.parse(
            OpenAICompatible.errorBody(status: 404, body: Array(#"{"detail":"Not Found"}"#.utf8)))
        #expect(fastAPI["error"]?["message"]?.stringValue == "Not Found")
        #expect(fastAPI["error"]?["type"]?.stringValue == "not_found_error")
    }

    @Test func usageFromResponse() throws {
        let body = try GeminiFixtureSupport.load("openai/response.json")
        #expect(
            OpenAICompatible.usage(fromResponse: body)
                == TokenUsage(inputTokens: 11, outputTokens: 7, cachedInputTokens: 3, reasoningTokens: 2))
        #expect(OpenAICompatible.usage(fromResponse: Array(#"{"usage":null}"#.utf8)) == nil)
        #expect(
            OpenAICompatible.usage(fromResponse: Array(#"{"usage":{"prompt_tokens":5}}"#.utf8))
                == TokenUsage(inputTokens: 5))
    }

    // MARK: Stream usage filter

    static func filter(_ chunks: [[UInt8]], wants: Bool) -> ([UInt8], OpenAIStreamUsageFilter) {
        var filter = OpenAIStreamUsageFilter(clientWantsUsage: wants)
        var out: [UInt8] = []
        for chunk in chunks { out += filter.feed(chunk) }
        out += filter.finish()
        return (out, filter)
    }

    static let expectedUsage = TokenUsage(inputTokens: 11, outputTokens: 7, cachedInputTokens: 3, reasoningTokens: 2)

    @Test(arguments: ["\n", "\r\n", "\r"])
    func filterDropsOnlyTheUsageChunk(newline: String) throws {
        let lf = String(decoding: try GeminiFixtureSupport.load("openai/stream-with-usage.sse"), as: UTF8.self)
        let input = Array(lf.replacingNewlines(with: newline).utf8)
        let events = lf.split(separator: "\n\n", omittingEmptySubsequences: false)
        let withoutUsage = Array(
            events.filter { !$0.contains("\"choices\":[]") }.joined(separator: "\n\n").replacingNewlines(with: newline)
                .utf8)

        let (kept, keptFilter) = Self.filter([input], wants: true)
        #expect(kept == input)
        #expect(keptFilter.usage == Self.expectedUsage)

        let (dropped, droppedFilter) = Self.filter([input], wants: false)
        #expect(String(decoding: dropped, as: UTF8.self) == String(decoding: withoutUsage, as: UTF8.self))
        #expect(droppedFilter.usage == Self.expectedUsage)

        for split in 0...input.count {
            #expect(Self.filter([Array(input[..<split]), Array(input[split...])], wants: false).0 == dropped)
            #expect(Self.filter([Array(input[..<split]), Array(input[split...])], wants: true).0 == input)
        }
        #expect(Self.filter(input.map { [$0] }, wants: false).0 == dropped)
        var random = GeminiFuzzRandom(state: 11)
        for _ in 0..<50 { #expect(Self.filter(random.chunks(input), wants: false).0 == dropped) }
    }

    @Test func oversizedEventsPassThroughUnexamined() {
        var filter = OpenAIStreamUsageFilter(clientWantsUsage: false, maxEventBytes: 16)
        let input = Array(#"data: {"choices":[],"usage":{"prompt_tokens":1}}"#.utf8) + Array("\n\n".utf8)
        let out = filter.feed(input) + filter.finish()
        #expect(out == input)
    }

    // MARK: Fuzz

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func fuzzNeverTraps() async {
        await #expect(processExitsWith: .success) { try OpenAICompatibleTests.fuzzNeverTrapsRun() }
    }

    static func fuzzNeverTrapsRun() throws {
        let seeds = try [
            "openai/stream-with-usage.sse", "openai/response.json", "gemini/full.request.json",
        ].map { try GeminiFixtureSupport.load($0) } + [Array(#"{"model":"m","stream":true,"stream_options":{}}"#.utf8)]
        var random = GeminiFuzzRandom(state: 0xC0FFEE)
        for _ in 0..<3000 {
            let input = random.mutated(seeds)
            do {
                let prepared = try OpenAICompatible.prepareRequest(
                    input, context: Self.context("upstream-model"), forceStreamUsage: random.below(2) == 0)
                // Whatever was edited, the result is still one valid JSON document.
                _ = try JSONParser.parse(prepared.body)
            } catch let error as TranslateError {
                #expect(error.status == 400)
            }
            _ = OpenAICompatible.usage(fromResponse: input)
            _ = try JSONParser.parse(OpenAICompatible.errorBody(status: 500, body: input))
            let wants = random.below(2) == 0
            let (out, _) = Self.filter(random.chunks(input), wants: wants)
            if wants { #expect(out == input) }
        }
    }
}

extension String {
    fileprivate func replacingNewlines(with newline: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: newline)
    }
}

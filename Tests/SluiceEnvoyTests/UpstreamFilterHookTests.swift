// The per-attempt upstream filter driven through its real hooks with the fake Envoy.
import SluiceCore
import SluiceTestHost
import Testing

@Suite struct UpstreamFilterHookTests {
    let anthropicBackend = #"{"backend":"anthropic","schema":"anthropic","credential":{"secret":"ant-key"},"default_max_tokens":256}"#

    func chain(_ config: String, secrets: [String: String] = [:]) -> FakeHTTPFilterChain {
        let host = FakeFilterConfig()
        for (name, value) in secrets { host.secrets[name] = StableBytes(value) }
        return FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: config, config: host)
    }

    func attempt(_ chain: FakeHTTPFilterChain, endpoint: String = "chat_completions", model: String, stream: Bool = false,
                 headers: [(String, String)] = []) throws -> FakeHTTPStreamDriver {
        let path = endpoint == "messages" ? "/v1/messages" : "/v1/chat/completions"
        let driver = try #require(chain.newStream([(":method", "POST"), (":path", path), ("x-sluice-route", "r")] + headers))
        driver.stream.setAttemptContext(endpoint: endpoint, model: model, stream: stream)
        return driver
    }

    @Test func openAIClientToAnthropicBackendNonStreaming() throws {
        let chain = chain(anthropicBackend, secrets: ["ant-key": "sk-ant-real"])
        #expect(chain.loaded)
        let driver = try attempt(chain, model: "claude-haiku", headers: [("authorization", "Bearer leftover"), ("x-sluice-epp", ";")])
        #expect(driver.requestHeaders() == 1)  // waits for the body to translate it
        let headers = driver.stream.requestHeaders
        #expect(headers[":path"] == "/v1/messages")
        #expect(headers["x-api-key"] == "sk-ant-real")
        #expect(headers["anthropic-version"] == "2023-06-01")
        #expect(headers["authorization"] == nil)
        #expect(headers["x-sluice-route"] == nil)
        #expect(headers["x-sluice-epp"] == nil)  // the load balancer's hand-over stays inside Envoy
        let request = #"{"model":"claude-haiku","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}"#
        #expect(driver.requestBody(Array(request.utf8), endOfStream: true) == 0)
        let sent = try JSONParser.parse(driver.forwardedRequestBody)
        #expect(sent["system"] != nil)
        #expect(sent["max_tokens"]?.int64Value == 256)
        #expect(driver.stream.requestHeaders["content-length"] == String(driver.forwardedRequestBody.count))

        #expect(driver.responseHeaders([(":status", "200"), ("content-type", "application/json"), ("content-length", "999")]) == 1)
        let response = #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}"#
        #expect(driver.responseBody(Array(response.utf8), endOfStream: true) == 0)
        let out = try JSONParser.parse(driver.forwardedResponseBody)
        #expect(out["object"] == "chat.completion")
        #expect(out["choices"]?.arrayValue?.first?["message"]?["content"] == "Hello there")
        #expect(out["usage"]?["prompt_tokens"]?.int64Value == 10)
        #expect(driver.stream.responseHeaders["content-length"] == String(driver.forwardedResponseBody.count))
    }

    /// Trailers end a stream without a last body event whose end-of-stream flag is set (HTTP/2
    /// clients and upstreams may send them): the request is still translated and signed, the
    /// response still translated and metered, from Envoy's buffer.
    @Test func trailersEndTheBodyBothWays() throws {
        let chain = chain(anthropicBackend, secrets: ["ant-key": "sk-ant-real"])
        let driver = try attempt(chain, model: "claude-haiku")
        #expect(driver.requestHeaders() == 1)
        let request = Array(#"{"model":"claude-haiku","messages":[{"role":"user","content":"hi"}]}"#.utf8)
        #expect(driver.requestBody(Array(request[..<20]), endOfStream: false) == 1)
        #expect(driver.requestBody(Array(request[20...]), endOfStream: false) == 1)
        #expect(driver.forwardedRequestBody.isEmpty)
        #expect(driver.requestTrailers() == 0)
        let sent = try JSONParser.parse(driver.forwardedRequestBody)
        #expect(sent["max_tokens"]?.int64Value == 256)
        #expect(sent["model"] == "claude-haiku")
        #expect(driver.stream.requestHeaders["content-length"] == String(driver.forwardedRequestBody.count))

        #expect(driver.responseHeaders([(":status", "200"), ("content-type", "application/json")]) == 1)
        let response = Array(
            #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"output_tokens":2}}"#
                .utf8)
        #expect(driver.responseBody(Array(response[..<30]), endOfStream: false) == 1)
        #expect(driver.responseBody(Array(response[30...]), endOfStream: false) == 1)
        #expect(driver.responseTrailers() == 0)
        let out = try JSONParser.parse(driver.forwardedResponseBody)
        #expect(out["object"] == "chat.completion")
        #expect(out["choices"]?.arrayValue?.first?["message"]?["content"] == "Hello")
        #expect(driver.stream.responseHeaders["content-length"] == String(driver.forwardedResponseBody.count))
        #expect(driver.stream.publishedReport?.usage.inputTokens == 10)
        #expect(driver.stream.publishedReport?.usage.outputTokens == 2)
    }

    /// A streamed translation whose upstream ends with trailers: the translator's tail (the
    /// finish and `[DONE]`) still reaches the client, and the usage is published.
    @Test func streamEndedByTrailersIsFinished() throws {
        let chain = chain(anthropicBackend, secrets: ["ant-key": "k"])
        let driver = try attempt(chain, model: "claude-haiku", stream: true)
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"claude-haiku","stream":true,"messages":[{"role":"user","content":"hi"}]}"#.utf8), endOfStream: true)
        #expect(driver.responseHeaders([(":status", "200"), ("content-type", "text/event-stream")]) == 0)
        let events = """
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}

            event: message_stop
            data: {"type":"message_stop"}


            """
        #expect(driver.responseBody(Array(events.utf8), endOfStream: false) == 0)
        #expect(driver.responseTrailers() == 0)
        let text = String(decoding: driver.forwardedResponseBody, as: UTF8.self)
        #expect(text.contains(#""content":"Hi""#))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(driver.stream.publishedReport?.usage.outputTokens == 3)
    }

    @Test func anthropicErrorsBecomeOpenAIErrorsWithTheSameStatus() throws {
        let chain = chain(anthropicBackend, secrets: ["ant-key": "k"])
        let driver = try attempt(chain, model: "claude-haiku")
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"claude-haiku","messages":[{"role":"user","content":"x"}]}"#.utf8), endOfStream: true)
        #expect(driver.responseHeaders([(":status", "529"), ("content-type", "application/json")]) == 1)
        let error = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        driver.responseBody(Array(error.utf8), endOfStream: true)
        #expect(driver.stream.responseHeaders[":status"] == "529")
        let out = try JSONParser.parse(driver.forwardedResponseBody)
        #expect(out["error"]?["message"] == "Overloaded")
    }

    @Test func anthropicStreamBecomesOpenAIChunksAtAnySplit() throws {
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":0}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}

            event: message_stop
            data: {"type":"message_stop"}


            """
        let bytes = Array(stream.utf8)
        var reference: String?
        for split in stride(from: 0, through: bytes.count, by: 37) {
            let chain = chain(anthropicBackend, secrets: ["ant-key": "k"])
            let driver = try attempt(chain, model: "claude-haiku", stream: true)
            driver.requestHeaders()
            driver.requestBody(Array(#"{"model":"claude-haiku","stream":true,"messages":[{"role":"user","content":"x"}]}"#.utf8), endOfStream: true)
            #expect(driver.responseHeaders([(":status", "200"), ("content-type", "text/event-stream")]) == 0)
            #expect(driver.stream.responseHeaders["content-type"] == "text/event-stream")
            driver.responseBody(Array(bytes[0..<split]), endOfStream: false)
            driver.responseBody(Array(bytes[split...]), endOfStream: true)
            let text = String(decoding: driver.forwardedResponseBody, as: UTF8.self)
            #expect(text.contains(#""content":"Hi""#))
            #expect(text.hasSuffix("data: [DONE]\n\n"))
            // `created` is the clock's second, which may tick between two splits.
            let chunks = Self.withoutCreated(driver.forwardedResponseBody)
            if let reference { #expect(chunks == reference) } else { reference = chunks }
        }
    }

    /// The text with every `"created":<seconds>` value blanked.
    static func withoutCreated(_ bytes: [UInt8]) -> String {
        let pieces = String(decoding: bytes, as: UTF8.self).split(separator: #""created":"#, omittingEmptySubsequences: false)
        return pieces.dropFirst().reduce(String(pieces.first ?? "")) { text, piece in
            text + #""created":_"# + piece.drop(while: \.isNumber)
        }
    }

    @Test func aggregateClusterPicksTheBackendFromHostMetadata() throws {
        let config = #"{"backends":[{"backend":"a","schema":"openai","credential":{"value":"key-a"}},{"backend":"b","schema":"azure_openai","azure":{"api_version":"v1"},"credential":{"value":"key-b"}}]}"#
        let chain = chain(config)
        let driver = try attempt(chain, model: "m")
        driver.stream.otherMetadata[3] = ["sluice": ["backend": .string("b")]]  // Host
        #expect(driver.requestHeaders() == 0)
        #expect(driver.stream.requestHeaders["api-key"] == "key-b")
        #expect(driver.stream.requestHeaders[":path"] == "/openai/deployments/m/chat/completions?api-version=v1")
        // No host metadata with several backends: refused, not guessed.
        let unknown = try attempt(chain, model: "m")
        #expect(unknown.requestHeaders() == 1)
        #expect(unknown.stream.localReply?.status == 500)
    }

    @Test func requestsNotRoutedBySluicePassThrough() throws {
        let chain = chain(anthropicBackend, secrets: ["ant-key": "k"])
        let driver = try #require(chain.newStream([(":method", "GET"), (":path", "/health")]))
        #expect(driver.requestHeaders(endOfStream: true) == 0)
        #expect(driver.stream.requestHeaders[":path"] == "/health")
    }

    @Test func missingSecretIsA500NotACrash() throws {
        let chain = chain(anthropicBackend)  // secret subscribed, but has no value
        let driver = try attempt(chain, model: "claude-haiku")
        #expect(driver.requestHeaders() == 1)
        #expect(driver.stream.localReply?.status == 500)
        #expect(driver.stream.localReply?.bodyString.contains("backend_credential_missing") == true)
    }
}

// Answers that are not the upstream's own: Envoy's text/plain replies to a routed call (reset,
// timeout, broken answer) and body-less answers from a translated backend reach the client as
// errors in its API's shape.
import SluiceCore
import SluiceTestHost
import Testing

@Suite struct ProxyReplyHookTests {
    static func routed(_ chain: FakeHTTPFilterChain, path: String = "/v1/chat/completions") throws -> FakeHTTPStreamDriver {
        let driver = try #require(chain.newStream([
            (":method", "POST"), (":path", path), ("authorization", "Bearer sk-sluice-demo"),
        ]))
        driver.requestHeaders()
        let body = path == "/v1/messages"
            ? #"{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#
            : #"{"model":"gpt-4o-mini"}"#
        #expect(driver.requestBody(Array(body.utf8), endOfStream: true) == 0)
        return driver
    }

    @Test(arguments: [
        (UInt32(503), "upstream_reset_before_response_started{connection_termination}", "upstream_reset"),
        (504, "upstream_response_timeout", "upstream_timeout"),
        (502, "upstream_reset_before_response_started{protocol_error}", "upstream_reset"),
        (500, "response_payload_too_large", "upstream_response_too_large"),
        (503, "no_healthy_upstream", "upstream_unavailable"),
    ])
    func envoysOwnRepliesBecomeOpenAIErrors(status: UInt32, details: String, code: String) throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try Self.routed(chain)
        #expect(!driver.localReply(status: status, details: details))
        let text = "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
        driver.responseHeaders([(":status", String(status)), ("content-type", "text/plain"), ("content-length", String(text.utf8.count))])
        driver.responseBody(Array(text.utf8), endOfStream: true)
        let error = try JSONParser.parse(driver.forwardedResponseBody)
        #expect(error["error"]?["code"]?.stringValue == code)
        #expect(error["error"]?["message"]?.stringValue?.contains(details) == true)
        #expect(driver.stream.responseHeaders[":status"] == String(status))
        #expect(driver.stream.responseHeaders["content-type"] == "application/json")
        #expect(driver.stream.responseHeaders["content-length"] == String(driver.forwardedResponseBody.count))
    }

    @Test func anthropicClientsGetAnthropicErrors() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try Self.routed(chain, path: "/v1/messages")
        _ = driver.localReply(status: 504, details: "upstream_response_timeout")
        driver.responseHeaders([(":status", "504"), ("content-type", "text/plain")])
        driver.responseBody(Array("upstream request timeout".utf8), endOfStream: true)
        let error = try JSONParser.parse(driver.forwardedResponseBody)
        #expect(error["type"]?.stringValue == "error")
        #expect(error["error"]?["type"]?.stringValue == "api_error")
    }

    @Test func aReplyWithoutBodyGetsOne() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try Self.routed(chain)
        _ = driver.localReply(status: 503, details: "no_healthy_upstream")
        driver.responseHeaders([(":status", "503")], endOfStream: true)
        let body = driver.stream.bodyBytes(driver.stream.bufferedResponseBody)
        #expect(try JSONParser.parse(body)["error"]?["code"]?.stringValue == "upstream_unavailable")
        #expect(driver.stream.responseHeaders["content-length"] == String(body.count))
    }

    @Test func theGatewaysOwnRepliesAndUnroutedRequestsAreLeftAlone() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try Self.routed(chain)
        _ = driver.localReply(status: 500, details: "sluice_upstream_rejected")
        let mine = #"{"error":{"message":"x","type":"api_error","param":null,"code":"backend_unknown"}}"#
        driver.responseHeaders([(":status", "500"), ("content-type", "application/json")])
        driver.responseBody(Array(mine.utf8), endOfStream: true)
        #expect(driver.forwardedResponseBody == Array(mine.utf8))

        let plain = try #require(chain.newStream([
            (":method", "GET"), (":path", "/health"), ("authorization", "Bearer sk-sluice-demo"),
        ]))
        plain.requestHeaders(endOfStream: true)
        _ = plain.localReply(status: 503, details: "no_healthy_upstream")
        plain.responseHeaders([(":status", "503"), ("content-type", "text/plain")])
        plain.responseBody(Array("no healthy upstream".utf8), endOfStream: true)
        #expect(plain.forwardedResponseBody == Array("no healthy upstream".utf8))
    }

    /// A translated backend's answer that ends with its headers still owes the client a body.
    @Test(arguments: [("200", UInt32(502), "bad_upstream_response"), ("503", 503, "")])
    func bodylessAnswersFromATranslatedBackendGetABody(status: String, clientStatus: UInt32, code: String) throws {
        let backend = #"{"backend":"anthropic","schema":"anthropic","credential":{"value":"k"}}"#
        let chain = FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: backend, config: FakeFilterConfig())
        let driver = try #require(chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions")]))
        driver.stream.setAttemptContext(model: "claude")
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"claude","messages":[{"role":"user","content":"x"}]}"#.utf8), endOfStream: true)
        #expect(driver.responseHeaders([(":status", status)], endOfStream: true) == 0)
        #expect(driver.stream.responseHeaders[":status"] == String(clientStatus))
        let body = driver.stream.bodyBytes(driver.stream.bufferedResponseBody)
        let error = try JSONParser.parse(body)
        #expect(error["error"]?["message"]?.stringValue?.isEmpty == false)
        if !code.isEmpty { #expect(error["error"]?["code"]?.stringValue == code) }
        #expect(driver.stream.responseHeaders["content-length"] == String(body.count))
    }
}

/// A retry replays the client's body while keeping the headers an earlier attempt edited.
@Suite struct RetryBodyLengthTests {
    @Test func anAttemptThatKeepsTheBodySendsTheClientsLength() throws {
        let backend = #"{"backend":"azure","schema":"azure_openai","azure":{"api_version":"v1"},"credential":{"value":"k"}}"#
        let chain = FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: backend, config: FakeFilterConfig())
        // The first attempt (another backend) rewrote the body and left its own, shorter length.
        let driver = try #require(chain.newStream([
            (":method", "POST"), (":path", "/v1/chat/completions"), ("content-length", "85"),
        ]))
        driver.stream.setAttemptContext(model: "m", requestBodyBytes: 94)
        #expect(driver.requestHeaders() == 0)  // Azure sends the body as it is
        #expect(driver.stream.requestHeaders["content-length"] == "94")
    }

    /// Another filter may write anything into the `sluice` metadata, a well-formed context of the
    /// old packed shape included: the upstream filter takes the context only from the downstream
    /// filter's link, so without one the request is forwarded untouched.
    @Test(arguments: ["94", "nan", "-1", "1.5", "1e300", "99999999999999999999", "+94", ""])
    func aForeignLengthIsIgnored(value: String) throws {
        let backend = #"{"backend":"azure","schema":"azure_openai","azure":{"api_version":"v1"},"credential":{"value":"k"}}"#
        let chain = FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: backend, config: FakeFilterConfig())
        let driver = try #require(chain.newStream([
            (":method", "POST"), (":path", "/v1/chat/completions"), ("content-length", "85"),
        ]))
        driver.stream.dynamicMetadata["sluice"] = ["attempt_context": .string("chat_completions 0 0 \(value) m")]
        #expect(driver.requestHeaders() == 0)
        #expect(driver.stream.requestHeaders["content-length"] == "85")
    }
}

// Token usage from a hostile or buggy upstream, through both filters' real hooks: nothing traps,
// counts are clamped to `TokenUsage.maxCount`, and the clamp is counted. Each test runs in an
// exit test so that a regression (a trap) fails that test alone instead of the whole suite.
import SluiceCore
import SluiceTestHost
import Testing

@Suite struct HostileUsageHookTests {
    static let openAIBackend = #"{"backend":"compat","schema":"openai","credential":{"value":"k"}}"#
    static let absurdUsage =
        #"{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":1e300,"total_tokens":-5,"prompt_tokens_details":{"cached_tokens":1e999}}}"#

    /// One upstream attempt against an OpenAI-compatible backend whose response is `body`.
    static func attempt(body: String, stream: Bool = false, contentType: String = "application/json")
        -> (FakeHTTPFilterChain, FakeHTTPStreamDriver)?
    {
        let chain = FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: openAIBackend, config: FakeFilterConfig())
        guard let driver = chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions")]) else { return nil }
        driver.stream.dynamicMetadata["sluice"] = [
            "endpoint": .string("chat_completions"), "model": .string("m"), "stream": .bool(stream),
            "include_usage": .bool(false),
        ]
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"m","messages":[]}"#.utf8), endOfStream: true)
        driver.responseHeaders([(":status", "200"), ("content-type", contentType)])
        driver.responseBody(Array(body.utf8), endOfStream: true)
        return (chain, driver)
    }

    static func publishedNumber(_ driver: FakeHTTPStreamDriver, _ key: String) -> Double? {
        guard case .number(let value)? = driver.stream.dynamicMetadata["sluice"]?[key] else { return nil }
        return value
    }

    @Test func absurdPassthroughUsageIsClampedCountedAndTheBodyUnchanged() async {
        await #expect(processExitsWith: .success) {
            guard let (chain, driver) = Self.attempt(body: Self.absurdUsage) else {
                Issue.record("no stream")
                return
            }
            // The client gets the upstream's bytes as they were.
            #expect(driver.forwardedResponseBody == Array(Self.absurdUsage.utf8))
            #expect(Self.publishedNumber(driver, "input_tokens") == Double(TokenUsage.maxCount))
            #expect(Self.publishedNumber(driver, "output_tokens") == Double(TokenUsage.maxCount))
            #expect(Self.publishedNumber(driver, "cached_input_tokens") == Double(TokenUsage.maxCount))
            #expect(Self.publishedNumber(driver, "total_tokens") == Double(TokenUsage.maxCount))
            #expect(chain.config.value("upstream_usage_clamped") == 1)
        }
    }

    @Test func saneUsageIsNotCountedAsClamped() async {
        await #expect(processExitsWith: .success) {
            let body = #"{"id":"c1","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3.0}}"#
            guard let (chain, driver) = Self.attempt(body: body) else { return }
            #expect(Self.publishedNumber(driver, "input_tokens") == 7)
            #expect(Self.publishedNumber(driver, "output_tokens") == 3)
            #expect((chain.config.value("upstream_usage_clamped") ?? 0) == 0)
        }
    }

    @Test func absurdStreamedUsageIsCountedOncePerAttempt() async {
        await #expect(processExitsWith: .success) {
            let chunk = #"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":18446744073709551616}}"#
            let stream = "data: \(chunk)\n\ndata: \(chunk)\n\ndata: [DONE]\n\n"
            guard let (chain, driver) = Self.attempt(body: stream, stream: true, contentType: "text/event-stream") else { return }
            #expect(Self.publishedNumber(driver, "input_tokens") == 0)
            #expect(Self.publishedNumber(driver, "output_tokens") == Double(TokenUsage.maxCount))
            #expect(chain.config.value("upstream_usage_clamped") == 1)
        }
    }

    /// Another filter of the stream may write anything under the `sluice` keys: the downstream
    /// filter reads it clamped, charges and meters sane numbers, and does not trap.
    @Test func theGatewayFilterReadsForeignMetadataNumbersClamped() async {
        await #expect(processExitsWith: .success) {
            let hostile: [Double] = [.nan, -.infinity, .infinity, -1, 1e300, 9.223372036854775807e18, 1.8446744073709552e19, 0.5]
            for value in hostile {
                let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
                guard let driver = chain.newStream([
                    (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ]) else { return }
                driver.requestHeaders()
                driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
                for key in ["input_tokens", "output_tokens", "cached_input_tokens"] {
                    driver.stream.dynamicMetadata["sluice", default: [:]][key] = .number(value)
                }
                driver.responseHeaders([(":status", "200")])
                driver.responseBody(Array("{}".utf8), endOfStream: true)
                driver.streamComplete()
                let labels = ["chat", "none", "gpt-4o-mini", "gpt-4o-mini", "demo", "input"]
                let counted = chain.config.value("gen_ai_client_tokens_total", labels: labels) ?? 0
                #expect(counted <= UInt64(TokenUsage.maxCount), "\(value)")
                #expect(counted == UInt64(TokenUsage.count(value)), "\(value)")
            }
        }
    }
}

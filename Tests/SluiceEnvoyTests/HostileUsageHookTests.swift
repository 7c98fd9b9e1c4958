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
        driver.stream.setAttemptContext(model: "m", stream: stream)
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"m","messages":[]}"#.utf8), endOfStream: true)
        driver.responseHeaders([(":status", "200"), ("content-type", contentType)])
        driver.responseBody(Array(body.utf8), endOfStream: true)
        return (chain, driver)
    }

    static func published(_ driver: FakeHTTPStreamDriver) -> TokenUsage? { driver.stream.publishedReport?.usage }

    @Test func absurdPassthroughUsageIsClampedCountedAndTheBodyUnchanged() async {
        await #expect(processExitsWith: .success) {
            guard let (chain, driver) = Self.attempt(body: Self.absurdUsage) else {
                Issue.record("no stream")
                return
            }
            // The client gets the upstream's bytes as they were.
            #expect(driver.forwardedResponseBody == Array(Self.absurdUsage.utf8))
            let usage = Self.published(driver)
            #expect(usage?.inputTokens == TokenUsage.maxCount)
            #expect(usage?.outputTokens == TokenUsage.maxCount)
            #expect(usage?.cachedInputTokens == TokenUsage.maxCount)
            #expect(usage?.totalTokens == TokenUsage.maxCount)
            #expect(usage?.isClamped == true)
            #expect(chain.config.value("upstream_usage_clamped") == 1)
        }
    }

    @Test func saneUsageIsNotCountedAsClamped() async {
        await #expect(processExitsWith: .success) {
            let body = #"{"id":"c1","object":"chat.completion","model":"m","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3.0}}"#
            guard let (chain, driver) = Self.attempt(body: body) else { return }
            #expect(Self.published(driver)?.inputTokens == 7)
            #expect(Self.published(driver)?.outputTokens == 3)
            #expect(Self.published(driver)?.isClamped == false)
            #expect((chain.config.value("upstream_usage_clamped") ?? 0) == 0)
        }
    }

    @Test func absurdStreamedUsageIsCountedOncePerAttempt() async {
        await #expect(processExitsWith: .success) {
            let chunk = #"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":-1,"completion_tokens":18446744073709551616}}"#
            let stream = "data: \(chunk)\n\ndata: \(chunk)\n\ndata: [DONE]\n\n"
            guard let (chain, driver) = Self.attempt(body: stream, stream: true, contentType: "text/event-stream") else { return }
            #expect(Self.published(driver)?.inputTokens == 0)
            #expect(Self.published(driver)?.outputTokens == TokenUsage.maxCount)
            #expect(chain.config.value("upstream_usage_clamped") == 1)
        }
    }

    /// Another filter of the stream may write anything into the `sluice` metadata, a well-formed
    /// report of the old packed shape included: the downstream filter takes reports only from its
    /// link to the upstream attempts, so it charges and meters none of these, and does not trap.
    @Test func theGatewayFilterTakesNoReportFromMetadata() async {
        await #expect(processExitsWith: .success) {
            let max = TokenUsage.maxCount
            let hostile = [
                "5 1 0 0 0 0 openai m", "\(max) 1 0 0 0 1 openai m", "nan 1 0 0 0 0 openai m", "-1 1 0 0 0 0 openai m",
                "\(max + 1) 1 0 0 0 0 openai m", "18446744073709551616 1 0 0 0 0 openai m", "5 1 0", "", "\u{0}",
            ]
            for value in hostile {
                let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
                guard let driver = chain.newStream([
                    (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ]) else { return }
                driver.requestHeaders()
                driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
                driver.stream.dynamicMetadata["sluice", default: [:]]["attempt_report"] = .string(value)
                driver.responseHeaders([(":status", "200")])
                driver.responseBody(Array("{}".utf8), endOfStream: true)
                driver.streamComplete()
                chain.flushCounters()
                for (provider, model) in [("openai", "m"), ("none", "gpt-4o-mini")] {
                    let labels = ["chat", provider, "gpt-4o-mini", model, "demo", "input"]
                    #expect((chain.config.value("gen_ai_client_tokens_total", labels: labels) ?? 0) == 0, "\(value)")
                }
                // No report: no token counts for access logs, and nothing about who answered.
                #expect(driver.stream.dynamicMetadata["sluice"]?["input_tokens"] == nil, "\(value)")
                #expect(driver.stream.dynamicMetadata["sluice"]?["provider"] == nil, "\(value)")
            }
        }
    }
}

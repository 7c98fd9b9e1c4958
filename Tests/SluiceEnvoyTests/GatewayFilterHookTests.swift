// Drives the real exported hooks through the fake Envoy (SluiceTestHost).
import SluiceEnvoy
import SluiceTestHost
import Testing

let demoConfig = #"{"api_keys":[{"name":"demo","key":"sk-sluice-demo"}],"models":[{"id":"gpt-4o-mini","owned_by":"openai"}]}"#

@Suite struct GatewayFilterHookTests {
    @Test func programInitReturnsTheABIVersionOfEnvoy140() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: "{}")
        #expect(chain.abiVersion == "v0.2.0")
        #expect(chain.abiVersion == SLUICE_ENVOY_ABI_VERSION)
    }

    @Test func definesItsCounterAtConfigTime() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        #expect(chain.loaded)
        #expect(chain.config.metrics.map(\.name) == ["requests_total"])
        #expect(chain.config.metrics.first?.labelNames == ["outcome"])
    }

    @Test func answersModelsLocally() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-sluice-demo")]))
        #expect(driver.requestHeaders(endOfStream: true) == 1)  // StopIteration
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == 200)
        #expect(reply.headers["content-type"] == "application/json")
        #expect(reply.bodyString.contains(#""id":"gpt-4o-mini""#))
        #expect(reply.details == "sluice_models_listed")
        #expect(chain.config.value("requests_total", labels: ["models_listed"]) == 1)
    }

    @Test func refusesMissingKeyWith401() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions")]))
        #expect(driver.requestHeaders() == 1)
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == 401)
        #expect(reply.bodyString.contains(#""code":"missing_api_key""#))
        #expect(chain.config.value("requests_total", labels: ["unauthorized"]) == 1)
    }

    @Test func forwardsAndStripsClientCredentials() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ("x-api-key", "sk-sluice-demo"), ("content-type", "application/json"),
            ]))
        #expect(driver.requestHeaders() == 0)  // Continue
        #expect(driver.stream.localReply == nil)
        #expect(driver.stream.requestHeaders["authorization"] == nil)
        #expect(driver.stream.requestHeaders["x-api-key"] == nil)
        #expect(driver.stream.requestHeaders["content-type"] == "application/json")
        #expect(driver.stream.dynamicMetadata["sluice"]?["consumer"] == .string("demo"))
        #expect(driver.requestBody(Array("{}".utf8), endOfStream: true) == 0)
        #expect(driver.forwardedRequestBody == Array("{}".utf8))
        #expect(driver.responseHeaders([(":status", "200")]) == 0)
        driver.streamComplete()
        driver.destroy()
        #expect(driver.stream.callbacksAfterDestroy == 0)
        #expect(chain.config.value("requests_total", labels: ["forwarded"]) == 1)
    }

    @Test func invalidConfigIsRefusedWithTheFieldNamed() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: #"{"api_keys":[{"name":"demo","kee":"x"}]}"#)
        #expect(!chain.loaded)
        #expect(!FakeLog.lines(containing: "api_keys[0]: needs one of 'key' or 'key_sha256'").isEmpty)
    }

    @Test func unknownFilterNameIsRefused() {
        let chain = FakeHTTPFilterChain(filterName: "not-sluice", filterConfig: "{}")
        #expect(!chain.loaded)
        #expect(!FakeLog.lines(containing: "unknown filter_name 'not-sluice'").isEmpty)
    }

    @Test func garbageConfigBytesAreRefusedNotFatal() {
        for config in ["", "{", "\u{0}", "null", "[1,2]", String(repeating: "[", count: 10_000)] {
            let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
            #expect(!chain.loaded)
        }
    }

    /// Hostile and odd header values: no trap, always a well-formed decision.
    @Test func oddHeadersNeverCrash() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let values = ["", "Bearer", "Bearer ", "Bearer \u{0}", String(repeating: "B", count: 100_000), "Bearer \u{FFFD}\u{FFFD}", "\r\n"]
        for value in values {
            let driver = try #require(chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", value)]))
            #expect(driver.requestHeaders() == 1)
            #expect(driver.stream.localReply?.status == 401)
        }
        // No :method / :path at all.
        let bare = try #require(chain.newStream([]))
        #expect(bare.requestHeaders() == 1)
        #expect(bare.stream.localReply?.status == 401)
    }
}

// `sluice:search_units` for access logs, through the downstream filter's real hooks: written as a
// number when the last attempt reported search units, and not written at all for a request
// without them (a chat request pays no extra call into Envoy).
import SluiceCore
import SluiceTestHost
import Testing

@Suite struct SearchUnitsMetadataHookTests {
    static func completed(searchUnits: Int) throws -> FakeHTTPStreamDriver {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
            ]))
        driver.requestHeaders()
        driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
        driver.stream.setAttemptReport(inputTokens: 12, outputTokens: 5, searchUnits: searchUnits)
        driver.responseHeaders([(":status", "200")])
        driver.responseBody(Array("{}".utf8), endOfStream: true)
        driver.streamComplete()
        return driver
    }

    @Test func searchUnitsAreANumberWhenReported() throws {
        let driver = try Self.completed(searchUnits: 3)
        #expect(driver.stream.dynamicMetadata["sluice"]?["search_units"] == .number(3))
        #expect(driver.stream.dynamicMetadata["sluice"]?["input_tokens"] == .number(12))
    }

    @Test func noSearchUnitsNoKey() throws {
        let driver = try Self.completed(searchUnits: 0)
        #expect(driver.stream.dynamicMetadata["sluice"]?["search_units"] == nil)
        #expect(driver.stream.dynamicMetadata["sluice"]?["total_tokens"] == .number(17))
    }
}

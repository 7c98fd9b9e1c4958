// Usage that is not tokens on the module's side: the fleet record carries a rerank's search units
// and the unit a media answer was metered in, and writes both on the wire.
import Testing

@testable import SluiceCore

@Suite struct UsageUnitsRecordTests {
    static func completed(_ report: AttemptReport) throws -> FleetUsageRecord {
        let gateway = try GatewayStreamTests.gateway(GatewayStreamTests.config)
        var machine = GatewayStream(gateway: gateway)
        machine.usageRecordRequest = ("req-units", 900_000)
        _ = machine.requestHeaders(GatewayStreamTests.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        _ = machine.route(body: Array(#"{"model":"gpt-4o-mini"}"#.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        _ = machine.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 2_000_000)
        return try #require(machine.completedUsageRecord)
    }

    @Test func aRerankRecordCarriesItsSearchUnits() throws {
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 0, outputTokens: 0, searchUnits: 3), backend: "cohere", provider: "cohere",
            responseModel: "rerank-v3.5")
        let record = try Self.completed(report)
        #expect(record.searchUnits == 3 && record.unit == .tokens)
    }

    @Test func aMediaRecordSaysWhatItsCountsCount() throws {
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 0, outputTokens: 2), backend: "openai", provider: "openai",
            responseModel: "dall-e-3", unit: .images)
        let record = try Self.completed(report)
        #expect(record.unit == .images && record.outputTokens == 2 && record.searchUnits == 0)
    }

    @Test func theWireCarriesUnitAndSearchUnitsAndSearchUnitsAreClamped() throws {
        let record = FleetUsageRecord(
            id: "r", timeMillis: 1, unit: .seconds, inputTokens: 61, searchUnits: 2, costMicros: 6100)
        let text = String(decoding: FleetUsageRecord.batchBody(envoy: "e", records: [record]), as: UTF8.self)
        #expect(text.contains(#""status":200,"unit":"seconds","input_tokens":61,"cached_input_tokens":0,"output_tokens":0,"search_units":2,"cost_micro_usd":6100,"#))
        _ = try JSONParser.parse(Array(text.utf8))
        #expect(FleetUsageRecord(id: "r", timeMillis: 1, searchUnits: -4).searchUnits == 0)
        #expect(FleetUsageRecord(id: "r", timeMillis: 1, searchUnits: Int.max).searchUnits == 1_000_000_000)
    }

    @Test func searchUnitsHaveAnAccessLogKey() {
        #expect(FilterMetadataKey.searchUnits.name.description == "search_units")
    }
}

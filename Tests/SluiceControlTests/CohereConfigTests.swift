// The `cohere` schema (rerank) and per-search-unit prices in sluice.yaml: what the loader requires
// and refuses, and what the compiled module config carries.
import Foundation
import SluiceControl
import SluiceCore
import Testing

@Suite struct CohereConfigTests {
    static let yaml = """
        backends:
          - { name: cohere, schema: cohere, credential: { env: COHERE_API_KEY } }
        models:
          - { id: rerank-v3.5, backend: cohere, price: { input: 0, output: 0, search_unit: 0.002 } }
        """

    @Test func aCohereBackendDefaultsToCohereAPIOverTLS() throws {
        let config = try SluiceConfig.load(yaml: Self.yaml).config
        let backend = try #require(config.backends.first)
        #expect(backend.schema == .cohere)
        #expect(backend.endpoints == [SluiceConfig.Endpoint(host: "api.cohere.com", port: 443)])
        #expect(backend.tls)
        #expect(config.prices["rerank-v3.5"]?.searchUnitMicros == 2_000)
    }

    @Test func theCompiledConfigsCarryTheSchemaAndTheSearchUnitPrice() throws {
        let plan = try SluiceConfig.load(yaml: Self.yaml).config.compile()
        let upstream = try parseUpstream(plan.cluster(named: "cohere")?.upstreamFilterConfig)
        #expect(upstream.backends.map(\.schema) == [.cohere])
        #expect(upstream.backends.first?.credential != nil)
        // The module reads the price the compiler wrote, search unit included.
        let gateway = try GatewayConfig.parse(plan.gatewayFilterConfig)
        #expect(gateway.prices.price(for: "rerank-v3.5")?.searchUnitMicros == 2_000)
        #expect(gateway.prices.cost(usage: TokenUsage(searchUnits: 5), model: "rerank-v3.5") == 10_000)
    }

    @Test func aCohereBackendNeedsAKeyAndIsNoPool() {
        let errors = loadErrors("backends: [{ name: c, schema: cohere }]\nmodels: [{ id: m, backend: c }]")
        #expect(errors.count == 1)
        #expect(errors.first?.contains("backends[0]") == true && errors.first?.contains("'credential' for schema cohere") == true)
        let pool = loadErrors("pools: [{ name: p, schema: cohere, endpoints: [http://10.0.0.1:8000] }]\nmodels: [{ id: m, backend: p }]")
        #expect(pool.count == 1)
        #expect(pool.first?.contains("pools[0].schema: a pool's servers speak openai, anthropic or gemini; cohere is a cloud provider's API") == true)
    }

    @Test func aSearchUnitPriceIsRangeChecked() {
        let errors = loadErrors(Self.yaml.replacingOccurrences(of: "search_unit: 0.002", with: "search_unit: 1001"))
        #expect(errors.count == 1)
        #expect(errors.first?.hasSuffix("models[0].price.search_unit: must be between 0 and 1000, got 1001") == true)
    }
}

// `lb: endpoint_picker` on a pool: what the loader accepts and refuses, and what the compiler
// renders (the cluster's module policy with its scrape list, the metrics cluster, the models'
// `endpoint_picking` and `lora_adapter`), read back by the module's own parsers.
import SluiceControl
import SluiceCore
import Testing

private let pickerYAML = """
    pools:
      - name: llama
        lb: endpoint_picker
        endpoints: [http://10.0.0.1:8000, http://10.0.0.2:8000]
        endpoint_picker: { metrics_path: /metrics, stale_after_ms: 1500, prefix_weight: 4.5, saturation_queue: 8, session_header: X-Conversation-Id }
      - { name: rr, endpoints: [http://10.0.0.3:8000] }
      - { name: lr, lb: least_request, endpoints: [http://10.0.0.4:8000] }
    models:
      - { id: llama-3, backend: llama }
      - { id: sql-lora, backend: llama, lora_adapter: true }
      - { id: plain, backend: rr }
    """

@Suite struct EndpointPickerConfigLanguageTests {
    @Test func aPickerPoolRendersTheModulePolicyAndTheMetricsCluster() throws {
        let config = try SluiceConfig.load(yaml: pickerYAML).config
        let plan = try config.compile()
        let cluster = try #require(plan.cluster(named: "llama"))
        guard case .module(let policy, let bytes) = cluster.loadBalancer else {
            Issue.record("no module policy: \(cluster.loadBalancer)")
            return
        }
        #expect(policy == "sluice_endpoint_picker")
        let picker = try EndpointPickerConfig.parse(bytes)
        #expect(picker.pool == "llama")
        #expect(picker.endpoints == ["10.0.0.1:8000", "10.0.0.2:8000"])
        #expect(picker.scoring.staleAfterMillis == 1500 && picker.scoring.prefixWeight == 4.5 && picker.scoring.saturationQueue == 8)
        #expect(picker.sessionHeader == "x-conversation-id" && picker.sessionEntries == 65_536)
        #expect(plan.cluster(named: "rr")?.loadBalancer == .roundRobin)
        #expect(plan.cluster(named: "lr")?.loadBalancer == .leastRequest)
        #expect(plan.cluster(named: "sluice_endpoint_metrics")?.kind == .originalDestination)

        let gateway = try GatewayConfig.parse(plan.gatewayFilterConfig)
        #expect(gateway.endpointPickingModels == ["llama-3": false, "sql-lora": true])
    }

    @Test func withoutAPickerThereIsNoMetricsCluster() throws {
        let plan = try SluiceConfig.load(yaml: minimalYAML).config.compile()
        #expect(plan.cluster(named: "sluice_endpoint_metrics") == nil)
        #expect(plan.clusters.allSatisfy { $0.loadBalancer == .roundRobin })
    }

    @Test func mistakesAreNamed() {
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_pickr, endpoints: [http://10.0.0.1:8000] }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].lb: unknown lb 'endpoint_pickr'") && $0.contains("endpoint_picker") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [http://10.0.0.1:8000, http://llama.internal:8000] }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoints[1]") && $0.contains("needs IP addresses") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [https://10.0.0.1:8000] }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].lb") && $0.contains("http://") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, endpoints: [http://10.0.0.1:8000], endpoint_picker: { prefix_weight: 2 } }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoint_picker: only applies with 'lb: endpoint_picker'") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [http://10.0.0.1:8000], endpoint_picker: { prefix_weight: 200 } }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoint_picker.prefix_weight") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [http://10.0.0.1:8000], endpoint_picker: { metrics_path: metrics } }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoint_picker.metrics_path") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [http://10.0.0.1:8000], endpoint_picker: { session_header: "x session" } }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoint_picker.session_header") && $0.contains("header name") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, lb: endpoint_picker, endpoints: [http://10.0.0.1:8000], endpoint_picker: { session_entries: 3 } }]
                models: [{ id: m, backend: p }]
                """
            ).contains { $0.contains("pools[0].endpoint_picker.session_entries") })
        #expect(
            loadErrors(
                """
                pools: [{ name: p, endpoints: [http://10.0.0.1:8000] }]
                models: [{ id: m, backend: p, lora_adapter: true }]
                """
            ).contains { $0.contains("models[0].lora_adapter") && $0.contains("lb: endpoint_picker") })
    }

    @Test func theDefaultPoolUsesThePicker() throws {
        let config = try SluiceConfig.load(yaml: SluiceConfig.defaultYAML).config
        #expect(config.backend(named: "vllm_pool")?.loadBalancing.isEndpointPicker == true)
        let plan = try config.compile()
        guard case .module(_, let bytes) = plan.cluster(named: "vllm_pool")?.loadBalancer else {
            Issue.record("vllm_pool has no picker")
            return
        }
        #expect(try EndpointPickerConfig.parse(bytes).endpoints == (18111...18114).map { "127.0.0.1:\($0)" })
        #expect(try GatewayConfig.parse(plan.gatewayFilterConfig).endpointPickingModels == ["llama-3.1-8b-instruct": false])
    }
}

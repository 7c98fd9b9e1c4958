import SluiceControl

/// Plans shaped like the demo gateway (envoy-module/envoy.yaml), for the encoder and server tests.
enum TestPlans {
    static func gatewayConfig(models: [String] = ["gpt-4o-mini"], keys: [String] = ["sk-sluice-demo"]) -> [UInt8] {
        let keyList = keys.enumerated().map { #"{"name":"key\#($0.offset)","key":"\#($0.element)"}"# }.joined(separator: ",")
        let modelList = models.map { #"{"id":"\#($0)","owned_by":"openai","created":1721172741,"route":"openai"}"# }.joined(separator: ",")
        return Array(#"{"api_keys":[\#(keyList)],"models":[\#(modelList)]}"#.utf8)
    }

    /// openai (IP, EDS), azure (DNS name, STRICT_DNS), failover (aggregate of two priorities),
    /// one listener with a route per cluster and a catch-all, two literal secrets.
    static func demo(
        listenerPort: Int = 10000, openaiPort: Int = 18101, models: [String] = ["gpt-4o-mini"], keys: [String] = ["sk-sluice-demo"],
        openaiKey: String = "sk-sim-openai"
    ) -> EnvoyPlan {
        let openaiUpstream = Array(#"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"}}"#.utf8)
        let azureUpstream = Array(
            #"{"backend":"azure","schema":"azure_openai","azure":{"api_version":"2024-10-21"},"credential":{"secret":"azure-key","sds":"ads"}}"#.utf8)
        let failoverUpstream = Array(
            #"{"backends":[{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"}},{"backend":"azure","schema":"azure_openai","azure":{"api_version":"2024-10-21"},"credential":{"secret":"azure-key","sds":"ads"}}]}"#
                .utf8)
        return EnvoyPlan(
            listeners: [
                ListenerPlan(
                    name: "gateway", port: listenerPort,
                    routes: [
                        RoutePlan(routeName: "openai", cluster: "openai"),
                        RoutePlan(routeName: "azure", cluster: "azure"),
                        RoutePlan(routeName: "failover", cluster: "failover", retry: RetryPlan(numRetries: 2)),
                        RoutePlan(routeName: nil, cluster: "openai"),
                    ])
            ],
            clusters: [
                ClusterPlan(
                    name: "openai", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: openaiPort)]),
                    upstreamFilterConfig: openaiUpstream, secretNames: ["openai-key"]),
                ClusterPlan(
                    name: "azure", kind: .endpoints([EndpointPlan(host: "localhost", port: 18102)]),
                    upstreamTLS: UpstreamTLSPlan(sni: "example.openai.azure.com"),
                    upstreamFilterConfig: azureUpstream, secretNames: ["azure-key"]),
                ClusterPlan(
                    name: "failover-openai", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: openaiPort, backend: "openai")])),
                ClusterPlan(
                    name: "failover-azure", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: 18102, backend: "azure", priority: 0)])),
                ClusterPlan(
                    name: "failover", kind: .aggregate(["failover-openai", "failover-azure"]), upstreamFilterConfig: failoverUpstream,
                    secretNames: ["openai-key", "azure-key"]),
            ],
            secrets: [
                SecretPlan(name: "openai-key", source: .literal(openaiKey)),
                SecretPlan(name: "azure-key", source: .literal("sim-azure-key")),
            ],
            gatewayFilterConfig: gatewayConfig(models: models, keys: keys)
        )
    }
}

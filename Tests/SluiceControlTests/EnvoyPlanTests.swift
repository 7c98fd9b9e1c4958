// The plan's own consistency check: every name it uses is defined once.
import SluiceControl
import SluiceCore
import Testing

@Suite struct EnvoyPlanTests {
    @Test func aConsistentPlanHasNoProblems() {
        let plan = EnvoyPlan(
            listeners: [ListenerPlan(name: "gateway", port: 10000, routes: [RoutePlan(routeName: "openai", cluster: "openai")])],
            clusters: [
                ClusterPlan(name: "openai", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: 18101)]), secretNames: ["openai-key"]),
                ClusterPlan(name: "fallback", kind: .aggregate(["openai"])),
            ],
            secrets: [SecretPlan(name: "openai-key", source: .environment("OPENAI_API_KEY"))])
        #expect(plan.validate().isEmpty)
    }

    @Test func unknownAndDuplicateNamesAreReported() {
        let plan = EnvoyPlan(
            listeners: [ListenerPlan(name: "gateway", port: 10000, routes: [RoutePlan(routeName: "x", cluster: "nowhere")])],
            clusters: [
                ClusterPlan(name: "a", kind: .aggregate(["b"]), secretNames: ["missing"]),
                ClusterPlan(name: "a", kind: .endpoints([])),
            ])
        #expect(plan.validate() == [
            "cluster 'a' is defined twice",
            "listener 'gateway': route to unknown cluster 'nowhere'",
            "aggregate cluster 'a' names unknown cluster 'b'",
            "cluster 'a' uses unknown secret 'missing'",
        ])
    }

    @Test func dnsNamesAndAddressesAreTold() {
        #expect(EndpointPlan(host: "127.0.0.1", port: 1).isIPAddress)
        #expect(EndpointPlan(host: "::1", port: 1).isIPAddress)
        #expect(!EndpointPlan(host: "api.openai.com", port: 443).isIPAddress)
        #expect(!EndpointPlan(host: "10.0.0", port: 1).isIPAddress)
        #expect(ClusterPlan(name: "c", kind: .endpoints([EndpointPlan(host: "api.anthropic.com", port: 443)])).usesDNS)
    }
}

@Suite struct ConsumerMergeTests {
    static let digest = SHA256.hash("k")

    @Test func theDatabaseWinsAConflictAndKeepsTheConfigsOrder() {
        let config = [
            ConsumerSpec(name: "a", keySHA256: Self.digest, team: "one", source: .config),
            ConsumerSpec(name: "b", keySHA256: Self.digest, source: .config),
        ]
        let database = [
            ConsumerSpec(name: "c", keySHA256: Self.digest, source: .database),
            ConsumerSpec(name: "a", keySHA256: Self.digest, team: "two", disabled: true, source: .database),
        ]
        let merged = ConsumerSpec.merged(config: config, database: database)
        #expect(merged.map(\.name) == ["a", "b", "c"])
        #expect(merged[0].source == .database && merged[0].team == "two" && merged[0].disabled)
        #expect(merged[1].source == .config)
    }

    @Test func teamsMergeTheSameWay() {
        let merged = TeamSpec.merged(
            config: [TeamSpec(name: "r", source: .config), TeamSpec(name: "s", source: .config)],
            database: [TeamSpec(name: "s", limits: QuotaLimits(requestsPerMinute: 5), source: .database)])
        #expect(merged.map(\.source) == [.config, .database])
        #expect(merged[1].limits.requestsPerMinute == 5)
    }
}

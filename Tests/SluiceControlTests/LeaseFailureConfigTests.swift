// `lease_failure` in a consumer's, team's or model's limits and `gateway.quota_lease_failure`:
// what a leased scope does when sluiced is unreachable, read from sluice.yaml, compiled into the
// `sluice` filter's config and read back by the module's own parser.
import SluiceControl
import SluiceCore
import Testing

@Suite struct LeaseFailureConfigTests {
    static let yaml = minimalYAML + """

          - { id: gpt-4o, backend: openai, aliases: [gpt4o], limits: { requests_per_minute: 100, lease_failure: { policy: fail_closed } } }
        consumers:
          - { name: ci, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, team: research, limits: { budget_usd_per_day: 5, lease_failure: { policy: fail_open, local_cap_percent: 2.5 } } }
          - { name: plain, key_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752, limits: { requests_per_minute: 10 } }
        teams:
          - { name: research, limits: { tokens_per_minute: 1000, lease_failure: { policy: fail_open, local_cap_percent: 20 } } }
        model_limits:
          gpt-4o-mini: { tokens_per_minute: 5000, lease_failure: { policy: fail_closed } }
        gateway:
          quota_lease_failure: { policy: fail_closed }
        """

    @Test func policiesReachTheModulesConfig() throws {
        let loaded = try SluiceConfig.load(yaml: Self.yaml)
        #expect(loaded.warnings.isEmpty)
        let plan = try loaded.config.compile(databaseConsumers: [], databaseTeams: [])
        let gateway = try GatewayConfig.parse(try #require(plan.gatewayFilterConfig))
        #expect(gateway.leaseFailure[.key("ci")] == .failOpen(localCapPercent: 2.5))
        #expect(gateway.leaseFailure[.key("plain")] == nil)
        #expect(gateway.leaseFailure[.team("research")] == .failOpen(localCapPercent: 20))
        #expect(gateway.leaseFailure[.model("gpt-4o")] == .failClosed)
        #expect(gateway.leaseFailure[.model("gpt4o")] == .failClosed)
        #expect(gateway.leaseFailure[.model("gpt-4o-mini")] == .failClosed)
        #expect(gateway.defaultLeaseFailure == .failClosed)
        // The limits themselves are unchanged by the policy next to them.
        #expect(gateway.apiKeys.first { $0.name == "ci" }?.limits == QuotaLimits(budgetMicrosPerDay: 5_000_000))
    }

    @Test func withoutAPolicyTheModulesDefaultApplies() throws {
        let plan = try SluiceConfig.load(yaml: minimalYAML).config.compile(databaseConsumers: [], databaseTeams: [])
        let gateway = try GatewayConfig.parse(try #require(plan.gatewayFilterConfig))
        #expect(gateway.leaseFailure.isEmpty)
        #expect(gateway.defaultLeaseFailure == .standard)
    }

    @Test(arguments: [
        ("{ policy: fail_sometimes }", "teams[0].limits.lease_failure.policy: must be fail_open or fail_closed, got 'fail_sometimes'"),
        ("{ policy: fail_open }", "teams[0].limits.lease_failure.local_cap_percent: is required with policy fail_open"),
        ("{ policy: fail_closed, local_cap_percent: 5 }", "teams[0].limits.lease_failure.local_cap_percent: applies only to policy fail_open"),
        ("{ policy: fail_open, local_cap_percent: 0 }", "teams[0].limits.lease_failure.local_cap_percent: must be above 0"),
        ("{ policy: fail_open, local_cap_percent: 150 }", "teams[0].limits.lease_failure.local_cap_percent:"),
        ("{ local_cap_percent: 5 }", "teams[0].limits.lease_failure: missing required field 'policy'"),
        ("{ policy: fail_open, local_cap_percent: 5, cap: 1 }", "teams[0].limits.lease_failure: unknown field 'cap'"),
    ])
    func badPoliciesAreRefusedWithTheFieldNamed(policy: String, expected: String) {
        let errors = loadErrors(minimalYAML + "\nteams:\n  - { name: t, limits: { requests_per_minute: 5, lease_failure: \(policy) } }\n")
        #expect(errors.contains { $0.contains(expected) }, "\(errors)")
    }
}

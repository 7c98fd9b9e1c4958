// sluiced is the authority for lease limits: the table read from the config it serves, grants
// against it whatever an Envoy states, refusal (a precise per-item problem the module reads) of
// scopes sluiced does not limit, and accounts that follow a limit when the config changes.
import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceAdmin
import SluiceControl
import SluiceCore
import Testing

@Suite("Lease limits from sluiced's config")
struct LeaseLimitsTests {
    static let yaml = """
        backends:
          - { name: openai, schema: openai, address: https://api.openai.com, credential: { env: OPENAI_API_KEY } }
        models:
          - { id: gpt-4o-mini, backend: openai, limits: { tokens_per_minute: 90000 } }
        consumers:
          - { name: alice, key: sk-sluice-alice, team: payments, limits: { requests_per_minute: 60, budget_usd_per_day: 2.5 } }
          - { name: bob, key: sk-sluice-bob }
        teams:
          - { name: payments, limits: { budget_usd_per_day: 20, output_tokens_per_minute: 5000 } }
        gateway:
          jwt: { payload_header: x-jwt-payload, payload_metadata_key: jwt_payload, limits: { requests_per_minute: 7 } }
        """

    static func served(databaseTeams: [TeamSpec] = []) throws -> LeaseLimits {
        let plan = try SluiceConfig.load(yaml: yaml).config.compile(databaseTeams: databaseTeams)
        return try LeaseLimits(filterConfig: plan.gatewayFilterConfig, version: "v1")
    }

    @Test("the table is what the compiled filter config gives the module: keys, teams, models, JWT subjects")
    func fromConfig() throws {
        let limits = try Self.served()
        #expect(limits.limit(LeaseKey(.key("alice"), .requestsPerMinute)) == 60)
        #expect(limits.limit(LeaseKey(.key("alice"), .costPerDay)) == 2_500_000)
        #expect(limits.limit(LeaseKey(.key("alice"), .tokensPerMinute)) == nil)
        #expect(limits.limit(LeaseKey(.team("payments"), .costPerDay)) == 20_000_000)
        #expect(limits.limit(LeaseKey(.team("payments"), .outputTokensPerMinute)) == 5_000)
        #expect(limits.limit(LeaseKey(.model("gpt-4o-mini"), .tokensPerMinute)) == 90_000)
        // A key without limits, and unknown scopes, are not limited.
        #expect(limits.limit(LeaseKey(.key("bob"), .requestsPerMinute)) == nil)
        #expect(limits.limit(LeaseKey(.team("research"), .costPerDay)) == nil)
        // JWT subjects (the module's `jwt:` prefix) share the per-subject limits.
        #expect(limits.limit(LeaseKey(.key("jwt:carol"), .requestsPerMinute)) == 7)
        #expect(limits.limit(LeaseKey(.key("jwt:"), .requestsPerMinute)) == nil)
        // The admin database's teams win over the file's, as in the config the Envoys get.
        let edited = try Self.served(databaseTeams: [
            TeamSpec(name: "payments", limits: QuotaLimits(budgetMicrosPerDay: 1_000_000), source: .database)
        ])
        #expect(edited.limit(LeaseKey(.team("payments"), .costPerDay)) == 1_000_000)
        #expect(edited.limit(LeaseKey(.team("payments"), .outputTokensPerMinute)) == nil)
    }

    @Test("an Envoy's stated limit is ignored: grants are sized by sluiced's, and the difference is counted")
    func envoyLimitIgnored() {
        var ledger = LeaseLedger(limits: LeaseLimits([teamDay: 1_000]))
        let w = day(noon)
        // A tampered config claims a budget a thousand times larger and asks for all of it.
        let raised = ledger.apply(
            holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 1_000_000, want: 1_000_000)], nowMillis: noon)
        #expect(raised.grants.map(\.granted) == [1_000])
        #expect(raised.grants.map(\.limit) == [1_000])
        #expect(raised.limitMismatches == [LeaseLimitMismatch(index: 0, key: teamDay, reported: 1_000_000, limit: 1_000)])
        // A stale, lower limit does not shrink the fleet's budget either.
        let lowered = ledger.apply(
            holder: envoyB, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 10, spent: 0, want: 0)], nowMillis: noon)
        #expect(lowered.grants.first?.limit == 1_000)
        #expect(ledger.account(teamDay, window: w)?.limit == 1_000)
        #expect(ledger.totals.limitMismatches == 2)
        // Agreeing Envoys are not counted.
        let agreeing = ledger.apply(
            holder: envoyC, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 1_000)], nowMillis: noon)
        #expect(agreeing.limitMismatches.isEmpty)
        #expect(ledger.totals.limitMismatches == 2)
    }

    @Test("an item for a scope sluiced does not limit gets no grant and a problem naming scope and dimension")
    func notLimited() {
        var ledger = LeaseLedger(limits: LeaseLimits([teamDay: 1_000], version: "v7"))
        let w = day(noon)
        let answer = ledger.apply(
            holder: envoyA, seq: 1,
            items: [
                LeaseItem(key: LeaseKey(.team("research"), .costPerDay), window: w, limit: 500, spent: 10, want: 100),
                LeaseItem(key: teamDay, window: w, limit: 1_000, want: 100),
                LeaseItem(key: LeaseKey(.team("payments"), .tokensPerMinute), window: minute(noon), limit: 9, want: 1),
            ], nowMillis: noon)
        #expect(answer.grants.map(\.key) == [teamDay])
        #expect(answer.rejected.map(\.index) == [0, 2])
        #expect(
            answer.rejected.first?.error
                == "team research has no cost_micro_usd_per_day limit in the config sluiced serves (snapshot v7); "
                + "no slice is granted (is this Envoy's config older or newer than sluiced's?)")
        #expect(answer.rejected.last?.error.hasPrefix("team payments has no tokens_per_minute limit") == true)
        #expect(ledger.account(LeaseKey(.team("research"), .costPerDay), window: w) == nil)
        #expect(ledger.totals.notLimitedItems == 2)
        #expect(ledger.totals.rejectedItems == 2)
        // Before sluiced has read its config it limits nothing, and says so.
        var empty = LeaseLedger()
        let early = empty.apply(holder: envoyA, seq: 1, items: [LeaseItem(key: teamDay, window: w, limit: 1_000, want: 1)], nowMillis: noon)
        #expect(early.grants.isEmpty)
        #expect(early.rejected.first?.error.contains("has not loaded its config yet") == true)
    }

    @Test("accounts follow a changed limit: lowered stops grants, raised resumes them, removed refuses, restored remembers")
    func limitChanges() {
        var ledger = LeaseLedger(limits: LeaseLimits([teamDay: 1_000]))
        let w = day(noon)
        func ask(_ holder: LeaseHolder, _ seq: Int64, spent: Int64 = 0, want: Int64) -> LeaseAnswer {
            ledger.apply(holder: holder, seq: seq, items: [LeaseItem(key: teamDay, window: w, limit: 1_000, spent: spent, want: want)], nowMillis: noon)
        }
        #expect(ask(envoyA, 1, want: 600).grants.first?.granted == 600)
        // The admin lowers the budget below what is out: nothing more is granted, nothing taken back.
        ledger.setLimits(LeaseLimits([teamDay: 400]))
        #expect(ledger.account(teamDay, window: w)?.limit == 400)
        let lowered = ask(envoyB, 1, want: 100).grants.first
        #expect(lowered?.granted == 0)
        #expect(lowered?.limit == 400)
        #expect(ledger.held(teamDay, window: w, by: envoyA) == 600)
        // Raised: grants resume against the new limit.
        ledger.setLimits(LeaseLimits([teamDay: 2_000]))
        let raised = ask(envoyB, 2, want: 5_000).grants.first
        #expect(raised?.limit == 2_000)
        #expect(raised?.granted == 700)  // an equal share of the 1400 left, with A
        // Removed: items are refused; the account keeps what was consumed.
        _ = ask(envoyA, 2, spent: 600, want: 0)
        ledger.setLimits(LeaseLimits([:]))
        #expect(ask(envoyA, 3, want: 10).grants.isEmpty)
        ledger.setLimits(LeaseLimits([teamDay: 1_000]))
        let restored = ask(envoyC, 1, want: 1_000).grants.first
        #expect(restored?.consumed == 600)
        #expect(restored?.limit == 1_000)
        #expect(restored?.granted == 0)  // 1000 − 600 consumed − B's 700 held: nothing left
    }

    @Test("over HTTP: the problem reaches the module's reader, the grant carries sluiced's limit, mismatches are listed")
    func overHTTP() async throws {
        var harness = APIHarness()
        let leases = LeaseService(limits: LeaseLimits([teamDay: 1_000]), nowMillis: { noon })
        harness.fleet = FleetIngest(token: try FleetToken(secret: LeaseHTTPTests.fleetToken), leases: leases)
        try await harness.run { api, _ in
            let body = """
                {"envoy": "gw-1", "boot": "b", "seq": 1, "items": [
                  {"scope": "team", "name": "research", "dimension": "cost_micro_usd_per_day", "window": \(day(noon)), "limit": 5, "want": 5},
                  {"scope": "team", "name": "payments", "dimension": "cost_micro_usd_per_day", "window": \(day(noon)), "limit": 99999, "want": 5000}]}
                """
            let response = try await api.call(.post, "/v1/fleet/leases", body, authorization: "Bearer \(LeaseHTTPTests.fleetToken)")
            #expect(response.status == .ok, "\(response.text)")
            let answer = try LeaseWire.readAnswer(Array(response.text.utf8), seq: 1).get()
            #expect(answer.grants.map(\.granted) == [1_000])
            #expect(answer.grants.map(\.limit) == [1_000])
            #expect(answer.problems.count == 1)
            #expect(answer.problems.first?.hasPrefix("items[0]: team research has no cost_micro_usd_per_day limit") == true)
            let json = try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any]
            let mismatches = json?["limit_mismatches"] as? [[String: Any]]
            #expect(mismatches?.count == 1)
            #expect(mismatches?.first?["index"] as? Int == 1)
            #expect(mismatches?.first?["reported"] as? Int == 99_999)
            #expect(mismatches?.first?["limit"] as? Int == 1_000)
        }
        #expect(leases.snapshot().totals.notLimitedItems == 1)
        #expect(leases.snapshot().totals.limitMismatches == 1)
    }
}

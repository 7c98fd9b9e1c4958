// The functions behind `sluiced keys …` and `sluiced teams …`, on a SQLite store.
import Foundation
import SluiceAdmin
import SluiceControl
import SluiceCore
import Testing

@Suite("Keys CLI")
struct KeysCLITests {
    @Test("keys create --team research --budget-usd-per-day 20 prints the key once and stores its hash")
    func create() async throws {
        try await TestDatabase(.sqlite).with { store in
            let output = try await KeysCLI.create(
                KeyCreateOptions(team: "research", limits: LimitOptions(budgetUSDPerDay: 20)), store: store)
            let keyLine = try #require(output.split(separator: "\n").first { $0.hasPrefix("key:") })
            let key = String(keyLine.split(separator: " ").last ?? "")
            #expect(key.hasPrefix("sk-sluice-"))
            #expect(output.contains("$20.00/day"))
            let consumers = try await store.consumers()
            #expect(consumers.count == 1)
            let consumer = try #require(consumers.first)
            #expect(consumer.name.hasPrefix("key-") && consumer.name.count == 12)
            #expect(consumer.team == "research")
            #expect(consumer.limits == QuotaLimits(budgetMicrosPerDay: 20_000_000))
            #expect(consumer.keySHA256 == SHA256.hash(key))

            let listed = try await KeysCLI.list(store: store)
            #expect(listed.contains(consumer.name))
            #expect(listed.contains("research"))
            #expect(!listed.contains(key))
            #expect(try await KeysCLI.list(team: "other", store: store).contains(consumer.name) == false)
        }
    }

    @Test("JSON output is the admin API's shape")
    func json() async throws {
        try await TestDatabase(.sqlite).with { store in
            let output = try await KeysCLI.create(
                KeyCreateOptions(name: "ci", models: ["gpt-*"], limits: LimitOptions(requestsPerMinute: 5)), store: store,
                format: .json)
            let document = try JSONParser.parse(output)
            let key = try #require(document["key"]?.stringValue)
            #expect(document["consumer"]?["key_sha256"]?.stringValue == SHA256.hash(key).hex)
            #expect(document["consumer"]?["limits"]?["requests_per_minute"]?.int64Value == 5)
            let list = try JSONParser.parse(try await KeysCLI.list(store: store, format: .json))
            #expect(list["consumers"]?.arrayValue?.first?["name"]?.stringValue == "ci")
        }
    }

    @Test("revoke, enable, rotate, delete")
    func lifecycle() async throws {
        try await TestDatabase(.sqlite).with { store in
            _ = try await KeysCLI.create(KeyCreateOptions(name: "k"), store: store)
            let before = try #require(try await store.consumer(named: "k"))
            _ = try await KeysCLI.revoke("k", store: store)
            #expect(try await store.consumer(named: "k")?.disabled == true)
            #expect(try await KeysCLI.list(store: store).contains("disabled"))
            _ = try await KeysCLI.enable("k", store: store)
            #expect(try await store.consumer(named: "k")?.disabled == false)
            let rotated = try await KeysCLI.rotate("k", store: store)
            #expect(rotated.contains("sk-sluice-"))
            #expect(try await store.consumer(named: "k")?.keySHA256 != before.keySHA256)
            _ = try await KeysCLI.delete("k", store: store)
            #expect(try await store.consumer(named: "k") == nil)
            await expectAdminError(.notFound) { _ = try await KeysCLI.revoke("k", store: store) }
        }
    }

    @Test("bad flags are reported by flag name")
    func badFlags() async throws {
        try await TestDatabase(.sqlite).with { store in
            for (options, flag) in [
                (KeyCreateOptions(limits: LimitOptions(budgetUSDPerDay: -3)), "--budget-usd-per-day"),
                (KeyCreateOptions(limits: LimitOptions(budgetUSDPerMonth: .nan)), "--budget-usd-per-month"),
                (KeyCreateOptions(limits: LimitOptions(requestsPerMinute: 0)), "--requests-per-minute"),
                (KeyCreateOptions(models: ["*x*"]), "--models"),
                (KeyCreateOptions(name: "bad name"), "--name"),
            ] {
                do {
                    _ = try await KeysCLI.create(options, store: store)
                    Issue.record("\(options) was accepted")
                } catch let error as AdminError {
                    #expect(error.cliDescription.hasPrefix("\(flag): "), "\(error.cliDescription)")
                }
            }
            #expect(try await store.consumers().isEmpty)
        }
    }

    @Test("teams create, set-limits, list, delete")
    func teams() async throws {
        try await TestDatabase(.sqlite).with { store in
            _ = try await TeamsCLI.create("research", limits: LimitOptions(tokensPerMinute: 1000), store: store)
            _ = try await TeamsCLI.setLimits("research", limits: LimitOptions(budgetUSDPerMonth: 12.5), store: store)
            #expect(try await store.team(named: "research")?.limits == QuotaLimits(budgetMicrosPerMonth: 12_500_000))
            #expect(try await TeamsCLI.list(store: store).contains("$12.50/month"))
            _ = try await TeamsCLI.delete("research", store: store)
            #expect(try await store.teams().isEmpty)
        }
    }
}

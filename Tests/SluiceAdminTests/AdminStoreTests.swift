// The store semantics, run against SQLite and (when SLUICE_TEST_POSTGRES_URL is set) PostgreSQL.
import Foundation
import Logging
import SluiceAdmin
import SluiceControl
import SluiceCore
import Testing

@Suite("Admin stores")
struct AdminStoreTests {
    @Test("create returns the key once and stores only its SHA-256", arguments: StoreKind.available)
    func createConsumer(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            #expect(try await store.version() == 0)
            let limits = QuotaLimits(requestsPerMinute: 60, budgetMicrosPerDay: 20_000_000)
            let issued = try await store.createConsumer(
                ConsumerDraft(
                    name: "ci", team: "research", allowedModels: ["gpt-4o", "claude-*"], expiresAt: 1_900_000_000,
                    limits: limits))
            #expect(issued.secret.hasPrefix("sk-sluice-"))
            #expect(issued.secret.utf8.count == "sk-sluice-".utf8.count + 43)
            #expect(issued.consumer.keySHA256 == SHA256.hash(issued.secret))
            let expected = ConsumerSpec(
                name: "ci", keySHA256: SHA256.hash(issued.secret), team: "research", allowedModels: ["gpt-4o", "claude-*"],
                expiresAt: 1_900_000_000, disabled: false, limits: limits, source: .database)
            #expect(issued.consumer == expected)
            #expect(try await store.consumer(named: "ci") == expected)
            #expect(try await store.consumers() == [expected])
            #expect(try await store.consumer(named: "nobody") == nil)
            #expect(try await store.version() == 1)
        }
    }

    @Test("keys are distinct and random", arguments: StoreKind.available)
    func distinctKeys(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            var secrets = Set<String>()
            for index in 0..<5 {
                secrets.insert(try await store.createConsumer(ConsumerDraft(name: "c\(index)")).secret)
            }
            #expect(secrets.count == 5)
            #expect(Set(try await store.consumers().map(\.keySHA256)).count == 5)
        }
    }

    @Test("names are unique; invalid input names the field", arguments: StoreKind.available)
    func conflictsAndValidation(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            _ = try await store.createConsumer(ConsumerDraft(name: "dup"))
            await expectAdminError(.conflict) { _ = try await store.createConsumer(ConsumerDraft(name: "dup")) }
            await expectAdminError(.invalidRequest, field: "name") {
                _ = try await store.createConsumer(ConsumerDraft(name: "has space"))
            }
            await expectAdminError(.invalidRequest, field: "name") { _ = try await store.createConsumer(ConsumerDraft(name: "")) }
            await expectAdminError(.invalidRequest, field: "limits.requests_per_minute") {
                _ = try await store.createConsumer(
                    ConsumerDraft(name: "x", limits: QuotaLimits(requestsPerMinute: QuotaLimits.maxRequestsPerMinute + 1)))
            }
            await expectAdminError(.invalidRequest, field: "limits.budget_usd_per_day") {
                _ = try await store.createConsumer(ConsumerDraft(name: "x", limits: QuotaLimits(budgetMicrosPerDay: -1)))
            }
            await expectAdminError(.invalidRequest, field: "models[1]") {
                _ = try await store.createConsumer(ConsumerDraft(name: "x", allowedModels: ["gpt-4o", "a*b*"]))
            }
            await expectAdminError(.invalidRequest, field: "expires_at") {
                _ = try await store.createConsumer(ConsumerDraft(name: "x", expiresAt: -5))
            }
            _ = try await store.createTeam(TeamDraft(name: "t"))
            await expectAdminError(.conflict) { _ = try await store.createTeam(TeamDraft(name: "t")) }
            // Failed writes change nothing.
            #expect(try await store.version() == 2)
            #expect(try await store.consumers().map(\.name) == ["dup"])
        }
    }

    @Test("updates change the given fields and keep the others", arguments: StoreKind.available)
    func updates(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            let issued = try await store.createConsumer(
                ConsumerDraft(name: "u", team: "a", allowedModels: ["m"], expiresAt: 100, limits: QuotaLimits(tokensPerMinute: 5)))
            var consumer = try await store.setTeam("b", consumer: "u")
            #expect(consumer.team == "b")
            #expect(consumer.allowedModels == ["m"])
            #expect(consumer.keySHA256 == issued.consumer.keySHA256)
            consumer = try await store.setTeam(nil, consumer: "u")
            #expect(consumer.team == nil)
            consumer = try await store.setAllowedModels(nil, consumer: "u")
            #expect(consumer.allowedModels == nil)
            consumer = try await store.setAllowedModels(["gpt-*"], consumer: "u")
            #expect(consumer.allowedModels == ["gpt-*"])
            consumer = try await store.setExpiry(nil, consumer: "u")
            #expect(consumer.expiresAt == nil)
            consumer = try await store.setDisabled(true, consumer: "u")
            #expect(consumer.disabled)
            consumer = try await store.setDisabled(false, consumer: "u")
            #expect(!consumer.disabled)
            let limits = QuotaLimits(outputTokensPerMinute: 9, budgetMicrosPerMonth: 1_500_000)
            consumer = try await store.setLimits(limits, consumer: "u")
            #expect(consumer.limits == limits)
            consumer = try await store.updateConsumer(
                named: "u", ConsumerChanges(team: .some("c"), expiresAt: .some(200), disabled: true))
            #expect(
                consumer
                    == ConsumerSpec(
                        name: "u", keySHA256: issued.consumer.keySHA256, team: "c", allowedModels: ["gpt-*"], expiresAt: 200,
                        disabled: true, limits: limits, source: .database))
            #expect(try await store.consumer(named: "u") == consumer)
            await expectAdminError(.notFound) { _ = try await store.setDisabled(true, consumer: "ghost") }
            await expectAdminError(.invalidRequest, field: "team") { _ = try await store.setTeam("bad team", consumer: "u") }
        }
    }

    @Test("rotate replaces the key's hash and returns the new key once", arguments: StoreKind.available)
    func rotate(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            let first = try await store.createConsumer(ConsumerDraft(name: "r", team: "x"))
            let versionBefore = try await store.version()
            let second = try await store.rotateKey(ofConsumer: "r")
            #expect(second.secret != first.secret)
            #expect(second.consumer.keySHA256 == SHA256.hash(second.secret))
            #expect(second.consumer.keySHA256 != first.consumer.keySHA256)
            #expect(second.consumer.team == "x")
            #expect(try await store.consumer(named: "r")?.keySHA256 == SHA256.hash(second.secret))
            #expect(try await store.consumers().contains { $0.keySHA256 == first.consumer.keySHA256 } == false)
            #expect(try await store.version() == versionBefore + 1)
            await expectAdminError(.notFound) { _ = try await store.rotateKey(ofConsumer: "ghost") }
        }
    }

    @Test("delete removes a consumer; a second delete is not found", arguments: StoreKind.available)
    func delete(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            _ = try await store.createConsumer(ConsumerDraft(name: "d"))
            _ = try await store.createConsumer(ConsumerDraft(name: "keep"))
            try await store.deleteConsumer(named: "d")
            #expect(try await store.consumer(named: "d") == nil)
            #expect(try await store.consumers().map(\.name) == ["keep"])
            await expectAdminError(.notFound) { try await store.deleteConsumer(named: "d") }
            // The name is free again.
            _ = try await store.createConsumer(ConsumerDraft(name: "d"))
        }
    }

    @Test("teams: create, limits, list in name order, delete", arguments: StoreKind.available)
    func teams(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            let research = try await store.createTeam(
                TeamDraft(name: "research", limits: QuotaLimits(tokensPerMinute: 200_000, budgetMicrosPerDay: 50_000_000)))
            #expect(research.source == .database)
            _ = try await store.createTeam(TeamDraft(name: "Alpha"))
            _ = try await store.createTeam(TeamDraft(name: "platform"))
            #expect(try await store.teams().map(\.name) == ["Alpha", "platform", "research"])
            #expect(try await store.team(named: "research") == research)
            let limits = QuotaLimits(requestsPerMinute: 10)
            let updated = try await store.setTeamLimits(named: "research", limits)
            #expect(updated == TeamSpec(name: "research", limits: limits, source: .database))
            #expect(try await store.team(named: "research")?.limits == limits)
            try await store.deleteTeam(named: "platform")
            #expect(try await store.team(named: "platform") == nil)
            await expectAdminError(.notFound) { try await store.deleteTeam(named: "platform") }
            await expectAdminError(.notFound) { _ = try await store.setTeamLimits(named: "ghost", limits) }
            await expectAdminError(.invalidRequest, field: "limits.tokens_per_minute") {
                _ = try await store.setTeamLimits(named: "research", QuotaLimits(tokensPerMinute: 0))
            }
        }
    }

    @Test("limits are nullable columns: unset dimensions stay unset", arguments: StoreKind.available)
    func nullableLimits(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            let all = QuotaLimits(
                requestsPerMinute: QuotaLimits.maxRequestsPerMinute, tokensPerMinute: QuotaLimits.maxTokensPerMinute,
                inputTokensPerMinute: 1, outputTokensPerMinute: 2, budgetMicrosPerDay: 0,
                budgetMicrosPerMonth: 1_000_000_000_000)
            _ = try await store.createConsumer(ConsumerDraft(name: "all", limits: all))
            _ = try await store.createConsumer(ConsumerDraft(name: "one", limits: QuotaLimits(budgetMicrosPerDay: 20_000_000)))
            _ = try await store.createConsumer(ConsumerDraft(name: "none"))
            #expect(try await store.consumer(named: "all")?.limits == all)
            #expect(try await store.consumer(named: "one")?.limits == QuotaLimits(budgetMicrosPerDay: 20_000_000))
            #expect(try await store.consumer(named: "none")?.limits.isEmpty == true)
        }
    }

    @Test("every write bumps the version and wakes the change stream", arguments: StoreKind.available)
    func changes(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            var versions = store.changes(pollInterval: .seconds(60)).makeAsyncIterator()
            #expect(await versions.next() == 0)
            _ = try await store.createConsumer(ConsumerDraft(name: "a"))
            #expect(await versions.next() == 1)
            _ = try await store.createTeam(TeamDraft(name: "t"))
            #expect(await versions.next() == 2)
            try await store.deleteConsumer(named: "a")
            #expect(await versions.next() == 3)
        }
    }

    @Test("a second store on the same database (a replica, or the CLI) sees the writes", arguments: StoreKind.available)
    func replicas(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        try await database.with { first in
            try await database.with { second in
                var seen = second.changes(pollInterval: .milliseconds(50)).makeAsyncIterator()
                #expect(await seen.next() == 0)
                let issued = try await first.createConsumer(ConsumerDraft(name: "shared"))
                #expect(await seen.next() == 1)  // by polling: nothing wakes `second`
                #expect(try await second.consumer(named: "shared") == issued.consumer)
                await expectAdminError(.conflict) { _ = try await second.createConsumer(ConsumerDraft(name: "shared")) }
            }
        }
    }

    @Test("a snapshot pairs the version with exactly the data written up to it", arguments: StoreKind.available)
    func snapshotConsistency(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        try await database.with { writer in
            try await database.with { reader in
                _ = try await writer.createTeam(TeamDraft(name: "t"))
                let writes = Task {
                    for index in 0..<40 { _ = try await writer.createConsumer(ConsumerDraft(name: "c\(index)")) }
                }
                // Every write adds one consumer (after the team), so version == consumers + 1 in any
                // consistent view; reading the three separately breaks this under concurrent writes.
                for _ in 0..<20_000 {
                    let snapshot = try await reader.snapshot()
                    #expect(Int64(snapshot.consumers.count) + 1 == snapshot.version, "\(snapshot.version)")
                    #expect(snapshot.teams.map(\.name) == ["t"])
                    if snapshot.version == 41 { break }
                }
                try await writes.value
                let final = try await reader.snapshot()
                #expect(final.version == 41)
                #expect(final.consumers == (try await reader.consumers()))
            }
        }
    }

    @Test("data and migrations survive reopening", arguments: StoreKind.available)
    func reopen(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        let issued = try await database.with { store in
            try await store.createConsumer(ConsumerDraft(name: "kept", limits: QuotaLimits(requestsPerMinute: 3)))
        }
        try await database.with { (store: any AdminStore) async throws -> Void in
            #expect(try await store.consumer(named: "kept") == issued.consumer)
            #expect(try await store.version() == 1)
            switch store {
            case let sqlite as SQLiteAdminStore:
                #expect(try await sqlite.appliedMigrations().count == 5)
            case let postgres as PostgresAdminStore:
                #expect(try await postgres.appliedMigrations() == [1, 2, 3, 4, 5])
            default:
                Issue.record("unexpected store type \(type(of: store))")
            }
        }
    }

    @Test(
        "sslmode=prefer falls back to plain TCP on a server without TLS",
        .enabled(if: StoreKind.postgresURL != nil, "SLUICE_TEST_POSTGRES_URL is not set"))
    func sslPrefer() async throws {
        let database = try TestDatabase(.postgres)
        let store = try await AdminStores.open(database: database.location + "&sslmode=prefer")
        _ = try await store.createTeam(TeamDraft(name: "tls"))
        #expect(try await store.teams().map(\.name) == ["tls"])
        await store.close()
    }

    @Test("malformed database locations are refused with the field named")
    func badLocations() async throws {
        for location in [
            "postgres://host/db", "postgres://user@/db", "postgres://user@host", "postgres://u@h/db?sslmode=verify-ca",
            "postgres://u@h/db?schema=Bad-Name", "postgres://u@h/db?bogus=1", "",
        ] {
            await expectAdminError(.invalidRequest, field: "database") { _ = try await AdminStores.open(database: location) }
        }
    }
}

/// Expects `body` to throw an `AdminError` with `code` (and `field`, when given).
func expectAdminError(
    _ code: AdminError.Code, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async {
    do {
        try await body()
        Issue.record("expected AdminError.\(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as AdminError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let field { #expect(error.field == field, "\(error)", sourceLocation: sourceLocation) }
    } catch {
        Issue.record("expected AdminError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Admin stores, failures")
struct AdminStoreFailureTests {
    @Test("an unreachable PostgreSQL is a store failure, not a hang")
    func unreachablePostgres() async throws {
        let started = ContinuousClock.now
        await expectAdminError(.storeFailure) {
            var quiet = Logger(label: "test")
            quiet.logLevel = .critical
            _ = try await PostgresAdminStore(
                url: "postgres://sluice:x@127.0.0.1:1/sluice", operationTimeout: .seconds(2), logger: quiet)
        }
        #expect(ContinuousClock.now - started < .seconds(30))
    }
}

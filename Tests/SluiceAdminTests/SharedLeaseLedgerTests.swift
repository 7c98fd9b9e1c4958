// Several sluiced on one PostgreSQL database share one lease ledger. Stand-in for replicas here:
// two `PostgresAdminStore`s, each with its own connection pool (as two processes have), each
// behind its own `LeaseService` with its own in-memory state, hammered concurrently by several
// holders. Faithful for what is tested (the only state the two share is the database's; nothing
// in a service is visible to the other); the process-level version is
// Tests/IntegrationTests/test_fleet_leases.py::test_two_sluiced_replicas_never_overgrant.
// Needs SLUICE_TEST_POSTGRES_URL (Tests/start-postgres.sh); without it no case is generated.
import Foundation
import SluiceAdmin
import SluiceCore
import Testing

@Suite("Shared lease ledger (PostgreSQL replicas)")
struct SharedLeaseLedgerTests {
    static var postgres: [StoreKind] { StoreKind.available.filter { $0 == .postgres } }

    static func replicas(_ database: TestDatabase, limits: LeaseLimits, clock: ManualClock? = nil, ttlMillis: Int64 = 10_000)
        async throws -> [(store: PostgresAdminStore, service: LeaseService)]
    {
        var replicas: [(PostgresAdminStore, LeaseService)] = []
        for _ in 0..<2 {
            let store = try #require(try await database.open() as? PostgresAdminStore)
            let service = LeaseService(
                settings: LeaseLedgerSettings(ttlMillis: ttlMillis), limits: limits, shared: store,
                nowMillis: { clock?.now ?? FleetIngest.wallClockMillis() })
            replicas.append((store, service))
        }
        return replicas
    }

    static func body(_ holder: LeaseHolder, _ seq: Int64, _ items: [LeaseItem]) -> LeaseRequestBody {
        LeaseRequestBody(holder: holder, seq: seq, items: items.enumerated().map { ($0.offset, $0.element) }, rejected: [])
    }

    @Test("two replicas, six holders, concurrent asks, spends and returns: granted never passes the limit", arguments: postgres)
    func neverOvergrant(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        let limit: Int64 = 50_000
        let key = LeaseKey(.team("payments"), .costPerDay)
        let rpm = LeaseKey(.key("alice"), .requestsPerMinute)
        let limits = LeaseLimits([key: limit, rpm: 600])
        let replicas = try await Self.replicas(database, limits: limits)
        let window = day(FleetIngest.wallClockMillis())
        let minuteWindow = minute(FleetIngest.wallClockMillis())
        let holders = (0..<6).map { LeaseHolder(envoy: "envoy-\($0)", boot: "b") }

        // Each holder: 25 requests in a row, alternating replicas, asking for a lot, spending part
        // of what it holds and returning some; all holders at once.
        struct Tally: Sendable {
            var granted: Int64 = 0
            var spent: Int64 = 0
            var returned: Int64 = 0
            var answers: [LeaseGrant] = []
        }
        let tallies = try await withThrowingTaskGroup(of: Tally.self) { group in
            for (index, holder) in holders.enumerated() {
                group.addTask {
                    var tally = Tally()
                    var held: Int64 = 0
                    var random = SimulationRandom(state: UInt64(index + 1))
                    for seq in Int64(1)...25 {
                        let spent = held > 0 ? Int64.random(in: 0...held, using: &random) : 0
                        let returned = (held - spent) / 4
                        let replica = replicas[Int(seq + Int64(index)) % 2].service
                        // Half the holders name the accounts in the other order: the locks are
                        // taken in key order whatever the request's, so no two requests deadlock.
                        let items = [
                            LeaseItem(key: key, window: window, limit: limit, spent: spent, returned: returned, want: 20_000),
                            LeaseItem(key: rpm, window: minuteWindow, limit: 600, want: 100),
                        ]
                        let answer = try await replica.handle(
                            Self.body(holder, seq, index % 2 == 0 ? items : items.reversed()), store: replicas[0].store,
                            storeFailed: { _ in })
                        let grant = try #require(answer.grants.first { $0.key == key })
                        tally.granted += grant.granted
                        tally.spent += spent
                        tally.returned += returned
                        tally.answers.append(grant)
                        held = grant.held
                    }
                    return tally
                }
            }
            var all: [Tally] = []
            for try await tally in group { all.append(tally) }
            return all
        }
        // Every answer saw an account within the limit.
        for grant in tallies.flatMap(\.answers) {
            #expect(grant.consumed + grant.outstanding <= limit, "\(grant)")
        }
        // Over the run: what was granted, less what came back unspent, never passed the limit.
        let granted = tallies.reduce(0) { $0 + $1.granted }
        let returned = tallies.reduce(0) { $0 + $1.returned }
        let rows = try await replicas[0].store.sharedLeaseAccounts(nowMillis: FleetIngest.wallClockMillis())
        let account = try #require(rows.first { $0.key == key && $0.window == window })
        #expect(account.consumed == tallies.reduce(0) { $0 + $1.spent })
        #expect(account.consumed + account.outstanding <= limit)
        #expect(granted - returned <= limit)
        // The replicas together gave out the budget (the test would pass trivially otherwise).
        #expect(granted >= limit)
        let rpmRow = try #require(rows.first { $0.key == rpm })
        #expect(rpmRow.outstanding <= 600)
        for replica in replicas { await replica.store.close() }
    }

    @Test("a request resent to the other replica is a replay: its spend counts once", arguments: postgres)
    func replayAcrossReplicas(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        let key = LeaseKey(.team("payments"), .costPerDay)
        let replicas = try await Self.replicas(database, limits: LeaseLimits([key: 1_000]))
        let window = day(FleetIngest.wallClockMillis())
        let holder = LeaseHolder(envoy: "gw", boot: "1")
        let grant = try await replicas[0].service.handle(
            Self.body(holder, 1, [LeaseItem(key: key, window: window, limit: 1_000, want: 400)]), store: replicas[0].store,
            storeFailed: { _ in })
        #expect(grant.grants.first?.granted == 400)
        let report = Self.body(holder, 2, [LeaseItem(key: key, window: window, limit: 1_000, spent: 150, want: 100)])
        // The same request to both replicas at once (the Envoy resent it after a timeout).
        async let first = replicas[0].service.handle(report, store: replicas[0].store, storeFailed: { _ in })
        async let second = replicas[1].service.handle(report, store: replicas[1].store, storeFailed: { _ in })
        let answers = try await [first, second]
        #expect(answers.filter(\.replay).count == 1)
        #expect(answers.map { $0.grants.first?.consumed } == [150, 150])
        // Wants are served again on a replay: the held amount is the ledger's either way.
        let rows = try await replicas[1].store.sharedLeaseAccounts(nowMillis: FleetIngest.wallClockMillis())
        #expect(rows.first?.consumed == 150)
        let later = try await replicas[1].service.handle(
            Self.body(holder, 3, [LeaseItem(key: key, window: window, limit: 1_000, spent: 50)]), store: replicas[1].store,
            storeFailed: { _ in })
        #expect(later.replay == false)
        #expect(later.grants.first?.consumed == 200)
        for replica in replicas { await replica.store.close() }
    }

    @Test("an expired slice is reclaimed by the next request on either replica, and counted there", arguments: postgres)
    func expiryAcrossReplicas(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        let key = LeaseKey(.team("payments"), .costPerDay)
        let clock = ManualClock(noon)
        let replicas = try await Self.replicas(database, limits: LeaseLimits([key: 1_000]), clock: clock, ttlMillis: 5_000)
        let w = day(noon)
        let a = try await replicas[0].service.handle(
            Self.body(envoyA, 1, [LeaseItem(key: key, window: w, limit: 1_000, want: 800)]), store: replicas[0].store,
            storeFailed: { _ in })
        #expect(a.grants.first?.granted == 800)
        let early = try await replicas[1].service.handle(
            Self.body(envoyB, 1, [LeaseItem(key: key, window: w, limit: 1_000, want: 800)]), store: replicas[1].store,
            storeFailed: { _ in })
        #expect(early.grants.first?.granted == 100)  // an equal share of the 200 left, with A
        clock.now = noon + 6_000
        // Both leases lapsed (TTL 5 s): B's next request, on the other replica than A's grant,
        // takes back A's 800 and its own 100, and gets the whole limit.
        let late = try await replicas[1].service.handle(
            Self.body(envoyB, 2, [LeaseItem(key: key, window: w, limit: 1_000, want: 1_000)]), store: replicas[1].store,
            storeFailed: { _ in })
        #expect(late.grants.first?.granted == 1_000)
        #expect(replicas[1].service.snapshot().totals.reclaimed(.costPerDay) == 900)
        #expect(replicas[1].service.snapshot().outstandingLeases == 1)
        #expect(replicas[0].service.snapshot().totals.reclaimed(.costPerDay) == 0)
        for replica in replicas { await replica.store.close() }
    }
}

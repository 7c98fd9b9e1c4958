// The lease ledger on PostgreSQL, shared by every sluiced replica on the database: each lease
// request is one transaction that
//
//   1. takes transaction-scoped advisory locks: the holder's (two replicas given the same
//      request, a resend after a lost answer, apply it one after the other, so the second sees
//      the first's `seq`), then each account's (scope, name, dimension, window) in ascending
//      order (no two requests wait on each other in a cycle). Advisory, not row locks, because the
//      first request of a window has no row to lock yet;
//   2. reads the holder's last `seq`, the accounts and every holder's slice of them;
//   3. runs the same `LeaseLedger.apply` the in-memory ledger runs, on those rows alone, with
//      sluiced's limits (so grant sizing, windows, returns, replays and expiry are one code);
//   4. writes the accounts, their slices and the holder back, and commits.
//
// Every grant is decided while its account is locked against every other replica, on the
// account as committed by the last of them: `consumed + Σ held + grant ≤ limit` holds across
// the fleet of sluiced as it does in one. Slices past their expiry are reclaimed by the next
// request that touches their account. A request the database cannot serve gets no grant (the
// handler answers 503 and the Envoy resends), never a grant from memory.
//
// Cost: about a dozen statements (one round trip each) per request whatever its number of items
// (two lock statements, three reads, four writes, the gauges, BEGIN and COMMIT), and rows are
// passed as arrays (`unnest`), so no request comes near PostgreSQL's 65,535 parameters.
import PostgresNIO
public import SluiceCore
import Synchronization

extension PostgresAdminStore: SharedLeaseLedger {
    /// How often a replica deletes the rows of windows that ended a day ago and holders silent for a day.
    static let leaseCleanupMillis: Int64 = 60_000

    public func applyLeases(
        holder: LeaseHolder, seq: Int64, items: [LeaseItem], limits: LeaseLimits, settings: LeaseLedgerSettings,
        nowMillis: Int64
    ) async throws -> SharedLeaseOutcome {
        // PostgreSQL breaks a lock cycle by failing one transaction; the hashes of two keys may
        // collide and make one, so a deadlock is retried (the transaction changed nothing).
        var lastError: AdminError?
        for _ in 0..<3 {
            do {
                return try await transaction("apply a lease request") { connection in
                    try await self.applyLeases(
                        on: connection, holder: holder, seq: seq, items: items, limits: limits, settings: settings,
                        nowMillis: nowMillis)
                }
            } catch {
                guard error.description.contains("deadlock") else { throw error }
                lastError = error
            }
        }
        throw lastError ?? AdminError(.storeFailure, "apply a lease request: no attempt was made")
    }

    private func applyLeases(
        on connection: PostgresConnection, holder: LeaseHolder, seq: Int64, items: [LeaseItem], limits: LeaseLimits,
        settings: LeaseLedgerSettings, nowMillis: Int64
    ) async throws -> SharedLeaseOutcome {
        let logger = self.logger
        var windowKeys: [LeaseLedger.WindowKey] = []
        var seen = Set<LeaseLedger.WindowKey>()
        for item in items {
            let windowKey = LeaseLedger.WindowKey(key: item.key, window: item.window)
            if seen.insert(windowKey).inserted { windowKeys.append(windowKey) }
        }

        // 1. Locks: the holder's, then the accounts' in ascending order.
        var holderLock = PostgresBindings()
        holderLock.append(LeaseLockKey.holder(holder))
        try await connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_xact_lock($1)", binds: holderLock), logger: logger)
        var accountLocks = PostgresBindings()
        accountLocks.append(Array(Set(windowKeys.map(LeaseLockKey.account))).sorted())
        // One row per key, evaluated in the sorted subquery's order.
        for try await _ in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT pg_advisory_xact_lock(key)::text FROM (SELECT unnest($1::int8[]) AS key ORDER BY key) AS keys
                    """, binds: accountLocks), logger: logger)
        {}

        // 2. The holder, the accounts, their slices.
        var ledger = LeaseLedger(settings: settings, limits: limits)
        var holderBindings = PostgresBindings()
        holderBindings.append(holder.envoy)
        holderBindings.append(holder.boot)
        for try await (lastSeq, seenAt) in try await connection.query(
            PostgresQuery(
                unsafeSQL: "SELECT last_seq, seen_at_ms FROM sluice_lease_holders WHERE envoy = $1 AND boot = $2",
                binds: holderBindings), logger: logger
        ).decode((Int64, Int64).self) {
            ledger.remember(holder, seq: lastSeq, seenMillis: seenAt)
        }
        let keyArrays = LeaseKeyArrays(windowKeys)
        var accounts: [LeaseLedger.WindowKey: LeaseLedger.Account] = [:]
        for try await (scope, name, dimension, window, limit, consumed, end) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT a.scope, a.name, a.dimension, a.window_id, a.limit_units, a.consumed, a.window_end_ms
                    FROM sluice_lease_accounts a
                    JOIN unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS k (scope, name, dimension, window_id)
                      ON a.scope = k.scope AND a.name = k.name AND a.dimension = k.dimension AND a.window_id = k.window_id
                    """, binds: keyArrays.bindings), logger: logger
        ).decode((String, String, String, Int64, Int64, Int64, Int64).self) {
            guard let key = LeaseKeyArrays.key(scope: scope, name: name, dimension: dimension) else { continue }
            accounts[LeaseLedger.WindowKey(key: key, window: window)] = LeaseLedger.Account(
                limit: limit, consumed: consumed, endMillis: end)
        }
        for try await (scope, name, dimension, window, envoy, boot, held, expiresAt, lastAsk) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT s.scope, s.name, s.dimension, s.window_id, s.envoy, s.boot, s.held, s.expires_at_ms, s.last_ask_ms
                    FROM sluice_lease_slices s
                    JOIN unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS k (scope, name, dimension, window_id)
                      ON s.scope = k.scope AND s.name = k.name AND s.dimension = k.dimension AND s.window_id = k.window_id
                    """, binds: keyArrays.bindings), logger: logger
        ).decode((String, String, String, Int64, String, String, Int64, Int64, Int64).self) {
            guard let key = LeaseKeyArrays.key(scope: scope, name: name, dimension: dimension) else { continue }
            let windowKey = LeaseLedger.WindowKey(key: key, window: window)
            accounts[windowKey]?.slices[LeaseHolder(envoy: envoy, boot: boot)] = LeaseLedger.Slice(
                held: held, expiresAtMillis: expiresAt, lastAskMillis: lastAsk)
        }
        for (windowKey, account) in accounts { ledger.load(windowKey, account) }

        // 3. The ledger's decision on these rows.
        let answer = ledger.apply(holder: holder, seq: seq, items: items, nowMillis: nowMillis)

        // 4. Write back every account the request named (the ledger drops ended windows: those
        // rows stay as they were until the cleanup), their slices, the holder.
        var written: [LeaseLedger.WindowKey] = []
        var accountColumns = LeaseAccountColumns()
        var sliceColumns = LeaseSliceColumns()
        for windowKey in windowKeys {
            guard let account = ledger.loaded(windowKey) else { continue }
            written.append(windowKey)
            accountColumns.append(windowKey, account)
            for (sliceHolder, slice) in account.slices { sliceColumns.append(windowKey, account, sliceHolder, slice) }
        }
        if !written.isEmpty {
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO sluice_lease_accounts (\(LeaseAccountSQL.columns))
                        SELECT k.*, $9::int8 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[],
                            $6::int8[], $7::int8[], $8::int8[]) AS k
                        ON CONFLICT (scope, name, dimension, window_id) DO UPDATE SET
                            limit_units = excluded.limit_units, consumed = excluded.consumed,
                            outstanding = excluded.outstanding, window_end_ms = excluded.window_end_ms,
                            updated_at_ms = excluded.updated_at_ms
                        """, binds: accountColumns.bindings(nowMillis: nowMillis)), logger: logger)
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        DELETE FROM sluice_lease_slices s
                        USING unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS k (scope, name, dimension, window_id)
                        WHERE s.scope = k.scope AND s.name = k.name AND s.dimension = k.dimension AND s.window_id = k.window_id
                        """, binds: LeaseKeyArrays(written).bindings), logger: logger)
            if !sliceColumns.isEmpty {
                try await connection.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO sluice_lease_slices (scope, name, dimension, window_id, envoy, boot, held,
                                expires_at_ms, last_ask_ms, window_end_ms)
                            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                                $7::int8[], $8::int8[], $9::int8[], $10::int8[])
                            """, binds: sliceColumns.bindings), logger: logger)
            }
        }
        var holderRow = PostgresBindings()
        holderRow.append(holder.envoy)
        holderRow.append(holder.boot)
        holderRow.append(ledger.lastSeq(of: holder) ?? seq)
        holderRow.append(nowMillis)
        try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO sluice_lease_holders (envoy, boot, last_seq, seen_at_ms) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (envoy, boot) DO UPDATE SET last_seq = excluded.last_seq, seen_at_ms = excluded.seen_at_ms
                    """, binds: holderRow), logger: logger)

        try await cleanUpLeases(on: connection, nowMillis: nowMillis)
        var gauges = PostgresBindings()
        gauges.append(nowMillis)
        gauges.append(nowMillis - LeaseLedger.forgetHolderMillis)
        var outstanding = 0
        var holders = 0
        for try await (slices, known) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    SELECT (SELECT count(*) FROM sluice_lease_slices WHERE held > 0 AND expires_at_ms > $1),
                           (SELECT count(*) FROM sluice_lease_holders WHERE seen_at_ms > $2)
                    """, binds: gauges), logger: logger
        ).decode((Int64, Int64).self) {
            outstanding = Int(slices)
            holders = Int(known)
        }
        return SharedLeaseOutcome(answer: answer, totals: ledger.totals, outstandingLeases: outstanding, holders: holders)
    }

    /// At most once a minute per replica: rows of windows that ended more than a day ago, and
    /// holders silent for a day (a request such a holder resends is counted again, as in memory).
    private func cleanUpLeases(on connection: PostgresConnection, nowMillis: Int64) async throws {
        let due = leaseCleanup.withLock { last in
            guard nowMillis - last >= Self.leaseCleanupMillis else { return false }
            last = nowMillis
            return true
        }
        guard due else { return }
        var bindings = PostgresBindings()
        bindings.append(nowMillis - UTCCalendar.millisPerDay)
        for table in ["sluice_lease_accounts", "sluice_lease_slices"] {
            try await connection.query(
                PostgresQuery(unsafeSQL: "DELETE FROM \(table) WHERE window_end_ms < $1", binds: bindings), logger: logger)
        }
        var holders = PostgresBindings()
        holders.append(nowMillis - LeaseLedger.forgetHolderMillis)
        try await connection.query(
            PostgresQuery(unsafeSQL: "DELETE FROM sluice_lease_holders WHERE seen_at_ms < $1", binds: holders), logger: logger)
    }

    /// The ledger's rows as they are now (tests and diagnostics): every account's
    /// (limit, consumed, Σ held of live slices), keyed by key and window.
    public func sharedLeaseAccounts(nowMillis: Int64) async throws -> [LeaseAccountRow] {
        var bindings = PostgresBindings()
        bindings.append(nowMillis)
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT a.scope, a.name, a.dimension, a.window_id, a.limit_units, a.consumed,
                       COALESCE((SELECT sum(s.held) FROM sluice_lease_slices s
                                 WHERE s.scope = a.scope AND s.name = a.name AND s.dimension = a.dimension
                                   AND s.window_id = a.window_id AND s.expires_at_ms > $1), 0)::int8,
                       a.window_end_ms
                FROM sluice_lease_accounts a
                """, binds: bindings)
        return try await transaction("read the lease ledger", begin: nil) { connection in
            var rows: [LeaseAccountRow] = []
            for try await (scope, name, dimension, window, limit, consumed, outstanding, end) in try await connection
                .query(query, logger: self.logger).decode((String, String, String, Int64, Int64, Int64, Int64, Int64).self)
            {
                if let row = LeaseAccountSQL.row(
                    scope: scope, name: name, dimension: dimension, values: [window, limit, consumed, outstanding, end])
                {
                    rows.append(row)
                }
            }
            return rows
        }
    }
}

/// The advisory lock keys of the lease ledger: FNV-1a (64-bit) of what is locked, with a tag so
/// a holder and an account never share a key by construction of their text.
enum LeaseLockKey {
    static func holder(_ holder: LeaseHolder) -> Int64 {
        hash("holder\u{0}\(holder.envoy)\u{0}\(holder.boot)")
    }

    static func account(_ windowKey: LeaseLedger.WindowKey) -> Int64 {
        let key = windowKey.key
        return hash("account\u{0}\(key.scope.kind.leaseWireName)\u{0}\(key.scope.name)\u{0}\(key.dimension.rawValue)\u{0}\(windowKey.window)")
    }

    static func hash(_ text: String) -> Int64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: value)
    }
}

/// Account keys as four parallel arrays ($1 to $4), for `unnest`.
struct LeaseKeyArrays {
    var scopes: [String] = []
    var names: [String] = []
    var dimensions: [String] = []
    var windows: [Int64] = []

    init(_ windowKeys: [LeaseLedger.WindowKey]) {
        for windowKey in windowKeys {
            scopes.append(windowKey.key.scope.kind.leaseWireName)
            names.append(windowKey.key.scope.name)
            dimensions.append(windowKey.key.dimension.rawValue)
            windows.append(windowKey.window)
        }
    }

    var bindings: PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(scopes)
        bindings.append(names)
        bindings.append(dimensions)
        bindings.append(windows)
        return bindings
    }

    static func key(scope: String, name: String, dimension: String) -> LeaseKey? {
        guard let kind = QuotaScope.Kind(leaseWireName: scope), let dimension = LeaseDimension(rawValue: dimension) else { return nil }
        return LeaseKey(QuotaScope(kind, name), dimension)
    }
}

/// Accounts to write, as parallel arrays ($1 to $8; $9 is the time of the write).
struct LeaseAccountColumns {
    var keys = LeaseKeyArrays([])
    var limits: [Int64] = []
    var consumed: [Int64] = []
    var outstanding: [Int64] = []
    var ends: [Int64] = []

    mutating func append(_ windowKey: LeaseLedger.WindowKey, _ account: LeaseLedger.Account) {
        keys.scopes.append(windowKey.key.scope.kind.leaseWireName)
        keys.names.append(windowKey.key.scope.name)
        keys.dimensions.append(windowKey.key.dimension.rawValue)
        keys.windows.append(windowKey.window)
        limits.append(account.limit)
        consumed.append(account.consumed)
        outstanding.append(account.outstanding)
        ends.append(account.endMillis)
    }

    func bindings(nowMillis: Int64) -> PostgresBindings {
        var bindings = keys.bindings
        bindings.append(limits)
        bindings.append(consumed)
        bindings.append(outstanding)
        bindings.append(ends)
        bindings.append(nowMillis)
        return bindings
    }
}

/// Slices to write, as parallel arrays ($1 to $10).
struct LeaseSliceColumns {
    var keys = LeaseKeyArrays([])
    var envoys: [String] = []
    var boots: [String] = []
    var held: [Int64] = []
    var expires: [Int64] = []
    var lastAsks: [Int64] = []
    var ends: [Int64] = []

    var isEmpty: Bool { envoys.isEmpty }

    mutating func append(
        _ windowKey: LeaseLedger.WindowKey, _ account: LeaseLedger.Account, _ holder: LeaseHolder, _ slice: LeaseLedger.Slice
    ) {
        keys.scopes.append(windowKey.key.scope.kind.leaseWireName)
        keys.names.append(windowKey.key.scope.name)
        keys.dimensions.append(windowKey.key.dimension.rawValue)
        keys.windows.append(windowKey.window)
        envoys.append(holder.envoy)
        boots.append(holder.boot)
        held.append(slice.held)
        expires.append(slice.expiresAtMillis)
        lastAsks.append(slice.lastAskMillis)
        ends.append(account.endMillis)
    }

    var bindings: PostgresBindings {
        var bindings = keys.bindings
        bindings.append(envoys)
        bindings.append(boots)
        bindings.append(held)
        bindings.append(expires)
        bindings.append(lastAsks)
        bindings.append(ends)
        return bindings
    }
}

// The lease ledger on PostgreSQL, shared by every sluiced replica on the database: each lease
// request is one transaction that
//
//   1. locks the holder's row (two replicas given the same request, a resend after a lost
//      answer, apply it one after the other, so the second sees the first's `seq`), then each
//      account's row in key order (no two requests wait on each other in a cycle). Each is an
//      upsert that returns the row: a row that does not exist yet (the first request of a
//      window) is inserted as a placeholder and locked like the others. Row locks, not advisory
//      ones: they live in the rows, not in PostgreSQL's shared lock table, which a thousand-item
//      request from each of a few Envoys at once would exhaust;
//   2. reads every holder's slice of those accounts;
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
// Cost: ten statements (one round trip each) per request whatever its number of items (two
// locking upserts, one read, four writes, the gauges, BEGIN and COMMIT), and rows are passed as
// arrays (`unnest`), so no request comes near PostgreSQL's 65,535 parameters.
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
        // PostgreSQL breaks a lock cycle by failing one transaction; rows are locked in key order,
        // so a cycle should not occur, but if one does the request is retried (the failed
        // transaction changed nothing).
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

        // 1. The holder's row, locked (inserted first if new: `last_seq` 0 is "never seen", seq
        // starts at 1). A second request of the same holder, on any replica, waits here.
        var ledger = LeaseLedger(settings: settings, limits: limits)
        var holderBindings = PostgresBindings()
        holderBindings.append(holder.envoy)
        holderBindings.append(holder.boot)
        holderBindings.append(nowMillis)
        for try await (lastSeq, seenAt) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO sluice_lease_holders (envoy, boot, last_seq, seen_at_ms) VALUES ($1, $2, 0, $3)
                    ON CONFLICT (envoy, boot) DO UPDATE SET seen_at_ms = sluice_lease_holders.seen_at_ms
                    RETURNING last_seq, seen_at_ms
                    """, binds: holderBindings), logger: logger
        ).decode((Int64, Int64).self) where lastSeq > 0 {
            ledger.remember(holder, seq: lastSeq, seenMillis: seenAt)
        }

        // 2. The accounts' rows, locked in key order (the upsert takes each row's lock as it
        // reaches it, in the order of its input; a new account is a placeholder row, `window_end_ms`
        // 0, until the write below fills it in), then every holder's slice of them.
        let keyArrays = LeaseKeyArrays(windowKeys)
        var accountBindings = keyArrays.bindings
        accountBindings.append(nowMillis)
        var accounts: [LeaseLedger.WindowKey: LeaseLedger.Account] = [:]
        for try await (scope, name, dimension, window, limit, consumed, end) in try await connection.query(
            PostgresQuery(
                unsafeSQL: """
                    INSERT INTO sluice_lease_accounts (\(LeaseAccountSQL.columns))
                    SELECT k.scope, k.name, k.dimension, k.window_id, 0, 0, 0, 0, $5::int8
                    FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) AS k (scope, name, dimension, window_id)
                    ORDER BY k.scope, k.name, k.dimension, k.window_id
                    ON CONFLICT (scope, name, dimension, window_id) DO UPDATE SET updated_at_ms = sluice_lease_accounts.updated_at_ms
                    RETURNING scope, name, dimension, window_id, limit_units, consumed, window_end_ms
                    """, binds: accountBindings), logger: logger
        ).decode((String, String, String, Int64, Int64, Int64, Int64).self) where end > 0 {
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
                FROM sluice_lease_accounts a WHERE a.window_end_ms > 0
                """, binds: bindings)
        return try await accountRows(query, action: "read the lease ledger")
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

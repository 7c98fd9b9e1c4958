// The default admin store: one SQLite file through GRDB, in WAL mode (a `DatabasePool`), so
// sluiced's reads never wait for a writer and the CLI can write the same file while sluiced
// runs (sluiced sees the change within one poll).
import GRDB
public import SluiceControl
public import SluiceCore

/// The admin store on a SQLite file.
public final class SQLiteAdminStore: AdminStore {
    let pool: DatabasePool
    private let feed = ChangeFeed()

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// - Throws: `AdminError.storeFailure` when the file cannot be opened or migrated.
    public convenience init(path: String) throws(AdminError) {
        try self.init(path: path, migratingThrough: nil)
    }

    /// `migratingThrough`: the last migration version to apply, all when nil (tests build a
    /// database as an older sluiced left it with this).
    init(path: String, migratingThrough lastVersion: Int?) throws(AdminError) {
        var configuration = Configuration()
        // The CLI and sluiced may write the same file; wait for the other's write instead of failing.
        configuration.busyMode = .timeout(10)
        configuration.label = "sluice-admin"
        // Usage records make this file grow by every request of the fleet: with SQLite's default
        // 2 MiB page cache the writer re-reads index pages from the OS for each batch (measured:
        // benchmarks/README.md, sluiced's ingest). 32 MiB per connection, used only as pages are touched.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -32768") }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            if let last = AdminSchema.migrations.last(where: { $0.version <= lastVersion ?? .max }), lastVersion != nil {
                try Self.migrator.migrate(pool, upTo: Self.migrationIdentifier(last))
            } else {
                try Self.migrator.migrate(pool)
            }
        } catch {
            throw AdminError(.storeFailure, "cannot open the admin database \(path): \(error)")
        }
    }

    /// Migrations through GRDB's `DatabaseMigrator`, from the shared schema.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in AdminSchema.migrations {
            migrator.registerMigration(migrationIdentifier(migration)) { db in
                for statement in migration.statements { try db.execute(sql: statement) }
            }
        }
        return migrator
    }

    static func migrationIdentifier(_ migration: AdminSchema.Migration) -> String { "\(migration.version) \(migration.name)" }

    /// Runs `sql` as is (tests: a row as an older sluiced wrote it).
    func execute(sql: String) async throws {
        try await pool.write { db in try db.execute(sql: sql) }
    }

    /// The identifiers of the migrations applied to the file (for tests and diagnostics).
    public func appliedMigrations() async throws -> [String] {
        try await pool.read { db in try Self.migrator.appliedMigrations(db) }
    }

    // MARK: - Consumers

    public func createConsumer(_ draft: ConsumerDraft) async throws -> IssuedKey {
        try AdminValidation.check(draft)
        let secret = ClientKeyGenerator.generate()
        let digest = SHA256.hash(secret)
        let now = AdminSchema.now()
        let values: [(any DatabaseValueConvertible)?] =
            [draft.name, digest.hex, draft.team, AdminSchema.encodeModels(draft.allowedModels), draft.expiresAt, draft.disabled]
            + AdminSchema.limitValues(draft.limits) + [now, now]
        let placeholders = Array(repeating: "?", count: values.count).joined(separator: ", ")
        let arguments = StatementArguments(values)
        let stored = try await write("create a consumer") { db -> ConsumerRow? in
            try db.execute(
                sql: """
                    INSERT INTO sluice_consumers (\(AdminSchema.consumerColumns), created_at, updated_at)
                    VALUES (\(placeholders)) ON CONFLICT (name) DO NOTHING
                    """, arguments: arguments)
            guard db.changesCount == 1 else { return nil }
            return try Self.fetchConsumer(db, draft.name)
        }
        guard let stored else { throw AdminError(.conflict, "a consumer named '\(draft.name)' already exists") }
        return IssuedKey(consumer: try stored.spec(), secret: secret)
    }

    public func consumers() async throws -> [ConsumerSpec] {
        let rows = try await read("list consumers") { db in
            try Row.fetchAll(db, sql: "SELECT \(AdminSchema.consumerColumns) FROM sluice_consumers ORDER BY name")
                .map(Self.consumerRow)
        }
        return try rows.map { row throws(AdminError) in try row.spec() }
    }

    public func consumer(named name: String) async throws -> ConsumerSpec? {
        try await read("read a consumer") { db in try Self.fetchConsumer(db, name) }?.spec()
    }

    public func updateConsumer(named name: String, _ changes: ConsumerChanges) async throws -> ConsumerSpec {
        try AdminValidation.check(changes)
        let stored = try await write("update a consumer") { db -> ConsumerRow? in
            guard let current = try Self.fetchConsumer(db, name) else { return nil }
            let updated = changes.applied(to: try current.spec())
            let values: [(any DatabaseValueConvertible)?] =
                [updated.team, AdminSchema.encodeModels(updated.allowedModels), updated.expiresAt, updated.disabled]
                + AdminSchema.limitValues(updated.limits) + [AdminSchema.now(), name]
            let arguments = StatementArguments(values)
            try db.execute(
                sql: """
                    UPDATE sluice_consumers SET team = ?, allowed_models = ?, expires_at = ?, disabled = ?,
                    \(AdminSchema.limitColumns.map { "\($0) = ?" }.joined(separator: ", ")), updated_at = ?
                    WHERE name = ?
                    """, arguments: arguments)
            return try Self.fetchConsumer(db, name)
        }
        guard let stored else { throw AdminError.consumerNotFound(name) }
        return try stored.spec()
    }

    public func rotateKey(ofConsumer name: String) async throws -> IssuedKey {
        let secret = ClientKeyGenerator.generate()
        let digest = SHA256.hash(secret)
        let stored = try await write("rotate a key") { db -> ConsumerRow? in
            try db.execute(
                sql: "UPDATE sluice_consumers SET key_sha256 = ?, updated_at = ? WHERE name = ?",
                arguments: [digest.hex, AdminSchema.now(), name])
            guard db.changesCount == 1 else { return nil }
            return try Self.fetchConsumer(db, name)
        }
        guard let stored else { throw AdminError.consumerNotFound(name) }
        return IssuedKey(consumer: try stored.spec(), secret: secret)
    }

    public func deleteConsumer(named name: String) async throws {
        let deleted = try await write("delete a consumer") { db -> Bool in
            try db.execute(sql: "DELETE FROM sluice_consumers WHERE name = ?", arguments: [name])
            return db.changesCount == 1
        }
        guard deleted else { throw AdminError.consumerNotFound(name) }
    }

    // MARK: - Teams

    public func createTeam(_ team: TeamDraft) async throws -> TeamSpec {
        try AdminValidation.check(team)
        let now = AdminSchema.now()
        let values: [(any DatabaseValueConvertible)?] = [team.name] + AdminSchema.limitValues(team.limits) + [now, now]
        let placeholders = Array(repeating: "?", count: values.count).joined(separator: ", ")
        let arguments = StatementArguments(values)
        let created = try await write("create a team") { db -> Bool in
            try db.execute(
                sql: """
                    INSERT INTO sluice_teams (\(AdminSchema.teamColumns), created_at, updated_at)
                    VALUES (\(placeholders)) ON CONFLICT (name) DO NOTHING
                    """, arguments: arguments)
            return db.changesCount == 1
        }
        guard created else { throw AdminError(.conflict, "a team named '\(team.name)' already exists") }
        return TeamSpec(name: team.name, limits: team.limits, source: .database)
    }

    public func setTeamLimits(named name: String, _ limits: QuotaLimits) async throws -> TeamSpec {
        try AdminValidation.checkLimits(limits)
        let values: [(any DatabaseValueConvertible)?] = AdminSchema.limitValues(limits) + [AdminSchema.now(), name]
        let arguments = StatementArguments(values)
        let updated = try await write("update a team") { db -> Bool in
            try db.execute(
                sql: """
                    UPDATE sluice_teams SET \(AdminSchema.limitColumns.map { "\($0) = ?" }.joined(separator: ", ")),
                    updated_at = ? WHERE name = ?
                    """, arguments: arguments)
            return db.changesCount == 1
        }
        guard updated else { throw AdminError.teamNotFound(name) }
        return TeamSpec(name: name, limits: limits, source: .database)
    }

    public func teams() async throws -> [TeamSpec] {
        try await read("list teams") { db in
            try Row.fetchAll(db, sql: "SELECT \(AdminSchema.teamColumns) FROM sluice_teams ORDER BY name").map(Self.team)
        }
    }

    public func team(named name: String) async throws -> TeamSpec? {
        try await read("read a team") { db in
            try Row.fetchOne(db, sql: "SELECT \(AdminSchema.teamColumns) FROM sluice_teams WHERE name = ?", arguments: [name])
                .map(Self.team)
        }
    }

    public func deleteTeam(named name: String) async throws {
        let deleted = try await write("delete a team") { db -> Bool in
            try db.execute(sql: "DELETE FROM sluice_teams WHERE name = ?", arguments: [name])
            return db.changesCount == 1
        }
        guard deleted else { throw AdminError.teamNotFound(name) }
    }

    // MARK: - Versions

    public func snapshot() async throws -> AdminSnapshot {
        // A DatabasePool read is one transaction on a WAL snapshot: no write lands in between.
        let (version, rows, teams) = try await read("read a snapshot") { db in
            (
                try Int64.fetchOne(db, sql: "SELECT version FROM sluice_version WHERE id = 1") ?? 0,
                try Row.fetchAll(db, sql: "SELECT \(AdminSchema.consumerColumns) FROM sluice_consumers ORDER BY name")
                    .map(Self.consumerRow),
                try Row.fetchAll(db, sql: "SELECT \(AdminSchema.teamColumns) FROM sluice_teams ORDER BY name").map(Self.team)
            )
        }
        return AdminSnapshot(
            version: version, consumers: try rows.map { row throws(AdminError) in try row.spec() }, teams: teams)
    }

    public func version() async throws -> Int64 {
        try await read("read the version") { db in
            try Int64.fetchOne(db, sql: "SELECT version FROM sluice_version WHERE id = 1") ?? 0
        }
    }

    public func changes(pollInterval: Duration) -> AsyncStream<Int64> {
        feed.versions(pollInterval: pollInterval) { [pool] in
            try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT version FROM sluice_version WHERE id = 1") ?? 0 }
        }
    }

    public func close() async {
        feed.close()
        try? pool.close()
    }

    // MARK: - Plumbing

    /// Runs `body` in a write transaction that also bumps the version when `body` changed a row.
    private func write<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(AdminError) -> T {
        let result: T
        do {
            result = try await pool.write { db in
                let before = db.totalChangesCount
                let value = try body(db)
                if db.totalChangesCount != before {
                    try db.execute(sql: "UPDATE sluice_version SET version = version + 1 WHERE id = 1")
                }
                return value
            }
        } catch let error as AdminError {
            throw error
        } catch {
            throw AdminError.store(operation, error)
        }
        feed.notify()
        return result
    }

    func read<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (Database) throws -> T
    ) async throws(AdminError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as AdminError {
            throw error
        } catch {
            throw AdminError.store(operation, error)
        }
    }

    private static func fetchConsumer(_ db: Database, _ name: String) throws -> ConsumerRow? {
        try Row.fetchOne(
            db, sql: "SELECT \(AdminSchema.consumerColumns) FROM sluice_consumers WHERE name = ?", arguments: [name]
        ).map(consumerRow)
    }

    private static func consumerRow(_ row: Row) -> ConsumerRow {
        ConsumerRow(
            name: row[0], keySHA256: row[1], team: row[2], allowedModels: row[3], expiresAt: row[4], disabled: row[5],
            limits: (6..<12).map { row[$0] as Int64? })
    }

    private static func team(_ row: Row) -> TeamSpec {
        TeamSpec(name: row[0], limits: AdminSchema.limits((1..<7).map { row[$0] as Int64? }), source: .database)
    }
}

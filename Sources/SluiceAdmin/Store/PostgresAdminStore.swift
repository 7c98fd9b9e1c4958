// The admin store on PostgreSQL through postgres-nio, for several sluiced replicas sharing one
// database (`--database postgres://user:pass@host:5432/db`). Same schema and semantics as the
// SQLite store; migrations are the same versioned SQL, recorded in `sluice_schema_migrations` and
// applied under an advisory lock so replicas starting together do not race. Replicas see each
// other's writes by polling the version row (`changes(pollInterval:)`).
import Foundation
public import Logging
// NIOSSL comes with postgres-nio (not declared in Package.swift): only its TLSConfiguration is used.
import NIOSSL
import PostgresNIO
import Synchronization
public import SluiceControl
public import SluiceCore

/// The admin store on a PostgreSQL database.
public final class PostgresAdminStore: AdminStore {
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    let logger: Logger
    private let feed = ChangeFeed()
    private let operationTimeout: Duration
    /// When this replica last deleted the lease ledger's rows of ended windows (PostgresLeaseLedger).
    let leaseCleanup = Mutex<Int64>(0)

    /// The advisory lock key migrations hold (an arbitrary constant: "sluice" in ASCII).
    static let migrationLockKey: Int64 = 0x736c_7569_6365

    /// Connects to `url` and applies pending migrations.
    ///
    /// `postgres://user:password@host:port/database`, with optional parameters `schema=NAME` (the
    /// tables live in that schema, created if missing, so several gateways or test runs can share
    /// a database) and `sslmode` as libpq reads it: `disable` (the default), `prefer` and `require`
    /// (TLS without certificate checks), `verify-full` (TLS, the server's certificate checked against
    /// the system's CAs and the host name).
    /// - Parameters:
    ///   - url: The database URL described above.
    ///   - operationTimeout: How long one operation (a transaction, connecting included)
    ///     may take before it fails with `.storeFailure`: an unreachable database is an error, not a hang.
    ///   - logger: Where connection and migration events are logged.
    /// - Throws: `AdminError.invalidRequest` for a malformed URL, `.storeFailure` when the database
    ///   cannot be reached or migrated.
    public convenience init(
        url: String, operationTimeout: Duration = .seconds(15), logger: Logger = Logger(label: "sluice.admin.postgres")
    ) async throws(AdminError) {
        try await self.init(url: url, operationTimeout: operationTimeout, logger: logger, migratingThrough: nil)
    }

    /// `migratingThrough`: the last migration version to apply, all when nil (tests build a
    /// database as an older sluiced left it with this).
    init(
        url: String, operationTimeout: Duration = .seconds(15), logger: Logger = Logger(label: "sluice.admin.postgres"),
        migratingThrough lastVersion: Int?
    ) async throws(AdminError) {
        self.operationTimeout = operationTimeout
        let configuration = try Self.configuration(url: url)
        let schema = configuration.options.additionalStartupParameters.first { $0.0 == "search_path" }?.1
        self.logger = logger
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        // Immediate: `run()` registers before the first lease, so the pool never warns that it is not running.
        runner = Task.immediate { await client.run() }
        do {
            try await migrate(schema: schema, through: lastVersion ?? .max)
        } catch {
            runner.cancel()
            await runner.value
            throw error
        }
    }

    /// The client configuration for a `postgres://` or `postgresql://` URL.
    static func configuration(url: String) throws(AdminError) -> PostgresClient.Configuration {
        let field = "database"
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw .invalid(field, "expected postgres://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else { throw .invalid(field, "the URL names no host") }
        guard let user = components.user, !user.isEmpty else { throw .invalid(field, "the URL names no user") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw .invalid(field, "the URL names no database (…/database)") }
        var schema: String?
        var tls = PostgresClient.Configuration.TLS.disable
        var unverified = TLSConfiguration.makeClientConfiguration()
        unverified.certificateVerification = .none
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "disable"?): tls = .disable
            case ("sslmode", "prefer"?): tls = .prefer(unverified)
            case ("sslmode", "require"?): tls = .require(unverified)
            case ("sslmode", "verify-full"?): tls = .require(.makeClientConfiguration())
            case ("schema", let name?):
                guard isIdentifier(name) else {
                    throw .invalid(field, "schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63)")
                }
                schema = name
            case ("sslmode", let mode):
                throw .invalid(field, "sslmode=\(mode ?? "") is not supported; use disable, prefer, require or verify-full")
            default: throw .invalid(field, "unknown URL parameter '\(item.name)'")
            }
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password, database: database,
            tls: tls)
        if let schema { configuration.options.additionalStartupParameters = [("search_path", schema)] }
        configuration.options.minimumConnections = 0
        configuration.options.maximumConnections = 8
        return configuration
    }

    /// `[a-z_][a-z0-9_]*`, at most 63 bytes: safe to write into SQL unquoted.
    static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 63, first == UInt8(ascii: "_") || (97...122).contains(first)
        else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || (97...122).contains($0) || (48...57).contains($0) }
    }

    // MARK: - Migrations

    private func migrate(schema: String?, through lastVersion: Int) async throws(AdminError) {
        try await transaction("migrate") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: self.logger)
            if let schema {
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: self.logger)
            }
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS sluice_schema_migrations (
                    version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """, logger: self.logger)
            var applied = Set<Int>()
            for try await version in try await connection.query(
                "SELECT version FROM sluice_schema_migrations", logger: self.logger
            ).decode(Int.self) {
                applied.insert(version)
            }
            for migration in AdminSchema.migrations where !applied.contains(migration.version) && migration.version <= lastVersion {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                }
                try await connection.query(
                    """
                    INSERT INTO sluice_schema_migrations (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(AdminSchema.now()))
                    """, logger: self.logger)
            }
        }
    }

    /// Runs `sql` as is (tests: a row as an older sluiced wrote it).
    func execute(sql: String) async throws {
        try await transaction("run a statement") { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: self.logger)
        }
    }

    /// The versions of the migrations applied to the database (for tests and diagnostics).
    public func appliedMigrations() async throws -> [Int] {
        try await transaction("read the migrations") { connection in
            var versions: [Int] = []
            for try await version in try await connection.query(
                "SELECT version FROM sluice_schema_migrations ORDER BY version", logger: self.logger
            ).decode(Int.self) {
                versions.append(version)
            }
            return versions
        }
    }

    // MARK: - Consumers

    public func createConsumer(_ draft: ConsumerDraft) async throws -> IssuedKey {
        try AdminValidation.check(draft)
        let secret = ClientKeyGenerator.generate()
        let digest = SHA256.hash(secret)
        let now = AdminSchema.now()
        let limits = draft.limits
        let models = AdminSchema.encodeModels(draft.allowedModels)
        let stored = try await write("create a consumer") { connection -> ConsumerRow? in
            let rows = try await connection.query(
                """
                INSERT INTO sluice_consumers (\(unescaped: AdminSchema.consumerColumns), created_at, updated_at)
                VALUES (\(draft.name), \(digest.hex), \(draft.team), \(models), \(draft.expiresAt), \(draft.disabled),
                    \(limits.requestsPerMinute), \(limits.tokensPerMinute), \(limits.inputTokensPerMinute),
                    \(limits.outputTokensPerMinute), \(limits.budgetMicrosPerDay), \(limits.budgetMicrosPerMonth),
                    \(now), \(now))
                ON CONFLICT (name) DO NOTHING
                RETURNING \(unescaped: AdminSchema.consumerColumns)
                """, logger: self.logger
            ).collect()
            return try rows.first.map(Self.consumerRow)
        }
        guard let stored else { throw AdminError(.conflict, "a consumer named '\(draft.name)' already exists") }
        return IssuedKey(consumer: try stored.spec(), secret: secret)
    }

    public func consumers() async throws -> [ConsumerSpec] {
        let rows = try await transaction("list consumers") { connection in
            try await connection.query(
                "SELECT \(unescaped: AdminSchema.consumerColumns) FROM sluice_consumers ORDER BY name COLLATE \"C\"",
                logger: self.logger
            ).collect().map(Self.consumerRow)
        }
        return try rows.map { row throws(AdminError) in try row.spec() }
    }

    public func consumer(named name: String) async throws -> ConsumerSpec? {
        try await transaction("read a consumer") { connection in try await self.fetchConsumer(connection, name) }?.spec()
    }

    public func updateConsumer(named name: String, _ changes: ConsumerChanges) async throws -> ConsumerSpec {
        try AdminValidation.check(changes)
        let stored = try await write("update a consumer") { connection -> ConsumerRow? in
            guard let current = try await self.fetchConsumer(connection, name, forUpdate: true) else { return nil }
            let updated = changes.applied(to: try current.spec())
            let limits = updated.limits
            let models = AdminSchema.encodeModels(updated.allowedModels)
            let rows = try await connection.query(
                """
                UPDATE sluice_consumers SET team = \(updated.team), allowed_models = \(models),
                    expires_at = \(updated.expiresAt), disabled = \(updated.disabled),
                    requests_per_minute = \(limits.requestsPerMinute), tokens_per_minute = \(limits.tokensPerMinute),
                    input_tokens_per_minute = \(limits.inputTokensPerMinute),
                    output_tokens_per_minute = \(limits.outputTokensPerMinute),
                    budget_micros_per_day = \(limits.budgetMicrosPerDay),
                    budget_micros_per_month = \(limits.budgetMicrosPerMonth), updated_at = \(AdminSchema.now())
                WHERE name = \(name)
                RETURNING \(unescaped: AdminSchema.consumerColumns)
                """, logger: self.logger
            ).collect()
            return try rows.first.map(Self.consumerRow)
        }
        guard let stored else { throw AdminError.consumerNotFound(name) }
        return try stored.spec()
    }

    public func rotateKey(ofConsumer name: String) async throws -> IssuedKey {
        let secret = ClientKeyGenerator.generate()
        let digest = SHA256.hash(secret)
        let stored = try await write("rotate a key") { connection -> ConsumerRow? in
            let rows = try await connection.query(
                """
                UPDATE sluice_consumers SET key_sha256 = \(digest.hex), updated_at = \(AdminSchema.now())
                WHERE name = \(name) RETURNING \(unescaped: AdminSchema.consumerColumns)
                """, logger: self.logger
            ).collect()
            return try rows.first.map(Self.consumerRow)
        }
        guard let stored else { throw AdminError.consumerNotFound(name) }
        return IssuedKey(consumer: try stored.spec(), secret: secret)
    }

    public func deleteConsumer(named name: String) async throws {
        let deleted: Void? = try await write("delete a consumer") { connection -> Void? in
            try await connection.query(
                "DELETE FROM sluice_consumers WHERE name = \(name) RETURNING name", logger: self.logger
            ).collect().isEmpty ? nil : ()
        }
        guard deleted != nil else { throw AdminError.consumerNotFound(name) }
    }

    // MARK: - Teams

    public func createTeam(_ team: TeamDraft) async throws -> TeamSpec {
        try AdminValidation.check(team)
        let now = AdminSchema.now()
        let limits = team.limits
        let created: Void? = try await write("create a team") { connection -> Void? in
            try await connection.query(
                """
                INSERT INTO sluice_teams (\(unescaped: AdminSchema.teamColumns), created_at, updated_at)
                VALUES (\(team.name), \(limits.requestsPerMinute), \(limits.tokensPerMinute),
                    \(limits.inputTokensPerMinute), \(limits.outputTokensPerMinute), \(limits.budgetMicrosPerDay),
                    \(limits.budgetMicrosPerMonth), \(now), \(now))
                ON CONFLICT (name) DO NOTHING RETURNING name
                """, logger: self.logger
            ).collect().isEmpty ? nil : ()
        }
        guard created != nil else { throw AdminError(.conflict, "a team named '\(team.name)' already exists") }
        return TeamSpec(name: team.name, limits: team.limits, source: .database)
    }

    public func setTeamLimits(named name: String, _ limits: QuotaLimits) async throws -> TeamSpec {
        try AdminValidation.checkLimits(limits)
        let updated: Void? = try await write("update a team") { connection -> Void? in
            try await connection.query(
                """
                UPDATE sluice_teams SET requests_per_minute = \(limits.requestsPerMinute),
                    tokens_per_minute = \(limits.tokensPerMinute), input_tokens_per_minute = \(limits.inputTokensPerMinute),
                    output_tokens_per_minute = \(limits.outputTokensPerMinute),
                    budget_micros_per_day = \(limits.budgetMicrosPerDay),
                    budget_micros_per_month = \(limits.budgetMicrosPerMonth), updated_at = \(AdminSchema.now())
                WHERE name = \(name) RETURNING name
                """, logger: self.logger
            ).collect().isEmpty ? nil : ()
        }
        guard updated != nil else { throw AdminError.teamNotFound(name) }
        return TeamSpec(name: name, limits: limits, source: .database)
    }

    public func teams() async throws -> [TeamSpec] {
        try await transaction("list teams") { connection in
            try await connection.query(
                "SELECT \(unescaped: AdminSchema.teamColumns) FROM sluice_teams ORDER BY name COLLATE \"C\"",
                logger: self.logger
            ).collect().map(Self.team)
        }
    }

    public func team(named name: String) async throws -> TeamSpec? {
        try await transaction("read a team") { connection in
            try await connection.query(
                "SELECT \(unescaped: AdminSchema.teamColumns) FROM sluice_teams WHERE name = \(name)", logger: self.logger
            ).collect().first.map(Self.team)
        }
    }

    public func deleteTeam(named name: String) async throws {
        let deleted: Void? = try await write("delete a team") { connection -> Void? in
            try await connection.query(
                "DELETE FROM sluice_teams WHERE name = \(name) RETURNING name", logger: self.logger
            ).collect().isEmpty ? nil : ()
        }
        guard deleted != nil else { throw AdminError.teamNotFound(name) }
    }

    // MARK: - Versions

    public func snapshot() async throws -> AdminSnapshot {
        // REPEATABLE READ: every statement of the transaction sees the same snapshot.
        let (version, rows, teams) = try await transaction("read a snapshot", begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            connection in
            (
                try await Self.readVersion(connection, self.logger),
                try await connection.query(
                    "SELECT \(unescaped: AdminSchema.consumerColumns) FROM sluice_consumers ORDER BY name COLLATE \"C\"",
                    logger: self.logger
                ).collect().map(Self.consumerRow),
                try await connection.query(
                    "SELECT \(unescaped: AdminSchema.teamColumns) FROM sluice_teams ORDER BY name COLLATE \"C\"",
                    logger: self.logger
                ).collect().map(Self.team)
            )
        }
        return AdminSnapshot(
            version: version, consumers: try rows.map { row throws(AdminError) in try row.spec() }, teams: teams)
    }

    public func version() async throws -> Int64 {
        // One statement, no BEGIN/COMMIT: sluiced polls this several times a second per replica.
        try await transaction("read the version", begin: nil) { connection in
            try await Self.readVersion(connection, self.logger)
        }
    }

    public func changes(pollInterval: Duration) -> AsyncStream<Int64> {
        feed.versions(pollInterval: pollInterval) { [weak self] in
            guard let self else { throw CancellationError() }
            return try await self.version()
        }
    }

    public func close() async {
        feed.close()
        runner.cancel()
        await runner.value
    }

    // MARK: - Plumbing

    private static func readVersion(_ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        for try await version in try await connection.query(
            "SELECT version FROM sluice_version WHERE id = 1", logger: logger
        ).decode(Int64.self) {
            return version
        }
        return 0
    }

    /// A write transaction: `body` returns nil when it changed nothing; otherwise the version is
    /// bumped in the same transaction and watchers are woken.
    private func write<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T?
    ) async throws(AdminError) -> T? {
        let result = try await transaction(operation) { connection -> T? in
            guard let value = try await body(connection) else { return nil }
            try await connection.query("UPDATE sluice_version SET version = version + 1 WHERE id = 1", logger: self.logger)
            return value
        }
        if result != nil { feed.notify() }
        return result
    }

    /// Runs `body` in a transaction on one pooled connection; errors keep their identity.
    /// `begin: nil` runs `body` outside a transaction (for a single statement).
    func transaction<T: Sendable>(
        _ operation: String, begin: StaticString? = "BEGIN",
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(AdminError) -> T {
        let begin = begin.map { PostgresQuery(unsafeSQL: "\($0)") }
        do {
            return try await withTimeout(operation) {
                try await self.client.withConnection { connection in
                    guard let begin else { return try await body(connection) }
                    try await connection.query(begin, logger: self.logger)
                    do {
                        let value = try await body(connection)
                        try await connection.query("COMMIT", logger: self.logger)
                        return value
                    } catch {
                        _ = try? await connection.query("ROLLBACK", logger: self.logger)
                        throw error
                    }
                }
            }
        } catch let error as AdminError {
            throw error
        } catch let error as PSQLError {
            let detail = error.serverInfo?[.message] ?? "\(error.code)"
            throw AdminError(.storeFailure, "the admin database failed to \(operation): \(detail)")
        } catch {
            throw AdminError.store(operation, error)
        }
    }

    /// `body`, or `.storeFailure` after `operationTimeout` (the pool waits for a connection forever).
    private func withTimeout<T: Sendable>(
        _ operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let timeout = operationTimeout
        return try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw AdminError(.storeFailure, "the admin database did not answer within \(timeout) (\(operation))")
            }
            defer { group.cancelAll() }
            guard let result = try await group.next() else { throw CancellationError() }
            return result
        }
    }

    private func fetchConsumer(_ connection: PostgresConnection, _ name: String, forUpdate: Bool = false)
        async throws -> ConsumerRow?
    {
        try await connection.query(
            """
            SELECT \(unescaped: AdminSchema.consumerColumns) FROM sluice_consumers WHERE name = \(name)
            \(unescaped: forUpdate ? "FOR UPDATE" : "")
            """, logger: logger
        ).collect().first.map(Self.consumerRow)
    }

    private static func consumerRow(_ row: PostgresRow) throws -> ConsumerRow {
        let cells = row.makeRandomAccess()
        return ConsumerRow(
            name: try cells[0].decode(String.self), keySHA256: try cells[1].decode(String.self),
            team: try cells[2].decode(String?.self), allowedModels: try cells[3].decode(String?.self),
            expiresAt: try cells[4].decode(Int64?.self), disabled: try cells[5].decode(Bool.self),
            limits: try (6..<12).map { try cells[$0].decode(Int64?.self) })
    }

    private static func team(_ row: PostgresRow) throws -> TeamSpec {
        let cells = row.makeRandomAccess()
        return TeamSpec(
            name: try cells[0].decode(String.self),
            limits: AdminSchema.limits(try (1..<7).map { try cells[$0].decode(Int64?.self) }), source: .database)
    }
}

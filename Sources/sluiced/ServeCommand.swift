// `sluiced [serve]`: loads the config, opens the admin database, serves Envoy over gRPC ADS and
// the admin API, and follows every change until SIGTERM or SIGINT.
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import SluiceAdmin
import SluiceControl
import SluiceXDS
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve Envoy its configuration over gRPC ADS, and the admin API (the default).")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Where the xDS gRPC server listens (host:port).")
    var xds: String = "127.0.0.1:18000"

    @Option(help: "Where the admin API and /metrics listen (host:port).")
    var admin: String = "127.0.0.1:18001"

    @Option(help: "The admin database: a SQLite file (path or sqlite:PATH) or a postgres:// URL.")
    var database: String = AdminStores.defaultDatabase

    @Option(
        name: .customLong("admin-token-file"),
        help: "A file holding the admin API's bearer token. Default: $SLUICE_ADMIN_TOKEN, else .sluiced/admin-token (created with a random token).")
    var adminTokenFile: String?

    @Option(
        name: .customLong("fleet-token-file"),
        help: "A file holding the token Envoys present to /v1/fleet/ (usage records). Default: $SLUICED_FLEET_TOKEN, else .sluiced/fleet-token (created with a random token).")
    var fleetTokenFile: String?

    @Option(
        name: .customLong("lease-ttl-ms"),
        help: "How long a quota lease slice stays an Envoy's after its last contact (1000...600000).")
    var leaseTTLMillis: Int64 = LeaseLedgerSettings().ttlMillis

    @Option(name: .customLong("reload-interval-ms"), help: "How often the config file and the database are checked for changes.")
    var reloadIntervalMillis: Int = 200

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        _ = try Self.hostPort(xds, option: "--xds")
        _ = try Self.hostPort(admin, option: "--admin")
        guard (1_000...600_000).contains(leaseTTLMillis) else { throw ValidationError("--lease-ttl-ms must be 1000...600000") }
        guard (10...60_000).contains(reloadIntervalMillis) else { throw ValidationError("--reload-interval-ms must be 10...60000") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "sluiced")
        let source = ConfigSource(path: options.config)
        let config: SluiceConfig
        do {
            config = try source.load { logger.warning("\($0)") }
        } catch {
            printError(error.description)
            throw ExitCode.failure
        }

        let store: any AdminStore
        do {
            store = try await AdminStores.open(database: database, logger: Logger(label: "sluiced.store"))
        } catch {
            printError("sluiced: cannot open the admin database '\(database)': \(error)")
            throw ExitCode.failure
        }
        let token = try Self.adminToken(file: adminTokenFile, logger: logger)
        let fleetToken = try Self.fleetToken(file: fleetTokenFile, logger: logger)

        let (xdsHost, xdsPort) = try Self.hostPort(xds, option: "--xds")
        let (adminHost, adminPort) = try Self.hostPort(admin, option: "--admin")
        let ads = ADSServer(host: xdsHost, port: xdsPort, logger: Logger(label: "sluiced.xds"))
        // PostgreSQL: the ledger is the database's, shared by every replica. SQLite: it lives in
        // this process, which must be the only sluiced on the file (locked for as long as it runs).
        let sharedLedger = store as? PostgresAdminStore
        var ledgerLock: LedgerFileLock?
        if sharedLedger == nil, let path = AdminStores.sqlitePath(database: database) {
            do {
                ledgerLock = try LedgerFileLock(databasePath: path)
            } catch {
                printError("sluiced: \(error)")
                await store.close()
                throw ExitCode.failure
            }
        }
        let leases = LeaseService(
            settings: LeaseLedgerSettings(ttlMillis: leaseTTLMillis), shared: sharedLedger,
            nowMillis: FleetIngest.wallClockMillis)
        let state = GatewayState(source: source, config: config, store: store, ads: ads, leases: leases, logger: logger)
        do {
            try await state.publish()
        } catch {
            printError("sluiced: \(source.displayName) does not compile: \(error)")
            await store.close()
            throw ExitCode.failure
        }
        let fleetMetrics = FleetMetrics(adsClients: { ads.configStatus().reduce(0) { $0 + max($1.connectedStreams, 0) } })
        do {
            if sharedLedger == nil {
                let restored = try await leases.restore(from: store)
                if restored > 0 { logger.info("lease ledger: \(restored) accounts of open windows restored from the database") }
            } else {
                logger.info("lease ledger: in the PostgreSQL database, shared with any other sluiced on it")
            }
        } catch {
            printError("sluiced: cannot read the lease accounts from the admin database: \(error)")
            await store.close()
            throw ExitCode.failure
        }
        let adminApp = AdminApplication.make(
            store: store, token: token,
            config: ConfigDefinitions(consumers: { await state.config.consumers }, teams: { await state.config.teams }),
            status: XDSStatusSource(ads: ads, state: state), fleet: FleetIngest(token: fleetToken, metrics: fleetMetrics, leases: leases),
            host: adminHost, port: adminPort,
            logger: Logger(label: "sluiced.admin"))
        logger.info(
            "serving \(source.displayName): xDS on \(xdsHost):\(xdsPort), admin API on http://\(adminHost):\(adminPort), database \(database)")
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: ADSService(server: ads)),
                    .init(
                        service: ReloadService(
                            state: state, interval: .milliseconds(reloadIntervalMillis), secretsInterval: .seconds(1))),
                    .init(service: adminApp),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        withExtendedLifetime(ledgerLock) {}
        logger.info("stopped")
    }

    // MARK: - Options

    static func hostPort(_ value: String, option: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
            (0...65535).contains(port), colon != value.startIndex
        else { throw ValidationError("\(option) must be host:port, e.g. 127.0.0.1:18000; got '\(value)'") }
        return (String(value[..<colon]), port)
    }

    /// The bearer token of the admin API: from `--admin-token-file`, `$SLUICE_ADMIN_TOKEN`, or
    /// `.sluiced/admin-token`, which is created (mode 0600) with a random token when missing.
    static func adminToken(file: String?, logger: Logger) throws -> AdminToken {
        try bearerToken(
            file: file, environment: "SLUICE_ADMIN_TOKEN", defaultPath: ".sluiced/admin-token", field: "admin_token",
            what: "an admin API token", option: "--admin-token-file", logger: logger
        ) { ClientKeyGenerator.generate().replacingOccurrences(of: "sk-sluice-", with: "sa-sluice-") }
    }

    /// The token Envoys present to `/v1/fleet/`: from `--fleet-token-file`, `$SLUICED_FLEET_TOKEN`,
    /// or `.sluiced/fleet-token`, created (mode 0600) with 32 random bytes in hex when missing.
    static func fleetToken(file: String?, logger: Logger) throws -> FleetToken {
        try bearerToken(
            file: file, environment: "SLUICED_FLEET_TOKEN", defaultPath: ".sluiced/fleet-token", field: "fleet_token",
            what: "a fleet token", option: "--fleet-token-file", logger: logger
        ) {
            var generator = SystemRandomNumberGenerator()
            return (0..<32).map { _ in
                let byte = UInt8.random(in: 0...255, using: &generator)
                return String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
            }.joined()
        }
    }

    /// A bearer token from `file`, else the environment variable `environment`, else `defaultPath`
    /// (created with `generate()` when missing, readable by its owner only).
    static func bearerToken(
        file: String?, environment: String, defaultPath path: String, field: String, what: String, option: String,
        logger: Logger, generate: () -> String
    ) throws -> BearerToken {
        do {
            if let file { return try BearerToken.fromFile(file, field: "\(field)_file") }
            if let secret = ProcessInfo.processInfo.environment[environment], !secret.isEmpty {
                return try BearerToken(secret: secret, field: "\(field)_env")
            }
            if !FileManager.default.fileExists(atPath: path) {
                let directory = (path as NSString).deletingLastPathComponent
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                guard
                    FileManager.default.createFile(
                        atPath: path, contents: Data((generate() + "\n").utf8), attributes: [.posixPermissions: 0o600])
                else { throw ValidationError("cannot create \(path)") }
                logger.notice("created \(what) in \(path) (use \(option) or \(environment) to choose one)")
            }
            return try BearerToken.fromFile(path, field: "\(field)_file")
        } catch let error as AdminError {
            throw ValidationError("\(field.replacingOccurrences(of: "_", with: " ")): \(error)")
        }
    }
}

// The daemon's one piece of mutable state: the config last loaded, and what it compiles to
// together with the admin database's consumers and teams. Every change (a saved edit of the
// config file, a key created through the admin API, a write by another replica) recompiles and
// pushes a new snapshot to every Envoy; an invalid edit is refused with its diagnostics and the
// last good config keeps being served.
import Foundation
import Logging
import ServiceLifecycle
import SluiceAdmin
import SluiceControl
import SluiceXDS

actor GatewayState {
    let source: ConfigSource
    let store: any AdminStore
    let ads: ADSServer
    let logger: Logger
    /// The lease ledger, which grants against the limits of the snapshot served (nil: none).
    let leases: LeaseService?

    private(set) var config: SluiceConfig
    private var fingerprint: FileFingerprint?
    private var storeVersion: Int64 = -1
    /// The version of the last snapshot served, for the admin API.
    private(set) var servedVersion: String?
    /// The last reload that failed, shown by the admin API until a reload succeeds.
    private(set) var lastReloadError: String?

    init(
        source: ConfigSource, config: SluiceConfig, store: any AdminStore, ads: ADSServer, leases: LeaseService? = nil,
        logger: Logger
    ) {
        self.source = source
        self.leases = leases
        self.config = config
        self.store = store
        self.ads = ads
        self.logger = logger
        fingerprint = source.fingerprint()
    }

    /// Compiles the current config with the database's definitions and serves it.
    func publish() async throws {
        // One consistent read: the version must be the one of the consumers and teams compiled,
        // or a write between the reads would never be picked up.
        let stored = try await store.snapshot()
        storeVersion = stored.version
        let plan = try config.compile(databaseConsumers: stored.consumers, databaseTeams: stored.teams)
        // The lease ledger's limits are the ones this snapshot gives the Envoys, read with the
        // module's own parser (the compiler already checked that it accepts the config).
        let limits = try LeaseLimits(filterConfig: plan.gatewayFilterConfig)
        let snapshot = try ads.setSnapshot(plan)
        servedVersion = snapshot.version
        leases?.setLimits(limits.versioned(snapshot.version))
        lastReloadError = nil
    }

    /// Re-reads the provider credentials (files, environment) and pushes SDS alone when one
    /// changed: a key rotated in its file reaches Envoy without a config edit. Runs on this actor,
    /// like every other snapshot change, so it never races a recompile.
    func refreshSecrets() {
        do {
            if let snapshot = try ads.refreshSecrets() { servedVersion = snapshot.version }
        } catch {
            refuse("provider credentials not re-read; still serving the last ones: \(error)")
        }
    }

    /// Reloads what changed since the last call: the config file (by modification time and
    /// size) and the admin database (by its version). Never throws: a failure is logged, kept for
    /// the admin API, and the last good snapshot stays served.
    func reloadIfChanged() async {
        var reason: String?
        let current = source.fingerprint()
        if current != fingerprint, current != nil {
            fingerprint = current
            do {
                config = try source.load { self.logger.warning("\($0)") }
                reason = "config file changed"
            } catch {
                refuse("the edit of \(source.displayName) is refused; still serving the last good config:\n\(error.description)")
                return
            }
        }
        if reason == nil {
            do {
                if try await store.version() != storeVersion { reason = "admin database changed" }
            } catch {
                refuse("cannot read the admin database: \(error)")
                return
            }
        }
        guard let reason else { return }
        do {
            try await publish()
            logger.info("\(reason): serving snapshot \(servedVersion ?? "?")")
        } catch {
            refuse("\(reason), but the result is refused; still serving the last good config: \(error)")
        }
    }

    private func refuse(_ message: String) {
        guard message != lastReloadError else { return }  // say it once, not every poll
        lastReloadError = message
        logger.error("\(message)")
    }
}

/// Polls for changes every `interval`, and for rotated credentials every `secretsInterval`,
/// until shutdown.
struct ReloadService: Service {
    let state: GatewayState
    let interval: Duration
    let secretsInterval: Duration

    func run() async throws {
        let clock = ContinuousClock()
        var nextSecretsCheck = clock.now.advanced(by: secretsInterval)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            await state.reloadIfChanged()
            if clock.now >= nextSecretsCheck {
                nextSecretsCheck = clock.now.advanced(by: secretsInterval)
                await state.refreshSecrets()
            }
        }
    }
}

/// The ADS server as a service: stops accepting and ends its streams on shutdown (Envoys keep
/// serving their last config and reconnect to the next sluiced).
struct ADSService: Service {
    let server: ADSServer

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await server.run()
        } onGracefulShutdown: {
            server.shutdown()
        }
    }
}

/// The xDS server's view of each Envoy, in the admin API's terms.
struct XDSStatusSource: ConfigStatusSource {
    let ads: ADSServer
    let state: GatewayState

    func fleetStatus() async -> FleetStatus {
        let nodes = ads.configStatus().map { status in
            EnvoyNodeStatus(
                nodeID: status.nodeID, cluster: status.cluster.isEmpty ? nil : status.cluster,
                connected: status.connected,
                inSync: XDSType.allCases.allSatisfy { status.sentVersions[$0] == status.ackedVersions[$0] },
                lastSeen: status.lastSeen,
                resources: XDSType.allCases.compactMap { type in
                    guard status.sentVersions[type] != nil || status.ackedVersions[type] != nil else { return nil }
                    return ResourceTypeStatus(
                        typeURL: type.typeURL, ackedVersion: status.ackedVersions[type], sentVersion: status.sentVersions[type])
                },
                lastNack: (status.lastNack ?? status.lastNackEver).map { nack in
                    NackStatus(
                        typeURL: nack.type.typeURL, rejectedVersion: nack.rejectedVersion, keptVersion: nack.keptVersion,
                        code: nack.code, message: nack.message, at: nack.time, resolved: status.lastNack == nil)
                })
        }
        return FleetStatus(
            servedVersion: await state.servedVersion, nodes: nodes.sorted { $0.nodeID < $1.nodeID },
            lastRefusedChange: await state.lastReloadError)
    }
}

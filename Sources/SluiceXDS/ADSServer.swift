// sluiced's ADS server: gRPC `envoy.service.discovery.v3.AggregatedDiscoveryService`, state of
// the world, over grpc-swift 2 with the NIO HTTP/2 transport (default 127.0.0.1:18000).
//
// Each stream runs one loop over two inputs, Envoy's requests and the cache's "snapshot changed"
// wake-ups, through `ADSStreamState` (pure protocol logic); events go to the log and to the
// per-node `ConfigStatus`. A NACK is logged with Envoy's error_detail and the NACKed version is
// not re-sent: Envoy keeps running its last accepted one.

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
public import Logging
public import SluiceControl
import SluiceXDSProto
import Synchronization

/// The ADS server with its snapshot cache and node statuses.
public final class ADSServer: Sendable {
    public let cache: SnapshotCache
    public let statuses: ConfigStatusRegistry
    private let transport: HTTP2ServerTransport.Posix
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let logger: Logger
    /// The last plan set for all nodes, and how its secrets are read (for `refreshSecrets`).
    private let lastPlan = Mutex<(plan: EnvoyPlan, secrets: SecretReader)?>(nil)

    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 18000

    /// A server for `host:port` (port 0: any free port, see `listeningPort()`).
    public init(
        host: String = ADSServer.defaultHost, port: Int = ADSServer.defaultPort, cache: SnapshotCache = SnapshotCache(),
        statuses: ConfigStatusRegistry = ConfigStatusRegistry(), logger: Logger = Logger(label: "sluiced.xds")
    ) {
        self.cache = cache
        self.statuses = statuses
        self.logger = logger
        var config = HTTP2ServerTransport.Posix.Config.defaults
        // ADS streams live as long as Envoy does; keep them open and let Envoy's own keepalive rule.
        config.connection.maxIdleTime = nil
        config.connection.maxAge = nil
        transport = HTTP2ServerTransport.Posix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext, config: config)
        server = GRPCServer(
            transport: transport, services: [AggregatedDiscoveryService(cache: cache, statuses: statuses, logger: logger)])
    }

    /// Serves until `shutdown()` (or the task is cancelled).
    public func run() async throws {
        try await server.serve()
    }

    /// The port the server listens on, once bound.
    public func listeningPort() async throws -> Int {
        let address = try await transport.listeningAddress
        if let ipv4 = address.ipv4 { return ipv4.port }
        if let ipv6 = address.ipv6 { return ipv6.port }
        throw RPCError(code: .internalError, message: "ADS server bound to a non-IP address: \(address)")
    }

    /// Ends every ADS stream (Envoy keeps serving its last config and reconnects) and stops.
    public func shutdown() {
        cache.close()
        server.beginGracefulShutdown()
    }

    /// Encodes `plan` (secrets read from their sources) and pushes it to every connected Envoy
    /// (or to one node), make-before-break; only the types that changed are sent.
    @discardableResult
    public func setSnapshot(_ plan: EnvoyPlan, secrets: SecretReader = .live, forNode node: String? = nil) throws(XDSEncodingError)
        -> XDSSnapshot
    {
        let snapshot = try cache.setPlan(plan, secrets: secrets, forNode: node)
        if node == nil { lastPlan.withLock { $0 = (plan, secrets) } }
        let versions = XDSType.pushOrder.map { "\($0.shortName)=\(snapshot[$0].version)" }.joined(separator: " ")
        logger.info("snapshot \(snapshot.version) set\(node.map { " for node \($0)" } ?? ""): \(versions)")
        return snapshot
    }

    /// Reads the last plan's secrets again (files and environment): when a value changed, a
    /// snapshot in which only SDS changed is pushed. Returns it, or nil when nothing changed.
    @discardableResult
    public func refreshSecrets() throws(XDSEncodingError) -> XDSSnapshot? {
        guard let last = lastPlan.withLock({ $0 }), let current = cache.latestSnapshot() else { return nil }
        var resources = current.resources
        resources[.secret] = try ResourceEncoder.encodeSecrets(last.plan, secrets: last.secrets)
        guard SnapshotResources.digest(resources[.secret]) != current[.secret].digest else { return nil }
        let snapshot = try cache.setResources(resources)
        logger.info("snapshot \(snapshot.version): secrets re-read, SDS=\(snapshot[.secret].version)")
        return snapshot
    }

    /// Calls `refreshSecrets()` every `interval` until the task is cancelled (a key rotated in
    /// its file reaches Envoy within about `interval`); errors are logged and the last good
    /// secrets stay served.
    public func watchSecrets(every interval: Duration = .seconds(1)) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                try refreshSecrets()
            } catch {
                logger.warning("secrets not refreshed: \(error)")
            }
        }
    }

    /// What every Envoy seen runs: ACKed version per type, last NACK.
    public func configStatus() -> [ConfigStatus] { statuses.all() }
}

/// The gRPC service: one `ADSStreamState` per stream.
struct AggregatedDiscoveryService: Envoy_Service_Discovery_V3_AggregatedDiscoveryService.SimpleServiceProtocol {
    let cache: SnapshotCache
    let statuses: ConfigStatusRegistry
    let logger: Logger
    private static let streamCounter = Atomic<UInt64>(0)

    private enum Input: Sendable {
        case request(DiscoveryRequest)
        case snapshotChanged
        case end
    }

    func streamAggregatedResources(
        request: RPCAsyncSequence<DiscoveryRequest, any Error>, response: RPCWriter<DiscoveryResponse>, context: ServerContext
    ) async throws {
        let streamID = Self.streamCounter.add(1, ordering: .relaxed).newValue
        var logger = self.logger
        logger[metadataKey: "ads_stream"] = "\(streamID)"
        logger[metadataKey: "peer"] = "\(context.remotePeer)"
        let (watchID, changes) = cache.watch()
        defer { cache.cancelWatch(watchID) }
        let (inputs, input) = AsyncStream<Input>.makeStream()
        var nodeID: String?
        defer {
            if let nodeID { statuses.update(node: nodeID) { $0.connectedStreams -= 1 } }
            logger.info("ADS stream closed")
        }

        let readerLogger = logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    for try await message in request { input.yield(.request(message)) }
                } catch {
                    readerLogger.debug("ADS stream ended: \(error)")
                }
                input.yield(.end)
            }
            group.addTask {
                for await _ in changes { input.yield(.snapshotChanged) }
                input.yield(.end)  // the cache closed (shutdown)
            }
            var state = ADSStreamState(noncePrefix: "\(streamID)-")
            loop: for await next in inputs {
                switch next {
                case .end:
                    break loop
                case .request(let message):
                    if nodeID == nil, message.hasNode {
                        let node = message.node
                        nodeID = node.id
                        logger[metadataKey: "node"] = "\(node.id)"
                        statuses.update(node: node.id, cluster: node.cluster) { $0.connectedStreams += 1 }
                        logger.info("ADS stream opened by node \(node.id) (cluster \(node.cluster), \(node.userAgentName) \(node.userAgentVersion))")
                    }
                    let snapshot = cache.snapshot(forNode: nodeID)
                    let (events, responses) = state.receive(message, snapshot: snapshot)
                    record(events, node: nodeID, logger: logger)
                    try await send(responses, node: nodeID, to: response, logger: logger)
                case .snapshotChanged:
                    guard let snapshot = cache.snapshot(forNode: nodeID) else { continue }
                    try await send(state.push(snapshot), node: nodeID, to: response, logger: logger)
                }
            }
            input.finish()
            group.cancelAll()
        }
    }

    func deltaAggregatedResources(
        request: RPCAsyncSequence<Envoy_Service_Discovery_V3_DeltaDiscoveryRequest, any Error>,
        response: RPCWriter<Envoy_Service_Discovery_V3_DeltaDiscoveryResponse>, context: ServerContext
    ) async throws {
        throw RPCError(code: .unimplemented, message: "sluiced serves state-of-the-world ADS only (api_type: GRPC)")
    }

    private func record(_ events: [ADSStreamEvent], node: String?, logger: Logger) {
        for event in events {
            switch event {
            case .ack(let type, let version):
                logger.debug("\(type.shortName) ACK version \(version)")
                cache.accepted(type, version: version, node: node)
            case .nack(let type, let rejected, let kept, let code, let message):
                logger.warning("\(type.shortName) NACK of version \(rejected) (Envoy keeps \(kept.isEmpty ? "nothing" : kept)): code \(code): \(message)")
                cache.rejected(type, version: rejected, node: node)
            case .stale(let type, let nonce):
                logger.trace("\(type.shortName) stale request (nonce \(nonce)) ignored")
            case .unknownType(let url):
                logger.notice("request for unserved type \(url) answered with nothing")
            }
            if let node { statuses.update(node: node) { $0.apply(event) } }
        }
    }

    private func send(_ responses: [DiscoveryResponse], node: String?, to writer: RPCWriter<DiscoveryResponse>, logger: Logger) async throws {
        for message in responses {
            try await writer.write(message)
            if let type = XDSType(rawValue: message.typeURL) {
                logger.debug("\(type.shortName) sent version \(message.versionInfo) nonce \(message.nonce) (\(message.resources.count) resources)")
                if let node { statuses.update(node: node) { $0.sentVersions[type] = message.versionInfo } }
            }
        }
    }
}

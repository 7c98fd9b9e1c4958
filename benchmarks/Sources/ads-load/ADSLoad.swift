// ADS fan-out: sluiced's `ADSServer` in this process on a free loopback port, and N simulated
// Envoys, each a grpc-swift 2 client on its own HTTP/2 connection with one
// `StreamAggregatedResources` stream that behaves like Envoy's state-of-the-world ADS client:
// CDS and LDS wildcard; EDS for the EDS clusters it got, RDS and ECDS for what its listeners
// name, SDS for the provider secrets; every response ACKed (version + nonce, the names it wants).
//
// Per push: an edit (one more model) is compiled outside the measured region; the clock starts
// just before `ADSServer.setSnapshot(plan)` (which encodes the whole snapshot) and each client
// records when it first holds the new version of every type it subscribes to. Reported per push:
// `setSnapshot` alone, the first and the last of the N clients to be up to date. Before the next
// push every node must have ACKed everything it was sent (the server's `ConfigStatus`).
//
//   swift run -c release ads-load [--clients 200] [--pushes 20] [--config large|demo|both]
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Logging
import SluiceControl
import SluiceXDS
import SluiceXDSProto
import SluicedFixtures
import SwiftProtobuf
import Synchronization

typealias Instant = ContinuousClock.Instant

/// What one simulated Envoy received: when each version of each type first arrived.
final class ReceiptLog: Sendable {
    private let state = Mutex<[XDSType: [String: Instant]]>([:])
    let failure = Mutex<String?>(nil)

    func record(_ type: XDSType, _ version: String, at time: Instant) {
        state.withLock { state in
            if state[type]?[version] == nil { state[type, default: [:]][version] = time }
        }
    }

    /// When the client first held every version of `target` (nil: not yet).
    func completion(of target: [XDSType: String]) -> Instant? {
        state.withLock { state in
            var last: Instant?
            for (type, version) in target {
                guard let time = state[type]?[version] else { return nil }
                if last == nil || time > last! { last = time }
            }
            return last
        }
    }
}

/// Envoy's side of the SotW protocol, as far as sluiced's server needs it.
struct SimulatedEnvoy {
    let node: Envoy_Config_Core_V3_Node
    let secretNames: [String]
    var names: [XDSType: [String]] = [:]
    var versions: [XDSType: String] = [:]
    var nonces: [XDSType: String] = [:]
    var sentNode = false
    private var decodedCluster: String?
    private var decodedListener: String?

    init(nodeID: String, secretNames: [String]) {
        var node = Envoy_Config_Core_V3_Node()
        node.id = nodeID
        node.cluster = "ads-load"
        node.userAgentName = "ads-load"
        self.node = node
        self.secretNames = secretNames
    }

    mutating func request(_ type: XDSType) -> DiscoveryRequest {
        var request = DiscoveryRequest()
        if !sentNode {
            request.node = node  // set_node_on_first_message_only
            sentNode = true
        }
        request.typeURL = type.typeURL
        request.versionInfo = versions[type] ?? ""
        request.responseNonce = nonces[type] ?? ""
        request.resourceNames = names[type] ?? []
        return request
    }

    mutating func start() -> [DiscoveryRequest] { [request(.cluster), request(.listener)] }

    /// The ACK of `response`, then the subscriptions it causes.
    mutating func handle(_ response: DiscoveryResponse) throws -> [DiscoveryRequest] {
        guard let type = XDSType(rawValue: response.typeURL) else { return [] }
        versions[type] = response.versionInfo
        nonces[type] = response.nonce
        var out = [request(type)]
        switch type {
        case .cluster where decodedCluster != response.versionInfo:
            decodedCluster = response.versionInfo
            var eds: [String] = []
            for any in response.resources {
                let cluster = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: any)
                if case .type(.eds)? = cluster.clusterDiscoveryType {
                    eds.append(cluster.edsClusterConfig.serviceName.isEmpty ? cluster.name : cluster.edsClusterConfig.serviceName)
                }
            }
            out += subscribe(.endpoint, eds)
            out += subscribe(.secret, secretNames)
        case .listener where decodedListener != response.versionInfo:
            decodedListener = response.versionInfo
            var routes: [String] = []
            var filters: [String] = []
            for any in response.resources {
                let listener = try Envoy_Config_Listener_V3_Listener(unpackingAny: any)
                for chain in listener.filterChains {
                    for filter in chain.filters {
                        guard
                            let hcm = try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(
                                unpackingAny: filter.typedConfig)
                        else { continue }
                        if case .rds(let rds)? = hcm.routeSpecifier { routes.append(rds.routeConfigName) }
                        for httpFilter in hcm.httpFilters {
                            if case .configDiscovery? = httpFilter.configType { filters.append(httpFilter.name) }
                        }
                    }
                }
            }
            out += subscribe(.route, routes)
            out += subscribe(.extensionConfig, filters)
        default:
            break
        }
        return out
    }

    private mutating func subscribe(_ type: XDSType, _ wanted: [String]) -> [DiscoveryRequest] {
        let sorted = Array(Set(wanted)).sorted()
        guard !sorted.isEmpty, names[type] != sorted else { return [] }
        names[type] = sorted
        return [request(type)]
    }
}

/// One simulated Envoy: connects, subscribes, ACKs, until cancelled.
func runClient(index: Int, port: Int, secretNames: [String], log: ReceiptLog) async {
    do {
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext)
        try await withGRPCClient(transport: transport) { grpc in
            let ads = Envoy_Service_Discovery_V3_AggregatedDiscoveryService.Client(wrapping: grpc)
            var starting = SimulatedEnvoy(nodeID: "ads-load-\(index)", secretNames: secretNames)
            let (requests, outbox) = AsyncStream<DiscoveryRequest>.makeStream()
            for request in starting.start() { outbox.yield(request) }
            let started = starting
            var options = CallOptions.defaults
            options.maxResponseMessageBytes = 256 << 20
            let request = StreamingClientRequest<DiscoveryRequest> { writer in
                for await message in requests { try await writer.write(message) }
            }
            try await ads.streamAggregatedResources(request: request, options: options) { response in
                var envoy = started
                for try await message in response.messages {
                    let now = ContinuousClock.now
                    if let type = XDSType(rawValue: message.typeURL) { log.record(type, message.versionInfo, at: now) }
                    for next in try envoy.handle(message) { outbox.yield(next) }
                }
                outbox.finish()
            }
        }
    } catch is CancellationError {
    } catch {
        if !Task.isCancelled { log.failure.withLock { $0 = "client \(index): \(error)" } }
    }
}

struct Options {
    var clients = 200
    var pushes = 20
    var configs = ["large", "demo"]
    var timeoutSeconds = 120.0

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--clients": clients = Int(iterator.next() ?? "") ?? clients
            case "--pushes": pushes = Int(iterator.next() ?? "") ?? pushes
            case "--timeout": timeoutSeconds = Double(iterator.next() ?? "") ?? timeoutSeconds
            case "--config":
                let value = iterator.next() ?? "both"
                configs = value == "both" ? ["large", "demo"] : [value]
            default:
                print("usage: ads-load [--clients N] [--pushes N] [--config large|demo|both] [--timeout S]")
                exit(2)
            }
        }
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
}

/// Nearest-rank percentile.
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

struct Failure: Error, CustomStringConvertible {
    var description: String
}

func runScenario(name: String, options: Options) async throws {
    // Plans: the config, then one more model per push (compiled before anything is measured).
    let yaml = name == "large" ? SluicedFixtures.largeYAML() : SluicedFixtures.demoYAML()
    let compiled = SluicedFixtures.plan(yaml, file: "\(name).yaml")
    var config = compiled.config
    var plans = [compiled.plan]
    let target = config.backends[0].name
    for push in 0..<options.pushes {
        config.models.append(SluiceConfig.Model(id: "push-model-\(push)", target: .backend(target), created: 1_764_201_600))
        plans.append(try config.compile())
    }

    var logger = Logger(label: "ads-load.server")
    logger.logLevel = .warning
    let server = ADSServer(host: "127.0.0.1", port: 0, logger: logger)
    let serverTask = Task { try await server.run() }
    defer { serverTask.cancel() }
    let port = try await server.listeningPort()
    var snapshot = try server.setSnapshot(plans[0], secrets: SluicedFixtures.secrets)
    let sizes = XDSType.pushOrder.map { type in
        "\(type.shortName) \(snapshot[type].names.count)/\(snapshot[type].byName.values.reduce(0) { $0 + $1.value.count } / 1024) KiB"
    }
    print("\(name): \(options.clients) clients on 127.0.0.1:\(port); resources (count/bytes): \(sizes.joined(separator: ", "))")

    let logs = (0..<options.clients).map { _ in ReceiptLog() }
    let secretNames = snapshot[.secret].names
    let clients = Task {
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<options.clients {
                group.addTask { await runClient(index: index, port: port, secretNames: secretNames, log: logs[index]) }
            }
        }
    }
    defer { clients.cancel() }

    func targetVersions(_ snapshot: XDSSnapshot) -> [XDSType: String] {
        var target: [XDSType: String] = [:]
        for type in XDSType.pushOrder where !snapshot[type].names.isEmpty { target[type] = snapshot[type].version }
        return target
    }

    /// Waits until every client holds `target` and every node ACKed what it was sent.
    func converge(_ target: [XDSType: String], what: String) async throws -> [Instant] {
        let deadline = ContinuousClock.now + .seconds(options.timeoutSeconds)
        var done: [Instant?] = Array(repeating: nil, count: logs.count)
        while true {
            for (index, log) in logs.enumerated() where done[index] == nil {
                if let failure = log.failure.withLock({ $0 }) { throw Failure(description: failure) }
                done[index] = log.completion(of: target)
            }
            if done.allSatisfy({ $0 != nil }) {
                let statuses = server.configStatus()
                if statuses.count == logs.count, statuses.allSatisfy({ $0.connected && $0.isInSync }) { break }
            }
            guard ContinuousClock.now < deadline else {
                let pending = done.filter { $0 == nil }.count
                throw Failure(description: "\(what): \(pending) of \(logs.count) clients not converged within \(options.timeoutSeconds) s")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return done.map { $0! }
    }

    let connectStart = ContinuousClock.now
    let initial = try await converge(targetVersions(snapshot), what: "initial snapshot")
    print("\(name): all \(options.clients) clients connected and up to date in \(String(format: "%.0f", milliseconds(initial.max()! - connectStart))) ms")

    var setTimes: [Double] = []
    var firstTimes: [Double] = []
    var lastTimes: [Double] = []
    var changedTypes: Set<String> = []
    for push in 1...options.pushes {
        try await Task.sleep(for: .milliseconds(20))
        let previous = snapshot
        let start = ContinuousClock.now
        snapshot = try server.setSnapshot(plans[push], secrets: SluicedFixtures.secrets)
        let set = ContinuousClock.now
        for type in XDSType.pushOrder where snapshot[type].version != previous[type].version { changedTypes.insert(type.shortName) }
        let done = try await converge(targetVersions(snapshot), what: "push \(push)")
        setTimes.append(milliseconds(set - start))
        firstTimes.append(milliseconds(done.min()! - start))
        lastTimes.append(milliseconds(done.max()! - start))
    }

    func row(_ label: String, _ values: [Double]) -> String {
        "  " + label.padding(toLength: 34, withPad: " ", startingAt: 0)
            + String(format: " p50 %8.1f ms   p99 %8.1f ms   max %8.1f ms", percentile(values, 50), percentile(values, 99), values.max()!)
    }
    print("\(name): \(options.pushes) pushes (one model added each; types changed: \(changedTypes.sorted().joined(separator: " ")))")
    print(row("setSnapshot (encode + cache)", setTimes))
    print(row("first client up to date", firstTimes))
    print(row("last of \(options.clients) clients up to date", lastTimes))

    server.shutdown()
    clients.cancel()
    await clients.value
    serverTask.cancel()
    _ = try? await serverTask.value
}

@main
struct ADSLoad {
    static func main() async {
        let options = Options(Array(CommandLine.arguments.dropFirst()))
        do {
            for name in options.configs { try await runScenario(name: name, options: options) }
        } catch {
            print("ads-load: \(error)")
            exit(1)
        }
    }
}

// sluiced's ADS server against the real Envoy 1.40 with libsluice.so: Envoy bootstrapped with
// nothing but the ADS cluster gets its listener, routes, clusters, endpoints, secrets and the
// `sluice` filter's config (ECDS) from the server; edits are pushed live without a listener
// update; a config Envoy refuses is NACKed, reported, and traffic stays on the last good version.
//
// Opt-in (it needs the built module, Envoy and the simulators):
//   SLUICE_ENVOY=$(envoy-module/install-envoy.sh) SLUICE_MODULE_DIR=$(envoy-module/build-module.sh) \
//   SLUICE_SIM=$(swift build --show-bin-path)/sluice-sim swift test --skip-build --filter RealEnvoyADSTests
// Processes are started here and stopped by PID; every wait is bounded.

import Foundation
import Logging
import SluiceControl
import SluiceCore
import Testing

@testable import SluiceXDS

enum RealEnvoy {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }
    static var envoy: String? { environment["SLUICE_ENVOY"] }
    static var moduleDir: String? { environment["SLUICE_MODULE_DIR"] }
    static var sim: String? { environment["SLUICE_SIM"] }
    static var available: Bool {
        guard let envoy, let moduleDir, let sim else { return false }
        let files = FileManager.default
        return files.isExecutableFile(atPath: envoy) && files.fileExists(atPath: moduleDir + "/libsluice.so")
            && files.isExecutableFile(atPath: sim)
    }

    /// sluice-sim's provider simulators, name and default port, in its order (`sluice-sim --list`).
    static func simProviders() throws -> [(name: String, defaultPort: Int)] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sim ?? "")
        process.arguments = ["--list"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let listing = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let members = try JSONParser.parse(Array(listing)).objectValue?.members ?? []
        return members.compactMap { member in member.value.int64Value.map { (member.key, Int($0)) } }
    }

    /// Every provider simulator on a free port of its own, by name.
    static func freeSimPorts() throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try simProviders().map { ($0.name, freePort()) })
    }

    /// The arguments that put each provider simulator on its port in `ports`.
    static func listenArguments(_ ports: [String: Int]) -> [String] {
        ports.sorted { $0.key < $1.key }.flatMap { ["--listen", "\($0.key)=\($0.value)"] }
    }
}

/// A child process, stopped by PID.
final class Child: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after `grace` seconds (the test runner may hand its children a
    /// signal mask that blocks SIGTERM; Envoy is asked to quit through its admin API first).
    func stop(grace: TimeInterval = 3) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// HTTP through curl (bounded by --max-time).
enum HTTP {
    struct Response {
        var status: Int
        var body: String
    }

    static func request(
        _ url: String, method: String = "GET", headers: [String: String] = [:], body: String? = nil, insecure: Bool = false
    ) -> Response {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        var arguments = ["-s", "--max-time", "10", "-X", method, "-w", "\n%{http_code}", url]
        if insecure { arguments.append("-k") }
        for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
        if let body { arguments += ["--data-binary", body] }
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return Response(status: 0, body: "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let newline = text.lastIndex(of: "\n") else { return Response(status: 0, body: text) }
        return Response(status: Int(text[text.index(after: newline)...]) ?? 0, body: String(text[..<newline]))
    }
}

func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns the time it took.
@discardableResult
func poll(timeout: TimeInterval, _ what: String, _ condition: () -> Bool) throws -> TimeInterval {
    let start = Date()
    while Date().timeIntervalSince(start) < timeout {
        if condition() { return Date().timeIntervalSince(start) }
        usleep(20_000)
    }
    throw PollTimeout(what: what, seconds: timeout)
}

struct PollTimeout: Error, CustomStringConvertible {
    var what: String
    var seconds: TimeInterval
    var description: String { "timed out after \(seconds)s waiting for \(what)" }
}

@Suite(.serialized, .enabled(if: RealEnvoy.available, "set SLUICE_ENVOY, SLUICE_MODULE_DIR and SLUICE_SIM"))
struct RealEnvoyADSTests {
    static let demoKey = "sk-sluice-demo"

    /// The plan: openai and azure simulators over EDS, a failover aggregate of both (endpoint
    /// metadata names the backend), the provider keys as SDS secrets.
    static func plan(
        listenerPort: Int, sim: [String: Int], models: [String], gatewayConfig: [UInt8]? = nil, openaiKey: String = "sk-sim-openai",
        openaiOverrides: String = "{}"
    ) -> EnvoyPlan {
        let openai = Array(
            #"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"},"model_overrides":\#(openaiOverrides)}"#.utf8)
        let azure = Array(
            #"{"backend":"azure","schema":"azure_openai","azure":{"api_version":"2024-10-21"},"credential":{"secret":"azure-key","sds":"ads"},"model_overrides":{"gpt-4o-mini-failover":"gpt-4o-mini-deployment"}}"#
                .utf8)
        let failover = Array(
            #"{"backends":[{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"},"model_overrides":{"gpt-4o-mini-failover":"gpt-4o-mini"}},{"backend":"azure","schema":"azure_openai","azure":{"api_version":"2024-10-21"},"credential":{"secret":"azure-key","sds":"ads"},"model_overrides":{"gpt-4o-mini-failover":"gpt-4o-mini-deployment"}}]}"#
                .utf8)
        let modelList = models.map { model in
            #"{"id":"\#(model)","owned_by":"sluice","created":1721172741,"route":"\#(model.hasSuffix("failover") ? "failover" : "openai")"}"#
        }
        let config = gatewayConfig ?? Array(#"{"api_keys":[{"name":"demo","key":"\#(demoKey)"}],"models":[\#(modelList.joined(separator: ","))]}"#.utf8)
        return EnvoyPlan(
            listeners: [
                ListenerPlan(
                    name: "gateway", port: listenerPort,
                    routes: [
                        RoutePlan(routeName: "openai", cluster: "openai"),
                        RoutePlan(routeName: "failover", cluster: "failover", retry: RetryPlan(numRetries: 2)),
                        RoutePlan(routeName: nil, cluster: "openai"),
                    ])
            ],
            clusters: [
                ClusterPlan(
                    name: "openai", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: sim["openai"]!)]), upstreamFilterConfig: openai,
                    secretNames: ["openai-key"]),
                ClusterPlan(
                    name: "azure", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: sim["azure"]!)]), upstreamFilterConfig: azure,
                    secretNames: ["azure-key"]),
                ClusterPlan(
                    name: "failover-openai", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: sim["openai"]!, backend: "openai")])),
                ClusterPlan(
                    name: "failover-azure", kind: .endpoints([EndpointPlan(host: "127.0.0.1", port: sim["azure"]!, backend: "azure")])),
                ClusterPlan(
                    name: "failover", kind: .aggregate(["failover-openai", "failover-azure"]), upstreamFilterConfig: failover,
                    secretNames: ["openai-key", "azure-key"]),
                // Not routed: shows Envoy accepts a DNS cluster with TLS (SNI, system trust store) and HTTP/2.
                ClusterPlan(
                    name: "remote", kind: .endpoints([EndpointPlan(host: "localhost", port: 443)]),
                    upstreamTLS: UpstreamTLSPlan(sni: "api.example.com"), http2: true, upstreamFilterConfig: openai,
                    secretNames: ["openai-key"]),
            ],
            secrets: [
                SecretPlan(name: "openai-key", source: .literal(openaiKey)),
                SecretPlan(name: "azure-key", source: .literal("sim-azure-key")),
            ],
            gatewayFilterConfig: config
        )
    }

    static func bootstrap(node: String, adminPort: Int, adsPort: Int) -> String {
        """
        node: { id: \(node), cluster: sluice }
        admin:
          address: { socket_address: { address: 127.0.0.1, port_value: \(adminPort) } }
        dynamic_resources:
          ads_config:
            api_type: GRPC
            transport_api_version: V3
            grpc_services: [ { envoy_grpc: { cluster_name: sluiced } } ]
            set_node_on_first_message_only: true
          lds_config: { ads: {}, resource_api_version: V3 }
          cds_config: { ads: {}, resource_api_version: V3 }
        static_resources:
          clusters:
          - name: sluiced
            type: STATIC
            connect_timeout: 1s
            typed_extension_protocol_options:
              envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                explicit_http_config: { http2_protocol_options: {} }
            load_assignment:
              cluster_name: sluiced
              endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: \(adsPort) } } } } ] } ]

        """
    }

    static func stat(_ adminPort: Int, _ name: String) -> Int? {
        let body = HTTP.request("http://127.0.0.1:\(adminPort)/stats?filter=^\(name)$").body
        for line in body.split(separator: "\n") where line.hasPrefix(name + ": ") {
            return Int(line.dropFirst(name.count + 2))
        }
        return nil
    }

    static func models(_ port: Int) -> HTTP.Response {
        HTTP.request("http://127.0.0.1:\(port)/v1/models", headers: ["Authorization": "Bearer \(demoKey)"])
    }

    static func chat(_ port: Int, model: String) -> HTTP.Response {
        HTTP.request(
            "http://127.0.0.1:\(port)/v1/chat/completions", method: "POST",
            headers: ["Authorization": "Bearer \(demoKey)", "Content-Type": "application/json"],
            body: #"{"model":"\#(model)","messages":[{"role":"user","content":"Hello"}]}"#)
    }

    @Test(.timeLimit(.minutes(3)))
    func envoyConfiguredOnlyOverADS() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-xds-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let simPorts = try RealEnvoy.freeSimPorts()
        let listenerPort = freePort()
        let adminPort = freePort()
        let node = "xds-test-\(getpid())"

        var simArguments = ["--pace-ms", "1"]
        simArguments += RealEnvoy.listenArguments(simPorts)
        // The vLLM-like pool behind `vllm_pool` (127.0.0.1:18111-18114 in the default).
        let poolPorts = (0..<4).map { _ in freePort() }
        simArguments += ["--vllm-ports", poolPorts.map(String.init).joined(separator: ",")]
        let sim = try Child(RealEnvoy.sim!, simArguments, logPath: work + "/sim.log")
        defer { sim.stop() }

        var logger = Logger(label: "sluiced.xds.test")
        logger.logLevel = .debug
        let server = ADSServer(port: 0, logger: logger)
        let serving = Task { try await server.run() }
        defer {
            server.shutdown()
            serving.cancel()
        }
        let adsPort = try await server.listeningPort()
        let first = try server.setSnapshot(Self.plan(listenerPort: listenerPort, sim: simPorts, models: ["gpt-4o-mini", "gpt-4o-mini-failover"]))

        try Self.bootstrap(node: node, adminPort: adminPort, adsPort: adsPort).write(toFile: work + "/bootstrap.yaml", atomically: true, encoding: .utf8)
        let envoy = try Child(
            RealEnvoy.envoy!,
            ["-c", work + "/bootstrap.yaml", "--disable-hot-restart", "-l", "info", "--concurrency", "2"],
            environment: ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH": RealEnvoy.moduleDir!], logPath: work + "/envoy.log")
        defer {
            _ = HTTP.request("http://127.0.0.1:\(adminPort)/quitquitquit", method: "POST")
            envoy.stop()
        }

        func context() -> String { "\nEnvoy log (\(work)/envoy.log):\n\(envoy.log.suffix(6000))" }

        // 1. Everything arrives over ADS: the module answers /v1/models itself.
        let ready = try poll(timeout: 60, "the listener from ADS" + context()) { Self.models(listenerPort).status == 200 }
        print("xds-test: listener live \(ready)s after Envoy started")
        let models = Self.models(listenerPort)
        #expect(models.body.contains("gpt-4o-mini"), "\(models.body)")
        #expect(HTTP.request("http://127.0.0.1:\(listenerPort)/v1/models").status == 401)
        try poll(timeout: 10, "every type ACKed") { server.statuses.status(node: node)?.isInSync == true }
        let acked = try #require(server.statuses.status(node: node))
        #expect(Set(acked.ackedVersions.keys) == Set(XDSType.allCases), "\(acked.ackedVersions)")
        #expect(acked.ackedVersions.values.allSatisfy { $0 == first.version })

        // 2. A chat completion routed to the simulator, with the provider key from SDS over ADS
        //    (the simulator refuses a wrong or missing key).
        let chat = Self.chat(listenerPort, model: "gpt-4o-mini")
        #expect(chat.status == 200, "\(chat.body)\(context())")
        #expect(chat.body.contains("chat.completion"), "\(chat.body)")
        let failover = Self.chat(listenerPort, model: "gpt-4o-mini-failover")
        #expect(failover.status == 200, "\(failover.body)")

        let modifiedBefore = Self.stat(adminPort, "listener_manager.listener_modified")
        let ecdsBefore = Self.stat(adminPort, "extension_config_discovery.http_filter.sluice.config_reload") ?? 0
        print("xds-test: listener_modified=\(modifiedBefore ?? -1) ecds config_reload=\(ecdsBefore)")

        // 3. A new model: pushed as ECDS only, live within a second, no listener update or drain.
        let keepAlive = Self.models(listenerPort)  // (a connection-level check is in the pytest suite)
        #expect(keepAlive.status == 200)
        let second = try server.setSnapshot(
            Self.plan(listenerPort: listenerPort, sim: simPorts, models: ["gpt-4o-mini", "gpt-4o-mini-failover", "gpt-4o-mini-2024"]))
        #expect(XDSType.allCases.filter { second[$0].version == second.version } == [.extensionConfig])
        let live = try poll(timeout: 5, "the new model" + context()) { Self.models(listenerPort).body.contains("gpt-4o-mini-2024") }
        print("xds-test: new model live after \(live)s")
        #expect(live < 1.0)
        #expect(Self.chat(listenerPort, model: "gpt-4o-mini-2024").status == 200)
        #expect(Self.stat(adminPort, "listener_manager.listener_modified") == modifiedBefore)
        #expect(Self.stat(adminPort, "listener_manager.total_listeners_draining") ?? 0 == 0)
        #expect(Self.stat(adminPort, "listener_manager.listener_removed") ?? 0 == 0)
        #expect((Self.stat(adminPort, "extension_config_discovery.http_filter.sluice.config_reload") ?? 0) > ecdsBefore)

        // 3b. A rotated provider key goes out as SDS only and is used by the next request (the
        //     simulator refuses the wrong one, then accepts the right one again).
        let models3 = ["gpt-4o-mini", "gpt-4o-mini-failover", "gpt-4o-mini-2024"]
        let rotated = try server.setSnapshot(Self.plan(listenerPort: listenerPort, sim: simPorts, models: models3, openaiKey: "sk-wrong"))
        #expect(XDSType.allCases.filter { rotated[$0].version == rotated.version } == [.secret])
        try poll(timeout: 5, "the rotated key in use") { Self.chat(listenerPort, model: "gpt-4o-mini").status == 401 }
        let restored = try server.setSnapshot(Self.plan(listenerPort: listenerPort, sim: simPorts, models: models3))
        try poll(timeout: 5, "the restored key in use") { Self.chat(listenerPort, model: "gpt-4o-mini").status == 200 }
        #expect(XDSType.allCases.filter { restored[$0].version == restored.version } == [.secret])

        // 3c. An edit of an EDS cluster (its upstream filter's model_overrides): Envoy warms the
        //     updated cluster on the endpoints sent after it, live within a second.
        let renamed = try server.setSnapshot(
            Self.plan(listenerPort: listenerPort, sim: simPorts, models: models3, openaiOverrides: #"{"gpt-4o-mini-2024":"gpt-4o-mini-renamed"}"#))
        #expect(XDSType.allCases.filter { renamed[$0].version == renamed.version } == [.cluster])
        let rewritten = try poll(timeout: 5, "the renamed upstream model" + context()) {
            guard Self.chat(listenerPort, model: "gpt-4o-mini-2024").status == 200 else { return false }
            let last = HTTP.request("http://127.0.0.1:\(simPorts["openai"]!)/__sim/last?provider=openai").body
            return last.contains(#""model":"gpt-4o-mini-renamed""#)
        }
        print("xds-test: EDS cluster update live after \(rewritten)s")
        #expect(rewritten < 1.0)
        try poll(timeout: 5, "the CDS ACK") { server.statuses.status(node: node)?.ackedVersions[.cluster] == renamed[.cluster].version }
        #expect(Self.stat(adminPort, "cluster_manager.warming_clusters") == 0)

        // 4. A filter config the module refuses: NACKed, reported, traffic stays on the last good
        //    one, and sluiced serves the last accepted version again.
        let bad = Array(#"{"api_keys":[{"name":"demo","key":"\#(Self.demoKey)"}],"models":[],"no_such_field":1}"#.utf8)
        let third = try server.setSnapshot(Self.plan(listenerPort: listenerPort, sim: simPorts, models: [], gatewayConfig: bad))
        try poll(timeout: 10, "the NACK" + context()) { server.statuses.status(node: node)?.lastNack != nil }
        let nacked = try #require(server.statuses.status(node: node))
        let nack = try #require(nacked.lastNack)
        print("xds-test: NACK \(nack.type.shortName) v\(nack.rejectedVersion) keeps v\(nack.keptVersion): \(nack.message)")
        #expect(nack.type == .extensionConfig)
        #expect(nack.rejectedVersion == third.version)
        #expect(nack.keptVersion == second[.extensionConfig].version)
        #expect(!nack.message.isEmpty)
        #expect(nacked.ackedVersions[.extensionConfig] == second[.extensionConfig].version)
        #expect(Self.models(listenerPort).body.contains("gpt-4o-mini-2024"))
        #expect(Self.chat(listenerPort, model: "gpt-4o-mini").status == 200)
        #expect(server.cache.snapshot()?[.extensionConfig].version == second[.extensionConfig].version)
        try poll(timeout: 10, "the re-sent last accepted ECDS") {
            server.statuses.status(node: node)?.sentVersions[.extensionConfig] == second[.extensionConfig].version
        }
        #expect(server.statuses.status(node: node)?.lastNack != nil)  // still reported

        // 5. An Envoy that starts now (after the bad edit) gets the last accepted config.
        _ = HTTP.request("http://127.0.0.1:\(adminPort)/quitquitquit", method: "POST")
        envoy.stop()
        let node2 = node + "-b"
        let adminPort2 = freePort()
        try Self.bootstrap(node: node2, adminPort: adminPort2, adsPort: adsPort).write(
            toFile: work + "/bootstrap2.yaml", atomically: true, encoding: .utf8)
        let envoy2 = try Child(
            RealEnvoy.envoy!, ["-c", work + "/bootstrap2.yaml", "--disable-hot-restart", "-l", "info", "--concurrency", "2"],
            environment: ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH": RealEnvoy.moduleDir!], logPath: work + "/envoy2.log")
        defer {
            _ = HTTP.request("http://127.0.0.1:\(adminPort2)/quitquitquit", method: "POST")
            envoy2.stop()
        }
        func context2() -> String { "\nEnvoy log (\(work)/envoy2.log):\n\(envoy2.log.suffix(6000))" }
        try poll(timeout: 60, "the second Envoy's listener" + context2()) { Self.models(listenerPort).body.contains("gpt-4o-mini-2024") }
        try poll(timeout: 10, "the second Envoy in sync") { server.statuses.status(node: node2)?.isInSync == true }
        #expect(server.statuses.status(node: node2)?.ackedVersions[.extensionConfig] == second[.extensionConfig].version)
        #expect(server.statuses.status(node: node2)?.lastNack == nil)
        #expect(server.statuses.status(node: node)?.connected == false)

        // 6. A good config again is applied.
        let fourth = try server.setSnapshot(Self.plan(listenerPort: listenerPort, sim: simPorts, models: ["gpt-4o-mini", "gpt-4o-mini-4"]))
        try poll(timeout: 10, "the fixed config" + context2()) { Self.models(listenerPort).body.contains("gpt-4o-mini-4") }
        try poll(timeout: 10, "the ACK of the fix") { server.statuses.status(node: node2)?.ackedVersions[.extensionConfig] == fourth.version }
        #expect(Self.chat(listenerPort, model: "gpt-4o-mini-4").status == 200)

        // 7. sluiced stops: Envoy keeps serving its last config (fail-static). A new sluiced on the
        //    same port: Envoy reconnects, converges, and takes the next edit.
        server.shutdown()
        _ = await serving.result
        #expect(Self.chat(listenerPort, model: "gpt-4o-mini-4").status == 200)
        let restarted = ADSServer(port: adsPort, logger: logger)
        let servingAgain = Task { try await restarted.run() }
        defer {
            restarted.shutdown()
            servingAgain.cancel()
        }
        _ = try await restarted.listeningPort()
        let fifth = try restarted.setSnapshot(
            Self.plan(listenerPort: listenerPort, sim: simPorts, models: ["gpt-4o-mini", "gpt-4o-mini-4", "gpt-4o-mini-5"]))
        let reconnected = try poll(timeout: 40, "Envoy to reconnect" + context2()) { restarted.statuses.status(node: node2)?.isInSync == true }
        print("xds-test: Envoy reconnected and in sync \(reconnected)s after the restart")
        try poll(timeout: 10, "the edit after the restart") { Self.models(listenerPort).body.contains("gpt-4o-mini-5") }
        #expect(restarted.statuses.status(node: node2)?.ackedVersions[.extensionConfig] == fifth[.extensionConfig].version)
        #expect(Self.stat(adminPort2, "listener_manager.listener_modified") == 0)
        print("xds-test: second envoy log tail:\n\(envoy2.log.suffix(3000))")
    }

    /// `sluiced render`'s bootstrap of the same plan: Envoy validates it, runs it, and the gateway
    /// answers with the secrets inline (bootstrap secrets) and everything static.
    @Test(.timeLimit(.minutes(2)))
    func staticBootstrapRunsInEnvoy() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-render-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let simPorts = try RealEnvoy.freeSimPorts()
        let listenerPort = freePort()
        let adminPort = freePort()
        var simArguments = ["--pace-ms", "1"]
        simArguments += RealEnvoy.listenArguments(simPorts)
        // The vLLM-like pool behind `vllm_pool` (127.0.0.1:18111-18114 in the default).
        let poolPorts = (0..<4).map { _ in freePort() }
        simArguments += ["--vllm-ports", poolPorts.map(String.init).joined(separator: ",")]
        let sim = try Child(RealEnvoy.sim!, simArguments, logPath: work + "/sim.log")
        defer { sim.stop() }

        var plan = Self.plan(listenerPort: listenerPort, sim: simPorts, models: ["gpt-4o-mini", "gpt-4o-mini-failover"])
        // A second listener serving TLS with a throwaway certificate.
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", work + "/key.pem", "-out", work + "/cert.pem", "-days", "1",
            "-subj", "/CN=localhost",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        let tlsPort = freePort()
        var tlsListener = plan.listeners[0]
        tlsListener.name = "gateway-tls"
        tlsListener.port = tlsPort
        tlsListener.tls = ListenerTLSPlan(certificateChainPath: work + "/cert.pem", privateKeyPath: work + "/key.pem")
        plan.listeners.append(tlsListener)
        let rendered = try StaticBootstrap.render(plan: plan, node: .init(id: "render-test"), admin: .init(port: adminPort), format: .yaml)
        try rendered.write(toFile: work + "/bootstrap.yaml", atomically: true, encoding: .utf8)
        let environment = ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH": RealEnvoy.moduleDir!]
        let validate = try Child(
            RealEnvoy.envoy!, ["--mode", "validate", "-c", work + "/bootstrap.yaml", "--disable-hot-restart"], environment: environment,
            logPath: work + "/validate.log")
        validate.process.waitUntilExit()
        #expect(validate.process.terminationStatus == 0, "\(validate.log.suffix(4000))")
        print("xds-test: render validate: \(validate.log.split(separator: "\n").last ?? "")")

        let envoy = try Child(
            RealEnvoy.envoy!, ["-c", work + "/bootstrap.yaml", "--disable-hot-restart", "-l", "info", "--concurrency", "2"],
            environment: environment, logPath: work + "/envoy.log")
        defer {
            _ = HTTP.request("http://127.0.0.1:\(adminPort)/quitquitquit", method: "POST")
            envoy.stop()
        }
        try poll(timeout: 60, "the static listener\n\(envoy.log.suffix(4000))") { Self.models(listenerPort).status == 200 }
        #expect(Self.models(listenerPort).body.contains("gpt-4o-mini-failover"))
        let chat = Self.chat(listenerPort, model: "gpt-4o-mini")
        #expect(chat.status == 200, "\(chat.body)\n\(envoy.log.suffix(4000))")
        #expect(Self.chat(listenerPort, model: "gpt-4o-mini-failover").status == 200)
        let overTLS = HTTP.request("https://127.0.0.1:\(tlsPort)/v1/models", headers: ["Authorization": "Bearer \(Self.demoKey)"], insecure: true)
        #expect(overTLS.status == 200, "\(overTLS.body)")
    }

    /// The embedded default config (envoy-module/sluice.yaml), compiled and served over ADS (its
    /// ports moved to free ones): every model it lists answers through Envoy and the simulators.
    @Test(.timeLimit(.minutes(3)))
    func embeddedDefaultServesEveryModel() async throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-default-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let providers = try RealEnvoy.simProviders()
        let simPorts = Dictionary(uniqueKeysWithValues: providers.map { ($0.name, freePort()) })
        var simArguments = ["--pace-ms", "1"]
        simArguments += RealEnvoy.listenArguments(simPorts)
        // The vLLM-like pool behind `vllm_pool` (127.0.0.1:18111-18114 in the default).
        let poolPorts = (0..<4).map { _ in freePort() }
        simArguments += ["--vllm-ports", poolPorts.map(String.init).joined(separator: ",")]
        let sim = try Child(RealEnvoy.sim!, simArguments, logPath: work + "/sim.log")
        defer { sim.stop() }

        var plan = try SluiceConfig.loadDefault().config.compile()
        let listenerPort = freePort()
        let moved = Dictionary(uniqueKeysWithValues: providers.map { ($0.defaultPort, simPorts[$0.name]!) }
            + poolPorts.enumerated().map { (18111 + $0.offset, $0.element) })
        for index in plan.listeners.indices { plan.listeners[index].port = listenerPort }
        for index in plan.clusters.indices {
            guard case .endpoints(var endpoints) = plan.clusters[index].kind else { continue }
            for endpoint in endpoints.indices { endpoints[endpoint].port = moved[endpoints[endpoint].port] ?? endpoints[endpoint].port }
            plan.clusters[index].kind = .endpoints(endpoints)
        }

        let server = ADSServer(port: 0)
        let serving = Task { try await server.run() }
        defer {
            server.shutdown()
            serving.cancel()
        }
        let adsPort = try await server.listeningPort()
        try server.setSnapshot(plan)
        let adminPort = freePort()
        try Self.bootstrap(node: "default-test", adminPort: adminPort, adsPort: adsPort).write(
            toFile: work + "/bootstrap.yaml", atomically: true, encoding: .utf8)
        let envoy = try Child(
            RealEnvoy.envoy!, ["-c", work + "/bootstrap.yaml", "--disable-hot-restart", "-l", "info", "--concurrency", "2"],
            environment: ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH": RealEnvoy.moduleDir!], logPath: work + "/envoy.log")
        defer {
            _ = HTTP.request("http://127.0.0.1:\(adminPort)/quitquitquit", method: "POST")
            envoy.stop()
        }
        try poll(timeout: 60, "the default gateway\n\(envoy.log.suffix(4000))") { Self.models(listenerPort).status == 200 }
        try poll(timeout: 10, "every type ACKed") { server.statuses.status(node: "default-test")?.isInSync == true }
        let listed = try JSONParser.parse(Array(Self.models(listenerPort).body.utf8))
        let ids = (listed["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 21, "\(ids)")
        for id in ids {
            let response: HTTP.Response
            let json = ["Authorization": "Bearer \(Self.demoKey)", "Content-Type": "application/json"]
            if id.contains("image") || id.contains("dall-e") {
                response = HTTP.request(
                    "http://127.0.0.1:\(listenerPort)/v1/images/generations", method: "POST", headers: json,
                    body: #"{"model":"\#(id)","prompt":"Hello"}"#)
            } else if id.contains("tts") {
                response = HTTP.request(
                    "http://127.0.0.1:\(listenerPort)/v1/audio/speech", method: "POST", headers: json,
                    body: #"{"model":"\#(id)","input":"Hello","voice":"alloy"}"#)
            } else if id.contains("whisper") {
                let form = "--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n\(id)\r\n--B\r\n"
                    + "Content-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF\r\n--B--\r\n"
                response = HTTP.request(
                    "http://127.0.0.1:\(listenerPort)/v1/audio/transcriptions", method: "POST",
                    headers: ["Authorization": "Bearer \(Self.demoKey)", "Content-Type": "multipart/form-data; boundary=B"],
                    body: form)
            } else if id.contains("rerank") {
                response = HTTP.request(
                    "http://127.0.0.1:\(listenerPort)/v1/rerank", method: "POST", headers: json,
                    body: #"{"model":"\#(id)","query":"capital of France","documents":["Paris is in France","Bananas"]}"#)
            } else if id.contains("embedding") {
                response = HTTP.request(
                    "http://127.0.0.1:\(listenerPort)/v1/embeddings", method: "POST",
                    headers: ["Authorization": "Bearer \(Self.demoKey)", "Content-Type": "application/json"],
                    body: #"{"model":"\#(id)","input":"Hello"}"#)
            } else {
                response = Self.chat(listenerPort, model: id)
            }
            #expect(response.status == 200, "\(id): \(response.body)")
        }
        print("xds-test: default config over ADS, \(ids.count) models answered: \(ids.joined(separator: ", "))")
    }
}

import Foundation
import SluiceControl
import SluiceXDSProto
import SwiftProtobuf
import Testing

@testable import SluiceXDS

/// The ADS state-of-the-world protocol of one stream, as pure logic.
@Suite struct StreamStateTests {
    static func request(
        _ type: XDSType, version: String = "", names: [String] = [], nonce: String = "", nack: String? = nil, node: String? = nil
    ) -> DiscoveryRequest {
        var request = DiscoveryRequest()
        request.typeURL = type.typeURL
        request.versionInfo = version
        request.resourceNames = names
        request.responseNonce = nonce
        if let nack {
            request.errorDetail.code = 3
            request.errorDetail.message = nack
        }
        if let node { request.node.id = node }
        return request
    }

    static func snapshot(_ version: String, models: [String] = ["gpt-4o-mini"], previous: XDSSnapshot? = nil) throws -> XDSSnapshot {
        XDSSnapshot(version: version, resources: try ResourceEncoder.encode(TestPlans.demo(models: models)), previous: previous)
    }

    @Test func firstWildcardRequestGetsEverythingThenACK() throws {
        let snapshot = try Self.snapshot("1")
        var state = ADSStreamState()
        let (events, responses) = state.receive(Self.request(.cluster, node: "n1"), snapshot: snapshot)
        #expect(events.isEmpty)
        #expect(state.node?.id == "n1")
        let response = try #require(responses.first)
        #expect(responses.count == 1)
        #expect(response.typeURL == XDSType.cluster.typeURL)
        #expect(response.versionInfo == "1")
        #expect(response.resources.count == 5)
        #expect(!response.nonce.isEmpty)

        let ack = state.receive(Self.request(.cluster, version: "1", nonce: response.nonce), snapshot: snapshot)
        #expect(ack.events == [.ack(type: .cluster, version: "1")])
        #expect(ack.responses.isEmpty)
        #expect(state.types[.cluster]?.ackedVersion == "1")
    }

    @Test func namedSubscriptionsGetOnlyTheNamesAskedAndChangesAreAnswered() throws {
        let snapshot = try Self.snapshot("1")
        var state = ADSStreamState()
        let first = state.receive(Self.request(.endpoint, names: ["openai"]), snapshot: snapshot).responses
        #expect(first.count == 1)
        #expect(first[0].resources.count == 1)
        // Envoy adds a cluster's endpoints while ACKing: answered with both.
        let more = state.receive(Self.request(.endpoint, version: "1", names: ["openai", "failover-openai"], nonce: first[0].nonce), snapshot: snapshot)
        #expect(more.events == [.ack(type: .endpoint, version: "1")])
        #expect(more.responses.count == 1)
        #expect(more.responses[0].resources.count == 2)
        #expect(more.responses[0].versionInfo == "1")
        // The same names again: nothing to send.
        let same = state.receive(
            Self.request(.endpoint, version: "1", names: ["failover-openai", "openai"], nonce: more.responses[0].nonce), snapshot: snapshot)
        #expect(same.responses.isEmpty)
        // A name the snapshot does not have yields nothing for it.
        let unknown = state.receive(Self.request(.secret, names: ["nope"]), snapshot: snapshot).responses
        #expect(unknown.count == 1 && unknown[0].resources.isEmpty)
    }

    @Test func staleNoncesAreIgnored() throws {
        let snapshot = try Self.snapshot("1")
        var state = ADSStreamState()
        let first = state.receive(Self.request(.listener), snapshot: snapshot).responses[0]
        let pushed = state.push(try Self.snapshot("2", models: ["a", "b"], previous: snapshot))
        // Only ECDS changed, and the stream never asked for it: nothing pushed.
        #expect(pushed.isEmpty)
        _ = state.receive(Self.request(.extensionConfig, names: ["sluice"]), snapshot: snapshot)
        let third = try Self.snapshot("3", models: ["c"], previous: snapshot)
        let push = state.push(third)
        #expect(push.map(\.typeURL) == [XDSType.extensionConfig.typeURL])
        // An ACK of the first ECDS response after the push went out is stale.
        let ecdsFirst = "2"  // second nonce of the stream
        let stale = state.receive(Self.request(.extensionConfig, version: "1", names: ["sluice"], nonce: ecdsFirst), snapshot: third)
        #expect(stale.events == [.stale(type: .extensionConfig, nonce: ecdsFirst)])
        #expect(stale.responses.isEmpty)
        #expect(first.nonce == "1")
    }

    @Test func nackIsReportedAndTheRejectedVersionNotResent() throws {
        let one = try Self.snapshot("1")
        var state = ADSStreamState()
        let first = state.receive(Self.request(.extensionConfig, names: ["sluice"]), snapshot: one).responses[0]
        _ = state.receive(Self.request(.extensionConfig, version: "1", names: ["sluice"], nonce: first.nonce), snapshot: one)
        let two = try Self.snapshot("2", models: ["x"], previous: one)
        let push = state.push(two)
        #expect(push.count == 1 && push[0].versionInfo == "2")
        let nack = state.receive(
            Self.request(.extensionConfig, version: "1", names: ["sluice"], nonce: push[0].nonce, nack: "config_new refused: unknown field"),
            snapshot: two)
        #expect(
            nack.events == [
                .nack(type: .extensionConfig, rejectedVersion: "2", keptVersion: "1", code: 3, message: "config_new refused: unknown field")
            ])
        #expect(nack.responses.isEmpty)
        #expect(state.types[.extensionConfig]?.ackedVersion == "1")
        // The same snapshot again (e.g. another wake-up): the NACKed version is not re-sent.
        #expect(state.push(two).isEmpty)
        // Unless a NACK also changes what Envoy asks for.
        var other = ADSStreamState()
        let sds = other.receive(Self.request(.secret, names: ["openai-key"]), snapshot: two).responses[0]
        let renamed = other.receive(
            Self.request(.secret, version: "", names: ["openai-key", "azure-key"], nonce: sds.nonce, nack: "no"), snapshot: two)
        #expect(renamed.responses.count == 1 && renamed.responses[0].resources.count == 2)
        // A fixed config is pushed.
        let three = try Self.snapshot("3", models: ["y"], previous: two)
        let fixed = state.push(three)
        #expect(fixed.count == 1 && fixed[0].versionInfo == "3")
    }

    @Test func pushesGoOutInMakeBeforeBreakOrder() throws {
        let one = try Self.snapshot("1")
        var state = ADSStreamState()
        for (type, names) in [(XDSType.extensionConfig, ["sluice"]), (.secret, ["openai-key"]), (.route, ["gateway"]),
            (.listener, []), (.endpoint, ["openai"]), (.cluster, [])] {
            _ = state.receive(Self.request(type, names: names), snapshot: one)
        }
        // A plan that changes every type.
        var plan = TestPlans.demo(listenerPort: 10001, openaiPort: 18201, models: ["m"], openaiKey: "k2")
        plan.clusters[0].connectTimeoutMillis = 3000
        plan.listeners[0].routes.removeLast()
        let two = XDSSnapshot(version: "2", resources: try ResourceEncoder.encode(plan), previous: one)
        let push = state.push(two)
        #expect(push.map(\.typeURL) == XDSType.pushOrder.map(\.typeURL))
        #expect(push.allSatisfy { $0.versionInfo == "2" })
        #expect(Set(push.map(\.nonce)).count == push.count)
    }

    @Test func configStatusFollowsACKsAndNACKs() {
        var status = ConfigStatus(nodeID: "n1")
        status.sentVersions[.listener] = "1"
        status.apply(.ack(type: .listener, version: "1"))
        #expect(status.isInSync)
        status.sentVersions[.extensionConfig] = "2"
        let now = Date(timeIntervalSince1970: 1000)
        status.apply(.nack(type: .extensionConfig, rejectedVersion: "2", keptVersion: "1", code: 13, message: "bad"), now: now)
        #expect(status.lastNack == ConfigStatus.Nack(type: .extensionConfig, rejectedVersion: "2", keptVersion: "1", code: 13, message: "bad", time: now))
        #expect(!status.isInSync)
        status.sentVersions[.extensionConfig] = "3"
        status.apply(.ack(type: .extensionConfig, version: "3"))
        #expect(status.lastNack == nil)
        #expect(status.lastNackEver?.rejectedVersion == "2")
        #expect(status.isInSync)
    }

    @Test func cacheRefusesInconsistentSnapshotsAndKeepsTheLastGoodOne() throws {
        let cache = SnapshotCache()
        let first = try cache.setPlan(TestPlans.demo())
        #expect(first.version == "1")
        var broken = try ResourceEncoder.encode(TestPlans.demo())
        broken[.route] = []
        #expect(throws: XDSEncodingError.inconsistentPlan(["listener 'gateway' uses route table 'gateway', which is not in the snapshot"])) {
            try cache.setResources(broken)
        }
        #expect(cache.snapshot()?.version == "1")
        let own = try cache.setPlan(TestPlans.demo(models: ["other"]), forNode: "n2")
        #expect(own.version == "2")
        #expect(cache.snapshot(forNode: "n2")?.version == "2")
        #expect(cache.snapshot(forNode: "n1")?.version == "1")
    }

    @Test func removedClustersGoLast() throws {
        let one = try Self.snapshot("1")
        var state = ADSStreamState()
        for (type, names) in [(XDSType.cluster, [String]()), (.route, ["gateway"]), (.extensionConfig, ["sluice"])] {
            _ = state.receive(Self.request(type, names: names), snapshot: one)
        }
        var plan = TestPlans.demo()
        plan.clusters.removeAll { $0.name == "azure" }
        plan.listeners[0].routes.removeAll { $0.cluster == "azure" }
        let two = XDSSnapshot(version: "2", resources: try ResourceEncoder.encode(plan), previous: one)
        let push = state.push(two)
        #expect(push.map(\.typeURL) == [XDSType.cluster.typeURL, XDSType.route.typeURL, XDSType.cluster.typeURL])
        #expect(push.map(\.versionInfo) == ["2-make", "2", "2"])
        #expect(push[0].resources.count == 5)  // the four kept and, until the routes change, azure
        #expect(push[2].resources.count == 4)
        let names = try push[2].resources.map { try Envoy_Config_Cluster_V3_Cluster(unpackingAny: $0).name }
        #expect(!names.contains("azure"))
        // Additions alone need no second step.
        let three = XDSSnapshot(version: "3", resources: try ResourceEncoder.encode(TestPlans.demo()), previous: two)
        #expect(state.push(three).map(\.versionInfo) == ["3", "3"])
    }

    @Test func afterANackTheLastAcceptedVersionIsServed() throws {
        let cache = SnapshotCache()
        let one = try cache.setPlan(TestPlans.demo())
        for type in XDSType.allCases { cache.accepted(type, version: one[type].version, node: "n1") }
        let two = try cache.setPlan(TestPlans.demo(models: ["bad"]))
        #expect(two[.extensionConfig].version == "2")
        cache.rejected(.extensionConfig, version: "2", node: "n1")
        let served = try #require(cache.snapshot(forNode: "n2"))
        #expect(served[.extensionConfig].version == "1")
        #expect(served[.extensionConfig] == one[.extensionConfig])
        #expect(cache.latestSnapshot()?[.extensionConfig].version == "2")
        // An ACK of the refused version (another Envoy) does not make it accepted.
        cache.accepted(.extensionConfig, version: "2", node: "n3")
        #expect(cache.snapshot()?[.extensionConfig].version == "1")
        // A new edit is a new candidate.
        let three = try cache.setPlan(TestPlans.demo(models: ["good"]))
        #expect(cache.snapshot()?[.extensionConfig].version == three.version)
    }

    @Test func rotatedSecretFilesArePushedAsSDSOnly() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-xds-rotate-\(UUID().uuidString)")
        try Data("first\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        var plan = TestPlans.demo()
        plan.secrets[0].source = .file(file.path)
        let server = ADSServer(port: 0)
        let first = try server.setSnapshot(plan)
        #expect(try server.refreshSecrets() == nil)
        try Data("second\n".utf8).write(to: file)
        let second = try #require(try server.refreshSecrets())
        #expect(XDSType.allCases.filter { second[$0].version != first[$0].version } == [.secret])
        let secret = try Envoy_Extensions_TransportSockets_Tls_V3_Secret(unpackingAny: try #require(second[.secret].byName["openai-key"]))
        #expect(secret.genericSecret.secret.inlineString == "second")
        try FileManager.default.removeItem(at: file)
        #expect(throws: XDSEncodingError.self) { try server.refreshSecrets() }
        #expect(server.cache.snapshot()?.version == second.version)
    }

    @Test func endpointsFollowEveryClusterPush() throws {
        let one = try Self.snapshot("1")
        var state = ADSStreamState()
        let cds = state.receive(Self.request(.cluster), snapshot: one).responses[0]
        let eds = state.receive(Self.request(.endpoint, names: ["openai"]), snapshot: one).responses[0]
        _ = state.receive(Self.request(.cluster, version: "1", nonce: cds.nonce), snapshot: one)
        _ = state.receive(Self.request(.endpoint, version: "1", names: ["openai"], nonce: eds.nonce), snapshot: one)
        // Only the openai cluster's upstream filter config changes: CDS, then the same EDS again.
        var plan = TestPlans.demo()
        plan.clusters[0].upstreamFilterConfig = Array(
            #"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"},"model_overrides":{"a":"b"}}"#.utf8)
        let two = XDSSnapshot(version: "2", resources: try ResourceEncoder.encode(plan), previous: one)
        #expect(two[.endpoint].version == "1")
        let push = state.push(two)
        #expect(push.map(\.typeURL) == [XDSType.cluster.typeURL, XDSType.endpoint.typeURL])
        #expect(push.map(\.versionInfo) == ["2", "1"])
        #expect(push[1].resources.count == 1)
        // Envoy's re-request for the warming cluster (same names and version) is then an ACK.
        let again = state.receive(Self.request(.endpoint, version: "1", names: ["openai"], nonce: push[1].nonce), snapshot: two)
        #expect(again.responses.isEmpty)
        // A snapshot without cluster changes sends no endpoints.
        plan.gatewayFilterConfig = TestPlans.gatewayConfig(models: ["x"])
        let three = XDSSnapshot(version: "3", resources: try ResourceEncoder.encode(plan), previous: two)
        #expect(state.push(three).isEmpty)  // (ECDS changed, but this stream does not ask for it)
    }
}

// `sluiced render`: the same plan as one static Envoy bootstrap, for users who want no daemon.
// Listeners carry their route table and the `sluice` filter's config inline (StringValue of the
// JSON the module reads), clusters are STATIC (or STRICT_DNS) with their endpoints inline, and
// the provider credentials are `static_resources.secrets` that the upstream filters read as
// bootstrap secrets. The output is JSON (Envoy reads it as YAML too: JSON is YAML).

import Foundation
public import SluiceControl
public import SluiceXDSProto
import SwiftProtobuf

/// The static bootstrap of a plan.
public enum StaticBootstrap {
    /// Envoy's identity in the bootstrap (`node`).
    public struct Node: Sendable, Equatable {
        public var id: String
        public var cluster: String

        public init(id: String = "sluice-gateway", cluster: String = "sluice") {
            self.id = id
            self.cluster = cluster
        }
    }

    /// Envoy's admin listener (`admin.address`).
    public struct Admin: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String = "127.0.0.1", port: Int = 9901) {
            self.host = host
            self.port = port
        }
    }

    /// The bootstrap as JSON (pretty enough to read: one field per line is not attempted; pipe
    /// through a YAML formatter if wanted). Secrets are read from their sources and inlined.
    public static func render(plan: EnvoyPlan, node: Node = Node(), admin: Admin? = Admin(), secrets: SecretReader = .live) throws(XDSEncodingError)
        -> String
    {
        let bootstrap = try bootstrap(plan: plan, node: node, admin: admin, secrets: secrets)
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.useDeterministicOrdering = true
        do {
            return try bootstrap.jsonString(options: options) + "\n"
        } catch {
            throw .invalidFilterConfig(owner: "bootstrap", reason: "JSON encoding failed: \(error)")
        }
    }

    /// The bootstrap message (for callers that want another encoding).
    public static func bootstrap(plan: EnvoyPlan, node: Node = Node(), admin: Admin? = Admin(), secrets: SecretReader = .live)
        throws(XDSEncodingError) -> Envoy_Config_Bootstrap_V3_Bootstrap
    {
        let problems = plan.validate()
        guard problems.isEmpty else { throw .inconsistentPlan(problems) }
        let encoder = PlanEncoder(plan: plan, mode: .inline)
        var bootstrap = Envoy_Config_Bootstrap_V3_Bootstrap()
        bootstrap.node.id = node.id
        bootstrap.node.cluster = node.cluster
        if let admin {
            bootstrap.admin.address = PlanEncoder.address(admin.host, admin.port)
        }
        var resources = Envoy_Config_Bootstrap_V3_Bootstrap.StaticResources()
        do {
            resources.listeners = try plan.listeners.map { try encoder.listener($0) }
            resources.clusters = try plan.clusters.map { try encoder.cluster($0) }
        } catch let error as XDSEncodingError {
            throw error
        } catch {
            throw .invalidFilterConfig(owner: "plan", reason: "\(error)")
        }
        for secret in plan.secrets {
            resources.secrets.append(PlanEncoder.secret(secret, value: try secrets.read(secret)))
        }
        bootstrap.staticResources = resources
        return bootstrap
    }
}

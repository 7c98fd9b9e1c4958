// `sluiced render`: the same plan as one static Envoy bootstrap, for users who want no daemon.
// Listeners carry their route table and the `sluice` filter's config inline (StringValue of the
// JSON the module reads), clusters are STATIC (or STRICT_DNS) with their endpoints inline, and
// the provider credentials are `static_resources.secrets` that the upstream filters read as
// bootstrap secrets. The output is YAML (block style, strings double-quoted) or JSON.

import Foundation
import SluiceCore
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

    /// The module's background worker and the cluster it reaches sluiced through: usage
    /// records (`POST /v1/fleet/usage`) and quota leases (`POST /v1/fleet/leases`) go to
    /// sluiced's admin listener with the fleet token.
    public struct Fleet: Sendable, Equatable {
        /// The cluster the worker's callouts use.
        public static let clusterName = "sluiced_fleet"
        /// The bootstrap extension name the module's worker answers to.
        public static let extensionName = "sluice_fleet"

        /// sluiced's admin listener.
        public var host: String
        public var port: Int
        /// Absolute path of the fleet token file.
        public var tokenFile: String
        public var flushIntervalMillis = 1000
        public var batchMaxRecords = 500
        public var bufferMaxRecords = 100_000
        public var timeoutMillis = 2000
        /// How often the worker trades quota leases with sluiced (`POST /v1/fleet/leases`); nil
        /// leaves leases off (each Envoy enforces its quotas alone).
        public var leaseIntervalMillis: Int? = 1000

        public init(host: String = "127.0.0.1", port: Int = 18001, tokenFile: String) {
            self.host = host
            self.port = port
            self.tokenFile = tokenFile
        }

        /// The worker's `extension_config` (the module parses it strictly).
        func extensionConfig(envoy nodeID: String) -> String {
            var writer = JSONWriter()
            writer.beginObject()
            writer.key("cluster")
            writer.string(Self.clusterName)
            writer.key("token_file")
            writer.string(tokenFile)
            writer.key("envoy")
            writer.string(nodeID)
            writer.key("flush_interval_ms")
            writer.int(flushIntervalMillis)
            writer.key("batch_max_records")
            writer.int(batchMaxRecords)
            writer.key("buffer_max_records")
            writer.int(bufferMaxRecords)
            writer.key("timeout_ms")
            writer.int(timeoutMillis)
            if let leaseIntervalMillis {
                writer.key("leases")
                writer.beginObject()
                writer.key("interval_ms")
                writer.int(leaseIntervalMillis)
                writer.endObject()
            }
            writer.endObject()
            return String(decoding: writer.bytes, as: UTF8.self)
        }

        /// `sluiced_fleet`: sluiced's admin listener, plain HTTP/1.1.
        func cluster() -> Envoy_Config_Cluster_V3_Cluster {
            var cluster = Envoy_Config_Cluster_V3_Cluster()
            cluster.name = Self.clusterName
            cluster.type = .static
            cluster.connectTimeout = Google_Protobuf_Duration(seconds: 1, nanos: 0)
            var assignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment()
            assignment.clusterName = Self.clusterName
            var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            var endpoint = Envoy_Config_Endpoint_V3_LbEndpoint()
            var target = Envoy_Config_Endpoint_V3_Endpoint()
            target.address = PlanEncoder.address(host, port)
            endpoint.endpoint = target
            group.lbEndpoints = [endpoint]
            assignment.endpoints = [group]
            cluster.loadAssignment = assignment
            return cluster
        }

        /// The bootstrap extension loading module `sluice` as the `sluice_fleet` worker.
        func bootstrapExtension(envoy nodeID: String) throws -> Envoy_Config_Core_V3_TypedExtensionConfig {
            var worker = Envoy_Extensions_Bootstrap_DynamicModules_V3_DynamicModuleBootstrapExtension()
            worker.dynamicModuleConfig = PlanEncoder.moduleConfig()
            worker.extensionName = Self.extensionName
            worker.extensionConfig = try XDSAny(message: Google_Protobuf_StringValue(extensionConfig(envoy: nodeID)))
            var extensionConfig = Envoy_Config_Core_V3_TypedExtensionConfig()
            extensionConfig.name = EnvoyNames.dynamicModulesBootstrap
            extensionConfig.typedConfig = try XDSAny(message: worker)
            return extensionConfig
        }
    }

    public enum Format: Sendable {
        /// Block-style YAML, keys in proto field order, strings double-quoted.
        case yaml
        /// Compact JSON (also valid YAML).
        case json
    }

    /// The bootstrap as text Envoy reads (`envoy -c bootstrap.yaml`). Secrets are read from
    /// their sources and inlined.
    public static func render(
        plan: EnvoyPlan, node: Node = Node(), admin: Admin? = Admin(), fleet: Fleet? = nil, format: Format = .yaml,
        secrets: SecretReader = .live
    ) throws(XDSEncodingError) -> String {
        let bootstrap = try bootstrap(plan: plan, node: node, admin: admin, fleet: fleet, secrets: secrets)
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.useDeterministicOrdering = true
        let json: String
        do {
            json = try bootstrap.jsonString(options: options)
        } catch {
            throw .invalidFilterConfig(owner: "bootstrap", reason: "JSON encoding failed: \(error)")
        }
        switch format {
        case .json:
            return json + "\n"
        case .yaml:
            guard let value = try? JSONParser.parse(Array(json.utf8), limits: JSONLimits(maxDepth: 256, maxBytes: Int.max)) else {
                throw .invalidFilterConfig(owner: "bootstrap", reason: "its JSON does not parse")
            }
            var out = "# Envoy bootstrap rendered by sluiced from its config: static listeners, clusters and secrets.\n"
            YAMLWriter.write(value, indent: 0, into: &out)
            return out
        }
    }

    /// The bootstrap message (for callers that want another encoding).
    public static func bootstrap(
        plan: EnvoyPlan, node: Node = Node(), admin: Admin? = Admin(), fleet: Fleet? = nil, secrets: SecretReader = .live
    ) throws(XDSEncodingError) -> Envoy_Config_Bootstrap_V3_Bootstrap
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
            if let fleet {
                guard !plan.clusters.contains(where: { $0.name == Fleet.clusterName }) else {
                    throw XDSEncodingError.invalidFilterConfig(
                        owner: "bootstrap", reason: "the config has a cluster named \(Fleet.clusterName), which the fleet worker needs")
                }
                resources.clusters.append(fleet.cluster())
                bootstrap.bootstrapExtensions = [try fleet.bootstrapExtension(envoy: node.id)]
            }
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

/// A minimal block-style YAML writer for JSON values: strings are JSON-escaped double-quoted
/// scalars (valid YAML), keys plain when they are identifier-like.
enum YAMLWriter {
    static func write(_ value: JSONValue, indent: Int, into out: inout String) {
        switch value {
        case .object(let object) where !object.members.isEmpty:
            for member in object.members {
                out += String(repeating: " ", count: indent) + key(member.key) + ":"
                writeNested(member.value, indent: indent, sequenceIndent: indent, into: &out)
            }
        case .array(let items) where !items.isEmpty:
            for item in items {
                out += String(repeating: " ", count: indent) + "-"
                switch item {
                case .object(let object) where !object.members.isEmpty:
                    // The first member on the dash line, the rest aligned under it.
                    var nested = ""
                    write(item, indent: indent + 2, into: &nested)
                    out += " " + nested.dropFirst(indent + 2)
                default:
                    writeNested(item, indent: indent, sequenceIndent: indent + 2, into: &out)
                }
            }
        default:
            out += String(repeating: " ", count: indent) + scalar(value) + "\n"
        }
    }

    /// A value after `key:` or `-`: nested mappings indented, sequences under a key at the key's
    /// own indentation (the usual style), sequences in sequences indented.
    private static func writeNested(_ value: JSONValue, indent: Int, sequenceIndent: Int, into out: inout String) {
        switch value {
        case .object(let object) where !object.members.isEmpty:
            out += "\n"
            write(value, indent: indent + 2, into: &out)
        case .array(let items) where !items.isEmpty:
            out += "\n"
            write(value, indent: sequenceIndent, into: &out)
        default:
            out += " " + scalar(value) + "\n"
        }
    }

    private static func scalar(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let number): number.text
        case .string(let text): String(decoding: JSONWriter.escaped(text), as: UTF8.self)
        case .object: "{}"
        case .array: "[]"
        }
    }

    private static func key(_ name: String) -> String {
        let plain = !name.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5f || byte == 0x2e
        } && name.utf8.first.map { $0 != 0x2e } == true
        return plain ? name : String(decoding: JSONWriter.escaped(name), as: UTF8.self)
    }
}

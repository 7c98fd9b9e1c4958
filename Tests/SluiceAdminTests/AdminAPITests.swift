// The admin API through HummingbirdTesting's router client (no network), on a SQLite store in a
// temp dir.
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import SluiceAdmin
import SluiceControl
import SluiceCore
import Testing

/// A response as the tests read it.
struct APIResponse {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String
    var json: JSONValue

    subscript(_ path: String...) -> JSONValue? {
        var value: JSONValue? = json
        for key in path { value = value?[key] }
        return value
    }

    /// `error.field` of an error body.
    var errorField: String? { self["error", "field"]?.stringValue }
    var errorCode: String? { self["error", "code"]?.stringValue }
}

/// Runs `body` against the admin API on a fresh store (SQLite unless told).
struct APIHarness {
    static let token = "test-admin-token-0123456789"
    var kind = StoreKind.sqlite
    var config = ConfigDefinitions.none
    var status: any ConfigStatusSource = StaticConfigStatusSource()
    var metrics: @Sendable () async -> String = { "" }
    var fleet = FleetIngest.disabled

    func run(_ body: @escaping @Sendable (APIClient, any AdminStore) async throws -> Void) async throws {
        let database = try TestDatabase(kind)
        try await database.with { store in
            var quiet = Logger(label: "sluice.admin.test")
            quiet.logLevel = .warning
            let router = AdminApplication.router(
                store: store, token: try AdminToken(secret: Self.token), config: config, status: status, metrics: metrics,
                fleet: fleet, logger: quiet)
            let app = Application(router: router)
            try await app.test(.router) { client in try await body(APIClient(client: client), store) }
        }
    }
}

struct APIClient: Sendable {
    let client: any TestClientProtocol

    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil,
        authorization: String? = "Bearer \(APIHarness.token)"
    ) async throws -> APIResponse {
        var headers: HTTPFields = [:]
        if let authorization { headers[.authorization] = authorization }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
        ) { response in
            let bytes = Array(response.body.readableBytesView)
            let json = (try? JSONParser.parse(bytes)) ?? .null
            return APIResponse(
                status: response.status, headers: response.headers, text: String(decoding: bytes, as: UTF8.self), json: json)
        }
    }
}

@Suite("Admin API")
struct AdminAPITests {
    @Test("health, the OpenAPI document and metrics need no token")
    func openRoutes() async throws {
        var harness = APIHarness()
        harness.metrics = { "sluice_fleet_envoys 2" }
        try await harness.run { api, store in
            let health = try await api.call(.get, "/healthz", authorization: nil)
            #expect(health.status == .ok)
            #expect(health["status"]?.stringValue == "ok")
            let document = try await api.call(.get, "/openapi.json", authorization: nil)
            #expect(document.status == .ok)
            #expect(document["openapi"]?.stringValue == "3.1.0")
            _ = try await store.createConsumer(ConsumerDraft(name: "a"))
            let metrics = try await api.call(.get, "/metrics", authorization: nil)
            #expect(metrics.status == .ok)
            #expect(metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(metrics.text.contains("sluice_admin_store_version 1\n"))
            #expect(metrics.text.hasSuffix("sluice_fleet_envoys 2\n"))
        }
    }

    @Test("every admin route refuses a missing or wrong token with 401 in the error shape")
    func unauthorized() async throws {
        try await APIHarness().run { api, _ in
            let routes: [(HTTPRequest.Method, String)] = [
                (.get, "/v1/admin/status"), (.get, "/v1/admin/consumers"), (.post, "/v1/admin/consumers"),
                (.get, "/v1/admin/consumers/x"), (.patch, "/v1/admin/consumers/x"), (.delete, "/v1/admin/consumers/x"),
                (.post, "/v1/admin/consumers/x/rotate"), (.post, "/v1/admin/consumers/x/disable"),
                (.post, "/v1/admin/consumers/x/enable"), (.put, "/v1/admin/consumers/x/limits"), (.get, "/v1/admin/teams"),
                (.post, "/v1/admin/teams"), (.get, "/v1/admin/teams/x"), (.delete, "/v1/admin/teams/x"),
                (.put, "/v1/admin/teams/x/limits"), (.get, "/v1/admin/usage"), (.get, "/v1/admin/usage/records"),
            ]
            let wrong: [String?] = [
                nil, "Bearer wrong-token-0123456789", "Bearer \(APIHarness.token)x", "Basic \(APIHarness.token)",
                APIHarness.token, "Bearer ",
            ]
            for (method, uri) in routes {
                for authorization in wrong {
                    let response = try await api.call(method, uri, #"{"name":"x"}"#, authorization: authorization)
                    #expect(response.status == .unauthorized, "\(method) \(uri) with \(authorization ?? "none")")
                    #expect(response.errorCode == "unauthorized")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer")
                }
            }
            // The scheme is case-insensitive.
            #expect(try await api.call(.get, "/v1/admin/consumers", authorization: "bearer \(APIHarness.token)").status == .ok)
        }
    }

    @Test("create returns the key once; reads never show it", arguments: StoreKind.available)
    func createReturnsKeyOnce(kind: StoreKind) async throws {
        try await APIHarness(kind: kind).run { api, store in
            let created = try await api.call(
                .post, "/v1/admin/consumers",
                #"{"name":"ci","team":"research","models":["gpt-4o","claude-*"],"expires_at":1900000000,"#
                    + #""limits":{"requests_per_minute":60,"budget_usd_per_day":20}}"#)
            #expect(created.status == .created)
            let key = try #require(created["key"]?.stringValue)
            #expect(key.hasPrefix("sk-sluice-"))
            #expect(created["consumer", "name"]?.stringValue == "ci")
            #expect(created["consumer", "source"]?.stringValue == "database")
            #expect(created["consumer", "team"]?.stringValue == "research")
            #expect(created["consumer", "key_sha256"]?.stringValue == SHA256.hash(key).hex)
            #expect(created["consumer", "limits", "budget_usd_per_day"]?.doubleValue == 20)
            #expect(created["consumer", "limits", "requests_per_minute"]?.int64Value == 60)
            #expect(created["consumer", "limits", "tokens_per_minute"] == nil)
            #expect(created["consumer", "expires_at"]?.int64Value == 1_900_000_000)
            #expect(try await store.consumer(named: "ci")?.keySHA256 == SHA256.hash(key))
            #expect(try await store.consumer(named: "ci")?.limits.budgetMicrosPerDay == 20_000_000)

            for uri in ["/v1/admin/consumers", "/v1/admin/consumers/ci"] {
                let read = try await api.call(.get, uri)
                #expect(read.status == .ok)
                #expect(!read.text.contains(key))
                #expect(!read.text.contains(String(key.dropFirst("sk-sluice-".count))))
            }
            let one = try await api.call(.get, "/v1/admin/consumers/ci")
            #expect(one["models"]?.arrayValue?.compactMap(\.stringValue) == ["gpt-4o", "claude-*"])
            #expect(one["key"] == nil)
        }
    }

    @Test("bad input is a 400 that names the field; a taken name is a 409")
    func validation() async throws {
        try await APIHarness().run { api, _ in
            let cases: [(String, String?)] = [
                (#"{"team":"x"}"#, "name"),
                (#"{"name":""}"#, "name"),
                (#"{"name":"a b"}"#, "name"),
                (#"{"name":7}"#, "name"),
                (#"{"name":"x","limits":{"requests_per_minute":0}}"#, "limits.requests_per_minute"),
                (#"{"name":"x","limits":{"requests_per_minute":100000001}}"#, "limits.requests_per_minute"),
                (#"{"name":"x","limits":{"tokens_per_minute":1.5}}"#, "limits.tokens_per_minute"),
                (#"{"name":"x","limits":{"budget_usd_per_day":-1}}"#, "limits.budget_usd_per_day"),
                (#"{"name":"x","limits":{"budget_usd_per_month":1000001}}"#, "limits.budget_usd_per_month"),
                (#"{"name":"x","limits":{"budget_usd_per_dya":5}}"#, "limits.budget_usd_per_dya"),
                (#"{"name":"x","limits":"lots"}"#, "limits"),
                (#"{"name":"x","models":["ok","bad*x*"]}"#, "models[1]"),
                (#"{"name":"x","models":"gpt-4o"}"#, "models"),
                (#"{"name":"x","expires_at":-1}"#, "expires_at"),
                (#"{"name":"x","disabled":"yes"}"#, "disabled"),
                (#"{"name":"x","team":"a/b"}"#, "team"),
                (#"{"name":"x","key":"sk-mine"}"#, "key"),
                (#"not json"#, nil),
                (#"[1,2]"#, nil),
            ]
            for (body, field) in cases {
                let response = try await api.call(.post, "/v1/admin/consumers", body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.errorCode == "invalid_request", "\(body)")
                #expect(response.errorField == field, "\(body): \(response.text)")
                #expect(response["error", "message"]?.stringValue?.isEmpty == false)
            }
            #expect(try await api.call(.post, "/v1/admin/consumers", #"{"name":"dup"}"#).status == .created)
            let duplicate = try await api.call(.post, "/v1/admin/consumers", #"{"name":"dup"}"#)
            #expect(duplicate.status == .conflict)
            #expect(duplicate.errorCode == "conflict")
            #expect(try await api.call(.get, "/v1/admin/consumers?source=both").errorField == "source")
        }
    }

    @Test("rotate returns a new key once and replaces the hash", arguments: StoreKind.available)
    func rotate(kind: StoreKind) async throws {
        try await APIHarness(kind: kind).run { api, store in
            let created = try await api.call(.post, "/v1/admin/consumers", #"{"name":"r"}"#)
            let first = try #require(created["key"]?.stringValue)
            let rotated = try await api.call(.post, "/v1/admin/consumers/r/rotate")
            #expect(rotated.status == .ok)
            let second = try #require(rotated["key"]?.stringValue)
            #expect(second != first)
            #expect(rotated["consumer", "key_sha256"]?.stringValue == SHA256.hash(second).hex)
            #expect(try await store.consumer(named: "r")?.keySHA256 == SHA256.hash(second))
            #expect(try await api.call(.post, "/v1/admin/consumers/ghost/rotate").status == .notFound)
        }
    }

    @Test("disable, enable, patch and limits")
    func changes() async throws {
        try await APIHarness().run { api, store in
            _ = try await api.call(
                .post, "/v1/admin/consumers", #"{"name":"c","team":"t","models":["m"],"limits":{"tokens_per_minute":9}}"#)
            let disabled = try await api.call(.post, "/v1/admin/consumers/c/disable")
            #expect(disabled.status == .ok)
            #expect(disabled["disabled"]?.boolValue == true)
            #expect(try await store.consumer(named: "c")?.disabled == true)
            #expect(try await api.call(.post, "/v1/admin/consumers/c/enable")["disabled"]?.boolValue == false)

            let patched = try await api.call(.patch, "/v1/admin/consumers/c", #"{"team":null,"expires_at":1800000000}"#)
            #expect(patched.status == .ok)
            #expect(patched["team"] == nil)
            #expect(patched["models"]?.arrayValue?.count == 1)  // absent: kept
            #expect(patched["expires_at"]?.int64Value == 1_800_000_000)
            #expect(patched["limits", "tokens_per_minute"]?.int64Value == 9)
            let patchedAgain = try await api.call(.patch, "/v1/admin/consumers/c", #"{"models":null,"limits":null}"#)
            #expect(patchedAgain["models"] == nil)
            #expect(patchedAgain["limits"]?.objectValue?.members.isEmpty == true)
            #expect(try await api.call(.patch, "/v1/admin/consumers/c", #"{"teem":"x"}"#).errorField == "teem")
            #expect(try await api.call(.patch, "/v1/admin/consumers/c", #"{"team":"no way"}"#).errorField == "team")
            #expect(try await api.call(.patch, "/v1/admin/consumers/ghost", #"{"disabled":true}"#).status == .notFound)

            let limits = try await api.call(
                .put, "/v1/admin/consumers/c/limits", #"{"requests_per_minute":"120","budget_usd_per_month":99.5}"#)
            #expect(limits.status == .ok)
            #expect(limits["limits", "requests_per_minute"]?.int64Value == 120)
            #expect(limits["limits", "budget_usd_per_month"]?.doubleValue == 99.5)
            #expect(
                try await store.consumer(named: "c")?.limits
                    == QuotaLimits(requestsPerMinute: 120, budgetMicrosPerMonth: 99_500_000))
            let tooMany = try await api.call(.put, "/v1/admin/consumers/c/limits", #"{"tokens_per_minute":10000000001}"#)
            #expect(tooMany.status == .badRequest)
            #expect(tooMany.errorField == "tokens_per_minute")
        }
    }

    @Test("delete answers 204, then 404")
    func delete() async throws {
        try await APIHarness().run { api, _ in
            _ = try await api.call(.post, "/v1/admin/consumers", #"{"name":"d"}"#)
            let deleted = try await api.call(.delete, "/v1/admin/consumers/d")
            #expect(deleted.status == .noContent)
            #expect(try await api.call(.get, "/v1/admin/consumers/d").status == .notFound)
            let again = try await api.call(.delete, "/v1/admin/consumers/d")
            #expect(again.status == .notFound)
            #expect(again.errorCode == "not_found")
        }
    }

    @Test("teams: create, list, read, limits, delete")
    func teams() async throws {
        try await APIHarness().run { api, store in
            let created = try await api.call(
                .post, "/v1/admin/teams", #"{"name":"research","limits":{"tokens_per_minute":200000,"budget_usd_per_day":50}}"#)
            #expect(created.status == .created)
            #expect(created["source"]?.stringValue == "database")
            #expect(created["limits", "budget_usd_per_day"]?.doubleValue == 50)
            #expect(try await api.call(.post, "/v1/admin/teams", #"{"name":"research"}"#).status == .conflict)
            #expect(try await api.call(.post, "/v1/admin/teams", #"{"name":"x","limits":{"rpm":1}}"#).errorField == "limits.rpm")
            _ = try await api.call(.post, "/v1/admin/teams", #"{"name":"alpha"}"#)
            let list = try await api.call(.get, "/v1/admin/teams")
            #expect(list["teams"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["alpha", "research"])
            #expect(try await api.call(.get, "/v1/admin/teams/research")["limits", "tokens_per_minute"]?.int64Value == 200_000)
            let limits = try await api.call(.put, "/v1/admin/teams/research/limits", #"{"requests_per_minute":5}"#)
            #expect(limits.status == .ok)
            #expect(try await store.team(named: "research")?.limits == QuotaLimits(requestsPerMinute: 5))
            #expect(try await api.call(.put, "/v1/admin/teams/ghost/limits", "{}").status == .notFound)
            #expect(try await api.call(.delete, "/v1/admin/teams/alpha").status == .noContent)
            #expect(try await api.call(.get, "/v1/admin/teams/alpha").status == .notFound)
            #expect(try await api.call(.delete, "/v1/admin/teams/alpha").status == .notFound)
        }
    }

    @Test(
        "config and database consumers are listed merged, each with its source; the database wins",
        arguments: StoreKind.available)
    func mergedWithConfig(kind: StoreKind) async throws {
        let configConsumers = [
            ConsumerSpec(name: "from-config", keySHA256: SHA256.hash("sk-a"), team: "ops", source: .config),
            ConsumerSpec(name: "shared", keySHA256: SHA256.hash("sk-b"), source: .config),
        ]
        let configTeams = [TeamSpec(name: "ops", limits: QuotaLimits(requestsPerMinute: 1), source: .config)]
        var harness = APIHarness(kind: kind)
        harness.config = ConfigDefinitions(consumers: { configConsumers }, teams: { configTeams })
        try await harness.run { api, _ in
            _ = try await api.call(.post, "/v1/admin/consumers", #"{"name":"shared","team":"db"}"#)
            _ = try await api.call(.post, "/v1/admin/consumers", #"{"name":"db-only"}"#)
            let list = try await api.call(.get, "/v1/admin/consumers")
            let consumers = try #require(list["consumers"]?.arrayValue)
            #expect(consumers.compactMap { $0["name"]?.stringValue } == ["from-config", "shared", "db-only"])
            #expect(consumers.compactMap { $0["source"]?.stringValue } == ["config", "database", "database"])
            #expect(consumers[1]["overrides_config"]?.boolValue == true)
            #expect(consumers[1]["team"]?.stringValue == "db")
            #expect(consumers[2]["overrides_config"] == nil)
            #expect(consumers[0]["key_sha256"]?.stringValue == SHA256.hash("sk-a").hex)

            let onlyConfig = try await api.call(.get, "/v1/admin/consumers?source=config")
            #expect(onlyConfig["consumers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["from-config"])
            let onlyDatabase = try await api.call(.get, "/v1/admin/consumers?source=database")
            #expect(onlyDatabase["consumers"]?.arrayValue?.count == 2)

            #expect(try await api.call(.get, "/v1/admin/consumers/from-config")["source"]?.stringValue == "config")
            #expect(try await api.call(.get, "/v1/admin/consumers/shared")["source"]?.stringValue == "database")
            for (method, uri) in [
                (HTTPRequest.Method.post, "/v1/admin/consumers/from-config/disable"),
                (.post, "/v1/admin/consumers/from-config/rotate"), (.delete, "/v1/admin/consumers/from-config"),
                (.put, "/v1/admin/teams/ops/limits"),
            ] {
                let refused = try await api.call(method, uri, "{}")
                #expect(refused.status == .conflict, "\(method) \(uri)")
                #expect(refused.errorCode == "defined_in_config", "\(method) \(uri)")
            }
            // Deleting the database's "shared" uncovers the config's.
            #expect(try await api.call(.delete, "/v1/admin/consumers/shared").status == .noContent)
            #expect(try await api.call(.get, "/v1/admin/consumers/shared")["source"]?.stringValue == "config")

            let teams = try await api.call(.get, "/v1/admin/teams")
            #expect(teams["teams"]?.arrayValue?.first?["source"]?.stringValue == "config")
        }
    }

    @Test("status reports each node's ACKed versions and last NACK from the status source")
    func status() async throws {
        let nack = NackStatus(
            typeURL: "type.googleapis.com/envoy.config.cluster.v3.Cluster", rejectedVersion: "8", keptVersion: "7", code: 3,
            message: "cluster 'x': unknown field", at: Date(timeIntervalSince1970: 1_800_000_000))
        let fleet = FleetStatus(
            servedVersion: "8",
            nodes: [
                EnvoyNodeStatus(
                    nodeID: "envoy-1", cluster: "edge", connected: true, inSync: false,
                    lastSeen: Date(timeIntervalSince1970: 1_800_000_001),
                    resources: [
                        ResourceTypeStatus(
                            typeURL: "type.googleapis.com/envoy.config.cluster.v3.Cluster", ackedVersion: "7", sentVersion: "8")
                    ], lastNack: nack)
            ])
        var harness = APIHarness()
        harness.status = StaticConfigStatusSource(fleet)
        try await harness.run { api, store in
            _ = try await store.createTeam(TeamDraft(name: "t"))
            let status = try await api.call(.get, "/v1/admin/status")
            #expect(status.status == .ok)
            #expect(status["admin_store_version"]?.int64Value == 1)
            #expect(status["served_version"]?.stringValue == "8")
            let node = try #require(status["nodes"]?.arrayValue?.first)
            #expect(node["node_id"]?.stringValue == "envoy-1")
            #expect(node["in_sync"]?.boolValue == false)
            #expect(node["resources"]?.arrayValue?.first?["acked_version"]?.stringValue == "7")
            #expect(node["last_nack"]?["message"]?.stringValue == "cluster 'x': unknown field")
            #expect(node["last_nack"]?["rejected_version"]?.stringValue == "8")
            #expect(node["last_nack"]?["at"]?.stringValue == "2027-01-15T08:00:00Z")
        }
    }

    @Test("unknown routes answer 404 in the error shape")
    func unknownRoute() async throws {
        try await APIHarness().run { api, _ in
            let response = try await api.call(.get, "/v1/admin/nothing-here")
            #expect(response.status == .notFound)
            #expect(response.errorCode == "not_found")
        }
    }

    @Test("every route is in the OpenAPI document, and every documented operation is a route")
    func openAPICoverage() async throws {
        let store = try await TestDatabase(.sqlite).open()
        let router = AdminApplication.router(store: store, token: try AdminToken(secret: APIHarness.token))
        let routed = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
        await store.close()

        let document = try JSONParser.parse(OpenAPIDocument.json)
        let paths = try #require(document["paths"]?.objectValue)
        var documented = Set<String>()
        for (path, item) in paths.members {
            for (method, _) in item.objectValue?.members ?? [] where method != "parameters" {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(routed == documented, "only routed: \(routed.subtracting(documented)); only documented: \(documented.subtracting(routed))")
        #expect(routed.count == 21)
        // Every $ref resolves.
        for reference in references(in: document) {
            let parts = reference.dropFirst(2).split(separator: "/").map(String.init)
            var target: JSONValue? = document
            for part in parts { target = target?[part] }
            #expect(target != nil, "dangling \(reference)")
        }
    }

    private func references(in value: JSONValue) -> [String] {
        switch value {
        case .object(let object):
            return object.members.flatMap { member -> [String] in
                if member.key == "$ref", let reference = member.value.stringValue { return [reference] }
                return references(in: member.value)
            }
        case .array(let elements):
            return elements.flatMap(references(in:))
        default:
            return []
        }
    }
}

@Suite("Admin token")
struct AdminTokenTests {
    @Test("from a file (trailing newline trimmed), from the environment, and too short")
    func sources() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-token-\(UUID().uuidString)").path
        try "  secret-token-from-a-file\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try AdminToken.fromFile(path)
        #expect(fromFile.matches("secret-token-from-a-file"))
        #expect(!fromFile.matches("secret-token-from-a-fil"))
        #expect(fromFile.authorizes(authorizationHeader: "Bearer secret-token-from-a-file"))
        #expect(!fromFile.authorizes(authorizationHeader: nil))

        let fromEnvironment = try AdminToken.fromEnvironment("TOKEN", environment: ["TOKEN": "environment-token-123"])
        #expect(fromEnvironment.matches("environment-token-123"))
        #expect(throws: AdminError.self) { try AdminToken.fromEnvironment("MISSING", environment: [:]) }
        #expect(throws: AdminError.self) { try AdminToken(secret: "short") }
        #expect(throws: AdminError.self) { try AdminToken.fromFile("/nonexistent/sluice-token") }
    }

    @Test("generated client keys: prefix, 43 base64url characters, from the generator given")
    func clientKeys() {
        var generator = SplitMix64(seed: 7)
        let key = ClientKeyGenerator.generate(using: &generator)
        #expect(key.hasPrefix("sk-sluice-"))
        let body = key.dropFirst("sk-sluice-".count)
        #expect(body.count == 43)
        #expect(body.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        var same = SplitMix64(seed: 7)
        #expect(ClientKeyGenerator.generate(using: &same) == key)
        #expect(ClientKeyGenerator.generate() != ClientKeyGenerator.generate())
    }
}

/// A seeded generator for deterministic tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

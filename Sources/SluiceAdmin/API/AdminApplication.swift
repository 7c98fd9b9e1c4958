// The admin API of sluiced (Hummingbird 2): consumers and their keys, teams, limits, the status
// of every Envoy, health, metrics and the OpenAPI document.
//
//     GET    /healthz                                  no token
//     GET    /openapi.json                             no token
//     GET    /metrics                                  no token (Prometheus text)
//     GET    /v1/admin/status                          xDS status per Envoy node
//     GET    /v1/admin/consumers[?source=config|database]
//     POST   /v1/admin/consumers                       201, returns the key once
//     GET    /v1/admin/consumers/{name}
//     PATCH  /v1/admin/consumers/{name}                team, models, expires_at, disabled, limits
//     DELETE /v1/admin/consumers/{name}                204
//     POST   /v1/admin/consumers/{name}/rotate         returns the new key once
//     POST   /v1/admin/consumers/{name}/disable
//     POST   /v1/admin/consumers/{name}/enable
//     PUT    /v1/admin/consumers/{name}/limits
//     GET    /v1/admin/teams
//     POST   /v1/admin/teams                           201
//     GET    /v1/admin/teams/{name}
//     DELETE /v1/admin/teams/{name}                    204
//     PUT    /v1/admin/teams/{name}/limits
//     GET    /v1/admin/usage                           sums per key/team/model/backend/provider, paged
//     GET    /v1/admin/usage/records                   raw usage records, newest first, paged
//     POST   /v1/fleet/usage                           usage records from Envoys (fleet token)
//     POST   /v1/fleet/leases                          quota leases: report, return, ask (fleet token)
//
// Everything under /v1/admin needs `Authorization: Bearer <admin token>`, everything under
// /v1/fleet the fleet token (a separate secret: an Envoy's token cannot administer). Errors are
// `{"error":{"code","message","field"?}}` with 400 (field named), 401, 404, 409, 413, 503.
public import Hummingbird
public import Logging
public import SluiceControl
import SluiceCore

/// The consumers and teams of the config file, which the API lists beside the database's.
public struct ConfigDefinitions: Sendable {
    public var consumers: @Sendable () async -> [ConsumerSpec]
    public var teams: @Sendable () async -> [TeamSpec]

    public init(
        consumers: @escaping @Sendable () async -> [ConsumerSpec], teams: @escaping @Sendable () async -> [TeamSpec]
    ) {
        self.consumers = consumers
        self.teams = teams
    }

    /// No config definitions.
    public static let none = ConfigDefinitions(consumers: { [] }, teams: { [] })
}

/// Builds the admin API.
public enum AdminApplication {
    /// The default listen address of the admin API (issue 9).
    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 18001

    /// The admin API as an application listening on `host:port`.
    /// - Parameters:
    ///   - store: Where database consumers and teams live.
    ///   - token: The bearer token `/v1/admin/...` requires.
    ///   - config: The config file's consumers and teams, listed beside the database's (the database wins a name).
    ///   - status: The xDS server's view of each Envoy.
    ///   - metrics: Prometheus text appended to `/metrics`; the route always serves
    ///     `sluice_admin_store_version` and the fleet's metrics.
    ///   - fleet: The fleet token and the metrics usage records feed.
    ///   - host: The address to listen on.
    ///   - port: The port to listen on (``defaultPort`` unless configured).
    ///   - logger: Where request failures and store errors are logged.
    public static func make(
        store: any AdminStore, token: AdminToken, config: ConfigDefinitions = .none,
        status: any ConfigStatusSource = StaticConfigStatusSource(),
        metrics: @escaping @Sendable () async -> String = { "" }, fleet: FleetIngest = .disabled,
        host: String = defaultHost, port: Int = defaultPort, logger: Logger = Logger(label: "sluice.admin")
    ) -> some ApplicationProtocol {
        Application(
            router: router(
                store: store, token: token, config: config, status: status, metrics: metrics, fleet: fleet, logger: logger),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "sluiced"),
            logger: logger)
    }

    /// The admin API's router, for tests (HummingbirdTesting's `.router`) or to mount elsewhere.
    public static func router(
        store: any AdminStore, token: AdminToken, config: ConfigDefinitions = .none,
        status: any ConfigStatusSource = StaticConfigStatusSource(),
        metrics: @escaping @Sendable () async -> String = { "" }, fleet: FleetIngest = .disabled,
        logger: Logger = Logger(label: "sluice.admin")
    ) -> Router<BasicRequestContext> {
        let api = AdminAPI(
            store: store, config: config, status: status, metrics: metrics, fleetMetrics: fleet.metrics, logger: logger)
        let fleetAPI = FleetAPI(store: store, ingest: fleet, logger: logger, now: AdminSchema.nowMillis)
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: AdminErrorMiddleware(logger: logger))
        router.get("healthz") { _, _ in AdminAPI.json(["status": "ok"]) }
        router.get("openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("metrics") { _, _ in try await api.metricsText() }

        let admin = router.group("v1/admin").add(middleware: AdminAuthMiddleware(token: token))
        admin.get("status") { _, _ in try await api.status() }
        admin.get("consumers") { request, _ in try await api.listConsumers(request) }
        admin.post("consumers") { request, _ in try await api.createConsumer(request) }
        admin.get("consumers/{name}") { _, context in try await api.getConsumer(try context.parameters.require("name")) }
        admin.patch("consumers/{name}") { request, context in
            try await api.updateConsumer(try context.parameters.require("name"), request)
        }
        admin.delete("consumers/{name}") { _, context in
            try await api.deleteConsumer(try context.parameters.require("name"))
        }
        admin.post("consumers/{name}/rotate") { _, context in
            try await api.rotateKey(try context.parameters.require("name"))
        }
        admin.post("consumers/{name}/disable") { _, context in
            try await api.setDisabled(true, try context.parameters.require("name"))
        }
        admin.post("consumers/{name}/enable") { _, context in
            try await api.setDisabled(false, try context.parameters.require("name"))
        }
        admin.put("consumers/{name}/limits") { request, context in
            try await api.setConsumerLimits(try context.parameters.require("name"), request)
        }
        admin.get("teams") { request, _ in try await api.listTeams(request) }
        admin.post("teams") { request, _ in try await api.createTeam(request) }
        admin.get("teams/{name}") { _, context in try await api.getTeam(try context.parameters.require("name")) }
        admin.delete("teams/{name}") { _, context in try await api.deleteTeam(try context.parameters.require("name")) }
        admin.put("teams/{name}/limits") { request, context in
            try await api.setTeamLimits(try context.parameters.require("name"), request)
        }
        admin.get("usage") { request, _ in try await fleetAPI.usage(request) }
        admin.get("usage/records") { request, _ in try await fleetAPI.records(request) }

        let fleetGroup = router.group("v1/fleet").add(middleware: FleetAuthMiddleware(token: fleet.token))
        fleetGroup.post("usage") { request, _ in try await fleetAPI.postUsage(request) }
        fleetGroup.post("leases") { request, _ in try await fleetAPI.postLeases(request) }
        return router
    }
}

// MARK: - Handlers

struct AdminAPI: Sendable {
    let store: any AdminStore
    let config: ConfigDefinitions
    let status: any ConfigStatusSource
    let metrics: @Sendable () async -> String
    let fleetMetrics: FleetMetrics
    /// Every change is logged at info (names only, never a key): the audit trail.
    let logger: Logger

    private func audit(_ event: String, _ kind: String, _ name: String) {
        logger.info("admin: \(kind) \(event)", metadata: [kind: "\(name)"])
    }

    // MARK: Consumers

    func listConsumers(_ request: Request) async throws -> Response {
        let source = try sourceFilter(request)
        let configured = await config.consumers()
        let stored = try await store.consumers()
        let configNames = Set(configured.map(\.name))
        let merged = ConsumerSpec.merged(config: configured, database: stored)
            .filter { source == nil || $0.source == source }
        return Self.json(
            ConsumerListJSON(
                consumers: merged.map {
                    ConsumerJSON($0, overridesConfig: $0.source == .database && configNames.contains($0.name))
                }))
    }

    func createConsumer(_ request: Request) async throws -> Response {
        let draft = try AdminRequest.consumerDraft(try await Self.body(request))
        let issued = try await store.createConsumer(draft)
        audit("created", "consumer", draft.name)
        return Self.json(try await issuedJSON(issued), status: .created)
    }

    func getConsumer(_ name: String) async throws -> Response {
        if let stored = try await store.consumer(named: name) {
            let shadows = await config.consumers().contains { $0.name == name }
            return Self.json(ConsumerJSON(stored, overridesConfig: shadows))
        }
        if let configured = await config.consumers().first(where: { $0.name == name }) {
            return Self.json(ConsumerJSON(configured))
        }
        throw AdminError(.notFound, "no consumer named '\(name)'")
    }

    func updateConsumer(_ name: String, _ request: Request) async throws -> Response {
        let changes = try AdminRequest.consumerChanges(try await Self.body(request))
        let response = try await consumerResponse(name) { try await store.updateConsumer(named: name, changes) }
        audit("updated", "consumer", name)
        return response
    }

    func setDisabled(_ disabled: Bool, _ name: String) async throws -> Response {
        let response = try await consumerResponse(name) { try await store.setDisabled(disabled, consumer: name) }
        audit(disabled ? "disabled" : "enabled", "consumer", name)
        return response
    }

    func setConsumerLimits(_ name: String, _ request: Request) async throws -> Response {
        let limits = try AdminRequest.limits(try await Self.body(request))
        let response = try await consumerResponse(name) { try await store.setLimits(limits, consumer: name) }
        audit("limits set", "consumer", name)
        return response
    }

    func rotateKey(_ name: String) async throws -> Response {
        let issued = try await configAware(name, isConsumer: true) { try await store.rotateKey(ofConsumer: name) }
        audit("key rotated", "consumer", name)
        return Self.json(try await issuedJSON(issued))
    }

    func deleteConsumer(_ name: String) async throws -> Response {
        try await configAware(name, isConsumer: true) { try await store.deleteConsumer(named: name) }
        audit("deleted", "consumer", name)
        return Response(status: .noContent)
    }

    // MARK: Teams

    func listTeams(_ request: Request) async throws -> Response {
        let source = try sourceFilter(request)
        let configured = await config.teams()
        let configNames = Set(configured.map(\.name))
        let merged = TeamSpec.merged(config: configured, database: try await store.teams())
            .filter { source == nil || $0.source == source }
        return Self.json(
            TeamListJSON(
                teams: merged.map { TeamJSON($0, overridesConfig: $0.source == .database && configNames.contains($0.name)) }
            ))
    }

    func createTeam(_ request: Request) async throws -> Response {
        let draft = try AdminRequest.teamDraft(try await Self.body(request))
        let team = try await store.createTeam(draft)
        audit("created", "team", draft.name)
        let shadows = await config.teams().contains { $0.name == team.name }
        return Self.json(TeamJSON(team, overridesConfig: shadows), status: .created)
    }

    func getTeam(_ name: String) async throws -> Response {
        if let stored = try await store.team(named: name) {
            let shadows = await config.teams().contains { $0.name == name }
            return Self.json(TeamJSON(stored, overridesConfig: shadows))
        }
        if let configured = await config.teams().first(where: { $0.name == name }) {
            return Self.json(TeamJSON(configured))
        }
        throw AdminError(.notFound, "no team named '\(name)'")
    }

    func setTeamLimits(_ name: String, _ request: Request) async throws -> Response {
        let limits = try AdminRequest.limits(try await Self.body(request))
        let team = try await configAware(name, isConsumer: false) { try await store.setTeamLimits(named: name, limits) }
        audit("limits set", "team", name)
        let shadows = await config.teams().contains { $0.name == name }
        return Self.json(TeamJSON(team, overridesConfig: shadows))
    }

    func deleteTeam(_ name: String) async throws -> Response {
        try await configAware(name, isConsumer: false) { try await store.deleteTeam(named: name) }
        audit("deleted", "team", name)
        return Response(status: .noContent)
    }

    // MARK: Status and metrics

    func status() async throws -> Response {
        let current = await status.fleetStatus()
        return Self.json(
            StatusJSON(
                adminStoreVersion: try await store.version(), servedVersion: current.servedVersion, nodes: current.nodes,
                lastRefusedChange: current.lastRefusedChange))
    }

    func metricsText() async throws -> Response {
        var text = """
            # HELP sluice_admin_store_version Version of the admin database (every write adds one).
            # TYPE sluice_admin_store_version gauge
            sluice_admin_store_version \(try await store.version())

            """
        text += fleetMetrics.text()
        let extra = await metrics()
        if !extra.isEmpty {
            text += extra
            if !extra.hasSuffix("\n") { text += "\n" }
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Helpers

    /// Runs a store operation on `name`; a database miss on a name the config file defines is a
    /// 409 that says so, not a 404.
    private func configAware<T>(_ name: String, isConsumer: Bool, _ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as AdminError where error.code == .notFound {
            let inConfig =
                isConsumer
                ? await config.consumers().contains { $0.name == name } : await config.teams().contains { $0.name == name }
            guard inConfig else { throw error }
            let kind = isConsumer ? "consumer" : "team"
            throw AdminError(
                .definedInConfig,
                "\(kind) '\(name)' is defined in the config file, which the admin API does not edit; change the file, "
                    + "or create a database \(kind) of the same name to override it")
        }
    }

    private func consumerResponse(_ name: String, _ operation: () async throws -> ConsumerSpec) async throws -> Response {
        let consumer = try await configAware(name, isConsumer: true, operation)
        let shadows = await config.consumers().contains { $0.name == name }
        return Self.json(ConsumerJSON(consumer, overridesConfig: shadows))
    }

    private func issuedJSON(_ issued: IssuedKey) async throws -> IssuedKeyJSON {
        let shadows = await config.consumers().contains { $0.name == issued.consumer.name }
        return IssuedKeyJSON(consumer: ConsumerJSON(issued.consumer, overridesConfig: shadows), key: issued.secret)
    }

    private func sourceFilter(_ request: Request) throws(AdminError) -> DefinitionSource? {
        guard let value = request.uri.queryParameters["source"] else { return nil }
        guard let source = DefinitionSource(rawValue: String(value)) else {
            throw .invalid("source", "must be 'config' or 'database'")
        }
        return source
    }

    static func body(_ request: Request) async throws -> [UInt8] {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: AdminRequest.maxBodyBytes)
        } catch {
            throw HTTPError(.contentTooLarge, message: "the body is larger than \(AdminRequest.maxBodyBytes) bytes")
        }
        return Array(buffer.readableBytesView)
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: AdminJSON.encode(value))))
    }
}

// MARK: - Middleware

/// Refuses `/v1/admin/...` without the admin token: 401 with `WWW-Authenticate: Bearer`.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: AdminToken

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard token.authorizes(authorizationHeader: request.headers[.authorization]) else {
            throw AdminError(.unauthorized, "missing or wrong admin token (Authorization: Bearer <token>)")
        }
        return try await next(request, context)
    }
}

/// Gives every error the admin API's JSON shape, Hummingbird's own (404 for an unknown route,
/// 405, 413) included; anything unexpected is logged and answered 500 without details.
struct AdminErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AdminError {
            if error.code == .storeFailure {
                logger.error("admin store failure", metadata: ["error": "\(error.message)", "path": "\(request.uri.path)"])
            }
            return Self.response(error.status, code: error.code.rawValue, message: error.message, field: error.field)
        } catch let error as HTTPError {
            let message = error.body ?? error.status.reasonPhrase
            let code =
                switch error.status {
                case .notFound: "not_found"
                case .methodNotAllowed: "method_not_allowed"
                case .contentTooLarge: "body_too_large"
                default: error.status.code < 500 ? "invalid_request" : "internal"
                }
            return Self.response(error.status, code: code, message: message, field: nil)
        } catch {
            logger.error("admin API error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            return Self.response(.internalServerError, code: "internal", message: "internal error", field: nil)
        }
    }

    static func response(_ status: HTTPResponse.Status, code: String, message: String, field: String?) -> Response {
        var response = AdminAPI.json(ErrorJSON(error: .init(code: code, message: message, field: field)), status: status)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}

extension AdminError {
    /// The HTTP status of this error.
    public var status: HTTPResponse.Status {
        switch code {
        case .invalidRequest: .badRequest
        case .unauthorized: .unauthorized
        case .notFound: .notFound
        case .conflict, .definedInConfig: .conflict
        case .storeFailure: .serviceUnavailable
        }
    }
}

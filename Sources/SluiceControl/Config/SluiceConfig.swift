// The validated form of a sluice.yaml: what the loader produces and the compiler reads. Every
// name a value refers to (a model's backend, a consumer's team, a fallback's members) is known
// to exist; every number is within the module's bounds.
public import SluiceCore

/// A loaded, validated config.
public struct SluiceConfig: Sendable, Equatable {
    public var listeners: [Listener]
    /// Provider backends and self-hosted pools, in file order (backends first).
    public var backends: [Backend]
    public var models: [Model]
    public var routes: [Route]
    public var consumers: [ConsumerSpec]
    public var teams: [TeamSpec]
    /// Prices by model name: the models' own `price` and the top-level `prices`.
    public var prices: [String: ModelPrice]
    /// Limits by model name: the models' own `limits` and the top-level `model_limits`.
    public var modelLimits: [String: QuotaLimits]
    /// What each scope whose limits say so does when sluiced is unreachable past its lease
    /// (`lease_failure` in a consumer's, team's or model's limits).
    public var leaseFailure: [QuotaScope: LeaseFailureConfig] = [:]
    public var gateway: Gateway

    public init(
        listeners: [Listener] = [], backends: [Backend] = [], models: [Model] = [], routes: [Route] = [],
        consumers: [ConsumerSpec] = [], teams: [TeamSpec] = [], prices: [String: ModelPrice] = [:],
        modelLimits: [String: QuotaLimits] = [:], gateway: Gateway = Gateway()
    ) {
        self.listeners = listeners
        self.backends = backends
        self.models = models
        self.routes = routes
        self.consumers = consumers
        self.teams = teams
        self.prices = prices
        self.modelLimits = modelLimits
        self.gateway = gateway
    }

    /// The backend or pool named `name`.
    public func backend(named name: String) -> Backend? { backends.first { $0.name == name } }

    /// Where clients connect.
    public struct Listener: Sendable, Equatable {
        public var name: String
        public var address: String
        public var port: Int
        public var tls: ListenerTLSPlan?
        public var accessLog: Bool

        public init(name: String, address: String = "127.0.0.1", port: Int, tls: ListenerTLSPlan? = nil, accessLog: Bool = true) {
            self.name = name
            self.address = address
            self.port = port
            self.tls = tls
            self.accessLog = accessLog
        }
    }

    /// Where a provider credential comes from.
    public enum Credential: Sendable, Equatable {
        /// An environment variable of sluiced's process; served to Envoy over SDS.
        case environment(String)
        /// A file sluiced reads (and re-reads when it changes); served to Envoy over SDS.
        case file(String)
        /// A secret Envoy gets on its own: a static secret of its bootstrap, or file-based SDS at `path`.
        case sds(name: String, path: String?)
        /// A fake key written in the config: accepted only for backends on loopback (the simulators).
        case demoValue(String)
    }

    /// AWS settings of a `bedrock_converse` backend (SigV4).
    public struct AWS: Sendable, Equatable {
        public var region: String
        public var accessKeyID: Credential
        public var secretAccessKey: Credential
        public var sessionToken: Credential?

        public init(region: String, accessKeyID: Credential, secretAccessKey: Credential, sessionToken: Credential? = nil) {
            self.region = region
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// Google Cloud settings of a `vertex_gemini` backend.
    public struct GCP: Sendable, Equatable {
        public var project: String
        public var location: String

        public init(project: String, location: String) {
            self.project = project
            self.location = location
        }
    }

    /// One host of a backend.
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Whether `host` is a loopback address or `localhost`.
        public var isLoopback: Bool {
            host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }

    /// A provider backend or a self-hosted pool: one Envoy cluster.
    public struct Backend: Sendable, Equatable {
        public enum Kind: String, Sendable, Equatable {
            /// A provider API (one or a few addresses).
            case provider
            /// Self-hosted model servers (the endpoint-picking issue scores their hosts).
            case pool
        }

        public var name: String
        public var kind: Kind
        public var schema: BackendSchema
        public var endpoints: [Endpoint]
        /// Connect with TLS (`https://` addresses); the SNI is the first endpoint's host.
        public var tls: Bool
        public var tlsVerify: Bool
        public var http2: Bool
        public var credential: Credential?
        public var azureAPIVersion: String?
        public var aws: AWS?
        public var gcp: GCP?
        /// Upstream model names by client model name, as written under the backend.
        public var modelOverrides: [String: String]
        public var defaultMaxTokens: Int?
        public var pathPrefix: String?
        /// `responses_api: false`: an OpenAI-compatible server without `/v1/responses`.
        public var servesResponses: Bool?
        /// How Envoy picks among the endpoints (`lb`, pools only).
        public var loadBalancing: LoadBalancing = .roundRobin

        public init(name: String, kind: Kind = .provider, schema: BackendSchema, endpoints: [Endpoint], tls: Bool = false) {
            self.name = name
            self.kind = kind
            self.schema = schema
            self.endpoints = endpoints
            self.tls = tls
            tlsVerify = true
            http2 = false
            credential = nil
            azureAPIVersion = nil
            aws = nil
            gcp = nil
            modelOverrides = [:]
            defaultMaxTokens = nil
            pathPrefix = nil
        }
    }

    /// A pool's host selection (`lb` and `endpoint_picker` in a pool).
    public enum LoadBalancing: Sendable, Equatable {
        case roundRobin
        case leastRequest
        /// The module's `sluice_endpoint_picker`: scored on the servers' live metrics.
        /// `settings` are the `endpoint_picker` block's fields, already checked, as the picker's
        /// JSON members (`metrics_path`, weights, thresholds).
        case endpointPicker(settings: JSONObject)

        public var isEndpointPicker: Bool {
            if case .endpointPicker = self { return true }
            return false
        }
    }

    /// Where requests for a model, or matching a rule, go.
    public enum Target: Sendable, Equatable {
        /// One backend or pool.
        case backend(String)
        /// Backends tried in order: the first, then the next on 429, 5xx or a connection failure.
        case fallback([String])

        /// The backends involved, in order.
        public var backendNames: [String] {
            switch self {
            case .backend(let name): [name]
            case .fallback(let names): names
            }
        }

        /// The `x-sluice-route` value (and Envoy route and cluster name) of this target.
        public var routeName: String {
            switch self {
            case .backend(let name): name
            case .fallback(let names): "fallback-" + names.joined(separator: "-")
            }
        }
    }

    /// One model clients may ask for.
    public struct Model: Sendable, Equatable {
        public var id: String
        /// nil: listed by `/v1/models` only, routed by a rule of `routes`.
        public var target: Target?
        /// The name sent upstream, unless `overrides` names one for the backend.
        public var upstreamModel: String?
        /// Upstream name by backend.
        public var overrides: [String: String]
        public var ownedBy: String
        public var created: Int64
        /// Other names clients may use; each routes like `id` and is sent upstream as `id` would be.
        public var aliases: [String]
        /// The model is a LoRA adapter of its pool's base model (`lora_adapter`): the endpoint
        /// picker prefers servers that have it loaded.
        public var loraAdapter = false

        public init(
            id: String, target: Target?, upstreamModel: String? = nil, overrides: [String: String] = [:], ownedBy: String = "sluice",
            created: Int64 = 0, aliases: [String] = []
        ) {
            self.id = id
            self.target = target
            self.upstreamModel = upstreamModel
            self.overrides = overrides
            self.ownedBy = ownedBy
            self.created = created
            self.aliases = aliases
        }

        /// The model name sent to `backend` for this model (nil: the client's name unchanged).
        public func upstreamName(for backend: String) -> String? { overrides[backend] ?? upstreamModel }
    }

    /// A routing rule: requests whose model (and headers) match go to `target`.
    public struct Route: Sendable, Equatable {
        public var models: [String]
        public var modelPrefix: String?
        /// Request headers that must all be present with these values (names lower-case).
        public var headers: [HeaderMatch]
        public var target: Target

        public init(models: [String] = [], modelPrefix: String? = nil, headers: [HeaderMatch] = [], target: Target) {
            self.models = models
            self.modelPrefix = modelPrefix
            self.headers = headers
            self.target = target
        }

        /// Whether the rule takes `model` (headers aside).
        public func takes(_ model: String) -> Bool {
            models.contains(model) || (modelPrefix.map { model.hasPrefix($0) } ?? false)
        }
    }

    /// One header condition of a route.
    public struct HeaderMatch: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Gateway-wide settings.
    public struct Gateway: Sendable, Equatable {
        public var maxRequestBytes: Int?
        public var responseCostHeader: String?
        public var defaultOutputTokensEstimate: Int?
        /// Upstream timeout of every route, streams included.
        public var timeoutSeconds: Int
        /// The backend of the catch-all route (requests no model route takes); nil = none.
        public var defaultBackend: String?
        /// The `jwt` block of the `sluice` filter, as the filter reads it.
        public var jwt: JSONValue?
        /// The lease failure policy of every scope that states none (`quota_lease_failure`);
        /// nil: the module's default (fail_open at 10 % of each limit per Envoy).
        public var quotaLeaseFailure: LeaseFailureConfig?

        public init(
            maxRequestBytes: Int? = nil, responseCostHeader: String? = nil, defaultOutputTokensEstimate: Int? = nil,
            timeoutSeconds: Int = 300, defaultBackend: String? = nil, jwt: JSONValue? = nil
        ) {
            self.maxRequestBytes = maxRequestBytes
            self.responseCostHeader = responseCostHeader
            self.defaultOutputTokensEstimate = defaultOutputTokensEstimate
            self.timeoutSeconds = timeoutSeconds
            self.defaultBackend = defaultBackend
            self.jwt = jwt
        }
    }
}

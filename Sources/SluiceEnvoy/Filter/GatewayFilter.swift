// The `sluice` HTTP filter: client-key check, `GET /v1/models`, and forwarding of authorised
// requests with the client's own credentials removed.
internal import SluiceCore

/// Metric ids defined once per config (Envoy stats, `metrics_namespace` prefix).
struct GatewayMetrics {
    /// `requests_total{outcome}`: outcome is forwarded, models_listed or unauthorized.
    let requests: CounterID

    init(_ handle: FilterConfigHandle) throws(MetricError) {
        requests = try handle.defineCounter("requests_total", labels: ["outcome"])
    }
}

final class GatewayFilterFactory: HTTPFilterFactory, @unchecked Sendable {
    // @unchecked: every stored property is immutable after init and itself thread-safe.
    let gateway: Gateway
    let metrics: GatewayMetrics

    private init(gateway: Gateway, metrics: GatewayMetrics) {
        self.gateway = gateway
        self.metrics = metrics
    }

    static func make(config: [UInt8], handle: FilterConfigHandle) -> Result<HTTPFilterFactory, ConfigLoadError> {
        let parsed: GatewayConfig
        do {
            parsed = try GatewayConfig.parse(config)
        } catch {
            return .failure(ConfigLoadError("invalid filter_config: \(error.message)"))
        }
        let metrics: GatewayMetrics
        do {
            metrics = try GatewayMetrics(handle)
        } catch {
            return .failure(ConfigLoadError("could not define stats: \(error)"))
        }
        EnvoyLog.info("sluice: filter config loaded: \(parsed.apiKeys.count) client keys, \(parsed.models.count) models")
        return .success(GatewayFilterFactory(gateway: Gateway(config: parsed), metrics: metrics))
    }

    override func makeFilter(_ stream: EnvoyHTTPStream) -> HTTPFilter? { GatewayFilter(self) }
}

final class GatewayFilter: HTTPFilter {
    private let factory: GatewayFilterFactory

    init(_ factory: GatewayFilterFactory) { self.factory = factory }

    override func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        let head = RequestHead(
            method: stream.withHeader(":method") { $0.map { Array($0) } } ?? [],
            path: stream.withHeader(":path") { $0.map { Array($0) } } ?? [],
            authorization: stream.withHeader("authorization") { $0.map { Array($0) } },
            apiKey: stream.withHeader("x-api-key") { $0.map { Array($0) } }
        )
        switch factory.gateway.decide(head) {
        case .forward(let consumer, _):
            // The client's gateway key must never reach a provider.
            stream.removeHeader("authorization")
            stream.removeHeader("x-api-key")
            stream.setMetadata(namespace: "sluice", key: "consumer", consumer.name)
            stream.increment(factory.metrics.requests, labels: ["forwarded"])
            return .continue
        case .reply(let reply, let outcome):
            stream.increment(factory.metrics.requests, labels: [outcome.rawValue])
            stream.sendLocalReply(
                status: reply.status, headers: ModuleHeaderList(reply.headers), body: reply.body, details: reply.details)
            return .stopIteration
        }
    }
}

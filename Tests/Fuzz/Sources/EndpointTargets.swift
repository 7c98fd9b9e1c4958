// Endpoint picking's parsers of outside bytes: the `x-sluice-epp` hand-over the load balancer
// reads (a client can send one), the picker's `lb_policy_config`, and a model server's /metrics
// page (an untrusted upstream).
import SluiceCore

func fuzzEndpoints(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    switch input.flags & 3 {
    case 1:
        guard let config = try? EndpointPickerConfig.parse(input.body) else { return }
        require(!config.pool.isEmpty, "a picker config without a pool")
        require((try? EndpointScorer(config: config.scoring)) != nil, "a parsed picker config the scorer refuses")
        // The scrape list: host addresses only, no more than a snapshot holds, no duplicates.
        require(config.endpoints.count <= EndpointSet.capacity, "\(config.endpoints.count) endpoints accepted")
        require(config.endpoints.allSatisfy(HostAddress.isValid), "an endpoint that is not ip:port accepted")
        require(Set(config.endpoints).count == config.endpoints.count, "a duplicate endpoint accepted")
        require(config.metricsPath.utf8.first == UInt8(ascii: "/"), "a relative metrics_path accepted")
    case 2:
        let metrics = ModelServerMetrics.parse(input.body)
        for (name, count) in [("waiting", metrics.waitingRequests), ("running", metrics.runningRequests)] {
            if let count { require(count >= 0 && count <= ModelServerMetrics.maxCount, "\(name) = \(count) out of range") }
        }
        if let usage = metrics.kvCacheUsage { require(usage >= 0 && usage <= 1, "KV-cache use \(usage) out of 0...1") }
        // The scraper's gate on the same page: what it accepts carries a metric the scorer reads,
        // and an endpoint built from it is fresh exactly when the scrape succeeded.
        var endpoint = ScrapedEndpoint(address: "127.0.0.1:8000")
        switch MetricsPage.read(status: 200, body: input.body, maxBytes: 1 << 20) {
        case .success(let read):
            require(read.waitingRequests != nil || read.runningRequests != nil || read.kvCacheUsage != nil, "an empty page accepted")
            endpoint.succeeded(read, atMillis: 1)
            require(endpoint.snapshotState.readAtMillis == 1, "a good scrape is not fresh")
        case .failure:
            endpoint.failed("unreadable", atMillis: 1)
            require(endpoint.snapshotState.readAtMillis == nil, "a failed scrape is not stale")
        }
    default:
        // A decoded hand-over is canonical: encoding it again gives the same bytes.
        guard let request = EndpointHandOver.decode(input.body) else { return }
        require(request.prefix.count <= EndpointHandOver.maxBlocks, "\(request.prefix.count) blocks decoded")
        let again = EndpointHandOver.encode(prefix: request.prefix, adapter: request.adapter)
        require(Array(again.utf8) == input.body, "hand-over does not round-trip: \(again)")
    }
}

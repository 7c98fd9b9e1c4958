// Fixtures of the quota benchmarks: the filter_config shape of the other benchmarks with every
// quota counter limited, the 1 KiB chat body, the usage a response reports, and the check that a
// store's counters hold exactly what was settled.
import Benchmark
import BenchmarkFixtures
import Foundation
import SluiceCore

/// Every counter a scope can have is limited, at the largest value the config accepts, so the
/// bookkeeping runs on every request and nothing is ever refused: the key has all six dimensions,
/// the team the two of envoy.yaml's `demo-team` (tokens per minute, month budget), the model
/// requests and tokens per minute: ten atomic counters per request.
let keyLimits = #"{"requests_per_minute":100000000,"tokens_per_minute":10000000000,"input_tokens_per_minute":10000000000,"output_tokens_per_minute":10000000000,"budget_usd_per_day":1000000,"budget_usd_per_month":1000000}"#
let teamLimits = #"{"tokens_per_minute":10000000000,"budget_usd_per_month":1000000}"#
let modelLimits = #"{"requests_per_minute":100000000,"tokens_per_minute":10000000000}"#
let miniPrice = #"{"input":0.15,"cached_input":0.075,"output":0.6}"#

/// The scopes one worker uses. Lane 0 is envoy.yaml's demo key; lanes 1, 2, … are copies under
/// other names (key `demo1`, team `demo-team1`, model `gpt-4o-mini1`, …), for the benchmark in
/// which each worker has a key, team and model of its own. Names stay within 15 bytes, as the
/// demo ones do, so every scope lookup hashes a small string.
struct Lane {
    var key: String
    var secret: String
    var team: String
    var model: String

    init(_ index: Int) {
        let suffix = index == 0 ? "" : String(index)
        key = "demo" + suffix
        secret = "sk-sluice-demo" + suffix
        team = "demo-team" + suffix
        model = "gpt-4o-mini" + suffix
    }
}

/// One lane per thread of the largest contended benchmark.
let maxLanes = max(4, ProcessInfo.processInfo.activeProcessorCount)

/// The `sluice` filter_config of envoy-module/envoy.yaml (keys, team, prices, models) with the
/// limits above; the lanes' models are priced and limited like `gpt-4o-mini`.
let filterConfig: String = {
    let lanes = (0..<maxLanes).map(Lane.init)
    let keys = lanes.map { #"{"name":"\#($0.key)","key":"\#($0.secret)","team":"\#($0.team)","limits":\#(keyLimits)}"# }
    let teams = lanes.map { #""\#($0.team)":\#(teamLimits)"# }
    let models = lanes.map { #""\#($0.model)":\#(modelLimits)"# }
    let lanePrices = lanes.map { #""\#($0.model)":\#(miniPrice)"# }
    return #"{"api_keys":[\#(keys.joined(separator: ","))],"#
        + #""team_limits":{\#(teams.joined(separator: ","))},"#
        + #""model_limits":{\#(models.joined(separator: ","))},"#
        + #""prices":{\#(lanePrices.joined(separator: ",")),"#
        + #""azure-gpt-4o-mini":{"input":0.165,"cached_input":0.083,"output":0.66},"#
        + #""claude-sonnet-4-6":{"input":3.0,"cached_input":0.3,"cache_write":3.75,"output":15.0},"#
        + #""bedrock-claude-haiku":{"input":0.8,"cached_input":0.08,"output":4.0},"#
        + #""gemini-2.5-flash":{"input":0.3,"cached_input":0.075,"output":2.5},"#
        + #""vertex-gemini-2.5-flash":{"input":0.3,"cached_input":0.075,"output":2.5},"#
        + #""text-embedding-3-small":{"input":0.02,"output":0},"gemini-embedding-001":{"input":0.15,"output":0}},"#
        + #""max_request_bytes":8388608,"models":["#
        + #"{"id":"gpt-4o-mini","owned_by":"openai","created":1721172741,"route":"openai"},"#
        + #"{"id":"text-embedding-3-small","owned_by":"openai","created":1705948997,"route":"openai"},"#
        + #"{"id":"azure-gpt-4o-mini","owned_by":"azure","created":1721172741,"route":"azure"},"#
        + #"{"id":"claude-sonnet-4-6","owned_by":"anthropic","created":1771286400,"route":"anthropic"},"#
        + #"{"id":"bedrock-claude-haiku","owned_by":"aws-bedrock","created":1729555200,"route":"bedrock"},"#
        + #"{"id":"gemini-2.5-flash","owned_by":"google","created":1750118400,"route":"gemini"},"#
        + #"{"id":"gemini-embedding-001","owned_by":"google","created":1752537600,"route":"gemini"},"#
        + #"{"id":"vertex-gemini-2.5-flash","owned_by":"google-vertex","created":1750118400,"route":"vertex"},"#
        + #"{"id":"sim-llama-3-8b","owned_by":"self-hosted","created":1713312000,"route":"local"},"#
        + #"{"id":"gpt-4o-mini-failover","owned_by":"sluice","created":1721172741,"route":"fallback-openai-azure"}]}"#
}()

/// A fresh gateway (and so a fresh quota store) per benchmark: the counters' expected totals
/// then depend on that benchmark's requests alone.
func makeGateway() throws -> Gateway {
    Gateway(config: try GatewayConfig.parse(Array(filterConfig.utf8)))
}

/// The clock is frozen: every call gets the same `now` (2026-11-27 12:00 UTC). A GCRA bucket's
/// debt then never drains, so after n settled requests a counter holds exactly n × the per-request
/// usage, and a lost update shows up as a difference. The CAS loops run the same branch as with
/// a moving clock at this request rate (the bucket is never empty: each request costs 600 ns of
/// the requests bucket and 1,344 ns of each token bucket, more than it takes to make one). The
/// filter reads `WallClock` itself; that read (a vDSO `clock_gettime`) is not measured here.
let nowMillis: Int64 = 1_795_780_800_000
let nowSeconds = nowMillis / 1000

/// The request head the filter hands `decide` (bytes already copied out of Envoy).
let requestHead = RequestHead(
    method: Array("POST".utf8), path: Array("/v1/chat/completions".utf8),
    authorization: Array("Bearer sk-sluice-demo".utf8))

/// `chatBody` (BenchmarkFixtures) is the filter benchmarks' 1 KiB chat request: `max_tokens` 256,
/// so the estimate is 256 input + 256 output tokens and 192 micro-dollars at gpt-4o-mini's prices.

/// What the filter benchmarks' upstream response reports (`prompt_tokens` 212,
/// `completion_tokens` 12): 39 micro-dollars at gpt-4o-mini's prices.
let reportedUsage = TokenUsage(inputTokens: 212, outputTokens: 12)

/// Routing rules with header matchers would read headers; the fixture has none.
let noHeaders: @Sendable (String) -> String? = { _ in nil }

/// Admit, then settle with the reported usage priced from the table: what the filter does per
/// request once it has a `QuotaRequest` (it prices the usage in `settleQuota` at stream end).
@inline(__always)
func admitSettle(_ gateway: Gateway, _ request: QuotaRequest) -> Bool {
    guard case .admitted(let ticket) = gateway.quotas.admit(request, now: nowMillis) else { return false }
    blackHole(ticket.headers)  // the filter sends them with the response
    let cost = gateway.config.prices.cost(usage: reportedUsage, model: request.model) ?? 0
    gateway.quotas.settle(ticket, actual: reportedUsage, costMicros: cost, now: nowMillis)
    return true
}

/// Settles each ticket as `admitSettle` does; a problem if there are not `expected` of them.
@inline(__always)
func settleAll(_ gateway: Gateway, _ tickets: [AdmissionTicket], expected: Int) -> String? {
    for ticket in tickets {
        let cost = gateway.config.prices.cost(usage: reportedUsage, model: "gpt-4o-mini") ?? 0
        gateway.quotas.settle(ticket, actual: reportedUsage, costMicros: cost, now: nowMillis)
    }
    return tickets.count == expected ? nil : "\(expected - tickets.count) requests refused"
}

/// The quota request of the demo key's chat request, as the filter builds it after routing.
func demoRequest(_ gateway: Gateway) -> Result<QuotaRequest, BenchmarkSetupError> {
    guard case .forward(let consumer, let endpoint) = gateway.decide(requestHead, now: nowSeconds) else {
        return .failure(BenchmarkSetupError("the demo key was not accepted"))
    }
    switch gateway.route(body: chatBody, endpoint: endpoint, consumer: consumer, header: noHeaders) {
    case .failure(let error): return .failure(BenchmarkSetupError("chat body did not route: \(error)"))
    case .success(let routed):
        let request = gateway.quotaRequest(for: routed, consumer: consumer, bodyByteCount: chatBody.count)
        guard request.key == "demo", request.team == "demo-team", request.model == "gpt-4o-mini",
            request.estimate == QuotaEstimate(inputTokens: 256, outputTokens: 256, costMicros: 192)
        else { return .failure(BenchmarkSetupError("unexpected quota request \(request)")) }
        return .success(request)
    }
}

/// The demo request under lane `index`'s key, team and model (same estimate).
func laneRequest(_ base: QuotaRequest, _ index: Int) -> QuotaRequest {
    let lane = Lane(index)
    var request = base
    request.key = lane.key
    request.team = lane.team
    request.model = lane.model
    return request
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Checks that every counter of a lane's key, team and model holds exactly `requests` settled
/// requests' worth of usage: all reservations given back, every settlement counted once. Also
/// checks that each scope has the number of limited dimensions the fixture gives it, so a config
/// change cannot silently stop exercising a counter.
func checkTotals(_ gateway: Gateway, lane: Lane, requests: Int64) -> String? {
    let cost = gateway.config.prices.cost(usage: reportedUsage, model: lane.model) ?? -1
    let perRequest: [QuotaDimension: Int64] = [
        .requestsPerMinute: 1,
        .tokensPerMinute: Int64(reportedUsage.inputTokens + reportedUsage.outputTokens),
        .inputTokensPerMinute: Int64(reportedUsage.inputTokens),
        .outputTokensPerMinute: Int64(reportedUsage.outputTokens),
        .budgetPerDay: cost,
        .budgetPerMonth: cost,
    ]
    let scopes: [(QuotaScope, Int)] = [(.key(lane.key), 6), (.team(lane.team), 2), (.model(lane.model), 2)]
    for (scope, dimensions) in scopes {
        var limited = 0
        for dimension in QuotaDimension.allCases {
            guard let used = gateway.quotas.used(scope, dimension, now: nowMillis) else { continue }
            limited += 1
            let expected = perRequest[dimension, default: 0] * requests
            if used != expected {
                return "\(scope) \(dimension): the counter holds \(used), \(requests) settled requests make \(expected)"
            }
        }
        if limited != dimensions { return "\(scope) has \(limited) limited dimensions, the fixture gives it \(dimensions)" }
    }
    return nil
}

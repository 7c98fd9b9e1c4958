// The module's per-request cost, driven through its real exported hooks by the fake Envoy
// (SluiceTestHost), next to baselines measured in the same run. Absolute numbers move with the
// machine; compare each `Filter.*` result with the `Baseline.*` results of the same run.
import Benchmark
import BenchmarkFixtures
import Foundation
import SluiceCore
import SluiceEnvoy
import SluiceTestHost

// MARK: - Fixtures

/// The `sluice` filter_config of envoy-module/envoy.yaml (key table, team, prices, models and
/// routes), so these benchmarks and the e2e script load the same shapes. Only the limits differ:
/// each is the largest the config accepts, so the quota bookkeeping runs on every request but
/// never turns the loop into 429s (envoy.yaml's demo key allows 600 requests a minute).
let filterConfig = #"""
    {"api_keys":[{"name":"demo","key":"sk-sluice-demo","team":"demo-team",\#
    "limits":{"requests_per_minute":100000000,"tokens_per_minute":10000000000,"budget_usd_per_day":1000000}}],\#
    "team_limits":{"demo-team":{"tokens_per_minute":10000000000,"budget_usd_per_month":1000000}},\#
    "prices":{"gpt-4o-mini":{"input":0.15,"cached_input":0.075,"output":0.6},\#
    "azure-gpt-4o-mini":{"input":0.165,"cached_input":0.083,"output":0.66},\#
    "claude-sonnet-4-6":{"input":3.0,"cached_input":0.3,"cache_write":3.75,"output":15.0},\#
    "bedrock-claude-haiku":{"input":0.8,"cached_input":0.08,"output":4.0},\#
    "gemini-2.5-flash":{"input":0.3,"cached_input":0.075,"output":2.5},\#
    "vertex-gemini-2.5-flash":{"input":0.3,"cached_input":0.075,"output":2.5},\#
    "text-embedding-3-small":{"input":0.02,"output":0},"gemini-embedding-001":{"input":0.15,"output":0}},\#
    "max_request_bytes":8388608,"models":[\#
    {"id":"gpt-4o-mini","owned_by":"openai","created":1721172741,"route":"openai"},\#
    {"id":"text-embedding-3-small","owned_by":"openai","created":1705948997,"route":"openai"},\#
    {"id":"azure-gpt-4o-mini","owned_by":"azure","created":1721172741,"route":"azure"},\#
    {"id":"claude-sonnet-4-6","owned_by":"anthropic","created":1771286400,"route":"anthropic"},\#
    {"id":"bedrock-claude-haiku","owned_by":"aws-bedrock","created":1729555200,"route":"bedrock"},\#
    {"id":"gemini-2.5-flash","owned_by":"google","created":1750118400,"route":"gemini"},\#
    {"id":"gemini-embedding-001","owned_by":"google","created":1752537600,"route":"gemini"},\#
    {"id":"vertex-gemini-2.5-flash","owned_by":"google-vertex","created":1750118400,"route":"vertex"},\#
    {"id":"sim-llama-3-8b","owned_by":"self-hosted","created":1713312000,"route":"local"},\#
    {"id":"gpt-4o-mini-failover","owned_by":"sluice","created":1721172741,"route":"fallback-openai-azure"}]}
    """#

/// What an OpenAI SDK client sends, minus HTTP/2 framing details Envoy strips before filters run.
func requestHeaders(method: String, path: String, key: String) -> [(String, String)] {
    var headers = [
        (":method", method), (":path", path), (":authority", "gateway.example.com"), (":scheme", "https"),
        ("accept", "application/json"), ("authorization", "Bearer \(key)"), ("user-agent", "OpenAI/Python 1.54.4"),
        ("x-stainless-lang", "python"), ("x-stainless-retry-count", "0"),
        ("x-request-id", "0b7c4f7e-3f0a-4d8e-9a51-2f1e6c9d8a17"), ("x-forwarded-proto", "https"),
    ]
    if method == "POST" { headers += [("content-type", "application/json"), ("content-length", "1024")] }
    return headers
}

let forwardedHeaders = requestHeaders(method: "POST", path: "/v1/chat/completions", key: "sk-sluice-demo")
let unauthorizedHeaders = requestHeaders(method: "POST", path: "/v1/chat/completions", key: "sk-not-a-key")
let listModelsHeaders = requestHeaders(method: "GET", path: "/v1/models", key: "sk-sluice-demo")


let upstreamResponseHeaders: [(String, String)] = [
    (":status", "200"), ("content-type", "application/json"), ("content-length", "280"),
    ("x-request-id", "0b7c4f7e-3f0a-4d8e-9a51-2f1e6c9d8a17"),
]
let upstreamResponseBody = Array(
    #"{"id":"chatcmpl-1","object":"chat.completion","created":1721172741,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"In-process filters avoid a network hop per request."},"finish_reason":"stop"}],"usage":{"prompt_tokens":212,"completion_tokens":12,"total_tokens":224}}"#
        .utf8)

/// The `sluice_upstream` filter_configs of envoy-module/envoy.yaml's `openai` and `anthropic`
/// clusters; the credentials come from Envoy generic secrets, which the fake host holds.
let openAIBackend = #"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key"}}"#
let anthropicBackend = #"{"backend":"anthropic","schema":"anthropic","credential":{"secret":"anthropic-key"}}"#
/// envoy-module/envoy.yaml's `bedrock` cluster: Converse, SigV4 with keys from generic secrets.
let bedrockBackend =
    #"{"backend":"bedrock","schema":"bedrock_converse","model_overrides":{"gpt-4o-mini":"anthropic.claude-3-5-haiku-20241022-v1:0"},"#
    + #""aws":{"region":"us-east-1","access_key_id":{"secret":"aws-key-id"},"secret_access_key":{"secret":"aws-secret"}}}"#

/// The request as the upstream filter sees it: after the downstream filter removed the client's
/// key and set the route.
let upstreamRequestHeaders: [(String, String)] =
    forwardedHeaders.filter { $0.0 != "authorization" } + [("x-sluice-route", "openai")]

/// What the downstream `sluice` filter leaves in dynamic metadata (for access logs) and in the
/// request's filter state (the link to upstream attempts) before the upstream filter runs.
let routedMetadata: [String: FakeMetadataValue] = [
    "consumer": .string("demo"), "model": .string("gpt-4o-mini"), "route": .string("openai"),
]
let routedContext = AttemptContext(
    endpoint: .chatCompletions, model: "gpt-4o-mini", stream: false, includeUsage: false, requestBodyBytes: chatBody.count)

let anthropicResponseHeaders: [(String, String)] = [
    (":status", "200"), ("content-type", "application/json"), ("content-length", "231"),
]
let anthropicResponseBody = Array(
    #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-6","content":[{"type":"text","text":"In-process filters avoid a network hop per request."}],"stop_reason":"end_turn","usage":{"input_tokens":212,"output_tokens":12}}"#
        .utf8)

let bedrockResponseHeaders: [(String, String)] = [
    (":status", "200"), ("content-type", "application/json"), ("content-length", "191"),
    ("x-amzn-requestid", "5d3b1f0e-8c2a-4f7b-9e61-0a4c2d8b7f13"),
]
let bedrockResponseBody = Array(
    #"{"output":{"message":{"role":"assistant","content":[{"text":"In-process filters avoid a network hop per request."}]}},"stopReason":"end_turn","usage":{"inputTokens":212,"outputTokens":12,"totalTokens":224}}"#
        .utf8)

func upstreamChain(_ config: String) -> FakeHTTPFilterChain {
    let host = FakeFilterConfig()
    host.secrets = [
        "openai-key": StableBytes("sk-sim-openai"), "anthropic-key": StableBytes("sk-ant-sim"),
        "aws-key-id": StableBytes("AKIDEXAMPLE"), "aws-secret": StableBytes("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    ]
    return FakeHTTPFilterChain(filterName: "sluice_upstream", filterConfig: config, config: host)
}

/// One upstream attempt, start to end, as Envoy drives the upstream filter chain.
@inline(__always)
func runAttempt(
    _ chain: FakeHTTPFilterChain, responseHeaders: [(String, String)], responseBody: [UInt8]
) -> FakeHTTPStreamDriver? {
    guard let driver = chain.newStream(upstreamRequestHeaders) else { return nil }
    driver.stream.dynamicMetadata["sluice"] = routedMetadata
    FilterLink.store(FilterLink(context: routedContext), onStream: driver.stream.pointer)
    blackHole(driver.requestHeaders(endOfStream: false))
    blackHole(driver.requestBody(chatBody, endOfStream: true))
    blackHole(driver.responseHeaders(responseHeaders, endOfStream: false))
    blackHole(driver.responseBody(responseBody, endOfStream: true))
    driver.streamComplete()
    return driver
}

// MARK: - Sanity checks

/// A benchmark of the wrong path would still produce numbers; fail loudly instead. "Forwarded"
/// is judged by outcome (no local reply, whole body sent upstream), not by hook status, so the
/// check holds whether the filter continues at headers or buffers the body first.
func checkPaths(_ chain: FakeHTTPFilterChain) -> String? {
    guard chain.loaded else { return "no filter config loaded (see the module's log above)" }
    guard let forwarded = chain.newStream(forwardedHeaders) else { return "newStream failed" }
    defer { forwarded.destroy() }
    forwarded.requestHeaders(endOfStream: false)
    forwarded.requestBody(chatBody, endOfStream: true)
    if let reply = forwarded.stream.localReply {
        return "chat request was not forwarded: local \(reply.status) \(reply.bodyString)"
    }
    guard forwarded.forwardedRequestBody == chatBody else { return "chat body did not go upstream intact" }

    func localStatus(_ headers: [(String, String)], endOfStream: Bool) -> UInt32? {
        guard let driver = chain.newStream(headers) else { return nil }
        defer { driver.destroy() }
        driver.requestHeaders(endOfStream: endOfStream)
        return driver.stream.localReply?.status
    }
    guard localStatus(unauthorizedHeaders, endOfStream: false) == 401 else { return "bad key did not get a local 401" }
    guard localStatus(listModelsHeaders, endOfStream: true) == 200 else { return "GET /v1/models did not get a local 200" }
    return nil
}

/// The upstream attempt reached the backend with its credential and came back untouched or
/// translated to OpenAI's shape.
func checkUpstream(
    _ chain: FakeHTTPFilterChain, credentialHeader: String, credential: String?,
    responseHeaders: [(String, String)], responseBody: [UInt8]
) -> String? {
    guard chain.loaded else { return "sluice_upstream config did not load" }
    guard let driver = runAttempt(chain, responseHeaders: responseHeaders, responseBody: responseBody) else {
        return "newStream failed"
    }
    defer { driver.destroy() }
    if let reply = driver.stream.localReply { return "upstream filter replied locally: \(reply.status) \(reply.bodyString)" }
    // A signature's value changes with the clock: only its presence is checked.
    guard let sent = driver.stream.requestHeaders[credentialHeader], credential.map({ sent == $0 }) ?? true else {
        return "backend credential not set"
    }
    if credential == nil, driver.stream.requestHeaders["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 ") != true {
        return "the attempt was not signed"
    }
    guard !driver.forwardedRequestBody.isEmpty else { return "request body did not go upstream" }
    let answer = String(decoding: driver.forwardedResponseBody, as: UTF8.self)
    guard answer.contains(#""object":"chat.completion""#) else { return "response is not an OpenAI chat completion" }
    guard let usage = FilterLink.stored(onStream: driver.stream.pointer)?.report?.usage, usage.inputTokens > 0 else {
        return "the attempt left no usage report in the request's link"
    }
    return nil
}

/// Grants every slot of `book` a slice of its whole limit for an hour, in the current window
/// and the next (the minute may turn during a run), through the book's own request cycle and on
/// the clocks the filter reads. nil, or what went wrong.
func grantEverySlot(_ book: LeaseBook) -> String? {
    var wall = timespec()
    var monotonic = timespec()
    clock_gettime(CLOCK_REALTIME, &wall)
    clock_gettime(CLOCK_MONOTONIC, &monotonic)
    let nowMillis = Int64(wall.tv_sec) * 1000 + Int64(wall.tv_nsec) / 1_000_000
    let nowNanos = Int64(monotonic.tv_sec) * 1_000_000_000 + Int64(monotonic.tv_nsec)
    let slots = book.slots.filter(\.isActive)
    guard slots.count == 5 else { return "the config acquired \(slots.count) lease slots, expected 5" }
    for slot in slots {
        // Demand, so the book has something to ask (a ticket admitted by fail_open is released).
        if case .admitted(let ticket) = slot.admit(1, nowMillis: nowMillis, nowNanos: nowNanos) { slot.settle(ticket, actual: 0) }
    }
    guard let request = book.nextRequest(nowMillis: nowMillis, nowNanos: nowNanos) else { return "no lease request" }
    var grants: [LeaseGrant] = []
    for slot in slots {
        let window = slot.key.dimension.period.window(atMillis: nowMillis).id
        for granted in [window, window + 1] {
            grants.append(
                LeaseGrant(
                    key: slot.key, window: granted, granted: slot.limit, held: slot.limit, ttlMillis: 3_600_000,
                    expiresAtMillis: 0, limit: slot.limit, consumed: 0, outstanding: slot.limit, remaining: 0,
                    windowEndMillis: 0))
        }
    }
    book.apply(grants, seq: request.seq, sentAtNanos: nowNanos)
    return slots.allSatisfy { $0.isValid(nowNanos: nowNanos) } ? nil : "a slot holds no valid lease"
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = perRequestConfiguration(
        localMetrics: [.wallClock, .cpuTotal, .mallocCountTotal, .instructions])

    // One config per process, as Envoy keeps one per listener; streams are per iteration.
    let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: filterConfig)
    let setupProblem = checkPaths(chain)

    // MARK: Baselines

    // The cheapest thing a hook can do: the C trampoline, the handle lookups and a method that
    // returns at once (`onRequestTrailers` on a stream that is not waiting for its body).
    Benchmark("Baseline.hookRoundTrip") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        guard let driver = chain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(driver.requestTrailers())
        }
        benchmark.stopMeasurement()
        driver.destroy()
    }

    // Any filter that looks at the body copies it at least once; this is that floor.
    Benchmark("Baseline.copy1KB") { benchmark in
        for _ in benchmark.scaledIterations {
            var copy: [UInt8] = []
            copy.reserveCapacity(chatBody.count)
            copy.append(contentsOf: chatBody)
            blackHole(copy)
        }
    }

    // The fake host's own cost of building a stream with the same headers (no hook called):
    // part of every `Filter.request.*` number that real Envoy would not pay the same way.
    Benchmark("Baseline.fakeStreamSetup") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(FakeStream(config: chain.config, requestHeaders: forwardedHeaders))
        }
    }

    // Everything `Filter.request.forwarded` makes the fake host do, with no hook called:
    // stream, body frames, response headers and the forwarded-body bookkeeping.
    Benchmark("Baseline.fakeHost.forwarded") { benchmark in
        for _ in benchmark.scaledIterations {
            let stream = FakeStream(config: chain.config, requestHeaders: forwardedHeaders)
            stream.receivedRequestBody = [StableBytes(chatBody)]
            let sentUp = stream.bodyBytes(stream.bufferedRequestBody) + stream.bodyBytes(stream.receivedRequestBody)
            stream.receivedRequestBody = []
            stream.responseHeaders = FakeHeaderMap(upstreamResponseHeaders)
            stream.receivedResponseBody = [StableBytes(upstreamResponseBody)]
            let sentDown =
                stream.bodyBytes(stream.bufferedResponseBody) + stream.bodyBytes(stream.receivedResponseBody)
            stream.receivedResponseBody = []
            blackHole((stream, sentUp, sentDown))
        }
    }

    // MARK: Whole requests through the exported hooks

    Benchmark("Filter.request.forwarded") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        // State builds up over a run (quota windows, budgets): a path that starts answering
        // locally half-way would be measured as "forwarded" without this count.
        var answeredLocally: UInt32? = nil
        for _ in benchmark.scaledIterations {
            guard let driver = chain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: false))
            blackHole(driver.requestBody(chatBody, endOfStream: true))
            blackHole(driver.responseHeaders(upstreamResponseHeaders, endOfStream: false))
            blackHole(driver.responseBody(upstreamResponseBody, endOfStream: true))
            if let reply = driver.stream.localReply { answeredLocally = reply.status }
            driver.streamComplete()
            driver.destroy()
        }
        if let answeredLocally { benchmark.error("a forwarded request was answered locally with \(answeredLocally)") }
    }

    // The same with the fleet worker's queue published, as when Envoy runs the `sluice_fleet`
    // bootstrap extension: the filter also reads x-request-id and the backend, makes a usage
    // record and pushes it. The difference to `Filter.request.forwarded` is the record's cost on
    // the worker thread. The queue is drained (the main thread's job) outside the measurement and
    // withdrawn after each sample, so no other benchmark sees it.
    let fleetQueue = BoundedMPSCQueue<FleetUsageRecord>(minimumCapacity: 1024)
    Benchmark("Filter.request.forwarded.fleet") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        ProcessUsageQueue.publish(fleetQueue)
        defer { ProcessUsageQueue.withdraw() }
        benchmark.startMeasurement()
        var answeredLocally: UInt32? = nil
        for _ in benchmark.scaledIterations {
            guard let driver = chain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: false))
            blackHole(driver.requestBody(chatBody, endOfStream: true))
            blackHole(driver.responseHeaders(upstreamResponseHeaders, endOfStream: false))
            blackHole(driver.responseBody(upstreamResponseBody, endOfStream: true))
            if let reply = driver.stream.localReply { answeredLocally = reply.status }
            driver.streamComplete()
            driver.destroy()
        }
        benchmark.stopMeasurement()
        if let answeredLocally { benchmark.error("a forwarded request was answered locally with \(answeredLocally)") }
        let records = fleetQueue.drain(max: .max) { blackHole($0) }
        if records != benchmark.scaledIterations.count {
            benchmark.error("\(records) usage records for \(benchmark.scaledIterations.count) requests")
        }
    }

    // The same with fleet quota leases, as when the `sluice_fleet` worker runs with `leases`: the
    // config is built while a lease book is published (so it acquires a slot for each of the
    // key's and team's five limits) and every slot holds a slice granted for an hour; each
    // request also admits against the slots and settles them. The difference to
    // `Filter.request.forwarded` is the lease check's cost.
    let leaseBook = LeaseBook(envoy: "bench", boot: "1")
    ProcessLeaseBook.publish(leaseBook)
    let leaseChain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: filterConfig)
    ProcessLeaseBook.withdraw()
    Benchmark("Filter.request.forwarded.leases") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        if let problem = grantEverySlot(leaseBook) { return benchmark.error(problem) }
        func failOpenAdmitted() -> Int64 { leaseBook.slots.reduce(0) { $0 + $1.counts.failOpenAdmitted } }
        let failOpenBefore = failOpenAdmitted()
        benchmark.startMeasurement()
        var answeredLocally: UInt32? = nil
        for _ in benchmark.scaledIterations {
            guard let driver = leaseChain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: false))
            blackHole(driver.requestBody(chatBody, endOfStream: true))
            blackHole(driver.responseHeaders(upstreamResponseHeaders, endOfStream: false))
            blackHole(driver.responseBody(upstreamResponseBody, endOfStream: true))
            if let reply = driver.stream.localReply { answeredLocally = reply.status }
            driver.streamComplete()
            driver.destroy()
        }
        benchmark.stopMeasurement()
        if let answeredLocally { benchmark.error("a forwarded request was answered locally with \(answeredLocally)") }
        if failOpenAdmitted() != failOpenBefore {
            benchmark.error("requests were admitted by fail_open, not against a slice")
        }
    }

    // The same request to a model served by an endpoint-picked pool: the filter also hashes the
    // prompt's leading blocks and sets the `x-sluice-epp` hand-over header for the load
    // balancer. The difference to `Filter.request.forwarded` is the hand-over's cost.
    let pickedChain = FakeHTTPFilterChain(
        filterName: "sluice",
        filterConfig: filterConfig.replacingOccurrences(
            of: #""route":"openai"},"#, with: #""route":"openai","endpoint_picking":true},"#, options: [], range: nil))
    let pickedProblem = checkPaths(pickedChain)
    Benchmark("Filter.request.forwarded.endpointPicking") { benchmark in
        if let pickedProblem { return benchmark.error(pickedProblem) }
        // Outside the measurement: the path under test does set the header.
        guard let probe = pickedChain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
        probe.requestHeaders(endOfStream: false)
        probe.requestBody(chatBody, endOfStream: true)
        let handedOver = probe.stream.requestHeaders[EndpointHandOver.headerName].flatMap { EndpointHandOver.decode(Array($0.utf8)) }
        probe.streamComplete()
        probe.destroy()
        guard let handedOver, handedOver.prefix.count == 3 else { return benchmark.error("the x-sluice-epp hand-over header was not set") }
        benchmark.startMeasurement()
        var answeredLocally: UInt32? = nil
        for _ in benchmark.scaledIterations {
            guard let driver = pickedChain.newStream(forwardedHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: false))
            blackHole(driver.requestBody(chatBody, endOfStream: true))
            blackHole(driver.responseHeaders(upstreamResponseHeaders, endOfStream: false))
            blackHole(driver.responseBody(upstreamResponseBody, endOfStream: true))
            if let reply = driver.stream.localReply { answeredLocally = reply.status }
            driver.streamComplete()
            driver.destroy()
        }
        benchmark.stopMeasurement()
        if let answeredLocally { benchmark.error("a forwarded request was answered locally with \(answeredLocally)") }
    }

    // The load balancer's `choose_host` among 8 healthy hosts through its exported hook, without
    // a snapshot (least-request on rq_active) and with a fresh one (scored, prefix recorded).
    // The fake host allocates when it hands out addresses and header values (Envoy lends its
    // own strings), so the malloc counts here are mostly the fake's.
    let pickerAddresses = (1...8).map { "10.0.0.\($0):8000" }
    let pickerHosts = [pickerAddresses.enumerated().map { FakeLoadBalancer.Host($0.element, activeRequests: UInt64($0.offset % 3)) }]
    let pickerHandOver = EndpointHandOver.encode(
        prefix: PrefixBlockHashes(prompt: Array(chatBody) + Array(chatBody) + Array(chatBody) + Array(chatBody)), adapter: nil)
    let leastRequestLB = FakeLoadBalancer(config: #"{"pool":"bench-none"}"#, hosts: pickerHosts)
    Benchmark("LB.chooseHost.leastRequest.8") { benchmark in
        guard leastRequestLB.loaded else { return benchmark.error("the picker config did not load") }
        let context = FakeLBContext(headers: [(EndpointHandOver.headerName, pickerHandOver)])
        for _ in benchmark.scaledIterations {
            blackHole(leastRequestLB.choose(context))
        }
    }
    let scoredLB = FakeLoadBalancer(config: #"{"pool":"bench-scored","prefix_blocks_per_endpoint":4096}"#, hosts: pickerHosts)
    Benchmark("LB.chooseHost.scored.8") { benchmark in
        guard scoredLB.loaded else { return benchmark.error("the picker config did not load") }
        let context = FakeLBContext(headers: [(EndpointHandOver.headerName, pickerHandOver)])
        var generation: UInt64 = 0
        for _ in benchmark.scaledIterations {
            // A new snapshot every 50 picks, as a busy gateway would see at 1,000 requests a second.
            if generation % 50 == 0 {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let endpoints = (0..<8).map { EndpointState(metrics: ModelServerMetrics(waitingRequests: $0 % 3, runningRequests: 4, kvCacheUsage: 0.3), readAtMillis: now) }
                ProcessEndpointSnapshots.publish(
                    PublishedEndpointPool(pool: "bench-scored", addresses: pickerAddresses, snapshot: EndpointSnapshot(endpoints: endpoints, generation: generation / 50 + 1)))
            }
            generation += 1
            blackHole(scoredLB.choose(context))
        }
        if (scoredLB.counters["endpoint_picker_picks_scored"] ?? 0) == 0 { benchmark.error("no pick was scored") }
    }

    // A client with a wrong key: no body hooks, Envoy sends the module's local reply.
    Benchmark("Filter.request.unauthorized") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        for _ in benchmark.scaledIterations {
            guard let driver = chain.newStream(unauthorizedHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: false))
            driver.streamComplete()
            driver.destroy()
        }
    }

    Benchmark("Filter.request.listModels") { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        for _ in benchmark.scaledIterations {
            guard let driver = chain.newStream(listModelsHeaders) else { return benchmark.error("newStream failed") }
            blackHole(driver.requestHeaders(endOfStream: true))
            driver.streamComplete()
            driver.destroy()
        }
    }

    // MARK: One upstream attempt through the exported hooks (`sluice_upstream`)

    // OpenAI client, OpenAI backend: credential and path per attempt, bodies pass through.
    let openAIChain = upstreamChain(openAIBackend)
    let openAIProblem = checkUpstream(
        openAIChain, credentialHeader: "authorization", credential: "Bearer sk-sim-openai",
        responseHeaders: upstreamResponseHeaders, responseBody: upstreamResponseBody)
    Benchmark("Filter.upstream.openaiToOpenAI") { benchmark in
        if let openAIProblem { return benchmark.error(openAIProblem) }
        for _ in benchmark.scaledIterations {
            guard let driver = runAttempt(openAIChain, responseHeaders: upstreamResponseHeaders, responseBody: upstreamResponseBody)
            else { return benchmark.error("newStream failed") }
            driver.destroy()
        }
    }

    // OpenAI client, Anthropic backend: the 1 KB request and the answer are translated.
    let anthropicChain = upstreamChain(anthropicBackend)
    let anthropicProblem = checkUpstream(
        anthropicChain, credentialHeader: "x-api-key", credential: "sk-ant-sim",
        responseHeaders: anthropicResponseHeaders, responseBody: anthropicResponseBody)
    Benchmark("Filter.upstream.openaiToAnthropic") { benchmark in
        if let anthropicProblem { return benchmark.error(anthropicProblem) }
        for _ in benchmark.scaledIterations {
            guard let driver = runAttempt(anthropicChain, responseHeaders: anthropicResponseHeaders, responseBody: anthropicResponseBody)
            else { return benchmark.error("newStream failed") }
            driver.destroy()
        }
    }

    // OpenAI client, Bedrock Converse backend: translated both ways, and every attempt signed
    // (SigV4 over the final body: two SHA-256s and an HMAC, the day's signing key kept).
    let bedrockChain = upstreamChain(bedrockBackend)
    let bedrockProblem = checkUpstream(
        bedrockChain, credentialHeader: "x-amz-date", credential: nil,
        responseHeaders: bedrockResponseHeaders, responseBody: bedrockResponseBody)
    Benchmark("Filter.upstream.openaiToBedrock") { benchmark in
        if let bedrockProblem { return benchmark.error(bedrockProblem) }
        for _ in benchmark.scaledIterations {
            guard let driver = runAttempt(bedrockChain, responseHeaders: bedrockResponseHeaders, responseBody: bedrockResponseBody)
            else { return benchmark.error("newStream failed") }
            driver.destroy()
        }
    }

    // MARK: Core, without any host

    // The header decision alone, from header bytes already copied out of Envoy.
    Benchmark("Core.gateway.decide") { benchmark in
        let gateway: Gateway
        do {
            gateway = Gateway(config: try GatewayConfig.parse(Array(filterConfig.utf8)))
        } catch {
            return benchmark.error("filter config: \(error)")
        }
        let head = RequestHead(
            method: Array("POST".utf8), path: Array("/v1/chat/completions".utf8),
            authorization: Array("Bearer sk-sluice-demo".utf8))
        guard case .forward = gateway.decide(head) else { return benchmark.error("demo key was not accepted") }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(gateway.decide(head))
        }
        benchmark.stopMeasurement()
    }

    // A JWT-identified request: the payload jwt_authn forwarded (a typical OIDC token's claims)
    // decoded from base64url and read for subject, team and models; no key hashing.
    Benchmark("Core.gateway.decide.jwt") { benchmark in
        let gateway: Gateway
        do {
            let config = String(filterConfig.dropLast()) + #"""
                ,"jwt":{"payload_header":"x-sluice-jwt-payload","payload_metadata_key":"jwt_payload",\#
                "team_claim":"team","models_claim":"models","limits":{"requests_per_minute":1000}}}
                """#
            gateway = Gateway(config: try GatewayConfig.parse(Array(config.utf8)))
        } catch {
            return benchmark.error("filter config: \(error)")
        }
        let claims = #"""
            {"iss":"https://idp.example.com","sub":"00u1a2b3c4d5e6f7g8h9","aud":"sluice","iat":1795750000,\#
            "exp":1795753600,"email":"alice@example.com","team":"research","models":["gpt-*","claude-*"]}
            """#
        let head = RequestHead(
            method: Array("POST".utf8), path: Array("/v1/chat/completions".utf8),
            verifiedJWTPayload: Array(Base64URL.encode(Array(claims.utf8)).utf8))
        guard case .forward(let consumer, _) = gateway.decide(head), consumer.team == "research" else {
            return benchmark.error("the token's payload was not accepted")
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(gateway.decide(head))
        }
        benchmark.stopMeasurement()
    }

    // Every key check hashes the presented key once before the constant-time table compare.
    Benchmark("Core.sha256.key") { benchmark in
        let key = Array("sk-sluice-0123456789abcdef012345".utf8)
        precondition(key.count == 32)
        for _ in benchmark.scaledIterations {
            blackHole(SHA256.hash(key))
        }
    }
}

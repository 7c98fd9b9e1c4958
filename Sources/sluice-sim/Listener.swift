import Foundation
import Hummingbird
import SluiceCore

/// Per-request facts a simulator may use besides the request itself.
struct SimContext: Sendable {
    let state: SimState
    /// Seconds since the epoch, for `created` fields.
    let now: Int
}

/// Token accounting of a generation, for in-flight gauges and non-streaming pacing.
struct SimUsage: Sendable {
    var promptTokens: Int
    var completionTokens: Int
}

/// One provider's simulator: checks credentials, validates and answers requests.
protocol ProviderSimulator: Sendable {
    /// The name used in `/__sim/last?provider=` and in logs.
    var name: String { get }
    /// nil when the request carries valid credentials; else the provider's auth error.
    func authenticate(_ request: SimRequest) -> SimResponse?
    /// Answers an authenticated request (including 404s in the provider's shape).
    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?)
    /// Extra unauthenticated endpoints (e.g. `/metrics`), nil when the path is not one.
    func serveExtra(_ request: SimRequest, state: SimState) -> SimResponse?
}

extension ProviderSimulator {
    func serveExtra(_ request: SimRequest, state: SimState) -> SimResponse? { nil }
}

/// The Hummingbird responder of one listener.
struct SimListener: Sendable {
    let simulator: any ProviderSimulator
    let state: SimState
    let paceMilliseconds: Int
    static let maxBodyBytes = 32 << 20

    func respond(to request: Request) async -> Response {
        let started = ContinuousClock.now
        var rawPath = request.uri.path
        if rawPath.isEmpty { rawPath = "/" }
        var headers = request.headers.map { (name: $0.name.rawName, value: $0.value) }
        // HTTP/1.1 `host` arrives as the request's authority, not as a header field; SigV4 signs it.
        if let authority = request.head.authority {
            headers.insert((name: "host", value: authority), at: 0)
        }
        let collected: ByteBuffer
        do {
            collected = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            let response = SimResponse.json(413, Array(utf8: #"{"error":"request body too large"}"#))
            return makeResponse(response, paceMilliseconds: 0) {}
        }
        let simRequest = SimRequest(
            method: request.method.rawValue, rawPath: rawPath, rawQuery: request.uri.query ?? "",
            headers: headers, body: Array(collected.readableBytesView)
        )
        var usage: SimUsage?
        let response: SimResponse
        if simRequest.method == "GET", rawPath == "/healthz" {
            response = .json(200, Array(utf8: #"{"status":"ok","provider":"\#(simulator.name)"}"#))
        } else if rawPath == "/__sim/last" {
            let provider = simRequest.query["provider"] ?? simulator.name
            if let recorded = state.lastRequest(provider: provider) {
                response = .json(200, recorded)
            } else {
                response = .json(404, Array(utf8: #"{"error":"no request recorded for provider"}"#))
            }
        } else if let extra = simulator.serveExtra(simRequest, state: state) {
            response = extra
        } else {
            let denial = simulator.authenticate(simRequest)
            state.record(provider: simulator.name, request: simRequest, authorized: denial == nil)
            if let denial {
                response = denial
            } else {
                let context = SimContext(state: state, now: Int(Date().timeIntervalSince1970))
                (response, usage) = simulator.handle(simRequest, context: context)
            }
        }
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        let kind: String
        switch response.body {
        case .bytes: kind = "body"
        case .stream(let chunks): kind = "stream(\(chunks.count))"
        }
        logLine("[\(simulator.name)] \(simRequest.method) \(rawPath) -> \(response.status) \(kind) \(milliseconds)ms")

        guard let usage else {
            return makeResponse(response, paceMilliseconds: paceMilliseconds) {}
        }
        let name = simulator.name
        let state = state
        state.begin(provider: name, promptTokens: usage.promptTokens)
        if case .bytes = response.body, paceMilliseconds > 0 {
            // A non-streaming generation takes as long as streaming it would, so in-flight
            // gauges and latency look like a real server's.
            try? await Task.sleep(for: .milliseconds(paceMilliseconds * min(usage.completionTokens, 2000)))
        }
        return makeResponse(response, paceMilliseconds: paceMilliseconds) {
            state.end(provider: name, promptTokens: usage.promptTokens, generatedTokens: usage.completionTokens)
        }
    }
}

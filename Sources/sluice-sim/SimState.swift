import SluiceCore
import Synchronization

/// State shared by every listener: the last request each provider received and in-flight counts.
final class SimState: Sendable {
    private struct Recorded: Sendable {
        var json: [UInt8]
    }

    private struct Counters: Sendable {
        var inFlight = 0
        var inFlightTokens = 0
        var promptTokensTotal = 0
        var generationTokensTotal = 0
        var requestsTotal = 0
    }

    private let last = Mutex<[String: Recorded]>([:])
    private let counters = Mutex<[String: Counters]>([:])
    private let sequence = Atomic<Int>(0)

    /// Header names whose values are secrets and never recorded.
    private static let secretHeaders: Set<String> = [
        "authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token", "cookie",
    ]

    /// Records a request (secrets redacted) as the provider's last one.
    func record(provider: String, request: SimRequest, authorized: Bool) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("provider")
        writer.string(provider)
        writer.key("method")
        writer.string(request.method)
        writer.key("path")
        writer.string(request.rawPath)
        writer.key("query")
        writer.beginObject()
        for (name, value) in request.query.sorted(by: { $0.key < $1.key }) {
            writer.key(name)
            writer.string(name == "key" ? "REDACTED" : value)
        }
        writer.endObject()
        writer.key("headers")
        writer.beginObject()
        var seen = Set<String>()
        for (name, value) in request.headers {
            let lower = name.lowercased()
            // JSON objects need unique keys: repeated headers keep their first value.
            guard seen.insert(lower).inserted else { continue }
            writer.key(lower)
            writer.string(Self.secretHeaders.contains(lower) ? Self.redact(value) : value)
        }
        writer.endObject()
        writer.key("authorized")
        writer.bool(authorized)
        writer.key("body")
        if let json = request.json() {
            writer.value(json)
        } else {
            writer.string(String(decoding: request.body, as: UTF8.self))
        }
        writer.endObject()
        let bytes = writer.bytes
        last.withLock { $0[provider] = Recorded(json: bytes) }
    }

    /// Keeps the auth scheme (`Bearer`, `AWS4-HMAC-SHA256`) so tests can see which one arrived.
    private static func redact(_ value: String) -> String {
        if let space = value.firstIndex(of: " ") {
            return String(value[..<space]) + " REDACTED"
        }
        return "REDACTED"
    }

    /// The last recorded request of a provider, as JSON.
    func lastRequest(provider: String) -> [UInt8]? {
        last.withLock { $0[provider]?.json }
    }

    /// A process-wide sequence number for ids.
    func nextID() -> Int {
        sequence.add(1, ordering: .relaxed).newValue
    }

    /// Marks a generation as started; pair with `end`.
    func begin(provider: String, promptTokens: Int) {
        counters.withLock {
            $0[provider, default: Counters()].inFlight += 1
            $0[provider, default: Counters()].inFlightTokens += promptTokens
            $0[provider, default: Counters()].promptTokensTotal += promptTokens
        }
    }

    /// Marks a request as finished.
    func end(provider: String, promptTokens: Int, generatedTokens: Int) {
        counters.withLock {
            $0[provider, default: Counters()].inFlight -= 1
            $0[provider, default: Counters()].inFlightTokens -= promptTokens
            $0[provider, default: Counters()].generationTokensTotal += generatedTokens
            $0[provider, default: Counters()].requestsTotal += 1
        }
    }

    /// In-flight requests and their prompt tokens, plus running totals.
    func load(provider: String) -> (inFlight: Int, inFlightTokens: Int, prompt: Int, generated: Int, requests: Int) {
        counters.withLock {
            let c = $0[provider] ?? Counters()
            return (c.inFlight, c.inFlightTokens, c.promptTokensTotal, c.generationTokensTotal, c.requestsTotal)
        }
    }
}

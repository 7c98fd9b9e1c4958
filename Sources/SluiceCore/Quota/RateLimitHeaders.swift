// OpenAI's rate-limit response headers, computed from our counters:
//
//     x-ratelimit-limit-requests: 60          x-ratelimit-limit-tokens: 150000
//     x-ratelimit-remaining-requests: 59      x-ratelimit-remaining-tokens: 149984
//     x-ratelimit-reset-requests: 1s          x-ratelimit-reset-tokens: 6m0s
//
// "reset" is the time until the limit is back to its initial state (OpenAI's rate-limit guide),
// which is exactly the GCRA debt of the counter. On a 429 we add `retry-after` (whole seconds,
// rounded up, which every HTTP client understands) and `retry-after-ms` (which the official OpenAI
// SDKs read first, so they wait the exact time instead of a rounded-up second).
//
// When several scopes limit a request (key, team, model) the headers report the one with the
// least room, which is the one a client must pace itself by.

/// The `x-ratelimit-*` and `retry-after` values for one response.
public struct RateLimitHeaders: Sendable, Equatable {
    /// The tightest requests-per-minute counter, if any scope limits requests.
    public var requests: RateLimitStatus?
    /// The tightest token counter (total, input or output per minute), if any scope limits tokens.
    public var tokens: RateLimitStatus?
    /// Set on denials: how long to wait before retrying.
    public var retryAfterMillis: Int64?

    public init(requests: RateLimitStatus? = nil, tokens: RateLimitStatus? = nil, retryAfterMillis: Int64? = nil) {
        self.requests = requests
        self.tokens = tokens
        self.retryAfterMillis = retryAfterMillis
    }

    /// True when there is nothing to send.
    public var isEmpty: Bool { requests == nil && tokens == nil && retryAfterMillis == nil }

    /// Keeps whichever of `current` and `candidate` has less room left.
    static func tighter(_ current: RateLimitStatus?, _ candidate: RateLimitStatus) -> RateLimitStatus {
        guard let current else { return candidate }
        if candidate.remaining != current.remaining {
            return candidate.remaining < current.remaining ? candidate : current
        }
        return candidate.resetMillis > current.resetMillis ? candidate : current
    }

    /// Header names and values, lower-case names, in a stable order.
    public var fields: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(8)
        forEachField { fields.append(($0, $1)) }
        return fields
    }

    /// Calls `body` with each header name and value, in the order of `fields`, without
    /// building the array (every routed response carries them).
    public func forEachField(_ body: (_ name: String, _ value: String) -> Void) {
        if let requests {
            body("x-ratelimit-limit-requests", String(requests.limit))
            body("x-ratelimit-remaining-requests", String(requests.remaining))
            body("x-ratelimit-reset-requests", QuotaDuration.format(millis: requests.resetMillis))
        }
        if let tokens {
            body("x-ratelimit-limit-tokens", String(tokens.limit))
            body("x-ratelimit-remaining-tokens", String(tokens.remaining))
            body("x-ratelimit-reset-tokens", QuotaDuration.format(millis: tokens.resetMillis))
        }
        if let retryAfterMillis {
            body("retry-after", String(QuotaDuration.retryAfterSeconds(millis: retryAfterMillis)))
            body("retry-after-ms", String(max(0, retryAfterMillis)))
        }
    }
}

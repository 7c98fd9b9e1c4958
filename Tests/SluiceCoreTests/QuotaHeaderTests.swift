// OpenAI's duration format for `x-ratelimit-reset-*` and "Please try again in …", and Retry-After.

import Testing

@testable import SluiceCore

@Suite struct QuotaHeaderTests {
    @Test(arguments: [
        (Int64(0), "0s"), (-5, "0s"), (1, "1ms"), (9, "9ms"), (12, "12ms"), (20, "20ms"), (999, "999ms"),
        (1000, "1s"), (1146, "1.146s"), (1500, "1.5s"), (2400, "2.4s"), (1010, "1.01s"), (59_500, "59.5s"),
        (60_000, "1m0s"), (360_000, "6m0s"), (61_250, "1m1.25s"), (3_600_000, "1h0m0s"), (3_661_001, "1h1m1.001s"),
        (86_400_000, "24h0m0s"),
    ])
    func durationsLookLikeOpenAIs(millis: Int64, text: String) {
        #expect(QuotaDuration.format(millis: millis) == text)
    }

    @Test func retryAfterRoundsUpToWholeSeconds() {
        #expect(QuotaDuration.retryAfterSeconds(millis: 0) == 0)
        #expect(QuotaDuration.retryAfterSeconds(millis: 1) == 1)
        #expect(QuotaDuration.retryAfterSeconds(millis: 1000) == 1)
        #expect(QuotaDuration.retryAfterSeconds(millis: 1001) == 2)
        #expect(QuotaDuration.millis(ceilingNanos: 1) == 1)
        #expect(QuotaDuration.millis(ceilingNanos: 2_000_000) == 2)
    }

    @Test func fieldsInOrderWithRetryAfterOnDenials() {
        let headers = RateLimitHeaders(
            requests: RateLimitStatus(limit: 60, remaining: 59, resetMillis: 1000),
            tokens: RateLimitStatus(limit: 150_000, remaining: 149_984, resetMillis: 360_000),
            retryAfterMillis: 2400)
        let fields = headers.fields
        #expect(
            fields.map(\.name) == [
                "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", "retry-after",
                "retry-after-ms",
            ])
        #expect(fields.map(\.value) == ["60", "59", "1s", "150000", "149984", "6m0s", "3", "2400"])
        #expect(RateLimitHeaders(tokens: RateLimitStatus(limit: 1, remaining: 0, resetMillis: 20)).fields.count == 3)
    }

    @Test func theTighterStatusWins() {
        let roomy = RateLimitStatus(limit: 100, remaining: 90, resetMillis: 6000)
        let tight = RateLimitStatus(limit: 1000, remaining: 5, resetMillis: 59_000)
        #expect(RateLimitHeaders.tighter(nil, roomy) == roomy)
        #expect(RateLimitHeaders.tighter(roomy, tight) == tight)
        #expect(RateLimitHeaders.tighter(tight, roomy) == tight)
        let sameRoomLaterReset = RateLimitStatus(limit: 10, remaining: 5, resetMillis: 60_000)
        #expect(RateLimitHeaders.tighter(tight, sameRoomLaterReset) == sameRoomLaterReset)
    }
}

// Admission across key, team and model scopes: all-or-nothing, exact settle/release accounting,
// OpenAI-shaped denials and headers, config parsing.

import Testing

@testable import SluiceCore

@Suite struct QuotaStoreTests {
    static let now: Int64 = 1_750_000_000_000  // 2025-06-15, milliseconds

    static func limits(_ json: String) throws -> QuotaLimits {
        var object = try ConfigObject(try JSONParser.parse(Array(json.utf8)), path: "quota")
        let limits = try QuotaLimits.read(&object)
        try object.finish()
        return limits
    }

    static func request(
        key: String = "app", team: String? = "payments", model: String = "gpt-4o", input: Int64 = 100,
        output: Int64 = 50, cost: Int64 = 0
    ) -> QuotaRequest {
        QuotaRequest(
            key: key, team: team, model: model,
            estimate: QuotaEstimate(inputTokens: input, outputTokens: output, costMicros: cost))
    }

    static func ticket(_ decision: QuotaDecision) -> AdmissionTicket? {
        if case .admitted(let ticket) = decision { return ticket }
        return nil
    }

    static func denial(_ decision: QuotaDecision) -> QuotaDenial? {
        if case .denied(let denial) = decision { return denial }
        return nil
    }

    // MARK: - Config

    @Test func readsEveryLimit() throws {
        let limits = try Self.limits(
            """
            {"requests_per_minute": 600, "tokens_per_minute": 100000, "input_tokens_per_minute": 80000,
             "output_tokens_per_minute": 20000, "budget_usd_per_day": 10.0, "budget_usd_per_month": 200.5}
            """)
        #expect(
            limits
                == QuotaLimits(
                    requestsPerMinute: 600, tokensPerMinute: 100_000, inputTokensPerMinute: 80_000,
                    outputTokensPerMinute: 20_000, budgetMicrosPerDay: 10_000_000, budgetMicrosPerMonth: 200_500_000))
        #expect(try Self.limits("{}").isEmpty)
        #expect(try Self.limits(#"{"budget_usd_per_day": null}"#).isEmpty)
    }

    /// Envoy's YAML → Struct conversion turns large integers into strings and Struct numbers are
    /// doubles: integer strings and whole numbers with an exponent are integers.
    @Test func acceptsIntegersAsStringsAndWholeDoubles() throws {
        let limits = try Self.limits(
            #"{"tokens_per_minute": "10000000000", "input_tokens_per_minute": 1e+9, "output_tokens_per_minute": 5.0, "requests_per_minute": " 60 "}"#)
        #expect(limits.tokensPerMinute == 10_000_000_000)
        #expect(limits.inputTokensPerMinute == 1_000_000_000)
        #expect(limits.outputTokensPerMinute == 5)
        #expect(limits.requestsPerMinute == 60)
    }

    @Test(arguments: [
        (#"{"requests_per_minute": 0}"#, "quota.requests_per_minute: must be between 1 and 100000000, got 0"),
        (#"{"tokens_per_minute": 1.5}"#, "quota.tokens_per_minute: expected an integer, got 1.5"),
        (#"{"tokens_per_minute": "2.55e1"}"#, "quota.tokens_per_minute: expected an integer, got 2.55e1"),
        (#"{"output_tokens_per_minute": "nine"}"#, #"quota.output_tokens_per_minute: expected an integer, got string "nine""#),
        (#"{"output_tokens_per_minute": true}"#, "quota.output_tokens_per_minute: expected an integer, got boolean"),
        (
            #"{"tokens_per_minute": "99999999999999999999"}"#,
            "quota.tokens_per_minute: must be between 1 and 10000000000, got 99999999999999999999"
        ),
        (
            #"{"tokens_per_minute": "1000000000000"}"#,
            "quota.tokens_per_minute: must be between 1 and 10000000000, got 1000000000000"
        ),
        (#"{"tokens_per_minute": 1e300}"#, "quota.tokens_per_minute: must be between 1 and 10000000000, got 1e300"),
        (#"{"tokens_per_minute": -1e3}"#, "quota.tokens_per_minute: must be between 1 and 10000000000, got -1e3"),
        (#"{"budget_usd_per_day": -1}"#, "quota.budget_usd_per_day: must be between 0.0 and 1000000.0, got -1.0"),
        (
            #"{"budget_usd_per_month": 2e6}"#,
            "quota.budget_usd_per_month: must be between 0.0 and 1000000.0, got 2000000.0"
        ),
        (#"{"requests_per_min": 5}"#, "quota.requests_per_min: unknown field"),
    ])
    func rejectsBadLimitsNamingTheField(json: String, message: String) {
        #expect(throws: ConfigError.self) { try Self.limits(json) }
        do {
            _ = try Self.limits(json)
        } catch let error as ConfigError {
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    // MARK: - Admission

    @Test func unconfiguredScopesAreUnlimited() {
        let store = LocalQuotaStore(limits: [:])
        guard let ticket = Self.ticket(store.admit(Self.request(), now: Self.now)) else {
            Issue.record("denied")
            return
        }
        #expect(ticket.headers.isEmpty)
        #expect(ticket.headers.fields.isEmpty)
        store.settle(ticket, actual: TokenUsage(inputTokens: 5, outputTokens: 5), costMicros: 10, now: Self.now)
    }

    @Test func teamDenialRollsBackTheKeyExactly() {
        let store = LocalQuotaStore(limits: [
            .key("app"): QuotaLimits(requestsPerMinute: 600, tokensPerMinute: 100_000, budgetMicrosPerDay: 5_000_000),
            .team("payments"): QuotaLimits(tokensPerMinute: 1000),
            .model("gpt-4o"): QuotaLimits(requestsPerMinute: 6000),
        ])
        let big = Self.request(input: 900, output: 200, cost: 1_000)
        guard let denial = Self.denial(store.admit(big, now: Self.now)) else {
            Issue.record("admitted")
            return
        }
        #expect(denial.scope == .team("payments"))
        #expect(denial.dimension == .tokensPerMinute)
        #expect(denial.retryAfterSeconds == nil)  // 1100 > 1000: no wait helps
        #expect(denial.error.code == "rate_limit_exceeded")
        #expect(denial.error.type == "tokens")
        #expect(
            denial.error.message
                == "Request too large for gpt-4o in team payments on tokens per min (TPM): Limit 1000, Requested 1100. "
                + "The input or output tokens must be reduced in order to run successfully.")
        for dimension in [QuotaDimension.requestsPerMinute, .tokensPerMinute, .budgetPerDay] {
            #expect(store.used(.key("app"), dimension, now: Self.now) == 0)
        }
        #expect(store.used(.team("payments"), .tokensPerMinute, now: Self.now) == 0)
        #expect(store.used(.model("gpt-4o"), .requestsPerMinute, now: Self.now) == 0)

        // The model scope refusing rolls back both the key and the team.
        let modelFull = LocalQuotaStore(limits: [
            .key("app"): QuotaLimits(requestsPerMinute: 600),
            .team("payments"): QuotaLimits(tokensPerMinute: 1000),
            .model("gpt-4o"): QuotaLimits(requestsPerMinute: 1),
        ])
        #expect(Self.ticket(modelFull.admit(Self.request(), now: Self.now)) != nil)
        guard let second = Self.denial(modelFull.admit(Self.request(), now: Self.now)) else {
            Issue.record("admitted")
            return
        }
        #expect(second.scope == .model("gpt-4o"))
        #expect(second.error.type == "requests")
        #expect(
            second.error.message
                == "Rate limit reached for gpt-4o on requests per min (RPM): Limit 1, Used 1, Requested 1. "
                + "Please try again in 1m0s.")
        #expect(modelFull.used(.key("app"), .requestsPerMinute, now: Self.now) == 1)
        #expect(modelFull.used(.team("payments"), .tokensPerMinute, now: Self.now) == 150)
    }

    @Test func settleChargesActualAndReleaseRestoresEveryCounter() {
        let store = LocalQuotaStore(limits: [
            .key("app"): QuotaLimits(
                requestsPerMinute: 600, tokensPerMinute: 100_000, inputTokensPerMinute: 60_000,
                outputTokensPerMinute: 30_000, budgetMicrosPerDay: 10_000_000, budgetMicrosPerMonth: 100_000_000),
            .team("payments"): QuotaLimits(tokensPerMinute: 1_000_000, budgetMicrosPerDay: 50_000_000),
        ])
        let request = Self.request(input: 1000, output: 4096, cost: 50_000)
        guard let a = Self.ticket(store.admit(request, now: Self.now)),
            let b = Self.ticket(store.admit(request, now: Self.now))
        else {
            Issue.record("denied")
            return
        }
        let key = QuotaScope.key("app")
        #expect(store.used(key, .requestsPerMinute, now: Self.now) == 2)
        #expect(store.used(key, .tokensPerMinute, now: Self.now) == 10_192)
        #expect(store.used(key, .inputTokensPerMinute, now: Self.now) == 2000)
        #expect(store.used(key, .outputTokensPerMinute, now: Self.now) == 8192)
        #expect(store.used(key, .budgetPerDay, now: Self.now) == 100_000)
        #expect(store.used(.team("payments"), .budgetPerDay, now: Self.now) == 100_000)

        store.settle(
            a, actual: TokenUsage(inputTokens: 980, outputTokens: 123, cachedInputTokens: 500), costMicros: 1234,
            now: Self.now)
        store.release(b, now: Self.now)
        #expect(store.used(key, .requestsPerMinute, now: Self.now) == 1)
        #expect(store.used(key, .tokensPerMinute, now: Self.now) == 1103)
        #expect(store.used(key, .inputTokensPerMinute, now: Self.now) == 980)
        #expect(store.used(key, .outputTokensPerMinute, now: Self.now) == 123)
        #expect(store.used(key, .budgetPerDay, now: Self.now) == 1234)
        #expect(store.used(key, .budgetPerMonth, now: Self.now) == 1234)
        #expect(store.used(.team("payments"), .tokensPerMinute, now: Self.now) == 1103)
        #expect(store.spentMicros(.team("payments"), now: Self.now) == (1234, nil))
    }

    @Test func admittedTicketCarriesTheTightestHeaders() {
        let store = LocalQuotaStore(limits: [
            .key("app"): QuotaLimits(requestsPerMinute: 60, tokensPerMinute: 150_000),
            .team("payments"): QuotaLimits(requestsPerMinute: 6000, outputTokensPerMinute: 1000),
        ])
        guard let ticket = Self.ticket(store.admit(Self.request(input: 16, output: 100), now: Self.now)) else {
            Issue.record("denied")
            return
        }
        #expect(ticket.headers.requests == RateLimitStatus(limit: 60, remaining: 59, resetMillis: 1000))
        #expect(ticket.headers.tokens == RateLimitStatus(limit: 1000, remaining: 900, resetMillis: 6000))
        let fields = ticket.headers.fields
        #expect(
            fields.map(\.name) == [
                "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
            ])
        #expect(fields.map(\.value) == ["60", "59", "1s", "1000", "900", "6s"])
        let later = store.rateLimitHeaders(for: Self.request(), now: Self.now + 600)
        // 0.4 of a request is still owed: 59 more fit now, the 60th in 400 ms.
        #expect(later.requests == RateLimitStatus(limit: 60, remaining: 59, resetMillis: 400))
    }

    @Test func deniedRequestGetsRetryAfterAndOpenAIMessage() {
        let store = LocalQuotaStore(limits: [.key("app"): QuotaLimits(tokensPerMinute: 30_000)])
        guard let first = Self.ticket(store.admit(Self.request(input: 20_000, output: 9_000), now: Self.now)) else {
            Issue.record("denied")
            return
        }
        _ = first
        guard let denial = Self.denial(store.admit(Self.request(input: 1000, output: 500), now: Self.now)) else {
            Issue.record("admitted")
            return
        }
        // 29000 + 1500 - 30000 = 500 tokens over: 500 × 2 ms = 1 s.
        #expect(denial.retryAfterSeconds == 1)
        #expect(denial.error.status == 429)
        #expect(
            denial.error.message
                == "Rate limit reached for gpt-4o in key app on tokens per min (TPM): Limit 30000, Used 29000, "
                + "Requested 1500. Please try again in 1s.")
        #expect(denial.headers.tokens == RateLimitStatus(limit: 30_000, remaining: 1000, resetMillis: 58_000))
        #expect(denial.headers.fields.suffix(2).map(\.value) == ["1", "1000"])
        #expect(denial.headers.fields.last?.name == "retry-after-ms")
        let body = denial.error.body(for: .openAI)
        let parsed = try? JSONParser.parse(body)
        #expect(parsed?["error"]?["type"]?.stringValue == "tokens")
        #expect(parsed?["error"]?["code"]?.stringValue == "rate_limit_exceeded")
        let anthropic = try? JSONParser.parse(denial.error.body(for: .anthropic))
        #expect(anthropic?["error"]?["type"]?.stringValue == "rate_limit_error")
    }

    @Test func budgetDenialIsInsufficientQuota() {
        let store = LocalQuotaStore(limits: [.key("app"): QuotaLimits(budgetMicrosPerDay: 10_000_000)])
        let evening = Self.now - Self.now % UTCCalendar.millisPerDay + 21 * 3_600_000
        guard let ticket = Self.ticket(store.admit(Self.request(cost: 1), now: evening)) else {
            Issue.record("denied")
            return
        }
        store.settle(ticket, actual: TokenUsage(inputTokens: 1), costMicros: 9_990_000, now: evening)
        guard let denial = Self.denial(store.admit(Self.request(cost: 50_000), now: evening)) else {
            Issue.record("admitted")
            return
        }
        #expect(denial.dimension == .budgetPerDay)
        #expect(denial.error.type == "insufficient_quota")
        #expect(denial.error.code == "budget_exceeded")
        #expect(denial.retryAfterSeconds == 10_800)
        #expect(
            denial.error.message
                == "Budget exceeded for key app: daily budget $10, spent $9.99, this request is estimated at $0.05. "
                + "The budget resets in 3h0m0s.")
        // The next UTC day admits again.
        #expect(Self.ticket(store.admit(Self.request(cost: 50_000), now: evening + 3 * 3_600_000)) != nil)
    }

    @Test func reloadKeepsCountersWhoseLimitIsUnchanged() {
        let registry = QuotaCounterRegistry()
        let first = LocalQuotaStore(
            limits: [.key("app"): QuotaLimits(requestsPerMinute: 10, tokensPerMinute: 1000, budgetMicrosPerDay: 100)],
            registry: registry)
        guard let ticket = Self.ticket(first.admit(Self.request(key: "app", team: nil, cost: 40), now: Self.now)) else {
            return
        }
        let second = LocalQuotaStore(
            limits: [.key("app"): QuotaLimits(requestsPerMinute: 10, tokensPerMinute: 2000, budgetMicrosPerDay: 50)],
            registry: registry)
        #expect(second.used(.key("app"), .requestsPerMinute, now: Self.now) == 1)
        #expect(second.used(.key("app"), .tokensPerMinute, now: Self.now) == 0)  // new limit, new bucket
        #expect(second.used(.key("app"), .budgetPerDay, now: Self.now) == 40)
        // An in-flight ticket of the old snapshot settles into the counters both share.
        first.settle(ticket, actual: TokenUsage(), costMicros: 45, now: Self.now)
        #expect(second.used(.key("app"), .budgetPerDay, now: Self.now) == 45)
        #expect(second.limits(for: .key("app"))?.budgetMicrosPerDay == 50)
        #expect(Self.denial(second.admit(Self.request(key: "app", team: nil, cost: 10), now: Self.now)) != nil)
    }

    @Test func aRegistryCarriesCountersAcrossStoresAndSubjects() {
        let registry = QuotaCounterRegistry()
        let limits = QuotaLimits(requestsPerMinute: 10, budgetMicrosPerDay: 100)
        let first = LocalQuotaStore(
            limits: [.key("app"): limits], subjectLimits: QuotaLimits(requestsPerMinute: 5), registry: registry)
        _ = first.admit(Self.request(key: "app", team: nil, cost: 30), now: Self.now)
        let subject = QuotaRequest(
            key: "jwt:alice", model: "m", estimate: QuotaEstimate(inputTokens: 1, outputTokens: 1), keyIsSubject: true)
        _ = first.admit(subject, now: Self.now)
        // The next config: same key with a new rate limit, and the same subject limits.
        let second = LocalQuotaStore(
            limits: [.key("app"): QuotaLimits(requestsPerMinute: 20, budgetMicrosPerDay: 100)],
            subjectLimits: QuotaLimits(requestsPerMinute: 5), registry: registry)
        #expect(second.used(.key("app"), .budgetPerDay, now: Self.now) == 30)  // budgets always carry over
        #expect(second.used(.key("app"), .requestsPerMinute, now: Self.now) == 0)  // a new limit, a new bucket
        #expect(second.used(.key("jwt:alice"), .requestsPerMinute, now: Self.now) == 1)
        // A store without the registry starts afresh.
        let alone = LocalQuotaStore(limits: [.key("app"): limits])
        #expect(alone.used(.key("app"), .budgetPerDay, now: Self.now) == 0)
    }

    @Test func estimateFromBodyAndMaxTokens() {
        let price = ModelPrice(inputMicrosPerMillion: 2_500_000, outputMicrosPerMillion: 10_000_000)
        let estimate = QuotaEstimate(bodyByteCount: 4001, maxTokens: nil, defaultMaxTokens: 4096, price: price)
        #expect(estimate.inputTokens == 1001)
        #expect(estimate.outputTokens == 4096)
        #expect(estimate.costMicros == 43_463)  // 1001 × 2.5 + 4096 × 10 = 43462.5 → rounds half up
        #expect(QuotaEstimate(bodyByteCount: 0, maxTokens: 10, defaultMaxTokens: 4096).totalTokens == 10)
        #expect(QuotaEstimate(bodyByteCount: -5, maxTokens: -3, defaultMaxTokens: 1).totalTokens == 0)
    }
}

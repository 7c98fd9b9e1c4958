// The 429 a quota denial answers with, worded like OpenAI's own so clients and humans recognise it:
//
//   {"error":{"message":"Rate limit reached for gpt-4o in organization org-… on tokens per min (TPM):
//    Limit 30000, Used 29000, Requested 1500. Please try again in 2.4s. …",
//    "type":"tokens","param":null,"code":"rate_limit_exceeded"}}
//
// OpenAI's `error.type` for rate limits is the limited quantity (`requests` or `tokens`), not a
// generic "rate_limit_error"; that one is Anthropic's, and `GatewayError.anthropicType` already
// gives it for status 429. Budgets answer like OpenAI's exhausted credit (`insufficient_quota`),
// still with status 429, with our own stable code `budget_exceeded`.

extension QuotaDenialCause {
    /// The limit's name as OpenAI's messages spell it.
    var dimensionPhrase: String {
        switch dimension {
        case .requestsPerMinute: "requests per min (RPM)"
        case .tokensPerMinute: "tokens per min (TPM)"
        case .inputTokensPerMinute: "input tokens per min (ITPM)"
        case .outputTokensPerMinute: "output tokens per min (OTPM)"
        case .budgetPerDay: "daily budget"
        case .budgetPerMonth: "monthly budget"
        }
    }

    /// "gpt-4o in key my-app", "gpt-4o in team payments", or just "gpt-4o" for a model-wide limit.
    func subject(model: String) -> String {
        switch scope.kind {
        case .key: "\(model) in key \(scope.name)"
        case .team: "\(model) in team \(scope.name)"
        case .model: model
        }
    }

    @inline(never)
    func gatewayError(model: String) -> GatewayError {
        if let leaseError { return leaseError }
        switch dimension {
        case .budgetPerDay, .budgetPerMonth:
            let owner = scope.kind == .model ? "model \(scope.name)" : "\(scope)"
            var message =
                "Budget exceeded for \(owner): \(dimensionPhrase) $\(Dollars.format(micros: limit)), "
                + "spent $\(Dollars.format(micros: used)), this request is estimated at "
                + "$\(Dollars.format(micros: requested))."
            if let retryAfterMillis {
                message += " The budget resets in \(QuotaDuration.format(millis: retryAfterMillis))."
            }
            return GatewayError(status: 429, type: "insufficient_quota", code: "budget_exceeded", message: message)
        case .requestsPerMinute, .tokensPerMinute, .inputTokensPerMinute, .outputTokensPerMinute:
            let type = dimension == .requestsPerMinute ? "requests" : "tokens"
            guard let retryAfterMillis else {
                return GatewayError(
                    status: 429, type: type, code: "rate_limit_exceeded",
                    message: "Request too large for \(subject(model: model)) on \(dimensionPhrase): "
                        + "Limit \(limit), Requested \(requested). "
                        + "The input or output tokens must be reduced in order to run successfully.")
            }
            return GatewayError(
                status: 429, type: type, code: "rate_limit_exceeded",
                message: "Rate limit reached for \(subject(model: model)) on \(dimensionPhrase): "
                    + "Limit \(limit), Used \(used), Requested \(requested). "
                    + "Please try again in \(QuotaDuration.format(millis: retryAfterMillis)).")
        }
    }
}

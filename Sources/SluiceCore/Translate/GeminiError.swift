// Gemini / Vertex error bodies -> GatewayError.
//
// Google APIs answer errors as `{"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED","details":[…]}}`
// (`streamGenerateContent` without `alt=sse` wraps it in an array). The HTTP status is kept faithfully; the gRPC
// status name becomes the OpenAI `code`, and the OpenAI `type` follows the status.

extension Gemini {
    /// The HTTP status Google documents for a canonical gRPC status name.
    public static func httpStatus(forGoogleStatus status: String) -> UInt32? {
        switch status {
        case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE": 400
        case "UNAUTHENTICATED": 401
        case "PERMISSION_DENIED": 403
        case "NOT_FOUND": 404
        case "ABORTED", "ALREADY_EXISTS": 409
        case "RESOURCE_EXHAUSTED": 429
        case "CANCELLED": 499
        case "INTERNAL", "UNKNOWN", "DATA_LOSS": 500
        case "UNIMPLEMENTED": 501
        case "UNAVAILABLE": 503
        case "DEADLINE_EXCEEDED": 504
        default: nil
        }
    }

    /// Maps an upstream Gemini error response to a gateway error.
    /// - Parameters:
    ///   - status: The upstream HTTP status, or 0 when unknown (an error object inside a 200 stream).
    ///   - body: The upstream body; JSON in Google's error shape, or anything else (an HTML 502 page).
    public static func gatewayError(status: UInt32, body: [UInt8]) -> GatewayError {
        var root = try? JSONParser.parse(body)
        if let first = root?.arrayValue?.first { root = first }
        guard let error = root?["error"]?.objectValue else {
            let httpStatus = status >= 400 ? status : 502
            return GatewayError(
                status: httpStatus, type: openAIType(forStatus: httpStatus), code: "upstream_error",
                message: "Gemini returned HTTP \(status) with a body that is not a Google error: "
                    + snippet(body))
        }
        let googleStatus = error["status"]?.stringValue
        let numeric = error["code"]?.int64Value.flatMap { (400...599).contains($0) ? UInt32($0) : nil }
        let resolved =
            status >= 400 ? status : (numeric ?? googleStatus.flatMap { Self.httpStatus(forGoogleStatus: $0) } ?? 502)
        let message = error["message"]?.stringValue ?? "Gemini returned an error without a message."
        return GatewayError(
            status: resolved, type: openAIType(forStatus: resolved),
            code: googleStatus.map { $0.lowercased() } ?? "upstream_error", message: message)
    }

    /// OpenAI's `error.type` for an HTTP status.
    static func openAIType(forStatus status: UInt32) -> String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
    }

    /// The first bytes of a body, as lossy text, for error messages.
    static func snippet(_ body: [UInt8], limit: Int = 512) -> String {
        let text = String(decoding: body.prefix(limit), as: UTF8.self)
        return body.count > limit ? text + "…" : text
    }

    static func translateError(_ error: GatewayError) -> TranslateError {
        TranslateError(status: error.status, code: error.code, message: error.message, param: error.param)
    }
}

// Anthropic error responses -> GatewayError ("Errors" and "Anthropic Messages" in
// SluiceCore.docc/ProviderWireShapes.md).
//
// Anthropic answers `{"type":"error","error":{"type","message"}}`. Proxies in front of it (load balancers,
// Vertex, a 503 page) may answer anything else: that text is wrapped, never dropped, and the status is kept.

extension AnthropicTranslator {
    /// The longest upstream text copied into an error message; HTML error pages can be large.
    static let maxErrorText = 2048

    /// Maps an Anthropic error response to a gateway error with the same status.
    /// - Parameters:
    ///   - status: the upstream HTTP status (a non-error status is reported as 502).
    ///   - body: the upstream body, JSON or not.
    /// - Returns: the error in gateway terms: `type` and `code` carry Anthropic's `error.type`.
    public static func error(status: UInt32, body: [UInt8]) -> GatewayError {
        let status = status >= 400 && status <= 599 ? status : 502
        if let root = try? JSONParser.parse(body), let error = root["error"], error.objectValue != nil {
            let type = error["type"]?.stringValue ?? (status >= 500 ? "api_error" : "invalid_request_error")
            let message = error["message"]?.stringValue ?? "Anthropic returned HTTP \(status)."
            return GatewayError(status: status, type: type, code: type, message: message)
        }
        return wrapped(status: status, body: body)
    }

    /// An error from the `error` event of an Anthropic stream (no HTTP status: it follows from the type).
    static func streamError(_ event: JSONValue) -> GatewayError {
        let error = event["error"]
        let type = error?["type"]?.stringValue ?? "api_error"
        let message = error?["message"]?.stringValue ?? "The Anthropic stream reported an error."
        return GatewayError(status: status(forErrorType: type), type: type, code: type, message: message)
    }

    @inline(never)
    private static func wrapped(status: UInt32, body: [UInt8]) -> GatewayError {
        var text = String(decoding: body.prefix(maxErrorText), as: UTF8.self)
        text = String(text.unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
        while text.hasSuffix(" ") { text.removeLast() }
        while text.hasPrefix(" ") { text.removeFirst() }
        let message =
            text.isEmpty
            ? "Anthropic returned HTTP \(status) with an empty body."
            : "Anthropic returned HTTP \(status): \(text)\(body.count > maxErrorText ? "…" : "")"
        let type =
            switch status {
            case 429: "rate_limit_error"
            case 529: "overloaded_error"
            case 500...: "api_error"
            default: "invalid_request_error"
            }
        return GatewayError(status: status, type: type, code: "upstream_error", message: message)
    }
}

// Small pieces of the OpenAI shape the gateway needs as the hub: reading OpenAI error bodies (usage:
// OpenAICompatible; an Anthropic client's request for an OpenAI backend is written by
// `AnthropicTranslator.openAIBody(fromAnthropic:model:forceStreamUsage:)`).

public enum OpenAIHub {
    /// An OpenAI error body re-read as a gateway error; non-JSON bodies (an HTML 502 from a proxy)
    /// are wrapped with the same status so the client still gets JSON.
    public static func error(status: UInt32, body: [UInt8]) -> GatewayError {
        let type = status == 429 ? "rate_limit_error" : (status >= 500 ? "api_error" : "invalid_request_error")
        if let parsed = try? JSONParser.parse(body), let error = parsed["error"], case .object = error {
            return GatewayError(
                status: status, type: error["type"]?.stringValue ?? type,
                code: error["code"]?.stringValue ?? "upstream_error",
                message: error["message"]?.stringValue ?? "The upstream returned an error.",
                param: error["param"]?.stringValue)
        }
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        return GatewayError(
            status: status, type: type, code: "upstream_error",
            message: text.isEmpty ? "The upstream returned HTTP \(status)." : "The upstream returned HTTP \(status): \(text)")
    }
}

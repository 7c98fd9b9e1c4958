// Envoy's own answers to a routed LLM call, in the client's API shape.
//
// When an upstream resets, stalls, breaks HTTP framing or answers with more than the buffer limit
// before the client has headers, Envoy answers itself: a text/plain 502/503/504/500 such as
// "upstream connect error or disconnect/reset before headers". SDK clients parse error bodies as
// JSON in their API's shape; the downstream filter swaps Envoy's text for this error, keeping
// Envoy's status and naming its response-code details.

extension GatewayError {
    /// The error for a local reply Envoy (not the gateway) sends on a routed request, from its
    /// HTTP status and response-code details (e.g. `upstream_reset_before_response_started{...}`).
    @inline(never)
    public static func proxyReply(status: UInt32, details: String) -> GatewayError {
        let reason: String
        let code: String
        switch details {
        case let d where d.hasPrefix("upstream_reset_before_response_started"):
            (code, reason) = ("upstream_reset", "The upstream closed or reset the connection before answering.")
        case let d where d.hasPrefix("upstream_reset_after_response_started"):
            (code, reason) = ("upstream_reset", "The upstream reset the connection while answering.")
        case "upstream_response_timeout", "upstream_per_try_timeout", "upstream_per_try_idle_timeout",
            "upstream_max_stream_duration_reached":
            (code, reason) = ("upstream_timeout", "The upstream did not answer in time.")
        case "stream_idle_timeout":
            (code, reason) = ("upstream_timeout", "The upstream stalled: nothing arrived within the idle timeout.")
        case "no_healthy_upstream":
            (code, reason) = ("upstream_unavailable", "No healthy upstream is available for this model.")
        case "cluster_not_found", "route_not_found":
            (code, reason) = ("route_not_found", "The gateway has no upstream for this request.")
        case "response_payload_too_large":
            (code, reason) = ("upstream_response_too_large", "The upstream's answer is larger than the gateway's buffer limit.")
        case let d where d.hasPrefix("upstream_") || d.contains("protocol_error") || d.contains("codec_error"):
            (code, reason) = ("bad_upstream_response", "The upstream's answer was not valid HTTP.")
        default:
            (code, reason) = ("upstream_error", "The gateway could not get an answer from the upstream.")
        }
        let status = (400...599).contains(status) ? status : 502
        let shown = details.isEmpty ? "" : " (\(details.prefix(200)))"
        return GatewayError(status: status, type: Gemini.openAIType(forStatus: status), code: code, message: reason + shown)
    }
}

// Small pieces of the OpenAI shape the gateway needs as the hub: serialising a hub request for an
// OpenAI backend, and reading OpenAI error bodies (usage: OpenAICompatible).

public enum OpenAIHub {
    /// Members the hub carries for Anthropic round trips that OpenAI rejects as unknown arguments.
    static let hubOnlyRequestMembers: Set<String> = ["thinking", "top_k"]
    static let hubOnlyMessageMembers: Set<String> = ["thinking_blocks", "is_error"]

    /// A hub request as an OpenAI body for `model`; when streaming, asks for the final usage chunk.
    /// Hub-only extensions (Anthropic thinking, cache_control, ...) are removed.
    public static func serialize(_ hub: JSONValue, model: String, forceStreamUsage: Bool) -> [UInt8] {
        guard case .object(let object) = hub else { return hub.serialized() }
        var members = object.members.filter {
            $0.key != "model" && !(forceStreamUsage && $0.key == "stream_options") && !hubOnlyRequestMembers.contains($0.key)
        }
        members = members.map { member in
            switch member.key {
            case "messages":
                guard case .array(let messages) = member.value else { return member }
                return (member.key, .array(messages.map(stripMessageExtensions)))
            case "tools":
                guard case .array(let tools) = member.value else { return member }
                return (member.key, .array(tools.map { without($0, ["cache_control"]) }))
            default:
                return member
            }
        }
        members.insert(("model", .string(model)), at: 0)
        if forceStreamUsage {
            var options = object["stream_options"]?.objectValue?.members.filter { $0.key != "include_usage" } ?? []
            options.append(("include_usage", .bool(true)))
            members.append(("stream_options", .object(JSONObject(options))))
        }
        return JSONValue.object(JSONObject(members)).serialized()
    }

    private static func stripMessageExtensions(_ message: JSONValue) -> JSONValue {
        guard case .object(let object) = message else { return message }
        return .object(JSONObject(object.members.compactMap { member in
            if hubOnlyMessageMembers.contains(member.key) { return nil }
            if member.key == "content", case .array(let parts) = member.value {
                return (member.key, .array(parts.map { without($0, ["cache_control"]) }))
            }
            return member
        }))
    }

    private static func without(_ value: JSONValue, _ keys: Set<String>) -> JSONValue {
        guard case .object(let object) = value else { return value }
        return .object(JSONObject(object.members.filter { !keys.contains($0.key) }))
    }

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

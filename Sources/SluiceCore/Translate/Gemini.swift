// Google Gemini `generateContent` / `streamGenerateContent`: endpoint paths and the vocabulary shared by the
// request, response, stream, error and embedding translators (`Gemini+*.swift`, `GeminiStream+*.swift`).
//
// The Gemini API (API key, generativelanguage.googleapis.com) and Vertex AI (bearer token,
// {location}-aiplatform.googleapis.com) take the same request and response bodies; only the path and the
// credentials differ, so one set of translators serves both.

/// Namespace for the Gemini translators.
public enum Gemini {
    /// Which Google front end a backend speaks to.
    public enum APIFlavor: Sendable, Equatable {
        /// The Gemini API: `/v1beta/models/{model}:…`, authenticated with `x-goog-api-key`.
        case geminiAPI
        /// Vertex AI: `/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…`, with an
        /// OAuth bearer token.
        case vertex(project: String, location: String)
    }

    /// The request path (with query) for a chat translation.
    /// - Parameters:
    ///   - model: The upstream model id, e.g. `gemini-2.5-flash`; a leading `models/` is accepted and dropped.
    ///   - stream: `:streamGenerateContent?alt=sse` (SSE framing) instead of `:generateContent`.
    ///   - apiFlavor: Gemini API or Vertex AI.
    public static func path(model: String, stream: Bool, apiFlavor: APIFlavor) -> String {
        modelPath(model: model, apiFlavor: apiFlavor)
            + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent")
    }

    /// The request path for `batchEmbedContents` (Gemini API only: Vertex serves embeddings through `:predict`
    /// with another body shape).
    public static func embeddingsPath(model: String) -> String {
        modelPath(model: model, apiFlavor: .geminiAPI) + ":batchEmbedContents"
    }

    /// The model resource name used inside embedding requests: `models/<id>`.
    public static func modelResourceName(_ model: String) -> String {
        "models/" + bareModel(model)
    }

    static func modelPath(model: String, apiFlavor: APIFlavor) -> String {
        let model = percentEncoded(bareModel(model))
        switch apiFlavor {
        case .geminiAPI:
            return "/v1beta/models/" + model
        case .vertex(let project, let location):
            return "/v1/projects/" + percentEncoded(project) + "/locations/" + percentEncoded(location)
                + "/publishers/google/models/" + model
        }
    }

    /// Drops the `models/` prefix clients sometimes copy from Google's resource names.
    static func bareModel(_ model: String) -> String {
        model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
    }

    /// Percent-encodes everything but RFC 3986 unreserved bytes, so a model or project name can never add a path
    /// segment or a query to the upstream URL.
    static func percentEncoded(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Shared mappings

    /// OpenAI `finish_reason` for a Gemini `finishReason`.
    /// - Parameters:
    ///   - reason: Gemini's `finishReason` (`STOP`, `MAX_TOKENS`, `SAFETY`, ...).
    ///   - sawToolCall: Whether the candidate produced a `functionCall`; a normal stop then reports
    ///     `tool_calls`, as OpenAI does.
    static func openAIFinishReason(_ reason: String, sawToolCall: Bool) -> String {
        switch reason {
        case "MAX_TOKENS":
            return "length"
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
            return "content_filter"
        default:
            // STOP, and reasons OpenAI has no word for (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...).
            return sawToolCall ? "tool_calls" : "stop"
        }
    }
}

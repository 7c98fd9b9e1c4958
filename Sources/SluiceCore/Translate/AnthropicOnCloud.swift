// Claude served by the clouds: Vertex AI (`:rawPredict`, `:streamRawPredict`) and Bedrock InvokeModel
// (`/invoke`, `/invoke-with-response-stream`) take Anthropic's own Messages body with the model moved into
// the path and an `anthropic_version` naming the cloud's edition of the API, and answer with Anthropic's own
// message and events (Bedrock wraps each stream event in an AWS event-stream `chunk`: `BedrockInvokeStream`).
// So only the request body is edited, by byte ranges; answers go through the Anthropic translators.

/// Paths, body edit and error reading shared by `VertexAnthropicAdapter` and `BedrockAnthropicAdapter`.
public enum AnthropicOnCloud {
    /// The `anthropic_version` Vertex AI requires in the body.
    public static let vertexVersion = "vertex-2023-10-16"
    /// The `anthropic_version` Bedrock InvokeModel requires in the body.
    public static let bedrockVersion = "bedrock-2023-05-31"

    /// `/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict`
    /// (`:streamRawPredict` for a stream); every piece percent-encoded, so none can add a segment or a query.
    public static func vertexPath(project: String, location: String, model: String, stream: Bool) -> String {
        vertexModelsPath(project: project, location: location) + Gemini.percentEncoded(model)
            + (stream ? ":streamRawPredict" : ":rawPredict")
    }

    /// Vertex's token counter for Claude: one endpoint for every model, which the body names.
    public static func vertexCountPath(project: String, location: String) -> String {
        vertexModelsPath(project: project, location: location) + "count-tokens:rawPredict"
    }

    private static func vertexModelsPath(project: String, location: String) -> String {
        "/v1/projects/" + Gemini.percentEncoded(project) + "/locations/" + Gemini.percentEncoded(location)
            + "/publishers/anthropic/models/"
    }

    /// `/model/{model id}/invoke` or `/invoke-with-response-stream`, the id encoded as the Converse paths are.
    public static func bedrockPath(model: String, stream: Bool) -> String {
        "/model/" + SigV4Signer.uriEncode(model) + (stream ? "/invoke-with-response-stream" : "/invoke")
    }

    /// A Messages request body as the cloud takes it: `model` removed (the path names it), `stream`
    /// removed when `keepStream` is false (Bedrock: the path says it), any `anthropic_version` the body had
    /// replaced by `anthropicVersion`, and with `betas` (Bedrock: the client's `anthropic-beta` header, see
    /// `betaNames`) as the `anthropic_beta` array in place of any the body had. Every other member is copied
    /// byte for byte, in order.
    /// - Throws: `TranslateError` 400 for a body that is not a JSON object.
    public static func cloudBody(_ body: [UInt8], anthropicVersion: String, keepStream: Bool, betas: [String] = [])
        throws(TranslateError) -> [UInt8]
    {
        let span = body.span
        var kept: [UpstreamJSON.Member] = []
        let kind: JSONKind
        do {
            kind = try UpstreamJSON.scanTopLevel(span) { member in
                if member.key("model", in: span) || member.key("anthropic_version", in: span)
                    || (!keepStream && member.key("stream", in: span))
                    || (!betas.isEmpty && member.key("anthropic_beta", in: span))
                {
                    return
                }
                kept.append(member)
            }
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        guard kind == .object else { throw .invalidBody("The request body must be a JSON object.") }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + anthropicVersion.utf8.count + 24)
        out.append(UInt8(ascii: "{"))
        for member in kept {
            // The name with its quotes: the scan's content range sits between them.
            let keyStart = member.keyContent.lowerBound - 1
            let keyEnd = member.keyContent.upperBound + 1
            guard keyStart >= 0, keyEnd <= member.value.range.lowerBound, member.value.range.upperBound <= body.count else {
                throw .invalidBody("The request body could not be read.")
            }
            out.append(contentsOf: body[keyStart..<keyEnd])
            out.append(UInt8(ascii: ":"))
            out.append(contentsOf: body[member.value.range])
            out.append(UInt8(ascii: ","))
        }
        if !betas.isEmpty {
            // Beta names are token characters only (`betaNames`): nothing in them needs escaping.
            out.append(contentsOf: #""anthropic_beta":["#.utf8)
            for (position, beta) in betas.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "\""))
                out.append(contentsOf: beta.utf8)
                out.append(UInt8(ascii: "\""))
            }
            out.append(contentsOf: "],".utf8)
        }
        out.append(contentsOf: #""anthropic_version":""#.utf8)
        out.append(contentsOf: anthropicVersion.utf8)
        out.append(contentsOf: #""}"#.utf8)
        return out
    }

    /// The most beta names one request may turn on, and the longest name (Anthropic's are dated
    /// names of about 30 bytes, such as `interleaved-thinking-2025-05-14`).
    public static let maxBetas = 32
    public static let maxBetaNameBytes = 128
    /// The longest header: every name at its longest, with a separator and a little space each.
    public static let maxBetaHeaderBytes = maxBetas * (maxBetaNameBytes + 4)

    /// The beta names of an `anthropic-beta` header: comma-separated (repeated headers arrive
    /// joined by ", "), each trimmed of spaces and tabs; empty entries are skipped, as HTTP lists
    /// allow, and repeats dropped.
    /// - Throws: `TranslateError` 400 `invalid_anthropic_beta` naming the header, for a header
    ///   longer than `maxBetaHeaderBytes`, more than `maxBetas` names, a name longer than
    ///   `maxBetaNameBytes`, or a name with other than token characters (letters, digits,
    ///   `!#$%&'*+-.^_|~` and the backtick).
    public static func betaNames(header: String) throws(TranslateError) -> [String] {
        // Checked before splitting, so a long header costs no list of its pieces.
        guard header.utf8.count <= maxBetaHeaderBytes else {
            throw invalidBeta("The anthropic-beta header is longer than \(maxBetaHeaderBytes) bytes.")
        }
        var names: [String] = []
        for entry in header.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
            var piece = entry[...]
            while let first = piece.first, first == UInt8(ascii: " ") || first == 9 { piece = piece.dropFirst() }
            while let last = piece.last, last == UInt8(ascii: " ") || last == 9 { piece = piece.dropLast() }
            if piece.isEmpty { continue }
            guard piece.count <= maxBetaNameBytes else {
                throw invalidBeta("An anthropic-beta name is longer than \(maxBetaNameBytes) bytes.")
            }
            guard piece.allSatisfy(isTokenByte) else {
                throw invalidBeta(
                    "The anthropic-beta header must be a comma-separated list of beta names (letters, digits and -._ and the like).")
            }
            let name = String(decoding: piece, as: UTF8.self)
            if names.contains(name) { continue }
            guard names.count < maxBetas else {
                throw invalidBeta("The anthropic-beta header names more than \(maxBetas) betas.")
            }
            names.append(name)
        }
        return names
    }

    /// An RFC 9110 token character (`tchar`).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    @inline(never)
    static func invalidBeta(_ message: String) -> TranslateError {
        TranslateError(status: 400, code: "invalid_anthropic_beta", message: message, param: "anthropic-beta")
    }

    /// A Vertex AI error answer. The model's own errors are Anthropic's shape; Vertex's front end (a bad
    /// token, an unknown model or project, quota) answers in Google's; a proxy's page is wrapped.
    public static func vertexError(status: UInt32, body: [UInt8]) -> GatewayError {
        let span = body.span
        var type: UpstreamJSON.Value?
        var error: UpstreamJSON.Value?
        let kind = try? UpstreamJSON.scanTopLevel(span) { member in
            if member.key("type", in: span) {
                type = member.value
            } else if member.key("error", in: span) {
                error = member.value
            }
        }
        if kind == .object, UpstreamJSON.string(type, equals: "error", in: span) {
            return AnthropicTranslator.error(status: status, body: body)
        }
        if (kind == .object && UpstreamJSON.kind(of: error, in: span) == .object) || kind == .array {
            return Gemini.gatewayError(status: status, body: body)
        }
        return AnthropicTranslator.error(status: status, body: body)
    }
}

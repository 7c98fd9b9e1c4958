// Gemini `batchEmbedContents` response -> OpenAI embedding list.
//
// `{"embeddings":[{"values":[...]}, ...]}` becomes
// `{"object":"list","data":[{"object":"embedding","index":i,"embedding":[...]}],"model","usage"}`.
// The float arrays are copied as raw bytes from the upstream body (one tokenizer pass, no DOM), so every number
// keeps its exact source text. For `encoding_format: "base64"` each number is parsed once into a Float32 and the
// little-endian bytes are base64-encoded, as OpenAI does.

extension Gemini {
    /// A translated embeddings response.
    public struct EmbeddingsResponse: Sendable, Equatable {
        public var body: [UInt8]
        public var usage: TokenUsage
    }

    private static let embeddingsKey = Array("embeddings".utf8)
    private static let valuesKey = Array("values".utf8)
    private static let usageMetadataKey = Array("usageMetadata".utf8)
    private static let promptTokenCountKey = Array("promptTokenCount".utf8)

    /// Translates a Gemini `batchEmbedContents` response into OpenAI's embedding list.
    /// - Parameters:
    ///   - body: Gemini's `batchEmbedContents` answer.
    ///   - context: the client's model (reported back) and the request's details.
    ///   - base64: Encode each vector as base64 Float32 (see `EmbeddingsRequest.base64`).
    /// - Throws: `TranslateError.badUpstreamResponse` (502) if the body is not a batch embedding response.
    public static func embeddingsResponse(fromGemini body: [UInt8], context: TranslationContext, base64: Bool = false)
        throws(TranslateError) -> EmbeddingsResponse
    {
        let span = body.span
        var tokenizer = JSONTokenizer(limits: JSONLimits())
        var topKey = TopKey.other
        var sawEmbeddings = false
        var inEmbeddings = false
        var embeddingObjects = 0
        var awaitingValues = false
        var valuesStart: Int?
        var vectors: [Range<Int>] = []
        var encoded: [[UInt8]] = []
        var current: [UInt8] = []
        var promptTokens = 0
        var reader = TokenCountReader()
        var lastKeyWasPromptTokens = false
        var failure: String?
        scan: while true {
            let next: JSONToken?
            do {
                next = try tokenizer.next(in: span)
            } catch {
                throw .badUpstreamResponse("Gemini returned invalid JSON in an embeddings response: \(error)")
            }
            guard let token = next else { break }
            switch (token.kind, token.depth) {
            case (.key, 1):
                topKey = .other
                if key(token, span, embeddingsKey) { topKey = .embeddings }
                if key(token, span, usageMetadataKey) { topKey = .usageMetadata }
            case (.beginArray, 1):
                inEmbeddings = topKey == .embeddings
                sawEmbeddings = sawEmbeddings || inEmbeddings
            case (.endArray, 1):
                inEmbeddings = false
            case (.beginObject, 2) where inEmbeddings:
                embeddingObjects += 1
            case (.key, 3) where inEmbeddings:
                awaitingValues = key(token, span, valuesKey)
            case (.beginArray, 3) where inEmbeddings && awaitingValues:
                valuesStart = token.range.lowerBound
                current.removeAll(keepingCapacity: true)
            case (.number, 4) where valuesStart != nil:
                if base64 {
                    guard let value = Float(JSONLexer.text(span, token.range)), value.isFinite else {
                        failure = "Gemini returned an embedding value out of Float32 range."
                        break scan
                    }
                    let bits = value.bitPattern
                    for shift in stride(from: 0, to: 32, by: 8) {
                        current.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift)))
                    }
                }
            case (.endArray, 3) where valuesStart != nil:
                if let start = valuesStart { vectors.append(start..<token.range.upperBound) }
                if base64 { encoded.append(current) }
                valuesStart = nil
                awaitingValues = false
            case (_, 4) where valuesStart != nil:
                failure = "Gemini returned a non-numeric embedding value."
                break scan
            case (.number, 2) where topKey == .usageMetadata && lastKeyWasPromptTokens:
                promptTokens = reader.count(at: token.range, in: span)
            default:
                break
            }
            lastKeyWasPromptTokens =
                token.kind == .key && token.depth == 2 && topKey == .usageMetadata
                && key(token, span, promptTokenCountKey)
        }
        if let failure { throw .badUpstreamResponse(failure) }
        guard sawEmbeddings else { throw .badUpstreamResponse("Gemini returned no 'embeddings' array.") }
        guard embeddingObjects == vectors.count else {
            throw .badUpstreamResponse("Gemini returned an embedding without 'values'.")
        }

        var writer = JSONWriter(reservingCapacity: body.count + vectors.count * 64)
        writer.beginObject()
        writer.key("object")
        writer.string("list")
        writer.key("data")
        writer.beginArray()
        for (index, range) in vectors.enumerated() {
            writer.beginObject()
            writer.key("object")
            writer.string("embedding")
            writer.key("index")
            writer.int(index)
            writer.key("embedding")
            if base64, index < encoded.count {
                writer.raw(base64JSONString(encoded[index]))
            } else {
                writer.raw(body[range])
            }
            writer.endObject()
        }
        writer.endArray()
        writer.key("model")
        writer.string(context.requestModel)
        let usage = TokenUsage(inputTokens: promptTokens, isClamped: reader.clamped)
        writer.key("usage")
        OpenAIUsageWriter.writeEmbeddings(usage, to: &writer)
        writer.endObject()
        return EmbeddingsResponse(body: writer.bytes, usage: usage)
    }

    private enum TopKey { case embeddings, usageMetadata, other }

    private static func key(_ token: JSONToken, _ span: Span<UInt8>, _ name: [UInt8]) -> Bool {
        JSONLexer.decodedContent(span, token.contentRange, hasEscapes: token.hasEscapes, equals: name.span)
    }

    /// `"<base64>"` with quotes: base64 never needs JSON escaping.
    static func base64JSONString(_ bytes: [UInt8]) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = [JSONByte.quote]
        out.reserveCapacity(bytes.count / 3 * 4 + 6)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(triple >> 18 & 63)])
            out.append(alphabet[Int(triple >> 12 & 63)])
            out.append(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        out.append(JSONByte.quote)
        return out
    }
}

// OpenAI `/v1/embeddings` request -> Gemini `batchEmbedContents` body.
//
// `{"model","input":"text"|["text",...],"dimensions"?,"encoding_format"?}` becomes
// `{"requests":[{"model":"models/<m>","content":{"parts":[{"text"}]},"outputDimensionality"?}, ...]}`.
// Token-array inputs have no Gemini equivalent and are refused. `encoding_format` is answered by the gateway
// when it writes the response, so it is reported back rather than sent upstream.

extension Gemini {
    /// A translated embeddings request.
    public struct EmbeddingsRequest: Sendable, Equatable {
        /// The `batchEmbedContents` body.
        public var body: [UInt8]
        /// Whether the client asked for `encoding_format: "base64"` (the OpenAI Python SDK's default); pass it to
        /// `embeddingsResponse(fromGemini:context:base64:)`.
        public var base64: Bool
        /// How many inputs were sent, so the response can be checked against it.
        public var inputCount: Int
    }

    /// Translates an OpenAI embeddings request into a Gemini `batchEmbedContents` body.
    /// - Throws: `TranslateError` (400) for malformed or token-array input.
    public static func embeddingsRequest(fromOpenAI body: [UInt8], context: TranslationContext)
        throws(TranslateError) -> EmbeddingsRequest
    {
        let root = try parse(body, upstream: false)
        guard let request = root.objectValue else {
            throw .invalidBody("The request body must be a JSON object, got \(root.typeName).")
        }
        var texts: [String] = []
        switch request["input"] {
        case .string(let text)?:
            texts = [text]
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                guard let text = item.stringValue else {
                    throw .unsupported(
                        "Gemini embeds text only; token arrays and other inputs are not supported.",
                        param: "input[\(index)]")
                }
                texts.append(text)
            }
        default:
            throw .invalidBody("'input' must be a string or an array of strings.", param: "input")
        }
        guard !texts.isEmpty else { throw .invalidBody("'input' must not be empty.", param: "input") }

        var dimensions: Int64?
        if let value = request["dimensions"], !value.isNull {
            guard let number = value.int64Value, number > 0 else {
                throw .invalidBody("'dimensions' must be a positive integer.", param: "dimensions")
            }
            dimensions = number
        }
        var base64 = false
        if let format = request["encoding_format"], !format.isNull {
            switch format.stringValue {
            case "float": base64 = false
            case "base64": base64 = true
            default: throw .invalidBody("'encoding_format' must be 'float' or 'base64'.", param: "encoding_format")
            }
        }

        let model = modelResourceName(context.upstreamModel)
        var writer = JSONWriter(reservingCapacity: body.count + texts.count * 64)
        writer.beginObject()
        writer.key("requests")
        writer.beginArray()
        for text in texts {
            writer.beginObject()
            writer.key("model")
            writer.string(model)
            writer.key("content")
            writer.beginObject()
            writer.key("parts")
            writer.beginArray()
            writer.raw(textPart(text))
            writer.endArray()
            writer.endObject()
            if let dimensions {
                writer.key("outputDimensionality")
                writer.int(dimensions)
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return EmbeddingsRequest(body: writer.bytes, base64: base64, inputCount: texts.count)
    }
}

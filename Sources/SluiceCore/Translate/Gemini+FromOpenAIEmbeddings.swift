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
    ///
    /// The body is validated once (`JSONParser`'s rules) and read in place: each input string is copied into
    /// its request as it is.
    /// - Throws: `TranslateError` (400) for malformed or token-array input.
    public static func embeddingsRequest(fromOpenAI body: [UInt8], context: TranslationContext)
        throws(TranslateError) -> EmbeddingsRequest
    {
        var validator = JSONValidator()
        let document: ValidatedJSON
        let fields: JSONFields<3>
        do {
            (document, fields) = try validator.validate(body, capturing: embeddingsKeys)
        } catch {
            throw .invalidBody("The request body is not valid JSON: \(error.description)")
        }
        guard let kind = document.kind(document.root), kind == .object else {
            throw .invalidBody("The request body must be a JSON object, got \(document.kind(document.root)?.name ?? "null").")
        }
        let input = fields[0]
        var inputCount = 0
        if document.isString(input) {
            inputCount = 1
        } else if document.isArray(input) {
            for (index, item) in document.elements(of: input).enumerated() {
                guard document.isString(item) else {
                    throw .unsupported(
                        "Gemini embeds text only; token arrays and other inputs are not supported.",
                        param: "input[\(index)]")
                }
                inputCount += 1
            }
        } else {
            throw .invalidBody("'input' must be a string or an array of strings.", param: "input")
        }
        guard inputCount > 0 else { throw .invalidBody("'input' must not be empty.", param: "input") }

        var dimensions: Int64?
        if !document.isAbsentOrNull(fields[1]) {
            guard let number = document.int64(fields[1]), number > 0 else {
                throw .invalidBody("'dimensions' must be a positive integer.", param: "dimensions")
            }
            dimensions = number
        }
        var base64 = false
        if !document.isAbsentOrNull(fields[2]) {
            if document.string(fields[2], is: "float") {
                base64 = false
            } else if document.string(fields[2], is: "base64") {
                base64 = true
            } else {
                throw .invalidBody("'encoding_format' must be 'float' or 'base64'.", param: "encoding_format")
            }
        }

        let model = modelResourceName(context.upstreamModel)
        var writer = JSONWriter(reservingCapacity: body.count + inputCount * (model.utf8.count + 64))
        writer.beginObject()
        writer.key("requests")
        writer.beginArray()
        func writeRequest(_ text: Range<Int>, to writer: inout JSONWriter) {
            writer.beginObject()
            writer.key("model")
            writer.string(model)
            writer.key("content")
            writer.beginObject()
            writer.key("parts")
            writer.beginArray()
            writer.beginObject()
            writer.key("text")
            writer.copy(text, from: document)
            writer.endObject()
            writer.endArray()
            writer.endObject()
            if let dimensions {
                writer.key("outputDimensionality")
                writer.int(dimensions)
            }
            writer.endObject()
        }
        if let input, document.isString(input) {
            writeRequest(input, to: &writer)
        } else {
            for item in document.elements(of: input) { writeRequest(item, to: &writer) }
        }
        writer.endArray()
        writer.endObject()
        return EmbeddingsRequest(body: writer.bytes, base64: base64, inputCount: inputCount)
    }

    static let embeddingsKeys = JSONKeys<3>("input", "dimensions", "encoding_format")
}

// Reading an OpenAI chat completions request in place, for the one-pass request translators
// (`Anthropic+FromOpenAIChat.swift`, `Gemini+FromOpenAIChat.swift`, `BedrockConverse+FromOpenAIChat.swift`).
//
// The body is validated once with `JSONParser`'s rules (`JSONValidator`), so a body is refused exactly when, and
// with exactly the error, the `JSONValue` path refused it. The translators then walk the messages by byte
// ranges and copy strings and sub-documents (schemas, `cache_control`, thinking blocks) into the output as they
// are: no tree, no `String` per value. Member lookups follow `JSONObject`'s subscript (a member that is not
// there, or a container that is not an object, reads as absent), so every `x["a"]?["b"]?.stringValue` of the
// tree-based translators has a direct equivalent here.

/// A validated OpenAI chat completions request body and its top-level members.
struct OpenAIChatRequest {
    let document: ValidatedJSON
    /// Validates JSON found inside strings (tool call arguments, tool results), sharing one key buffer.
    var validator: JSONValidator

    // Top-level members the translators read.
    let n, messages, maxCompletionTokens, maxTokens, temperature, topP, topK, stop: Range<Int>?
    let tools, toolChoice, parallelToolCalls, responseFormat, reasoningEffort, thinking, user, stream: Range<Int>?
    let serviceTier, seed, presencePenalty, frequencyPenalty: Range<Int>?
    let safetySettingsSnake, safetySettings, cachedContentSnake, cachedContent: Range<Int>?

    static let keys = JSONKeys<24>(
        "n", "messages", "max_completion_tokens", "max_tokens", "temperature", "top_p", "top_k", "stop",
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "thinking", "user",
        "stream", "service_tier", "seed", "presence_penalty", "frequency_penalty", "safety_settings",
        "safetySettings", "cached_content", "cachedContent")

    /// Validates a client's body.
    /// - Throws: the `JSONParseError` `JSONParser.parse(body)` would throw.
    init(body: [UInt8]) throws(JSONParseError) {
        var validator = JSONValidator()
        let (document, fields) = try validator.validate(body, capturing: Self.keys)
        self.init(document: document, fields: fields, validator: validator)
    }

    /// Reads bytes serialised from a caller's `JSONValue`: repeated names are allowed and the first one counts, as
    /// `JSONObject`'s subscript reads them.
    init(serialized value: JSONValue) throws(JSONParseError) {
        var validator = JSONValidator(
            limits: JSONLimits(maxDepth: JSONLimits.maxSupportedDepth, maxBytes: .max), duplicateKeys: .allow)
        let (document, fields) = try validator.validate(value.serialized(), capturing: Self.keys)
        // JSON inside strings is parsed with the parser's defaults, as before.
        self.init(document: document, fields: fields, validator: JSONValidator())
    }

    /// Reads a hub request the gateway has just written from a validated body (an Anthropic client's request,
    /// `AnthropicTranslator.chatRequest(fromAnthropic:)`): valid JSON without whitespace by construction, so its
    /// top-level members are found without validating it again.
    init(written bytes: [UInt8]) {
        let document = ValidatedJSON(bytes: bytes, root: 0..<bytes.count)
        // JSON inside strings is parsed with the parser's defaults.
        self.init(document: document, fields: document.fields(of: document.root, Self.keys), validator: JSONValidator())
    }

    /// Reads a hub request the gateway wrote itself (a Responses request's translation): every limit but
    /// nesting is lifted, as the client's body was checked against them already.
    init(translated bytes: [UInt8]) throws(JSONParseError) {
        var validator = JSONValidator(limits: JSONLimits(maxDepth: JSONLimits.maxSupportedDepth, maxBytes: .max))
        let (document, fields) = try validator.validate(bytes, capturing: Self.keys)
        self.init(document: document, fields: fields, validator: JSONValidator())
    }

    private init(document: ValidatedJSON, fields: JSONFields<24>, validator: JSONValidator) {
        self.document = document
        self.validator = validator
        n = fields[0]
        messages = fields[1]
        maxCompletionTokens = fields[2]
        maxTokens = fields[3]
        temperature = fields[4]
        topP = fields[5]
        topK = fields[6]
        stop = fields[7]
        tools = fields[8]
        toolChoice = fields[9]
        parallelToolCalls = fields[10]
        responseFormat = fields[11]
        reasoningEffort = fields[12]
        thinking = fields[13]
        user = fields[14]
        stream = fields[15]
        serviceTier = fields[16]
        seed = fields[17]
        presencePenalty = fields[18]
        frequencyPenalty = fields[19]
        safetySettingsSnake = fields[20]
        safetySettings = fields[21]
        cachedContentSnake = fields[22]
        cachedContent = fields[23]
    }

    /// The kind of the top-level value.
    var rootKind: JSONKind? { document.kind(document.root) }

    // MARK: JSON inside strings

    /// What a string holding JSON turned out to hold (`function.arguments`, a tool result).
    enum EmbeddedJSON {
        /// A JSON object: its decoded text, ready to copy into the output.
        case object(ArraySlice<UInt8>)
        /// Only JSON whitespace (or nothing).
        case blank
        /// Anything else: not JSON, or JSON that is not an object.
        case other
    }

    /// Decodes the string `range` (or takes `decoded` text) and reads it as `JSONParser.parse` would.
    mutating func embeddedJSON(decoding range: Range<Int>) -> EmbeddedJSON {
        var text: [UInt8] = []
        guard document.appendDecoded(range, to: &text) else { return .other }
        return embeddedJSON(text)
    }

    mutating func embeddedJSON(_ text: [UInt8]) -> EmbeddedJSON {
        if text.allSatisfy(JSONByte.isWhitespace) { return .blank }
        guard let inner = try? validator.validate(text), inner.kind(inner.root) == .object else { return .other }
        return .object(inner.slice(inner.root))
    }
}

// MARK: - Nested objects

/// The members of one message the translators read.
struct OpenAIChatMessage {
    let role, content, toolCalls, toolCallID, name, thinkingBlocks, isError: Range<Int>?

    static let keys = JSONKeys<7>(
        "role", "content", "tool_calls", "tool_call_id", "name", "thinking_blocks", "is_error")

    init(_ document: ValidatedJSON, _ message: Range<Int>) {
        self.init(document.fields(of: message, Self.keys))
    }

    init(_ fields: JSONFields<7>) {
        role = fields[0]
        content = fields[1]
        toolCalls = fields[2]
        toolCallID = fields[3]
        name = fields[4]
        thinkingBlocks = fields[5]
        isError = fields[6]
    }
}

/// The members of one content part (and of thinking blocks, which share `type`).
struct OpenAIChatPart {
    let type, text, refusal, imageURL, file, inputAudio, cacheControl: Range<Int>?

    static let keys = JSONKeys<7>("type", "text", "refusal", "image_url", "file", "input_audio", "cache_control")

    init(_ document: ValidatedJSON, _ part: Range<Int>) {
        self.init(document.fields(of: part, Self.keys))
    }

    init(_ fields: JSONFields<7>) {
        type = fields[0]
        text = fields[1]
        refusal = fields[2]
        imageURL = fields[3]
        file = fields[4]
        inputAudio = fields[5]
        cacheControl = fields[6]
    }
}

/// The members of a tool call, a tool, or a named tool choice.
struct OpenAIChatToolCall {
    let id, type, function, extraContent, cacheControl: Range<Int>?

    static let keys = JSONKeys<5>("id", "type", "function", "extra_content", "cache_control")

    init(_ document: ValidatedJSON, _ call: Range<Int>) {
        self.init(document.fields(of: call, Self.keys))
    }

    init(_ fields: JSONFields<5>) {
        id = fields[0]
        type = fields[1]
        function = fields[2]
        extraContent = fields[3]
        cacheControl = fields[4]
    }
}

/// The members of a `function` object (in a tool call, a tool or a tool choice).
struct OpenAIChatFunction {
    let name, arguments, description, parameters, strict: Range<Int>?

    static let keys = JSONKeys<5>("name", "arguments", "description", "parameters", "strict")

    init(_ document: ValidatedJSON, _ function: Range<Int>?) {
        self.init(document.fields(of: function, Self.keys))
    }

    init(_ fields: JSONFields<5>) {
        name = fields[0]
        arguments = fields[1]
        description = fields[2]
        parameters = fields[3]
        strict = fields[4]
    }
}

extension ValidatedJSON {
    /// The member `name` of the object `object` (absent if it is not an object), for one-off lookups.
    func member(_ name: String, of object: Range<Int>?) -> Range<Int>? {
        guard isObject(object) else { return nil }
        let span = bytes.span
        var name = name
        name.makeContiguousUTF8()
        let key = name.utf8.span
        for member in members(of: object) {
            let content = member.keyContent
            if JSONLexer.decodedContent(span, content, hasEscapes: containsBackslash(content), equals: key) {
                return member.value
            }
        }
        return nil
    }

    /// The value at a path of member names, each step absent unless the previous one is an object.
    func member(_ path: String..., of object: Range<Int>?) -> Range<Int>? {
        var current = object
        for name in path { current = member(name, of: current) }
        return current
    }

    /// Whether the array or object `range` has no elements or members (true for anything else).
    func isEmptyContainer(_ range: Range<Int>?) -> Bool {
        guard let range, range.lowerBound + 1 < range.upperBound else { return true }
        return skipWhitespace(from: range.lowerBound + 1) >= range.upperBound - 1
    }

    /// The string range of `range` if it is a string, else nil (`JSONValue.stringValue` as a range).
    func stringRange(_ range: Range<Int>?) -> Range<Int>? {
        isString(range) ? range : nil
    }

    /// Whether the string `range` has neither escapes nor non-ASCII bytes: then `String`'s character-based
    /// operations (prefixes, `lowercased()`, splitting) agree with byte operations on its content.
    func isPlainASCII(_ range: Range<Int>) -> Bool {
        guard let content = stringContent(range) else { return false }
        return isPlainASCII(content: content)
    }

    /// Whether the bytes in `content` (part of a string's content) are ASCII without a backslash.
    func isPlainASCII(content: Range<Int>) -> Bool {
        guard content.lowerBound >= 0, content.upperBound <= bytes.count, content.lowerBound <= content.upperBound
        else { return false }
        for index in content where bytes[index] >= 0x80 || bytes[index] == JSONByte.backslash { return false }
        return true
    }

    /// `String.hasPrefix(prefix)` on the decoded string `range`, decoding only when the bytes cannot decide.
    ///
    /// `prefix` must be ASCII without `K`, `;` or a backquote (the only ASCII characters a non-ASCII scalar is
    /// canonically equivalent to), so a raw mismatch that is not an escape is a mismatch of characters too.
    func string(_ range: Range<Int>, hasPrefix prefix: String) -> Bool {
        guard let content = stringContent(range) else { return false }
        var index = content.lowerBound
        for byte in prefix.utf8 {
            guard index < content.upperBound else { return false }
            let actual = bytes[index]
            if actual != byte {
                if actual == JSONByte.backslash { return (decodedString(range) ?? "").hasPrefix(prefix) }
                return false
            }
            index += 1
        }
        // The character after the prefix must not extend its last character (a combining mark would).
        if index >= content.upperBound || (bytes[index] < 0x80 && bytes[index] != JSONByte.backslash) { return true }
        return (decodedString(range) ?? "").hasPrefix(prefix)
    }

    /// The string `range` as a key for `JSONStringTable`.
    func stringKey(_ range: Range<Int>) -> JSONStringKey? {
        guard let content = stringContent(range) else { return nil }
        return JSONStringKey(bytes.span, content, hasEscapes: containsBackslash(content))
    }

    /// Whether the content of the string `range` starts with the ASCII `prefix`.
    func content(of range: Range<Int>, hasPrefix prefix: String) -> Bool {
        guard let content = stringContent(range) else { return false }
        var index = content.lowerBound
        for byte in prefix.utf8 {
            guard index < content.upperBound, bytes[index] == byte else { return false }
            index += 1
        }
        return true
    }

    /// The first offset of `byte` in `range`, if any.
    func firstIndex(of byte: UInt8, in range: Range<Int>) -> Int? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        for index in range where bytes[index] == byte { return index }
        return nil
    }

    /// Whether the bytes in `range`, ASCII-lowercased, are `text`.
    func lowercased(_ range: Range<Int>, equals text: String) -> Bool {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count, range.count == text.utf8.count else {
            return false
        }
        var index = range.lowerBound
        for byte in text.utf8 {
            guard Self.asciiLowercased(bytes[index]) == byte else { return false }
            index += 1
        }
        return true
    }

    /// The bytes in `range`, ASCII-lowercased, as a `String`.
    func lowercasedString(_ range: Range<Int>) -> String {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return "" }
        return String(decoding: bytes[range].lazy.map(Self.asciiLowercased), as: UTF8.self)
    }

    static func asciiLowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}

// MARK: - Writing

/// Text for the output: a string's content in the request body (copied as it is), or a string made on a rare
/// path (a URL read with `String`'s character semantics).
enum OpenAIChatText {
    case content(Range<Int>)
    case string(String)
}

extension JSONWriter {
    /// Writes `text` as a JSON string.
    mutating func string(_ text: OpenAIChatText, from document: ValidatedJSON) {
        switch text {
        case .content(let content): string(content: content, from: document)
        case .string(let string): self.string(string)
        }
    }

    /// Writes a value copied from a validated document.
    mutating func copy(_ range: Range<Int>, from document: ValidatedJSON) {
        raw(document.slice(range))
    }

    /// Writes a string whose content is `content` of a validated document, known to need no escaping (a slice
    /// of string content without backslashes, cut at ASCII bytes).
    mutating func string(content: Range<Int>, from document: ValidatedJSON) {
        beginRawValue()
        bytes.append(JSONByte.quote)
        bytes.append(contentsOf: document.slice(content))
        bytes.append(JSONByte.quote)
        endRawValue()
    }

    /// Writes a string from UTF-8 bytes, escaping as `string(_:)` does.
    mutating func string(utf8: some Sequence<UInt8>) {
        beginRawValue()
        bytes.append(JSONByte.quote)
        for byte in utf8 { Self.appendEscaped(byte: byte, to: &bytes) }
        bytes.append(JSONByte.quote)
        endRawValue()
    }
}

// MARK: - Error locations

/// `param` values for errors, built only when an error is thrown.
enum OpenAIChatParam {
    static func message(_ index: Int) -> String { "messages[\(index)]" }
    static func message(_ index: Int, _ suffix: String) -> String { "messages[\(index)]\(suffix)" }
    static func part(_ message: Int, _ part: Int, _ suffix: String = "") -> String {
        "messages[\(message)].content[\(part)]\(suffix)"
    }
}

// MARK: - The exchange's entry

extension ProviderAttempt {
    /// The client's chat request as the one-pass translators read it.
    ///
    /// An OpenAI client's body is read as it is, validated once (a body that is not JSON is refused with the
    /// parser's error, other endpoints than chat completions as unsupported). An Anthropic client's request is
    /// written as the hub request in one pass over its validated body
    /// (`AnthropicTranslator.chatRequest(fromAnthropic:)`), and the translators read those bytes as written: no
    /// tree, and no second validation.
    mutating func openAIChatRequest(_ body: [UInt8]) throws(TranslateError) -> OpenAIChatRequest {
        if endpoint == .responses { return try responsesChatRequest(body) }
        guard clientAPI == .openAI else {
            guard clientAPI == .anthropic else { throw hubRefusal(body) }
            return try AnthropicTranslator.chatRequest(fromAnthropic: body)
        }
        let request: OpenAIChatRequest
        do {
            request = try OpenAIChatRequest(body: body)
        } catch {
            throw .invalidBody("We could not parse the JSON body of your request: \(error.description).")
        }
        guard endpoint == .chatCompletions else { throw unsupportedEndpoint() }
        return request
    }
}

// The contract between the two filters: what the downstream `sluice` filter leaves in Envoy's
// dynamic metadata for the upstream `sluice_upstream` filter, and what each upstream attempt
// leaves back. Access logs read the user-facing keys (`%DYNAMIC_METADATA(sluice:cost_usd)%`).
//
// Why two packed values (`AttemptContext`, `AttemptReport`) rather than a key per fact: every
// metadata call crosses into Envoy and edits a protobuf Struct (≈ 0.3 µs each in perf profiles),
// and only string values can be written in a batch. So each filter writes what it has in one
// string batch per hook, and the facts only the other filter reads travel packed in one string
// it reads with one call. The user-facing keys (consumer, model, tokens, cost …) stay plain keys
// of their natural type.
//
// Dynamic metadata is shared with every other filter of the stream, so what is read back is
// untrusted: another filter (a Lua script, a misconfigured ext_proc) may have written any value
// under these keys. Decoding is strict and every number is range-checked.

/// A key of the `sluice` dynamic-metadata namespace.
public enum FilterMetadataKey: Sendable, CaseIterable {
    // Written by the downstream filter: consumer and team once authorised, the rest once routed;
    // cost and the token counts when the stream completes (before access logging).
    case consumer, team, model, route, costUSD
    case inputTokens, outputTokens, cachedInputTokens, totalTokens
    /// The routed request's facts for the upstream filter (`AttemptContext`).
    case attemptContext
    // Written by the upstream filter, per attempt (a later attempt overwrites an earlier one).
    case backend, provider, responseModel
    /// The attempt's usage and provider for the downstream filter (`AttemptReport`).
    case attemptReport

    /// The key's name in the namespace (static, so setting it copies nothing).
    public var name: StaticString {
        switch self {
        case .consumer: "consumer"
        case .team: "team"
        case .model: "model"
        case .route: "route"
        case .costUSD: "cost_usd"
        case .inputTokens: "input_tokens"
        case .outputTokens: "output_tokens"
        case .cachedInputTokens: "cached_input_tokens"
        case .totalTokens: "total_tokens"
        case .attemptContext: "attempt_context"
        case .backend: "backend"
        case .provider: "provider"
        case .responseModel: "response_model"
        case .attemptReport: "attempt_report"
        }
    }
}

/// Encoding and decoding of the values under `FilterMetadataKey`s.
public enum FilterMetadata {
    /// The namespace of every key (also the host-metadata namespace naming a host's backend).
    public static let namespace: StaticString = "sluice"

    /// The largest body length carried in metadata (the gateway's own body limit is 1 GiB at most).
    public static let maxBodyBytes = 1 << 40

    /// The usage read back from metadata numbers, each clamped into `0...TokenUsage.maxCount`
    /// (NaN, negative and huge values included); absent numbers are 0.
    public static func usage(inputTokens: Double?, outputTokens: Double?, cachedInputTokens: Double?) -> TokenUsage {
        TokenUsage(
            inputTokens: TokenUsage.count(inputTokens ?? 0), outputTokens: TokenUsage.count(outputTokens ?? 0),
            cachedInputTokens: TokenUsage.count(cachedInputTokens ?? 0))
    }
}

/// What the downstream filter tells every upstream attempt about the routed request.
public struct AttemptContext: Sendable, Equatable {
    public var endpoint: Endpoint
    /// The model the client asked for (before any backend's rename).
    public var model: String
    public var stream: Bool
    /// OpenAI `stream_options.include_usage`.
    public var includeUsage: Bool
    /// The client's body length: an attempt that forwards the body unchanged sends this length,
    /// not the one an earlier attempt's rewrite left in the shared request headers.
    public var requestBodyBytes: Int

    public init(endpoint: Endpoint, model: String, stream: Bool, includeUsage: Bool, requestBodyBytes: Int) {
        self.endpoint = endpoint
        self.model = model
        self.stream = stream
        self.includeUsage = includeUsage
        self.requestBodyBytes = requestBodyBytes
    }

    /// `<endpoint> <stream 0|1> <include_usage 0|1> <body bytes> <model>`: the model last, so it
    /// may hold any character.
    public var encoded: String {
        let name = endpoint.name
        return PackedValue.make(capacity: name.utf8.count + model.utf8.count + 4 + 2 + PackedValue.maxIntegerDigits) { out in
            out.append(name)
            out.append(stream ? 1 : 0)
            out.append(includeUsage ? 1 : 0)
            out.append(requestBodyBytes)
            out.appendLast(model)
        }
    }

    /// The context `encoded` wrote; nil for anything else (another filter may have written the key).
    public init?(decoding text: String) {
        var fields = PackedFields(text)
        guard let endpoint = fields.next(oneOf: Endpoint.allCases, name: \.name),
            let stream = fields.nextFlag(), let includeUsage = fields.nextFlag(),
            let bytes = fields.nextInteger(max: FilterMetadata.maxBodyBytes)
        else { return nil }
        let model = fields.rest()
        guard !model.isEmpty else { return nil }
        self.init(endpoint: endpoint, model: model, stream: stream, includeUsage: includeUsage, requestBodyBytes: bytes)
    }
}

/// What an upstream attempt reports back: the usage its backend reported and who answered.
public struct AttemptReport: Sendable, Equatable {
    public var usage: TokenUsage
    /// The backend schema that answered (`gen_ai.provider.name`).
    public var provider: String
    /// The model name the backend was asked for (`gen_ai.response.model`).
    public var responseModel: String

    public init(usage: TokenUsage, provider: String, responseModel: String) {
        self.usage = usage
        self.provider = provider
        self.responseModel = responseModel
    }

    /// `<input> <output> <cached> <cache write> <reasoning> <clamped 0|1> <provider> <response model>`.
    public var encoded: String {
        let usage = usage.bounded
        let capacity = 5 * PackedValue.maxIntegerDigits + 1 + provider.utf8.count + responseModel.utf8.count + 7
        return PackedValue.make(capacity: capacity) { out in
            out.append(usage.inputTokens)
            out.append(usage.outputTokens)
            out.append(usage.cachedInputTokens)
            out.append(usage.cacheWriteInputTokens)
            out.append(usage.reasoningTokens)
            out.append(usage.isClamped ? 1 : 0)
            out.append(provider)
            out.appendLast(responseModel)
        }
    }

    /// The report `encoded` wrote, every count within `0...TokenUsage.maxCount`; nil for anything
    /// else (another filter may have written the key).
    public init?(decoding text: String) {
        var fields = PackedFields(text)
        guard let input = fields.nextInteger(max: TokenUsage.maxCount),
            let output = fields.nextInteger(max: TokenUsage.maxCount),
            let cached = fields.nextInteger(max: TokenUsage.maxCount),
            let cacheWrite = fields.nextInteger(max: TokenUsage.maxCount),
            let reasoning = fields.nextInteger(max: TokenUsage.maxCount),
            let clamped = fields.nextFlag(), let provider = fields.next()
        else { return nil }
        self.init(
            usage: TokenUsage(
                inputTokens: input, outputTokens: output, cachedInputTokens: cached, cacheWriteInputTokens: cacheWrite,
                reasoningTokens: reasoning, isClamped: clamped),
            provider: provider, responseModel: fields.rest())
    }
}

/// Writes a packed metadata value (space-separated fields) into one string whose storage is
/// reserved once: these values are made on every request.
private struct PackedValue {
    /// Digits of the largest `Int`.
    static let maxIntegerDigits = 19

    private var text = ""

    /// The string written by `write`; `capacity` bounds its UTF-8 length (one allocation).
    static func make(capacity: Int, _ write: (inout PackedValue) -> Void) -> String {
        var value = PackedValue()
        value.text.reserveCapacity(capacity)
        write(&value)
        return value.text
    }

    /// A field and its separator.
    mutating func append(_ field: String) {
        text += field
        text += " "
    }

    /// A non-negative integer field (negative ones are written as 0) and its separator.
    mutating func append(_ number: Int) {
        // At most 19 digits: a small string, no allocation.
        text += String(max(0, number))
        text += " "
    }

    /// The last field: no separator after it.
    mutating func appendLast(_ field: String) {
        text += field
    }
}

/// Space-separated fields of a packed metadata value, read in place (no copy of the value).
private struct PackedFields {
    private let utf8: String.UTF8View
    private var position: String.Index

    init(_ text: String) {
        utf8 = text.utf8
        position = utf8.startIndex
    }

    /// The next non-empty field, or nil at the end.
    mutating func next() -> String? {
        guard let range = nextRange(), !range.isEmpty else { return nil }
        return String(decoding: utf8[range], as: UTF8.self)
    }

    /// The next field if it is one of `candidates`' names (compared as bytes, no string made).
    mutating func next<T>(oneOf candidates: [T], name: (T) -> String) -> T? {
        guard let range = nextRange(), !range.isEmpty else { return nil }
        let field = utf8[range]
        let count = field.count
        return candidates.first { candidate in
            let bytes = name(candidate).utf8
            return bytes.count == count && bytes.elementsEqual(field)
        }
    }

    /// `0` or `1`.
    mutating func nextFlag() -> Bool? {
        guard let range = nextRange() else { return nil }
        let field = utf8[range]
        guard field.count == 1, let byte = field.first else { return nil }
        switch byte {
        case UInt8(ascii: "0"): return false
        case UInt8(ascii: "1"): return true
        default: return nil
        }
    }

    /// Decimal digits only, at most `max` (no sign, no leading `+`, no overflow).
    mutating func nextInteger(max: Int) -> Int? {
        guard let range = nextRange() else { return nil }
        let field = utf8[range]
        guard !field.isEmpty, field.count <= 19 else { return nil }
        var value = 0
        for byte in field {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2, sum <= max else { return nil }
            value = sum
        }
        return value
    }

    /// Everything after the fields read so far (may contain spaces).
    mutating func rest() -> String {
        defer { position = utf8.endIndex }
        return String(decoding: utf8[position...], as: UTF8.self)
    }

    private mutating func nextRange() -> Range<String.Index>? {
        guard position < utf8.endIndex else { return nil }
        let start = position
        while position < utf8.endIndex, utf8[position] != UInt8(ascii: " ") { position = utf8.index(after: position) }
        let range = start..<position
        if position < utf8.endIndex { position = utf8.index(after: position) }  // the separator
        return range
    }
}

// Identity from a JWT that Envoy's `jwt_authn` filter has already verified.
//
// Envoy 1.40's dynamic-module ABI reads only top-level metadata values, and jwt_authn writes the
// payload as a nested Struct, so the claims travel another way: the provider's
// `forward_payload_header` copies the verified payload (base64url JSON) into a request header.
// jwt_authn *appends* that header (`addCopy`) and a client can send one of its own, so the binding
// trusts it only when
//   - jwt_authn's `payload_in_metadata` key exists in its metadata namespace for this request
//     (only a successful verification writes it), and then
//   - takes the LAST value of the header, which is the one jwt_authn appended after the client's;
// and always removes the header before the request goes upstream.
//
//   "jwt": { "payload_header": "x-sluice-jwt-payload", "payload_metadata_key": "jwt_payload",
//            "subject_claim": "sub", "team_claim": "team", "models_claim": "models",
//            "models": ["gpt-*"], "consumer_prefix": "jwt:", "required": false,
//            "limits": { "tokens_per_minute": 100000 }, "max_subjects": 4096 }
//
// Each subject is a consumer of its own (`consumer_prefix` + `sub`, so a subject never shares the
// counters of a configured key of the same name) with `limits` counted per subject.

/// The `jwt` section of the gateway config.
public struct JWTIdentityConfig: Sendable, Equatable {
    /// jwt_authn's metadata namespace (the filter's name).
    public var metadataNamespace = "envoy.filters.http.jwt_authn"
    /// The provider's `payload_in_metadata`: its presence proves this request's token was verified.
    public var payloadMetadataKey: String
    /// The provider's `forward_payload_header` (lower-case).
    public var payloadHeader: String
    public var subjectClaim = "sub"
    /// Claim naming the consumer's team (team quotas and metrics), if any.
    public var teamClaim: String?
    /// Claim listing allowed model patterns (an array, or a space-separated string like `scope`).
    public var modelsClaim: String?
    /// Allowed models when the token has no models claim; nil = all.
    public var defaultModels: ModelPatterns?
    public var consumerPrefix = "jwt:"
    /// True: requests without a verified token are refused even if they carry an API key.
    public var required = false
    /// Limits of every subject, counted per subject.
    public var limits = QuotaLimits()
    /// Subjects with counters of their own; beyond it they share one set.
    public var maxSubjects = 4096

    public init(payloadMetadataKey: String, payloadHeader: String) {
        self.payloadMetadataKey = payloadMetadataKey
        self.payloadHeader = payloadHeader
    }

    static func read(_ object: inout ConfigObject) throws(ConfigError) -> JWTIdentityConfig {
        guard let header = try object.optionalHeaderName("payload_header") else {
            throw ConfigError(path: object.childPath("payload_header"), problem: "is required")
        }
        var config = JWTIdentityConfig(
            payloadMetadataKey: try object.nonEmptyString("payload_metadata_key"), payloadHeader: header)
        if let namespace = try object.optionalString("metadata_namespace") {
            guard !namespace.isEmpty else {
                throw ConfigError(path: object.childPath("metadata_namespace"), problem: "must not be empty")
            }
            config.metadataNamespace = namespace
        }
        config.subjectClaim = try object.optionalString("subject_claim") ?? "sub"
        config.teamClaim = try object.optionalString("team_claim")
        config.modelsClaim = try object.optionalString("models_claim")
        for (key, claim) in [("subject_claim", config.subjectClaim), ("team_claim", config.teamClaim ?? "x"),
                             ("models_claim", config.modelsClaim ?? "x")] where claim.isEmpty {
            throw ConfigError(path: object.childPath(key), problem: "must not be empty")
        }
        if let models = try object.optionalStringArray("models") {
            config.defaultModels = try ModelPatterns.validated(models, path: object.childPath("models"))
        }
        config.consumerPrefix = try object.optionalString("consumer_prefix") ?? "jwt:"
        config.required = try object.optionalBool("required") ?? false
        if var limits = try object.optionalObject("limits") {
            config.limits = try QuotaLimits.read(&limits)
            try limits.finish()
        }
        if let subjects = try object.optionalInt("max_subjects", in: 1...1_048_576) { config.maxSubjects = Int(subjects) }
        return config
    }

    /// The consumer a verified payload header value names, or why it cannot be used.
    ///
    /// One validating scan of the payload picks up the claims it needs (a token carries many it
    /// does not); only a models claim that is an array is parsed further. A claim named twice is
    /// refused, as jwt_authn and an upstream could read different copies.
    public func consumer(payloadHeader value: [UInt8]) -> Result<Consumer, GatewayError> {
        guard value.count <= 16 * 1024, let json = Base64URL.decode(value) else {
            return .failure(.invalidToken("the verified token payload is not base64url"))
        }
        let scanner = JSONScanner(json)
        var subjectRange: Range<Int>?
        var teamRange: Range<Int>?
        var modelsRange: Range<Int>?
        var repeated: String?
        do {
            // Validates the whole payload as it goes; a payload that is not an object has no claims.
            try scanner.forEachTopLevelMember { member in
                func note(_ range: inout Range<Int>?, _ claim: String) {
                    if range != nil { repeated = repeated ?? claim }
                    range = member.value
                }
                if scanner.key(of: member, equals: subjectClaim) { note(&subjectRange, subjectClaim) }
                if let teamClaim, scanner.key(of: member, equals: teamClaim) { note(&teamRange, teamClaim) }
                if let modelsClaim, scanner.key(of: member, equals: modelsClaim) { note(&modelsRange, modelsClaim) }
            }
        } catch {
            return .failure(.invalidToken("the verified token payload is not valid JSON"))
        }
        if let repeated { return .failure(.invalidToken("the token names its '\(repeated)' claim twice")) }
        guard let subjectRange, let subject = scanner.stringValue(at: subjectRange), !subject.isEmpty,
            subject.utf8.count <= 256
        else {
            return .failure(.invalidToken("the token has no usable '\(subjectClaim)' claim (a string of 1-256 bytes)"))
        }
        var team: String?
        if let teamClaim, let teamRange {
            guard let name = scanner.stringValue(at: teamRange), !name.isEmpty, name.utf8.count <= 256 else {
                return .failure(.invalidToken("the token's '\(teamClaim)' claim must be a non-empty string"))
            }
            team = name
        }
        var allowed = defaultModels
        if let modelsClaim, let modelsRange {
            guard let patterns = Self.modelNames(scanner, modelsRange),
                let validated = try? ModelPatterns.validated(patterns, path: modelsClaim)
            else {
                return .failure(
                    .invalidToken("the token's '\(modelsClaim)' claim must list model names or prefixes ending in '*'"))
            }
            allowed = validated
        }
        return .success(Consumer(name: consumerPrefix + subject, team: team, allowedModels: allowed, isSubject: true))
    }

    /// A models claim: an array of names, or one space-separated string (like OAuth's `scope`).
    private static func modelNames(_ scanner: JSONScanner, _ range: Range<Int>) -> [String]? {
        switch scanner.kind(at: range) {
        case .string:
            return scanner.stringValue(at: range)?.split(separator: " ").map(String.init)
        case .array:
            guard case .array(let elements)? = try? JSONParser.parse(Array(scanner.bytes[range])) else { return nil }
            var names: [String] = []
            names.reserveCapacity(elements.count)
            for element in elements {
                guard case .string(let name) = element else { return nil }
                names.append(name)
            }
            return names
        default:
            return nil
        }
    }
}

extension ModelPatterns {
    /// Patterns as the config writes them: names, or prefixes ending in a single `*`.
    static func validated(_ patterns: [String], path: String) throws(ConfigError) -> ModelPatterns {
        if let bad = patterns.firstIndex(where: { $0.isEmpty || $0.dropLast().contains("*") }) {
            throw ConfigError(path: "\(path)[\(bad)]", problem: "must be a model name, or a prefix ending in a single '*'")
        }
        return ModelPatterns(patterns)
    }
}

/// base64url (RFC 4648 §5), with or without `=` padding, as JWT segments use it.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Unpadded, as JWT segments and jwt_authn's forwarded payload are written.
    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group: UInt32 = 0
            for offset in 0..<count { group |= UInt32(bytes[index + offset]) << UInt32(16 - 8 * offset) }
            for position in 0...count { output.append(alphabet[Int((group >> UInt32(18 - 6 * position)) & 63)]) }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    public static func decode(_ text: [UInt8]) -> [UInt8]? { decode(text[...]) }

    /// `decode` of part of a buffer (a JSON string's content in place, not copied out first).
    public static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let start = text.startIndex
        var end = text.endIndex
        while end > start, text[end - 1] == UInt8(ascii: "=") { end -= 1 }
        guard text.endIndex - end <= 2, (end - start) % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity((end - start) * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for index in start..<end {
            guard let value = sextet(text[index]) else { return nil }
            accumulator = (accumulator << 6) | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }

    private static func sextet(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"), UInt8(ascii: "+"): 62
        case UInt8(ascii: "_"), UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

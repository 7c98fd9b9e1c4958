// Client (virtual) keys, looked up by the SHA-256 of what the client presents. Only hashes are
// kept; the final comparison is constant-time so response timing says nothing about a near miss.

/// Who a request belongs to once its key checks out.
public struct Consumer: Sendable, Equatable {
    public var name: String
    public var team: String?
    /// Models this consumer may use; nil = all.
    public var allowedModels: ModelPatterns?
    /// True for a run-time subject (a JWT `sub`), false for a configured key: subjects are
    /// counted in the quota store's per-subject table.
    public var isSubject: Bool

    public init(name: String, team: String? = nil, allowedModels: ModelPatterns? = nil, isSubject: Bool = false) {
        self.name = name
        self.team = team
        self.allowedModels = allowedModels
        self.isSubject = isSubject
    }

    public func mayUse(model: String) -> Bool { allowedModels?.matches(model) ?? true }
}

public enum KeyCheck: Sendable, Equatable {
    case accepted(Consumer)
    case missing
    case invalid
    case revoked
    case expired
}

public struct ClientKeyTable: Sendable {
    private let byHash: [SHA256Digest: ClientKeyConfig]

    public init(_ keys: [ClientKeyConfig]) {
        var table: [SHA256Digest: ClientKeyConfig] = [:]
        for key in keys { table[key.sha256] = key }
        byHash = table
    }

    public var isEmpty: Bool { byHash.isEmpty }

    /// Checks a presented key (the raw bytes after `Bearer `, or of `x-api-key`) at `now` (Unix seconds).
    public func check(_ presented: [UInt8], now: Int64) -> KeyCheck {
        check(presented.span, now: now)
    }

    /// Checks presented key bytes read in place (the token inside an `authorization` value).
    public func check(_ presented: Span<UInt8>, now: Int64) -> KeyCheck {
        guard !presented.isEmpty else { return .missing }
        let digest = SHA256.hash(presented)
        guard let entry = byHash[digest], entry.sha256.constantTimeEquals(digest) else { return .invalid }
        if entry.revoked { return .revoked }
        if let expiresAt = entry.expiresAt, now >= expiresAt { return .expired }
        return .accepted(Consumer(name: entry.name, team: entry.team, allowedModels: entry.allowedModels))
    }
}

/// Finds the client key in request headers: `Authorization: Bearer <key>` first, then
/// `x-api-key: <key>` (Anthropic SDKs). Pure byte work, no allocation beyond the result.
public enum ClientKeyExtractor {
    /// Made once, not on every request.
    private static let bearerScheme: [UInt8] = Array("bearer".utf8)

    /// The key bytes from an `authorization` value, or nil when it is not a Bearer credential.
    public static func bearerToken(_ authorization: [UInt8]) -> [UInt8]? {
        bearerTokenRange(authorization.span).map { Array(authorization[$0]) }
    }

    /// Where the key is in an `authorization` value (never empty), or nil when it is not a Bearer
    /// credential: the key is hashed in place.
    public static func bearerTokenRange(_ authorization: Span<UInt8>) -> Range<Int>? {
        let scheme = bearerScheme
        guard authorization.count > scheme.count else { return nil }
        for index in 0..<scheme.count where HTTPToken.lowercasedASCII(authorization[index]) != scheme[index] {
            return nil
        }
        var start = scheme.count
        guard authorization[start] == UInt8(ascii: " ") || authorization[start] == UInt8(ascii: "\t") else { return nil }
        while start < authorization.count, authorization[start] == UInt8(ascii: " ") || authorization[start] == UInt8(ascii: "\t") {
            start += 1
        }
        var end = authorization.count
        while end > start, authorization[end - 1] == UInt8(ascii: " ") || authorization[end - 1] == UInt8(ascii: "\t") {
            end -= 1
        }
        return start < end ? start..<end : nil
    }
}

/// ASCII helpers for HTTP tokens.
public enum HTTPToken {
    @inline(__always)
    public static func lowercasedASCII(_ byte: UInt8) -> UInt8 {
        (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
    }

    /// RFC 9110 `tchar`: the bytes a header name may contain.
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

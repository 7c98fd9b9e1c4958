// The bearer tokens of sluiced's HTTP API: the admin token (`/v1/admin/`) and the fleet token
// Envoys present (`/v1/fleet/`), two secrets read and checked the same way. Only a token's SHA-256 is held; a presented token is hashed and the two
// digests compared in constant time, so neither the token's bytes nor its length leak through
// response timing.
import Foundation
import SluiceCore

/// The secret of the admin API (`/v1/admin/`).
public typealias AdminToken = BearerToken
/// The secret Envoys present to `/v1/fleet/` (separate from the admin token: a gateway host holds
/// it, and it must not administer keys).
public typealias FleetToken = BearerToken

/// A secret that authorises calls (`Authorization: Bearer <token>`).
public struct BearerToken: Sendable {
    /// Shortest token accepted: a guessable token is worse than none.
    public static let minimumLength = 16

    private let digest: SHA256Digest

    /// A token from its text.
    /// - Throws: `AdminError.invalidRequest` (naming `field`) when shorter than `minimumLength`.
    public init(secret: String, field: String = "admin_token") throws(AdminError) {
        guard secret.utf8.count >= Self.minimumLength else {
            throw .invalid(field, "must be at least \(Self.minimumLength) characters")
        }
        digest = SHA256.hash(secret)
    }

    /// The token in the file at `path`, without surrounding whitespace (a trailing newline is usual).
    public static func fromFile(_ path: String, field: String = "admin_token_file") throws(AdminError) -> BearerToken {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .invalid(field, "cannot read \(path): \(error.localizedDescription)")
        }
        return try BearerToken(secret: text.trimmingCharacters(in: .whitespacesAndNewlines), field: field)
    }

    /// The token in the environment variable `name`.
    public static func fromEnvironment(
        _ name: String, environment: [String: String]? = nil, field: String = "admin_token_env"
    ) throws(AdminError) -> BearerToken {
        guard let value = (environment ?? ProcessInfo.processInfo.environment)[name], !value.isEmpty else {
            throw .invalid(field, "the environment variable \(name) is not set")
        }
        return try BearerToken(secret: value.trimmingCharacters(in: .whitespacesAndNewlines), field: field)
    }

    /// True when `presented` is the token; time independent of both values.
    public func matches(_ presented: some StringProtocol) -> Bool {
        SHA256.hash(String(presented)).constantTimeEquals(digest)
    }

    /// True when an `Authorization` header value carries the token as a bearer credential.
    public func authorizes(authorizationHeader value: String?) -> Bool {
        guard let value else { return false }
        let scheme = "bearer "
        guard value.utf8.count > scheme.utf8.count, value.prefix(scheme.count).lowercased() == scheme else { return false }
        return matches(value.dropFirst(scheme.count).drop(while: { $0 == " " }))
    }
}

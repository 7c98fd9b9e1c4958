// The admin API's bearer token. Only its SHA-256 is held; a presented token is hashed and the two
// digests compared in constant time, so neither the token's bytes nor its length leak through
// response timing.
import Foundation
import SluiceCore

/// The secret that authorises admin API calls (`Authorization: Bearer <token>`).
public struct AdminToken: Sendable {
    /// Shortest token accepted: a guessable admin token is worse than none.
    public static let minimumLength = 16

    private let digest: SHA256Digest

    /// A token from its text.
    /// - Throws: `AdminError.invalidRequest` (field `admin_token`) when shorter than `minimumLength`.
    public init(secret: String) throws(AdminError) {
        guard secret.utf8.count >= Self.minimumLength else {
            throw .invalid("admin_token", "must be at least \(Self.minimumLength) characters")
        }
        digest = SHA256.hash(secret)
    }

    /// The token in the file at `path`, without surrounding whitespace (a trailing newline is usual).
    public static func fromFile(_ path: String) throws(AdminError) -> AdminToken {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .invalid("admin_token_file", "cannot read \(path): \(error.localizedDescription)")
        }
        return try AdminToken(secret: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// The token in the environment variable `name`.
    public static func fromEnvironment(
        _ name: String, environment: [String: String]? = nil
    ) throws(AdminError) -> AdminToken {
        guard let value = (environment ?? ProcessInfo.processInfo.environment)[name], !value.isEmpty else {
            throw .invalid("admin_token_env", "the environment variable \(name) is not set")
        }
        return try AdminToken(secret: value.trimmingCharacters(in: .whitespacesAndNewlines))
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

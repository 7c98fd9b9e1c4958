// Request signing as a credential: an adapter names the scheme and where its key material comes
// from; the filter reads those sources' bytes and hands them, with the final request, to
// `headers(...)` here. Hashing is injected (`SigningCrypto`): pure Swift in tests and the
// simulator, OpenSSL's libcrypto inside Envoy.

/// A signature scheme and the credential sources it signs with.
public enum RequestSigning: Sendable, Equatable {
    /// AWS Signature Version 4 (header form), as Bedrock and every AWS service but S3 verify it.
    case sigV4(SigV4Signing)

    /// The sources to read, in the order `headers(...)` expects their bytes; nil entries are
    /// sources the backend's config leaves out (read as absent).
    public var credentialSources: [CredentialSource?] {
        switch self {
        case .sigV4(let signing): [signing.accessKeyID, signing.secretAccessKey, signing.sessionToken]
        }
    }

    /// The headers a signature of this scheme sets, for `ProviderAdapter.credentialHeaderNames`.
    public static let sigV4HeaderNames = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]

    /// The headers that sign `request`.
    /// - Parameters:
    ///   - request: The request as it goes on the wire (final body, host, path with query).
    ///   - credentials: The bytes of `credentialSources`, same order; nil for a source that gave none.
    ///   - unixSeconds: The signing time.
    ///   - crypto: SHA-256 and HMAC-SHA256.
    ///   - backend: The backend's name, for the error.
    /// - Throws: `TranslateError` 500 `backend_credential_missing` when a required credential is
    ///   absent or empty.
    public func headers(
        for request: SignableRequest, credentials: [[UInt8]?], unixSeconds: Int64, crypto: SigningCrypto, backend: String
    ) throws(TranslateError) -> [(name: String, value: String)] {
        switch self {
        case .sigV4(let signing):
            func text(_ index: Int) -> String? {
                guard index < credentials.count, let bytes = credentials[index], !bytes.isEmpty else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            }
            guard let keyID = text(0), let secret = text(1) else {
                throw .credentialMissing(backend: backend, what: "AWS credentials")
            }
            var signer = SigV4Signer(
                accessKeyID: keyID, secretAccessKey: secret, sessionToken: text(2), region: signing.region,
                service: signing.service)
            signer.crypto = crypto
            // The path and the query as views of the request's `:path` (nothing copied out).
            let whole = request.path.utf8[...]
            let mark = whole.firstIndex(of: UInt8(ascii: "?"))
            let path = mark.map { whole[..<$0] } ?? whole
            let query = mark.map { whole[whole.index(after: $0)...] } ?? whole[whole.endIndex...]
            return signer.sign(
                method: request.method, path: path, query: query,
                headers: [("host", request.host), ("content-type", signing.contentType)], payload: request.body,
                date: SigV4Date(unixSeconds: unixSeconds))
        }
    }
}

/// What SigV4 needs besides the request: the credential scope and the key sources.
public struct SigV4Signing: Sendable, Equatable {
    public var region: String
    /// The service's signing name (`bedrock` for the Bedrock runtime).
    public var service: String
    /// The content type the request is sent with; signed, so it must be what the plan sets.
    public var contentType: String
    public var accessKeyID: CredentialSource?
    public var secretAccessKey: CredentialSource?
    /// Temporary credentials' session token, sent and signed as `x-amz-security-token`.
    public var sessionToken: CredentialSource?

    public init(
        region: String, service: String, contentType: String = "application/json", accessKeyID: CredentialSource?,
        secretAccessKey: CredentialSource?, sessionToken: CredentialSource? = nil
    ) {
        self.region = region
        self.service = service
        self.contentType = contentType
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// The final request a signature covers.
public struct SignableRequest: Sendable {
    public var method: String
    /// The `:authority` sent.
    public var host: String
    /// The `:path` sent: percent-encoded once, query included.
    public var path: String
    /// The exact body bytes sent.
    public var body: [UInt8]

    public init(method: String, host: String, path: String, body: [UInt8]) {
        self.method = method
        self.host = host
        self.path = path
        self.body = body
    }
}

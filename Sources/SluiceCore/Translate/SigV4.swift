// AWS Signature Version 4 (header form) for requests to AWS services such as Bedrock, in pure Swift on top of our
// SHA-256 and HMAC-SHA256. Time is passed in, so signing is deterministic and testable.
//
// Steps (AWS "Create a signed AWS API request"):
//   canonical request = method \n canonical URI \n canonical query \n canonical headers \n signed headers \n
//                       hex(sha256(payload))
//   string to sign    = "AWS4-HMAC-SHA256" \n amz-date \n date/region/service/aws4_request \n hex(sha256(canonical))
//   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
//   signature         = hex(HMAC(signing key, string to sign))
//
// Path encoding: every service except S3 URI-encodes each path segment twice. We take the path as it goes on the
// wire (already percent-encoded once, e.g. `/model/a%3Ab/converse`) and encode it once more for the canonical URI
// (`/model/a%253Ab/converse`), which is what botocore does and what Bedrock verifies.

/// A UTC instant for signing, at one-second resolution.
public struct SigV4Date: Sendable, Equatable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    /// The UTC calendar time of `unixSeconds` (proleptic Gregorian; days-from-civil inverse by H. Hinnant).
    public init(unixSeconds: Int64) {
        // Clamp to years 0...9999 so the four-digit format below always holds and nothing can overflow.
        let seconds = min(max(unixSeconds, -62_167_219_200), 253_402_300_799)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.init(
            year: Int(year), month: Int(month), day: Int(day), hour: Int(secondOfDay / 3600),
            minute: Int(secondOfDay % 3600 / 60), second: Int(secondOfDay % 60))
    }

    /// `YYYYMMDD`, the credential-scope date.
    public var dateStamp: String {
        Self.digits(year, 4) + Self.digits(month, 2) + Self.digits(day, 2)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the `x-amz-date` value.
    public var amzDate: String {
        dateStamp + "T" + Self.digits(hour, 2) + Self.digits(minute, 2) + Self.digits(second, 2) + "Z"
    }

    private static func digits(_ value: Int, _ width: Int) -> String {
        let text = String(max(value, 0))
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

/// The hash primitives request signing (SigV4) needs. The pure-Swift ones are the default (and
/// what tests and the simulator use); the Envoy module plugs in OpenSSL's libcrypto (SluiceEnvoy's
/// `LibCrypto`).
public struct SigningCrypto: Sendable {
    public var sha256: @Sendable ([UInt8]) -> [UInt8]
    public var hmacSHA256: @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]

    public init(
        sha256: @escaping @Sendable ([UInt8]) -> [UInt8],
        hmacSHA256: @escaping @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]
    ) {
        self.sha256 = sha256
        self.hmacSHA256 = hmacSHA256
    }

    public static let pureSwift = SigningCrypto(
        sha256: { SHA256.hash($0).bytes }, hmacSHA256: { HMACSHA256.authenticate(key: $0, message: $1).bytes })
}

/// Lower-case hex of `bytes`.
func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Signs requests with AWS Signature Version 4 (`Authorization` header form).
public struct SigV4Signer: Sendable, CustomStringConvertible {
    /// The hash functions used (pure Swift unless the host provides faster ones).
    public var crypto: SigningCrypto = .pureSwift
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Temporary credentials' session token, sent and signed as `x-amz-security-token`.
    public var sessionToken: String?
    public var region: String
    /// The signing name of the service, `bedrock` for Bedrock runtime.
    public var service: String
    /// Whether the canonical URI encodes the (already encoded) wire path again: true for every service but S3.
    public var encodePathAgain: Bool

    public init(
        accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, region: String,
        service: String = "bedrock", encodePathAgain: Bool = true
    ) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.service = service
        self.encodePathAgain = encodePathAgain
    }

    /// Never shows the secret or the session token.
    public var description: String { "SigV4Signer(\(accessKeyID), \(region)/\(service))" }

    /// The headers to add to the request: `x-amz-date`, `x-amz-content-sha256` (when `includeContentSHA256`),
    /// `x-amz-security-token` (with a session token) and `authorization`.
    ///
    /// - Parameters:
    ///   - method: The HTTP method, e.g. `POST`.
    ///   - path: The path exactly as sent on the wire (percent-encoded once), without the query.
    ///   - query: The raw query string without `?` (may be empty).
    ///   - headers: The other headers to sign; must include `host` (and `content-type` when there is a body).
    ///   - payload: The exact body bytes.
    ///   - date: The signing time (UTC).
    ///   - includeContentSHA256: Add and sign `x-amz-content-sha256` (botocore-style; Bedrock accepts both).
    public func sign(
        method: String, path: String, query: String = "", headers: [(name: String, value: String)],
        payload: [UInt8], date: SigV4Date, includeContentSHA256: Bool = true
    ) -> [(name: String, value: String)] {
        let payloadHash = hexString(crypto.sha256(payload))
        let added = addedHeaders(date: date, payloadHash: payloadHash, includeContentSHA256: includeContentSHA256)
        let canonical = canonicalRequest(
            method: method, path: path, query: query, headers: headers + added, payloadHash: payloadHash)
        let signature = self.signature(stringToSign: stringToSign(canonicalRequest: canonical.text, date: date), date: date)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope(date)), SignedHeaders=\(canonical.signedHeaders), "
            + "Signature=\(signature)"
        return added + [(name: "authorization", value: authorization)]
    }

    /// The headers `sign` adds before signing (all but `authorization`).
    func addedHeaders(date: SigV4Date, payloadHash: String, includeContentSHA256: Bool) -> [(name: String, value: String)] {
        var added: [(name: String, value: String)] = [(name: "x-amz-date", value: date.amzDate)]
        if includeContentSHA256 { added.append((name: "x-amz-content-sha256", value: payloadHash)) }
        if let sessionToken { added.append((name: "x-amz-security-token", value: sessionToken)) }
        return added
    }

    /// The canonical request text and the `SignedHeaders` list for exactly the headers given.
    public func canonicalRequest(
        method: String, path: String, query: String, headers: [(name: String, value: String)], payloadHash: String
    ) -> (text: String, signedHeaders: String) {
        // Lowercase names, trim values and squeeze inner runs of spaces; repeated names join with ','.
        var merged: [(name: String, value: String)] = []
        for (name, value) in headers {
            let lower = Self.lowercasedASCII(name)
            let normalized = Self.normalizedValue(value)
            if let index = merged.firstIndex(where: { $0.name == lower }) {
                merged[index].value += "," + normalized
            } else {
                merged.append((lower, normalized))
            }
        }
        merged.sort { Self.bytesLess($0.name, $1.name) }
        let signedHeaders = merged.map(\.name).joined(separator: ";")
        var text = method + "\n"
        text += (encodePathAgain ? Self.uriEncode(path.isEmpty ? "/" : path, keepSlash: true) : (path.isEmpty ? "/" : path))
        text += "\n" + Self.canonicalQuery(query) + "\n"
        for (name, value) in merged { text += name + ":" + value + "\n" }
        text += "\n" + signedHeaders + "\n" + payloadHash
        return (text, signedHeaders)
    }

    /// The string to sign for a canonical request.
    public func stringToSign(canonicalRequest: String, date: SigV4Date) -> String {
        "AWS4-HMAC-SHA256\n\(date.amzDate)\n\(scope(date))\n\(hexString(crypto.sha256(Array(canonicalRequest.utf8))))"
    }

    /// The hex signature of `stringToSign` with the key derived for `date`.
    public func signature(stringToSign: String, date: SigV4Date) -> String {
        var key = crypto.hmacSHA256(Array(("AWS4" + secretAccessKey).utf8), Array(date.dateStamp.utf8))
        for part in [region, service, "aws4_request"] {
            key = crypto.hmacSHA256(key, Array(part.utf8))
        }
        return hexString(crypto.hmacSHA256(key, Array(stringToSign.utf8)))
    }

    /// `date/region/service/aws4_request`.
    func scope(_ date: SigV4Date) -> String { "\(date.dateStamp)/\(region)/\(service)/aws4_request" }

    // MARK: - Encoding helpers

    /// Percent-encodes everything but the RFC 3986 unreserved set (and '/' when `keepSlash`), uppercase hex.
    public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0F))
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Sorted `key=value` pairs, each side decoded from the wire form and encoded canonically.
    static func canonicalQuery(_ query: String) -> String {
        var pairs: [(String, String)] = []
        for item in query.utf8.split(separator: UInt8(ascii: "&")) {
            let parts = item.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts.first.map { percentDecoded(Array($0)) } ?? []
            let value = parts.count > 1 ? percentDecoded(Array(parts[1])) : []
            pairs.append(
                (uriEncode(String(decoding: key, as: UTF8.self)), uriEncode(String(decoding: value, as: UTF8.self))))
        }
        pairs.sort { $0.0 == $1.0 ? bytesLess($0.1, $1.1) : bytesLess($0.0, $1.0) }
        return pairs.map { $0.0 + "=" + $0.1 }.joined(separator: "&")
    }

    /// Decodes `%XX` escapes; a malformed escape stays literal.
    static func percentDecoded(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count,
                let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        return out
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "A") &+ (nibble &- 10)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    private static func lowercasedASCII(_ text: String) -> String {
        String(decoding: text.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Trims spaces and tabs and squeezes inner runs of spaces to one (SigV4 `Trimall`).
    private static func normalizedValue(_ value: String) -> String {
        var out: [UInt8] = []
        var pendingSpace = false
        for byte in value.utf8 {
            if byte == 0x20 || byte == 0x09 {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(0x20) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Byte-wise (code-unit) ordering, as AWS sorts names and query pairs.
    private static func bytesLess(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}

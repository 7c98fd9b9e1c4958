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

import Synchronization

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
        var out: [UInt8] = []
        out.reserveCapacity(8)
        appendDateStamp(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the `x-amz-date` value.
    public var amzDate: String {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        appendAmzDate(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func appendDateStamp(to out: inout [UInt8]) {
        Self.appendDigits(year, 4, to: &out)
        Self.appendDigits(month, 2, to: &out)
        Self.appendDigits(day, 2, to: &out)
    }

    func appendAmzDate(to out: inout [UInt8]) {
        appendDateStamp(to: &out)
        out.append(UInt8(ascii: "T"))
        Self.appendDigits(hour, 2, to: &out)
        Self.appendDigits(minute, 2, to: &out)
        Self.appendDigits(second, 2, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// `value` in decimal, zero-padded to `width` digits (negative values as 0; wider values whole).
    private static func appendDigits(_ value: Int, _ width: Int, to out: inout [UInt8]) {
        let value = max(value, 0)
        var divisor = 1
        var digits = 1
        while divisor <= value / 10 {
            divisor *= 10
            digits += 1
        }
        for _ in digits..<max(width, digits) { out.append(UInt8(ascii: "0")) }
        while divisor > 0 {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value / divisor % 10))
            divisor /= 10
        }
    }
}

/// The hash primitives request signing (SigV4) needs. The pure-Swift ones are the default (and
/// what tests and the simulator use); the Envoy module plugs in OpenSSL's libcrypto (SluiceEnvoy's
/// `LibCrypto`).
public struct SigningCrypto: Sendable {
    public var sha256: @Sendable ([UInt8]) -> [UInt8]
    public var hmacSHA256: @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]
    /// Where derived signing keys are kept between requests; nil derives one per signature.
    public var signingKeys: SigV4SigningKeys?

    public init(
        sha256: @escaping @Sendable ([UInt8]) -> [UInt8],
        hmacSHA256: @escaping @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8],
        signingKeys: SigV4SigningKeys? = nil
    ) {
        self.sha256 = sha256
        self.hmacSHA256 = hmacSHA256
        self.signingKeys = signingKeys
    }

    public static let pureSwift = SigningCrypto(
        sha256: { SHA256.hash($0).bytes }, hmacSHA256: { HMACSHA256.authenticate(key: $0, message: $1).bytes })
}

/// Signing keys already derived, by secret, day, region and service.
///
/// A SigV4 signing key is four chained HMACs of the secret and changes once a day, so every
/// request of a day to one region and service would derive the same key again (four of the five
/// HMACs a signature takes). The table is shared by Envoy's workers (one per process, in
/// `LibCrypto`), so it is guarded by a mutex held only to look up or insert. It keeps at most
/// `capacity` keys and drops every other day's keys when it inserts one, so a rotated secret's
/// key leaves by the next day at the latest. Keyed by the secret itself, not a digest of it: the
/// secret is in memory anyway (config or SDS), and a lookup then costs no hashing.
public final class SigV4SigningKeys: Sendable {
    private struct Entry {
        var secret: String
        var dateStamp: String
        var region: String
        var service: String
        var key: [UInt8]
    }

    /// Keys kept at most: a gateway signs for a few regions and credentials, not hundreds.
    public static let capacity = 16

    private let entries = Mutex<[Entry]>([])

    public init() {}

    /// The key for these inputs: the kept one, or `derive()`'s (kept for the next signature).
    func key(secret: String, dateStamp: String, region: String, service: String, derive: () -> [UInt8]) -> [UInt8] {
        let found = entries.withLock { entries in
            entries.first {
                $0.dateStamp == dateStamp && $0.region == region && $0.service == service && $0.secret == secret
            }?.key
        }
        if let found { return found }
        // Derived outside the lock: two workers may both derive the same key once; both keep
        // the same bytes, so the duplicate is harmless and the lock is never held for HMACs.
        let key = derive()
        entries.withLock { entries in
            entries.removeAll { $0.dateStamp != dateStamp }
            if entries.count >= Self.capacity { entries.removeFirst() }
            entries.append(Entry(secret: secret, dateStamp: dateStamp, region: region, service: service, key: key))
        }
        return key
    }

    /// How many keys are kept (tests).
    var count: Int { entries.withLock { $0.count } }
}

/// Lower-case hex of `bytes`.
func hexString(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    appendHex(bytes, to: &out)
    return String(decoding: out, as: UTF8.self)
}

/// Appends the lower-case hex of `bytes`.
func appendHex(_ bytes: [UInt8], to out: inout [UInt8]) {
    for byte in bytes {
        let high = byte >> 4
        let low = byte & 0x0F
        out.append(high < 10 ? 0x30 &+ high : 0x57 &+ high)
        out.append(low < 10 ? 0x30 &+ low : 0x57 &+ low)
    }
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
        sign(
            method: method, path: path.utf8[...], query: query.utf8[...], headers: headers, payload: payload, date: date,
            includeContentSHA256: includeContentSHA256)
    }

    /// `sign` for a path and query given as parts of one string (the request's `:path`), so neither
    /// is copied out. Every text of a signature is written as bytes into one buffer per step: the
    /// String-built version made about 80 allocations a signature.
    func sign(
        method: String, path: Substring.UTF8View, query: Substring.UTF8View, headers: [(name: String, value: String)],
        payload: [UInt8], date: SigV4Date, includeContentSHA256: Bool = true
    ) -> [(name: String, value: String)] {
        let payloadHash = hexString(crypto.sha256(payload))
        let added = addedHeaders(date: date, payloadHash: payloadHash, includeContentSHA256: includeContentSHA256)
        let canonical = canonicalRequestBytes(
            method: method, path: path, query: query, headers: headers, added: added, payloadHash: payloadHash)
        let signature = self.signature(stringToSign: stringToSignBytes(canonicalRequest: canonical.bytes, date: date), date: date)
        var authorization: [UInt8] = []
        authorization.reserveCapacity(160 + accessKeyID.utf8.count + canonical.signedHeaders.count)
        authorization += "AWS4-HMAC-SHA256 Credential=".utf8
        authorization += accessKeyID.utf8
        authorization.append(UInt8(ascii: "/"))
        appendScope(date, to: &authorization)
        authorization += ", SignedHeaders=".utf8
        authorization += canonical.signedHeaders
        authorization += ", Signature=".utf8
        authorization += signature
        var all = added
        all.append((name: "authorization", value: String(decoding: authorization, as: UTF8.self)))
        return all
    }

    /// The headers `sign` adds before signing (all but `authorization`).
    func addedHeaders(date: SigV4Date, payloadHash: String, includeContentSHA256: Bool) -> [(name: String, value: String)] {
        var added: [(name: String, value: String)] = []
        added.reserveCapacity(4)
        added.append((name: "x-amz-date", value: date.amzDate))
        if includeContentSHA256 { added.append((name: "x-amz-content-sha256", value: payloadHash)) }
        if let sessionToken { added.append((name: "x-amz-security-token", value: sessionToken)) }
        return added
    }

    /// The canonical request text and the `SignedHeaders` list for exactly the headers given.
    public func canonicalRequest(
        method: String, path: String, query: String, headers: [(name: String, value: String)], payloadHash: String
    ) -> (text: String, signedHeaders: String) {
        let canonical = canonicalRequestBytes(
            method: method, path: path.utf8[...], query: query.utf8[...], headers: headers, added: [],
            payloadHash: payloadHash)
        return (String(decoding: canonical.bytes, as: UTF8.self), String(decoding: canonical.signedHeaders, as: UTF8.self))
    }

    /// One header of a canonical request: its lower-cased name and trimmed value as ranges of a
    /// scratch buffer, and its place among the headers given (repeated names keep their order).
    private struct CanonicalHeader {
        var name: Range<Int>
        var value: Range<Int>
        var order: Int
    }

    /// The canonical request of `headers` and `added` (signed as one list): lower-cased names,
    /// values trimmed with inner runs of spaces squeezed, repeated names joined with ',' in the
    /// order given, sorted by name bytes.
    func canonicalRequestBytes(
        method: String, path: Substring.UTF8View, query: Substring.UTF8View, headers: [(name: String, value: String)],
        added: [(name: String, value: String)], payloadHash: String
    ) -> (bytes: [UInt8], signedHeaders: [UInt8]) {
        var scratch: [UInt8] = []
        scratch.reserveCapacity(512)
        var entries: [CanonicalHeader] = []
        entries.reserveCapacity(headers.count + added.count)
        for list in [headers, added] {
            for (name, value) in list {
                let nameStart = scratch.count
                for byte in name.utf8 { scratch.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) }
                let valueStart = scratch.count
                Self.appendTrimmed(value, to: &scratch)
                entries.append(CanonicalHeader(name: nameStart..<valueStart, value: valueStart..<scratch.count, order: entries.count))
            }
        }
        entries.sort { lhs, rhs in
            let left = scratch[lhs.name]
            let right = scratch[rhs.name]
            if left.elementsEqual(right) { return lhs.order < rhs.order }
            return left.lexicographicallyPrecedes(right)
        }

        var out: [UInt8] = []
        out.reserveCapacity(method.utf8.count + path.count * 3 + query.count * 3 + scratch.count + entries.count * 2 + 200)
        var signedHeaders: [UInt8] = []
        signedHeaders.reserveCapacity(entries.count * 16)
        out += method.utf8
        out.append(0x0A)
        if path.isEmpty {
            out.append(UInt8(ascii: "/"))
        } else if encodePathAgain {
            Self.appendURIEncoded(path, keepSlash: true, to: &out)
        } else {
            out += path
        }
        out.append(0x0A)
        if !query.isEmpty { out += Self.canonicalQuery(String(decoding: query, as: UTF8.self)).utf8 }
        out.append(0x0A)
        for (index, entry) in entries.enumerated() {
            let name = scratch[entry.name]
            if index > 0, scratch[entries[index - 1].name].elementsEqual(name) {
                // A repeated name: its value joins the line above.
                out.removeLast()
                out.append(UInt8(ascii: ","))
            } else {
                if !signedHeaders.isEmpty { signedHeaders.append(UInt8(ascii: ";")) }
                signedHeaders += name
                out += name
                out.append(UInt8(ascii: ":"))
            }
            out += scratch[entry.value]
            out.append(0x0A)
        }
        out.append(0x0A)
        out += signedHeaders
        out.append(0x0A)
        out += payloadHash.utf8
        return (out, signedHeaders)
    }

    /// The string to sign for a canonical request.
    public func stringToSign(canonicalRequest: String, date: SigV4Date) -> String {
        String(decoding: stringToSignBytes(canonicalRequest: Array(canonicalRequest.utf8), date: date), as: UTF8.self)
    }

    /// `AWS4-HMAC-SHA256`, the time, the scope and the canonical request's hash, one a line.
    func stringToSignBytes(canonicalRequest: [UInt8], date: SigV4Date) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + region.utf8.count + service.utf8.count)
        out += "AWS4-HMAC-SHA256\n".utf8
        date.appendAmzDate(to: &out)
        out.append(0x0A)
        appendScope(date, to: &out)
        out.append(0x0A)
        appendHex(crypto.sha256(canonicalRequest), to: &out)
        return out
    }

    /// The hex signature of `stringToSign` with the key derived for `date`.
    public func signature(stringToSign: String, date: SigV4Date) -> String {
        String(decoding: signature(stringToSign: Array(stringToSign.utf8), date: date), as: UTF8.self)
    }

    /// The signature's hex bytes.
    func signature(stringToSign: [UInt8], date: SigV4Date) -> [UInt8] {
        let dateStamp = date.dateStamp
        let key =
            crypto.signingKeys?.key(
                secret: secretAccessKey, dateStamp: dateStamp, region: region, service: service,
                derive: { signingKey(dateStamp: dateStamp) }) ?? signingKey(dateStamp: dateStamp)
        var hex: [UInt8] = []
        hex.reserveCapacity(64)
        appendHex(crypto.hmacSHA256(key, stringToSign), to: &hex)
        return hex
    }

    /// The signing key of one day, region and service: four HMACs chained from the secret.
    func signingKey(dateStamp: String) -> [UInt8] {
        var key = crypto.hmacSHA256(Array(("AWS4" + secretAccessKey).utf8), Array(dateStamp.utf8))
        for part in [region, service, "aws4_request"] {
            key = crypto.hmacSHA256(key, Array(part.utf8))
        }
        return key
    }

    /// `date/region/service/aws4_request`.
    func scope(_ date: SigV4Date) -> String {
        var out: [UInt8] = []
        appendScope(date, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func appendScope(_ date: SigV4Date, to out: inout [UInt8]) {
        date.appendDateStamp(to: &out)
        out.append(UInt8(ascii: "/"))
        out += region.utf8
        out.append(UInt8(ascii: "/"))
        out += service.utf8
        out += "/aws4_request".utf8
    }

    // MARK: - Encoding helpers

    /// Percent-encodes everything but the RFC 3986 unreserved set (and '/' when `keepSlash`), uppercase hex.
    public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        appendURIEncoded(text.utf8, keepSlash: keepSlash, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendURIEncoded(_ text: some Sequence<UInt8>, keepSlash: Bool, to out: inout [UInt8]) {
        for byte in text {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0F))
            }
        }
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

    /// Appends `value` trimmed of spaces and tabs, inner runs squeezed to one space (SigV4 `Trimall`).
    private static func appendTrimmed(_ value: String, to out: inout [UInt8]) {
        let start = out.count
        var pendingSpace = false
        for byte in value.utf8 {
            if byte == 0x20 || byte == 0x09 {
                pendingSpace = out.count > start
            } else {
                if pendingSpace { out.append(0x20) }
                pendingSpace = false
                out.append(byte)
            }
        }
    }

    /// Byte-wise (code-unit) ordering, as AWS sorts names and query pairs.
    private static func bytesLess(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}

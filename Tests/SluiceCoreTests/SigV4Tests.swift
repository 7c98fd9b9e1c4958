import Synchronization
import Testing

@testable import SluiceCore

/// Vectors from AWS's published SigV4 test suite (2015-08-30, service `service`, region `us-east-1`) and from
/// botocore 1.43's `SigV4Auth` for Bedrock requests (scratch script; values committed here).
@Suite struct SigV4Tests {
    static let suiteSigner = SigV4Signer(
        accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1",
        service: "service")
    static let suiteDate = SigV4Date(year: 2015, month: 8, day: 30, hour: 12, minute: 36, second: 0)
    static let host = [(name: "Host", value: "example.amazonaws.com")]

    static func authorization(_ headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name == "authorization" }?.value
    }

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var query: String
        var headers: [(name: String, value: String)]
        var body: String
        var signedHeaders: String
        var signature: String
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(
            name: "get-vanilla", method: "GET", query: "", headers: [], body: "", signedHeaders: "host;x-amz-date",
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(
            name: "post-vanilla", method: "POST", query: "", headers: [], body: "", signedHeaders: "host;x-amz-date",
            signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        Vector(
            name: "get-vanilla-query-order-key-case", method: "GET", query: "Param2=value2&Param1=value1", headers: [],
            body: "", signedHeaders: "host;x-amz-date",
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(
            name: "post-vanilla-query", method: "POST", query: "Param1=value1", headers: [], body: "",
            signedHeaders: "host;x-amz-date",
            signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
        Vector(
            name: "post-header-value-case", method: "POST", query: "", headers: [("My-Header1", "VALUE1")], body: "",
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        Vector(
            name: "post-x-www-form-urlencoded", method: "POST", query: "",
            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
        Vector(
            name: "post-x-www-form-urlencoded-parameters", method: "POST", query: "",
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf8")], body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"),
    ]

    @Test(arguments: vectors)
    func awsTestSuite(_ vector: Vector) {
        let added = Self.suiteSigner.sign(
            method: vector.method, path: "/", query: vector.query, headers: Self.host + vector.headers,
            payload: Array(vector.body.utf8), date: Self.suiteDate, includeContentSHA256: false)
        #expect(
            Self.authorization(added)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(vector.signedHeaders), Signature=\(vector.signature)")
        #expect(added.first { $0.name == "x-amz-date" }?.value == "20150830T123600Z")
    }

    @Test func canonicalRequestOfQueryOrderKeyCase() {
        let canonical = Self.suiteSigner.canonicalRequest(
            method: "GET", path: "/", query: "Param2=value2&Param1=value1",
            headers: Self.host + [("x-amz-date", "20150830T123600Z")],
            payloadHash: SHA256.hash([UInt8]()).hex)
        #expect(
            canonical.text
                == "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                + "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// The AWS suite's get-header-key-duplicate and get-header-value-trim canonical requests: a
    /// repeated name joins its values with ',' in the order sent, values are trimmed and inner
    /// runs of spaces squeezed, and names sort by bytes whatever their case.
    @Test func canonicalRequestOfRepeatedAndSpacedHeaders() {
        let duplicate = Self.suiteSigner.canonicalRequest(
            method: "GET", path: "/", query: "",
            headers: [("My-Header1", "value2"), ("Host", "example.amazonaws.com"), ("My-Header1", "value2"),
                ("My-Header1", "value1"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SHA256.hash([UInt8]()).hex)
        #expect(
            duplicate.text
                == "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\n"
                + "host;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(duplicate.signedHeaders == "host;my-header1;x-amz-date")
        let trimmed = Self.suiteSigner.canonicalRequest(
            method: "GET", path: "", query: "",
            headers: Self.host + [("My-Header2", "\"a   b   c\""), ("My-Header1", " value1 \t"), ("x-amz-date", "20150830T123600Z")],
            payloadHash: "p")
        #expect(
            trimmed.text
                == "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
                + "host;my-header1;my-header2;x-amz-date\np")
    }

    @Test func stsTokenHeaderBefore() {
        let token =
            "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
        var signer = Self.suiteSigner
        signer.sessionToken = token
        let added = signer.sign(
            method: "POST", path: "/", headers: Self.host, payload: [], date: Self.suiteDate, includeContentSHA256: false)
        #expect(added.first { $0.name == "x-amz-security-token" }?.value == token)
        #expect(
            Self.authorization(added)?.hasSuffix(
                "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                    + "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead") == true)
    }

    static let bedrockBody = Array(
        #"{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"inferenceConfig":{"maxTokens":64}}"#.utf8)
    static let bedrockModel =
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0"

    /// botocore's SigV4Auth("bedrock", "us-east-1") at 2024-05-17T09:30:05Z for the same request.
    @Test(arguments: [
        (String?.none, "content-type;host;x-amz-date", "a9af93b33bdd9e0f8b31f0ffb3857c375e4614ac783c7d845c0a5e654622d094"),
        (
            "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==",
            "content-type;host;x-amz-date;x-amz-security-token",
            "0b6eff32e7f6c7d961a920860ca803c21a66a6d1c1d8a8e62d4b3b69b9bd92a1"
        ),
    ])
    func bedrockMatchesBotocore(token: String?, signedHeaders: String, signature: String) {
        let signer = SigV4Signer(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            sessionToken: token, region: "us-east-1", service: "bedrock")
        let path = BedrockConverse.path(model: Self.bedrockModel, stream: true)
        #expect(
            path
                == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse-stream"
        )
        let date = SigV4Date(unixSeconds: 1_715_938_205)
        #expect(date == SigV4Date(year: 2024, month: 5, day: 17, hour: 9, minute: 30, second: 5))
        let added = signer.sign(
            method: "POST", path: path,
            headers: [("Content-Type", "application/json"), ("Host", "bedrock-runtime.us-east-1.amazonaws.com")],
            payload: Self.bedrockBody, date: date, includeContentSHA256: false)
        #expect(
            Self.authorization(added)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240517/us-east-1/bedrock/aws4_request, "
                + "SignedHeaders=\(signedHeaders), Signature=\(signature)")
        // The canonical URI encodes the wire path a second time (non-S3 rule), as botocore does.
        let canonical = signer.canonicalRequest(
            method: "POST", path: path, query: "", headers: [("host", "h")], payloadHash: "")
        #expect(canonical.text.contains("/model/arn%253Aaws%253Abedrock%253Aus-east-1"))
        #expect(canonical.text.contains("inference-profile%252Fus.anthropic"))
    }

    @Test func contentSHA256HeaderIsAddedAndSigned() {
        let added = Self.suiteSigner.sign(
            method: "POST", path: "/", headers: Self.host, payload: Array("x".utf8), date: Self.suiteDate)
        #expect(added.map(\.name) == ["x-amz-date", "x-amz-content-sha256", "authorization"])
        #expect(added[1].value == SHA256.hash(Array("x".utf8)).hex)
        #expect(Self.authorization(added)?.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,") == true)
        #expect(!String(describing: Self.suiteSigner).contains("EXAMPLEKEY"))
    }

    @Test func datesFromUnixSeconds() {
        #expect(SigV4Date(unixSeconds: 0).amzDate == "19700101T000000Z")
        #expect(SigV4Date(unixSeconds: 1_440_938_160).amzDate == "20150830T123600Z")
        #expect(SigV4Date(unixSeconds: 951_782_400).dateStamp == "20000229")
        #expect(SigV4Date(unixSeconds: -1).amzDate == "19691231T235959Z")
        #expect(SigV4Date(unixSeconds: Int64.max).year == 9999)
        #expect(SigV4Date(unixSeconds: Int64.min).year == 0)
    }

    /// Signatures made with kept keys are the ones derived afresh; a key is derived once per
    /// secret, day, region and service; another day's keys leave when a new day's arrives.
    @Test func keptSigningKeysSignAlike() {
        let derivations = Mutex(0)
        let counting = SigningCrypto(
            sha256: { SHA256.hash($0).bytes },
            hmacSHA256: { key, message in
                derivations.withLock { $0 += 1 }
                return HMACSHA256.authenticate(key: key, message: message).bytes
            }, signingKeys: SigV4SigningKeys())
        var signer = Self.suiteSigner
        signer.crypto = counting
        func sign(_ signer: SigV4Signer, _ date: SigV4Date) -> String? {
            Self.authorization(signer.sign(method: "GET", path: "/", headers: Self.host, payload: [], date: date))
        }
        let later = SigV4Date(year: 2015, month: 8, day: 30, hour: 23, minute: 59, second: 59)
        let nextDay = SigV4Date(year: 2015, month: 8, day: 31, hour: 0, minute: 0, second: 0)
        for date in [Self.suiteDate, later, nextDay] {
            #expect(sign(signer, date) == sign(Self.suiteSigner, date))
        }
        // Five HMACs for the first signature of a day, one for the next of the same day.
        #expect(derivations.withLock { $0 } == 5 + 1 + 5)
        #expect(counting.signingKeys?.count == 1)

        // Another secret or region is another key, not the kept one.
        var rotated = signer
        rotated.secretAccessKey = "another-secret"
        var otherRegion = signer
        otherRegion.region = "eu-west-3"
        var fresh = Self.suiteSigner
        for changed in [rotated, otherRegion] {
            fresh.secretAccessKey = changed.secretAccessKey
            fresh.region = changed.region
            #expect(sign(changed, nextDay) == sign(fresh, nextDay))
        }
        #expect(counting.signingKeys?.count == 3)
        #expect(sign(rotated, nextDay) != sign(signer, nextDay))
    }

    @Test func keptSigningKeysAreBounded() {
        var signer = Self.suiteSigner
        signer.crypto.signingKeys = SigV4SigningKeys()
        for index in 0..<(SigV4SigningKeys.capacity + 5) {
            signer.secretAccessKey = "secret-\(index)"
            _ = signer.sign(method: "GET", path: "/", headers: Self.host, payload: [], date: Self.suiteDate)
        }
        #expect(signer.crypto.signingKeys?.count == SigV4SigningKeys.capacity)
    }
}

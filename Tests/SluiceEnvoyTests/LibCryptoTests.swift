// libcrypto (through the CSluiceCrypto shim) and the pure-Swift hashes must agree bit for bit:
// SigV4 signatures made in Envoy are checked by code using the other.
@testable import SluiceEnvoy
import SluiceCore
import Testing

@Suite struct LibCryptoTests {
    @Test func agreesWithPureSwift() {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 55, 56, 63, 64, 65, 1000, 4096] {
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(LibCrypto.sha256(data) == SHA256.hash(data).bytes)
            for keyLength in [0, 16, 64, 65, 200] {
                let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                #expect(LibCrypto.hmacSHA256(key: key, message: data) == HMACSHA256.authenticate(key: key, message: data).bytes)
            }
        }
    }

    @Test func signaturesMatchEitherWay() {
        let date = SigV4Date(year: 2015, month: 8, day: 30, hour: 12, minute: 36, second: 0)
        var fast = SigV4Signer(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")
        fast.crypto = LibCrypto.sigV4
        let slow = SigV4Signer(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")
        let headers: [(name: String, value: String)] = [("host", "example.amazonaws.com")]
        let a = fast.sign(method: "GET", path: "/", headers: headers, payload: [], date: date, includeContentSHA256: false)
        let b = slow.sign(method: "GET", path: "/", headers: headers, payload: [], date: date, includeContentSHA256: false)
        #expect(a.map(\.value) == b.map(\.value))
        // AWS SigV4 test suite, get-vanilla.
        #expect(a.last?.value.hasSuffix("Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") == true)
    }
}

// OpenSSL libcrypto for request signing on the request path (through the CSluiceCrypto shim).
internal import CSluiceCrypto
internal import SluiceCore

enum LibCrypto {
    static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { sluice_crypto_sha256(input.baseAddress, input.count, $0.baseAddress) }
        }
        // libcrypto cannot fail on these inputs; if it ever did, fall back rather than sign garbage.
        return ok == 1 ? out : SHA256.hash(data).bytes
    }

    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = key.withUnsafeBufferPointer { keyBuffer in
            message.withUnsafeBufferPointer { messageBuffer in
                out.withUnsafeMutableBufferPointer {
                    sluice_crypto_hmac_sha256(
                        keyBuffer.baseAddress, keyBuffer.count, messageBuffer.baseAddress, messageBuffer.count, $0.baseAddress)
                }
            }
        }
        return ok == 1 ? out : HMACSHA256.authenticate(key: key, message: message).bytes
    }

    /// The hash primitives request signing needs, backed by libcrypto, with the process's derived
    /// SigV4 keys (one table for every config and worker: keys depend only on the secret, day,
    /// region and service).
    static let requestSigning = SigningCrypto(
        sha256: { sha256($0) }, hmacSHA256: { hmacSHA256(key: $0, message: $1) }, signingKeys: SigV4SigningKeys())

    /// The same primitives under the name the signature agreement test uses.
    static var sigV4: SigningCrypto { requestSigning }
}

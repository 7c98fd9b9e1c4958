// Client (virtual) keys: `sk-sluice-` and 32 random bytes in base64url (43 characters), 256 bits
// from the system's cryptographic generator. Only their SHA-256 is stored.
import SluiceCore

/// Generates client keys.
public enum ClientKeyGenerator {
    /// Every generated key starts with this.
    public static let prefix = "sk-sluice-"
    /// Random bytes per key.
    public static let randomByteCount = 32

    /// A new key from `SystemRandomNumberGenerator` (the kernel's CSPRNG).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// A new key from `generator`; tests pass a seeded one, everything else uses `generate()`.
    public static func generate(using generator: inout some RandomNumberGenerator) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(randomByteCount)
        while bytes.count < randomByteCount {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < randomByteCount {
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return prefix + Base64URL.encode(bytes)
    }
}

import SluiceCore
import Testing

// MARK: - SHA-256

@Suite("SHA256")
struct SHA256Tests {
    /// FIPS 180-4 / NIST CAVP example messages.
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        (
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                + "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
            "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
        ),
    ])
    func nistVectors(message: String, expected: String) {
        #expect(SHA256.hash(message).hex == expected)
        #expect(SHA256.hash(Array(message.utf8)).hex == expected)
        let bytes = Array(message.utf8)
        #expect(SHA256.hash(bytes.span).hex == expected)
    }

    @Test func oneMillionAViaIncrementalHasher() {
        // Uneven chunk sizes exercise partial-block top-ups as well as whole blocks taken straight from the input.
        let chunkSizes = [1, 7, 63, 64, 65, 127, 1000, 4096]
        var hasher = SHA256.Hasher()
        var remaining = 1_000_000
        var turn = 0
        while remaining > 0 {
            let size = min(chunkSizes[turn % chunkSizes.count], remaining)
            hasher.update([UInt8](repeating: UInt8(ascii: "a"), count: size))
            remaining -= size
            turn += 1
        }
        #expect(hasher.finalize().hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func everySplitPointGivesTheSameDigest() {
        let message = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let expected = SHA256.hash(message)
        for split in 0...message.count {
            var hasher = SHA256.Hasher()
            hasher.update(Array(message[..<split]))
            hasher.update(Array(message[split...]))
            #expect(hasher.finalize() == expected, "split at \(split)")
        }
    }

    @Test func paddingBoundaries() {
        // Lengths around 55/56/64 bytes decide whether the length field spills into an extra block.
        let known: [Int: String] = [
            55: "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
            56: "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a",
            64: "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
        ]
        for (length, hex) in known {
            let message = [UInt8](repeating: UInt8(ascii: "a"), count: length)
            #expect(SHA256.hash(message).hex == hex, "length \(length)")
        }
    }

    @Test func finalizeLeavesTheHasherUsable() {
        var hasher = SHA256.Hasher()
        hasher.update("ab")
        #expect(hasher.finalize() == SHA256.hash("ab"))
        hasher.update("c")
        #expect(hasher.finalize() == SHA256.hash("abc"))
    }

    @Test func stringAndBytesAgreeForNonASCII() {
        let text = "Grüße, 世界 😀"
        #expect(SHA256.hash(text) == SHA256.hash(Array(text.utf8)))
    }
}

// MARK: - Digest

@Suite("SHA256Digest")
struct SHA256DigestTests {
    @Test func hexRoundTrip() throws {
        let digest = SHA256.hash("abc")
        let parsed = try #require(SHA256Digest(hex: digest.hex))
        #expect(parsed == digest)
        #expect(SHA256Digest(hex: digest.hex.uppercased()) == digest)
        #expect(digest.description == digest.hex)
    }

    @Test(arguments: [
        "",
        "abc",
        String(repeating: "0", count: 63),
        String(repeating: "0", count: 65),
        String(repeating: "0", count: 63) + "g",
        String(repeating: "0", count: 63) + " ",
        String(repeating: "é", count: 32),
    ])
    func invalidHexIsRejected(hex: String) {
        #expect(SHA256Digest(hex: hex) == nil)
    }

    @Test func bytesRoundTrip() throws {
        let digest = SHA256.hash("abc")
        let bytes = digest.bytes
        #expect(bytes.count == 32)
        #expect(bytes.prefix(4) == [0xba, 0x78, 0x16, 0xbf])
        #expect(bytes.suffix(4) == [0xf2, 0x00, 0x15, 0xad])
        #expect(SHA256Digest(bytes: bytes) == digest)
        #expect(SHA256Digest(bytes: Array(bytes.dropLast())) == nil)
    }

    @Test func constantTimeEquality() throws {
        let digest = SHA256.hash("secret")
        #expect(digest.constantTimeEquals(SHA256.hash("secret")))
        #expect(!digest.constantTimeEquals(SHA256.hash("Secret")))
        // A difference in any single byte, first to last, must be detected.
        for index in 0..<32 {
            var bytes = digest.bytes
            bytes[index] ^= 0x01
            let other = try #require(SHA256Digest(bytes: bytes))
            #expect(!digest.constantTimeEquals(other), "byte \(index)")
            #expect(other != digest)
        }
    }
}

// MARK: - HMAC

@Suite("HMACSHA256")
struct HMACSHA256Tests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var key: [UInt8]
        var message: [UInt8]
        var expected: String
        var testDescription: String { name }
    }

    /// RFC 4231 test cases 1-4, 6 and 7 (case 5 tests truncated output, which this API does not offer).
    static let rfc4231: [Vector] = [
        Vector(
            name: "case 1",
            key: [UInt8](repeating: 0x0b, count: 20),
            message: Array("Hi There".utf8),
            expected: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        ),
        Vector(
            name: "case 2",
            key: Array("Jefe".utf8),
            message: Array("what do ya want for nothing?".utf8),
            expected: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        Vector(
            name: "case 3",
            key: [UInt8](repeating: 0xaa, count: 20),
            message: [UInt8](repeating: 0xdd, count: 50),
            expected: "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        ),
        Vector(
            name: "case 4",
            key: Array(1...25),
            message: [UInt8](repeating: 0xcd, count: 50),
            expected: "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        ),
        Vector(
            name: "case 6",
            key: [UInt8](repeating: 0xaa, count: 131),
            message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            expected: "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        ),
        Vector(
            name: "case 7",
            key: [UInt8](repeating: 0xaa, count: 131),
            message: Array(
                ("This is a test using a larger than block-size key and a larger than block-size data. "
                    + "The key needs to be hashed before being used by the HMAC algorithm.").utf8
            ),
            expected: "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        ),
    ]

    @Test(arguments: rfc4231)
    func rfc4231Vectors(vector: Vector) {
        #expect(HMACSHA256.authenticate(key: vector.key, message: vector.message).hex == vector.expected)
    }

    @Test(arguments: rfc4231)
    func incrementalMatchesOneShot(vector: Vector) {
        var hmac = HMACSHA256(key: vector.key)
        for byte in vector.message {
            hmac.update([byte])
        }
        #expect(hmac.finalize().hex == vector.expected)
    }

    @Test func stringOverloads() {
        #expect(
            HMACSHA256.authenticate(key: "Jefe", message: "what do ya want for nothing?").hex
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
    }

    @Test func keyOfExactlyOneBlockIsNotHashed() {
        // A 64-byte key is used as is; hashing it first would give a different tag.
        let key = [UInt8](repeating: 0x42, count: 64)
        let direct = HMACSHA256.authenticate(key: key, message: Array("m".utf8))
        let hashedKey = HMACSHA256.authenticate(key: SHA256.hash(key).bytes, message: Array("m".utf8))
        #expect(direct != hashedKey)
        // A 65-byte key is hashed first, so it is equivalent to using its digest.
        let longKey = [UInt8](repeating: 0x42, count: 65)
        #expect(
            HMACSHA256.authenticate(key: longKey, message: Array("m".utf8))
                == HMACSHA256.authenticate(key: SHA256.hash(longKey).bytes, message: Array("m".utf8))
        )
    }
}

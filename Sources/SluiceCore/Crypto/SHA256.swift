// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) in pure Swift.
//
// Used to hash API keys for lookup and constant-time comparison, so SluiceCore needs no C crypto library. All
// state lives in fixed-size inline storage: hashing never allocates. SigV4 signing, which is hotter and
// larger, may move to the system libcrypto behind a shim; this implementation favours clarity.

// MARK: - Digest

/// A 32-byte SHA-256 digest.
///
/// `==` is an ordinary, early-exit comparison; use `constantTimeEquals(_:)` whenever one side is derived from a
/// secret (API keys, HMAC tags), so the comparison time does not reveal how many leading bytes matched.
public struct SHA256Digest: Sendable, Hashable, CustomStringConvertible {
    /// The digest as four big-endian 64-bit words: byte 0 is the top byte of `word0`.
    private let word0: UInt64
    private let word1: UInt64
    private let word2: UInt64
    private let word3: UInt64

    /// The digest length in bytes.
    public static let byteCount = 32

    init(word0: UInt64, word1: UInt64, word2: UInt64, word3: UInt64) {
        self.word0 = word0
        self.word1 = word1
        self.word2 = word2
        self.word3 = word3
    }

    /// Creates a digest from exactly 32 bytes, or returns nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, byte) in bytes.enumerated() {
            Self.accumulate(UInt64(byte), bits: 8, index: index / 8, into: &words)
        }
        self.init(word0: words.0, word1: words.1, word2: words.2, word3: words.3)
    }

    /// Parses 64 hex digits (either case), or returns nil for anything else.
    public init?(hex: String) {
        let utf8 = hex.utf8
        guard utf8.count == Self.byteCount * 2 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, character) in utf8.enumerated() {
            guard let nibble = JSONByte.hexValue(character) else { return nil }
            Self.accumulate(UInt64(nibble), bits: 4, index: index / 16, into: &words)
        }
        self.init(word0: words.0, word1: words.1, word2: words.2, word3: words.3)
    }

    /// The 32 digest bytes.
    public var bytes: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(Self.byteCount)
        forEachByte { output.append($0) }
        return output
    }

    /// The digest as 64 lowercase hex digits.
    public var hex: String {
        var output: [UInt8] = []
        output.reserveCapacity(Self.byteCount * 2)
        forEachByte { byte in
            output.append(Self.hexDigit(byte >> 4))
            output.append(Self.hexDigit(byte & 0x0F))
        }
        return String(decoding: output, as: UTF8.self)
    }

    public var description: String { hex }

    /// Compares two digests in time independent of their contents.
    public func constantTimeEquals(_ other: SHA256Digest) -> Bool {
        // XOR exposes differing bits and OR folds them together without branching on any byte.
        let difference = (word0 ^ other.word0) | (word1 ^ other.word1) | (word2 ^ other.word2) | (word3 ^ other.word3)
        return difference == 0
    }

    /// Calls `body` with each digest byte in order.
    func forEachByte(_ body: (UInt8) -> Void) {
        func emit(_ word: UInt64) {
            for shift in stride(from: 56, through: 0, by: -8) {
                body(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        emit(word0)
        emit(word1)
        emit(word2)
        emit(word3)
    }

    // MARK: Private

    /// Shifts `bits` of `value` into word `index` (0 to 3) of `words`.
    private static func accumulate(
        _ value: UInt64,
        bits: UInt64,
        index: Int,
        into words: inout (UInt64, UInt64, UInt64, UInt64)
    ) {
        switch index {
        case 0: words.0 = words.0 << bits | value
        case 1: words.1 = words.1 << bits | value
        case 2: words.2 = words.2 << bits | value
        default: words.3 = words.3 << bits | value
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &+ (nibble &- 10)
    }
}

// MARK: - SHA-256

/// SHA-256 as specified in FIPS 180-4.
public enum SHA256 {
    /// The block size in bytes.
    public static let blockByteCount = 64

    /// Hashes `bytes`.
    public static func hash(_ bytes: [UInt8]) -> SHA256Digest {
        hash(bytes.span)
    }

    /// Hashes borrowed bytes.
    public static func hash(_ bytes: Span<UInt8>) -> SHA256Digest {
        var hasher = Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Hashes the UTF-8 encoding of `string`, reading the string's own storage rather than copying it.
    public static func hash(_ string: String) -> SHA256Digest {
        var hasher = Hasher()
        hasher.update(string)
        return hasher.finalize()
    }

    /// An incremental SHA-256 computation: `update` any number of times, then `finalize`.
    public struct Hasher: Sendable {
        /// The eight working hash words H0...H7.
        private var state = SHA256.initialState
        /// Input not yet compressed; fewer than 64 bytes between calls.
        private var block = InlineArray<64, UInt8>(repeating: 0)
        private var blockCount = 0
        /// Total input length in bytes. FIPS 180-4 defines the length field modulo 2^64 bits, so wrapping
        /// arithmetic is the specified behaviour, not a shortcut.
        private var totalBytes: UInt64 = 0

        /// Creates a hasher with the FIPS 180-4 initial state.
        public init() {}

        /// Adds `bytes` to the message.
        public mutating func update(_ bytes: [UInt8]) {
            update(bytes.span)
        }

        /// Adds the UTF-8 encoding of `string` to the message.
        public mutating func update(_ string: String) {
            var string = string
            // Free for native strings (always the case on Linux); it lets us borrow the string's bytes.
            string.makeContiguousUTF8()
            update(string.utf8.span)
        }

        /// Adds borrowed bytes to the message.
        public mutating func update(_ bytes: Span<UInt8>) {
            totalBytes &+= UInt64(truncatingIfNeeded: bytes.count)
            var index = 0
            let count = bytes.count
            // Top up a partial block first.
            if blockCount > 0 {
                while blockCount < SHA256.blockByteCount && index < count {
                    block[blockCount] = bytes[index]
                    blockCount += 1
                    index += 1
                }
                guard blockCount == SHA256.blockByteCount else { return }
                compressBufferedBlock()
            }
            // Whole blocks straight from the input, without copying them into the buffer.
            while count - index >= SHA256.blockByteCount {
                SHA256.compress(&state, bytes, at: index)
                index += SHA256.blockByteCount
            }
            // Keep the tail for the next call.
            while index < count && blockCount < SHA256.blockByteCount {
                block[blockCount] = bytes[index]
                blockCount += 1
                index += 1
            }
        }

        /// Returns the digest of everything added so far; the hasher itself is left unchanged.
        public func finalize() -> SHA256Digest {
            var copy = self
            let bitLength = totalBytes &* 8
            // Padding: 0x80, zeros up to 56 bytes into a block, then the 64-bit big-endian bit length.
            copy.appendPadding(0x80)
            while copy.blockCount != SHA256.blockByteCount - 8 {
                copy.appendPadding(0)
            }
            for shift in stride(from: 56, through: 0, by: -8) {
                copy.appendPadding(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
            }
            let h = copy.state
            return SHA256Digest(
                word0: UInt64(h[0]) << 32 | UInt64(h[1]),
                word1: UInt64(h[2]) << 32 | UInt64(h[3]),
                word2: UInt64(h[4]) << 32 | UInt64(h[5]),
                word3: UInt64(h[6]) << 32 | UInt64(h[7])
            )
        }

        /// Adds one byte of a digest to the message (used by HMAC's outer hash).
        mutating func update(_ digest: SHA256Digest) {
            digest.forEachByte { byte in
                totalBytes &+= 1
                appendPadding(byte)
            }
        }

        /// Buffers one byte, compressing when the block fills; does not count towards the message length.
        private mutating func appendPadding(_ byte: UInt8) {
            block[blockCount] = byte
            blockCount += 1
            if blockCount == SHA256.blockByteCount {
                compressBufferedBlock()
            }
        }

        private mutating func compressBufferedBlock() {
            SHA256.compress(&state, block.span, at: 0)
            blockCount = 0
        }
    }

    // MARK: Compression

    /// H(0), the first 32 bits of the fractional parts of the square roots of the first eight primes.
    private static let initialState: InlineArray<8, UInt32> = [
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
    ]

    /// K, the first 32 bits of the fractional parts of the cube roots of the first 64 primes.
    private static let roundConstants: InlineArray<64, UInt32> = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    /// Processes the 64-byte block at `offset` in `bytes` (FIPS 180-4 section 6.2.2).
    ///
    /// The message schedule is kept as a rolling window of 16 words instead of 64, indexed modulo 16.
    private static func compress(_ state: inout InlineArray<8, UInt32>, _ bytes: Span<UInt8>, at offset: Int) {
        guard offset >= 0, bytes.count - offset >= blockByteCount else { return }
        var schedule = InlineArray<16, UInt32>(repeating: 0)
        for word in 0..<16 {
            let base = offset + word * 4
            schedule[word] = UInt32(bytes[base]) << 24 | UInt32(bytes[base + 1]) << 16
                | UInt32(bytes[base + 2]) << 8 | UInt32(bytes[base + 3])
        }
        var a = state[0]
        var b = state[1]
        var c = state[2]
        var d = state[3]
        var e = state[4]
        var f = state[5]
        var g = state[6]
        var h = state[7]
        for round in 0..<64 {
            let w: UInt32
            if round < 16 {
                w = schedule[round]
            } else {
                let w15 = schedule[(round - 15) & 15]
                let w2 = schedule[(round - 2) & 15]
                let sigma0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3)
                let sigma1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10)
                w = sigma1 &+ schedule[(round - 7) & 15] &+ sigma0 &+ schedule[round & 15]
                schedule[round & 15] = w
            }
            let bigSigma1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            let choice = (e & f) ^ (~e & g)
            let t1 = h &+ bigSigma1 &+ choice &+ roundConstants[round] &+ w
            let bigSigma0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = bigSigma0 &+ majority
            h = g
            g = f
            f = e
            e = d &+ t1
            d = c
            c = b
            b = a
            a = t1 &+ t2
        }
        state[0] &+= a
        state[1] &+= b
        state[2] &+= c
        state[3] &+= d
        state[4] &+= e
        state[5] &+= f
        state[6] &+= g
        state[7] &+= h
    }

    private static func rotr(_ value: UInt32, _ count: UInt32) -> UInt32 {
        value >> count | value << (32 - count)
    }
}

// MARK: - HMAC

/// HMAC-SHA-256 (RFC 2104, FIPS 198-1).
///
/// Keys longer than the 64-byte block are hashed first, as the RFC specifies. Compare tags with
/// `SHA256Digest.constantTimeEquals(_:)`.
public struct HMACSHA256: Sendable {
    /// The inner hash, already fed the key XOR ipad block.
    private var inner: SHA256.Hasher
    /// The outer hash, already fed the key XOR opad block.
    private let outer: SHA256.Hasher

    /// Starts an HMAC computation with `key`.
    public init(key: [UInt8]) {
        self.init(key: key.span)
    }

    /// Starts an HMAC computation with the UTF-8 encoding of `key`.
    public init(key: String) {
        var key = key
        key.makeContiguousUTF8()
        self.init(key: key.utf8.span)
    }

    /// Starts an HMAC computation with borrowed key bytes.
    public init(key: Span<UInt8>) {
        var paddedKey = InlineArray<64, UInt8>(repeating: 0)
        if key.count > SHA256.blockByteCount {
            let digest = SHA256.hash(key)
            var index = 0
            digest.forEachByte { byte in
                paddedKey[index] = byte
                index += 1
            }
        } else {
            for index in 0..<key.count {
                paddedKey[index] = key[index]
            }
        }
        var innerPad = InlineArray<64, UInt8>(repeating: 0)
        var outerPad = InlineArray<64, UInt8>(repeating: 0)
        for index in 0..<SHA256.blockByteCount {
            innerPad[index] = paddedKey[index] ^ 0x36
            outerPad[index] = paddedKey[index] ^ 0x5c
        }
        var inner = SHA256.Hasher()
        inner.update(innerPad.span)
        var outer = SHA256.Hasher()
        outer.update(outerPad.span)
        self.inner = inner
        self.outer = outer
    }

    /// Adds `bytes` to the message.
    public mutating func update(_ bytes: [UInt8]) {
        inner.update(bytes.span)
    }

    /// Adds the UTF-8 encoding of `string` to the message.
    public mutating func update(_ string: String) {
        inner.update(string)
    }

    /// Adds borrowed bytes to the message.
    public mutating func update(_ bytes: Span<UInt8>) {
        inner.update(bytes)
    }

    /// Returns the tag for everything added so far; the computation itself is left unchanged.
    public func finalize() -> SHA256Digest {
        var outer = self.outer
        outer.update(inner.finalize())
        return outer.finalize()
    }

    /// Computes the HMAC-SHA-256 tag of `message` under `key`.
    public static func authenticate(key: [UInt8], message: [UInt8]) -> SHA256Digest {
        authenticate(key: key.span, message: message.span)
    }

    /// Computes the HMAC-SHA-256 tag of the UTF-8 encoding of `message` under the UTF-8 encoding of `key`.
    public static func authenticate(key: String, message: String) -> SHA256Digest {
        var hmac = HMACSHA256(key: key)
        hmac.update(message)
        return hmac.finalize()
    }

    /// Computes the HMAC-SHA-256 tag of borrowed `message` bytes under borrowed `key` bytes.
    public static func authenticate(key: Span<UInt8>, message: Span<UInt8>) -> SHA256Digest {
        var hmac = HMACSHA256(key: key)
        hmac.update(message)
        return hmac.finalize()
    }
}

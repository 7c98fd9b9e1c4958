// Prefix-block hashing: the prompt cut into fixed-size blocks, each block's hash chained over the
// ones before it, so that "the first k hashes of two prompts are equal" means "their first k
// blocks are equal" (as vLLM's automatic prefix caching keys a KV block by its parent's hash and
// its own tokens). The scorer compares these chains with what each endpoint was sent before.
//
// Why bytes and not tokens: the proxy has no tokenizer, and running one per request would cost
// more than everything else the module does. English text averages about 4 bytes per token, so a
// 256-byte block is about 64 tokens: four of vLLM's default 16-token KV blocks. Byte blocks and
// the server's token blocks do not line up exactly, but the question asked is only "did this
// endpoint recently get a request starting with the same bytes", which byte blocks answer. A
// bigger block halves the hashing and index work per request and loses more of the tail (a
// partial last block is never hashed, as vLLM never caches a partial block); a smaller one
// doubles the index entries per prompt. 256 bytes keeps a 4 KiB prompt at 16 hashes.
//
// Why not the project's SHA-256 (Crypto/SHA256.swift): it is many times slower per byte (the
// `Endpoints.hash.*` benchmarks measure both on a 4 KiB prompt), and nothing in routing needs collision resistance against an
// attacker: a crafted collision can only make a request look like it shares a prefix with
// another, which moves it to a different (healthy, filtered) endpoint. Swift's `Hasher` (SipHash)
// is seeded per process, so two Envoys, tests and benchmarks would see different chains; and its
// byte API needs unsafe pointers, which SluiceCore does not use. So this is a small word-at-a-time
// multiply-xorshift hash (the folded 64×64→128 multiply of wyhash-style hashes, finished with
// murmur3's fmix64), keyed by a seed the caller may randomise.

/// Hashes of a prompt's leading full blocks, each covering all blocks before it. Fixed-size
/// storage (no heap): at most `PrefixBlockHashes.maxBlocks` blocks are hashed, the rest of a
/// longer prompt is ignored (affinity on its first 32 KiB is what decides).
public struct PrefixBlockHashes: Sendable {
    /// Bytes per block: about 64 tokens of English text (see the file's comment).
    public static let blockByteCount = 256
    /// Blocks hashed at most: 32 KiB of prompt.
    public static let maxBlocks = 128

    private var storage = InlineArray<128, UInt64>(repeating: 0)
    /// How many leading blocks were hashed (0 for a prompt shorter than one block).
    public private(set) var count = 0

    public init() {}

    /// The chained hash of block `index` (0..<count); 0 outside that range.
    public subscript(index: Int) -> UInt64 {
        guard index >= 0, index < count else { return 0 }
        return storage[index]
    }

    /// Hashes the leading full blocks of `prompt` with `seed` (the same seed for every request
    /// whose hashes are compared with one index).
    public init(prompt: Span<UInt8>, seed: UInt64 = PrefixBlockHashes.defaultSeed) {
        let blocks = min(prompt.count / Self.blockByteCount, Self.maxBlocks)
        var chain = seed
        for block in 0..<blocks {
            chain = Self.hashBlock(prompt, from: block &* Self.blockByteCount, parent: chain)
            storage[block] = chain
        }
        count = blocks
    }

    public init(prompt: [UInt8], seed: UInt64 = PrefixBlockHashes.defaultSeed) {
        self.init(prompt: prompt.span, seed: seed)
    }

    /// Appends a hash computed elsewhere (the filter's hand-over header, read by the load
    /// balancer); false when full or for 0, which no block hash is.
    public mutating func append(_ hash: UInt64) -> Bool {
        guard hash != 0, count < Self.maxBlocks else { return false }
        storage[count] = hash
        count &+= 1
        return true
    }

    /// Keeps only the first `limit` hashes.
    public mutating func truncate(to limit: Int) {
        if limit >= 0, limit < count { count = limit }
    }

    /// The seed used when none is given: any constant works; this one is the first 64 bits of
    /// the fractional part of π, so it is obviously not chosen.
    public static let defaultSeed: UInt64 = 0x243F_6A88_85A3_08D3

    private static let multiplierA: UInt64 = 0xA076_1D64_78BD_642F
    private static let multiplierB: UInt64 = 0xE703_7ED1_A0B4_28DB

    /// One block's hash, covering `parent` (the previous block's hash, or the seed). Never 0, so
    /// 0 can mean "empty" in the index.
    @inline(__always)
    static func hashBlock(_ bytes: Span<UInt8>, from start: Int, parent: UInt64) -> UInt64 {
        var state = parent ^ multiplierA
        var offset = start
        let end = start &+ blockByteCount
        // Two words per round: fold the 128-bit product, as wyhash does, so each round mixes
        // both words into all 64 bits of the state.
        while offset < end {
            let first = loadLittleEndian(bytes, at: offset)
            let second = loadLittleEndian(bytes, at: offset &+ 8)
            state = fold(first ^ multiplierA ^ state, second ^ multiplierB)
            offset &+= 16
        }
        let mixed = finalMix(state ^ parent)
        return mixed == 0 ? 1 : mixed
    }

    @inline(__always)
    private static func loadLittleEndian(_ bytes: Span<UInt8>, at offset: Int) -> UInt64 {
        // The caller hashes only whole blocks inside the span, so these reads are in bounds; the
        // span still checks each one (an unchecked load would need unsafe code, kept out of
        // SluiceCore).
        var word: UInt64 = 0
        for byte in 0..<8 {
            word |= UInt64(bytes[offset &+ byte]) &<< (byte &* 8)
        }
        return word
    }

    @inline(__always)
    private static func fold(_ left: UInt64, _ right: UInt64) -> UInt64 {
        let product = left.multipliedFullWidth(by: right)
        return product.high ^ product.low
    }

    /// murmur3's 64-bit finaliser: every input bit affects every output bit.
    @inline(__always)
    private static func finalMix(_ value: UInt64) -> UInt64 {
        var mixed = value
        mixed ^= mixed &>> 33
        mixed &*= 0xFF51_AFD7_ED55_8CCD
        mixed ^= mixed &>> 33
        mixed &*= 0xC4CE_B9FE_1A85_EC53
        mixed ^= mixed &>> 33
        return mixed
    }
}

/// A LoRA adapter (or model) name as the scorer compares it: the FNV-1a hash of its bytes. Names
/// are short (tens of bytes), so a byte-at-a-time hash costs nothing, and it can be computed while
/// a metrics label is being unescaped, without a buffer. Never 0.
public struct AdapterID: Hashable, Sendable {
    public let value: UInt64

    public init(hash: UInt64) {
        value = hash == 0 ? 1 : hash
    }

    public init(name: Span<UInt8>) {
        var hasher = FNV1a()
        for index in name.indices { hasher.add(name[index]) }
        self.init(hash: hasher.value)
    }

    public init(_ name: String) {
        var hasher = FNV1a()
        for byte in name.utf8 { hasher.add(byte) }
        self.init(hash: hasher.value)
    }

    struct FNV1a {
        var value: UInt64 = 0xCBF2_9CE4_8422_2325
        @inline(__always)
        mutating func add(_ byte: UInt8) {
            value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
    }
}

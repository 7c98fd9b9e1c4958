// A simulated prompt's tokens and KV blocks: 4 bytes per token and 256-byte blocks, each block's
// key chained over the blocks before it (vLLM keys a block by its parent's hash and its own
// tokens, so equal keys mean equal prefixes). The hash is SluiceCore's prefix-block hash (the one
// the gateway's picker computes), so the simulator caches exactly the blocks the picker reasons
// about; past that hash's 128-block limit the chain continues with FNV-1a over the block.
import SluiceCore

public enum PromptBlocks {
    /// Tokens of a prompt of `byteCount` bytes: bytes/4 rounded up, at least 1.
    public static func tokens(byteCount: Int) -> Int {
        max(1, (byteCount + 3) / 4)
    }

    /// Chained hashes of the prompt's full 256-byte blocks (a partial last block is never cached).
    public static func hashes(_ prompt: [UInt8]) -> [UInt64] {
        let blockCount = prompt.count / VLLMEngineConfig.blockBytes
        guard blockCount > 0 else { return [] }
        let prefix = PrefixBlockHashes(prompt: prompt)
        var result: [UInt64] = []
        result.reserveCapacity(blockCount)
        for index in 0..<prefix.count { result.append(prefix[index]) }
        var chain = result.last ?? PrefixBlockHashes.defaultSeed
        var block = prefix.count
        while block < blockCount {
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ chain
            let start = block * VLLMEngineConfig.blockBytes
            for byte in prompt[start..<start + VLLMEngineConfig.blockBytes] {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
            }
            chain = hash == 0 ? 1 : hash
            result.append(chain)
            block += 1
        }
        return result
    }
}

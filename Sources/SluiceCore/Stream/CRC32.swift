// CRC-32 as used by AWS event streams, gzip, zip and Ethernet (IEEE 802.3: reflected polynomial
// 0xEDB88320, initial value and final xor 0xFFFFFFFF). Table-driven, one byte per step; the table is
// built once per process and every lookup index is a masked byte, so no input can index out of range.

/// CRC-32 (IEEE 802.3), incrementally or in one call.
public struct CRC32: Sendable, Equatable {
    /// The running register, pre-inverted.
    private var register: UInt32 = 0xFFFF_FFFF

    public init() {}

    /// The CRC-32 of `bytes`.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }

    /// Feeds more bytes.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let table = Self.table
        var crc = register
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        register = crc
    }

    /// Feeds more bytes from a span (no copy).
    public mutating func update(_ bytes: Span<UInt8>) {
        let table = Self.table
        var crc = register
        for index in bytes.indices {
            crc = table[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
        }
        register = crc
    }

    /// The checksum of everything fed so far.
    public var value: UInt32 { register ^ 0xFFFF_FFFF }

    /// The 256-entry lookup table for the reflected polynomial.
    private static let table: [UInt32] = (0..<256).map { (index: UInt32) -> UInt32 in
        var entry = index
        for _ in 0..<8 {
            entry = (entry & 1) != 0 ? (entry >> 1) ^ 0xEDB8_8320 : entry >> 1
        }
        return entry
    }
}

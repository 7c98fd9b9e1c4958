// The per-stream handles Envoy holds (`filter_module_ptr`): not pointers to our objects but
// (slot, generation) handles into a process-wide table, so a hook that arrives for a stream after
// its `destroy` finds a retired generation and is refused, instead of touching freed memory.
//
// Envoy never calls a hook after `destroy` today; if a future version, a bug in Envoy or in
// another filter's interplay ever did, a plain `Unmanaged` pointer would turn it into a
// use-after-free that takes the whole proxy down. The handle turns it into a log line.
//
// Slots live in chunks that are allocated on demand and never freed, so any handle that was ever
// handed out still addresses valid memory. `new`/`retire` take a short uncontended lock (the free
// list); the per-hook lookup takes none: a stream's hooks, and its destroy, run on the worker
// that owns the stream, and a slot is reused only after its retirement was published through the
// lock.
import Synchronization

/// One stream's entry: the generation that is live in this slot, and its filter.
private struct StreamSlot {
    /// Odd while a stream lives in the slot, even when free: a handle's generation is always odd,
    /// so a handle never matches a free slot.
    var generation: UInt32
    var filter: Unmanaged<HTTPFilter>?
}

/// The table behind every `filter_module_ptr`.
final class StreamTable: @unchecked Sendable {
    // @unchecked: `chunks` entries are written once, under `lock`, before any handle into them
    // exists; slots are written by the worker owning their stream (see the file comment).

    /// Slots per chunk, and chunks at most: 2^10 × 2^10 ≈ one million concurrent streams per process.
    static let chunkBits = 10
    static let maxChunks = 1 << 10
    static let chunkSize = 1 << chunkBits

    static let shared = StreamTable()

    private let chunks: UnsafeMutablePointer<UnsafeMutablePointer<StreamSlot>?>
    private struct FreeList {
        var free: [UInt32] = []
        var allocatedChunks = 0
    }
    private let lock = Mutex(FreeList())

    init() {
        chunks = .allocate(capacity: Self.maxChunks)
        chunks.initialize(repeating: nil, count: Self.maxChunks)
    }

    // The table lives as long as the process (the module is loaded with do_not_close), so it has no deinit.

    /// Stores `filter` (retained) and returns its handle, or nil when the table is full.
    func insert(_ filter: HTTPFilter) -> UnsafeRawPointer? {
        guard let index = takeFreeIndex() else { return nil }
        let slot = slot(at: index)
        slot.pointee.generation &+= 1  // even -> odd: live
        slot.pointee.filter = Unmanaged.passRetained(filter)
        return Self.handle(index: index, generation: slot.pointee.generation)
    }

    /// The live filter behind `handle`, retained for the caller; nil for a handle whose stream was
    /// destroyed (or that was never ours).
    func filter(_ handle: UnsafeRawPointer) -> HTTPFilter? {
        guard let slot = liveSlot(handle) else { return nil }
        return slot.pointee.filter?.takeUnretainedValue()
    }

    /// Retires `handle`: its generation stops matching, and the filter is handed back for its
    /// `onDestroy` and release. Nil when the handle is not live (a second destroy).
    func remove(_ handle: UnsafeRawPointer) -> Unmanaged<HTTPFilter>? {
        guard let slot = liveSlot(handle) else { return nil }
        let filter = slot.pointee.filter
        slot.pointee.filter = nil
        slot.pointee.generation &+= 1  // odd -> even: retired
        let index = Self.index(of: handle)
        lock.withLock { $0.free.append(index) }
        return filter
    }

    // MARK: - Handles

    /// The handle's bits: generation in the high 32, slot index in the low 32. The generation is
    /// odd, so no handle is 0 (NULL, which Envoy reads as "no filter").
    private static func handle(index: UInt32, generation: UInt32) -> UnsafeRawPointer? {
        UnsafeRawPointer(bitPattern: UInt(generation) << 32 | UInt(index))
    }

    private static func index(of handle: UnsafeRawPointer) -> UInt32 {
        UInt32(truncatingIfNeeded: UInt(bitPattern: handle))
    }

    private func liveSlot(_ handle: UnsafeRawPointer) -> UnsafeMutablePointer<StreamSlot>? {
        let bits = UInt(bitPattern: handle)
        let generation = UInt32(truncatingIfNeeded: bits >> 32)
        let index = Int(UInt32(truncatingIfNeeded: bits))
        let chunkIndex = index >> Self.chunkBits
        guard generation & 1 == 1, chunkIndex < Self.maxChunks, let chunk = chunks[chunkIndex] else { return nil }
        let slot = chunk + (index & (Self.chunkSize - 1))
        guard slot.pointee.generation == generation else { return nil }
        return slot
    }

    private func slot(at index: UInt32) -> UnsafeMutablePointer<StreamSlot> {
        // `index` came from the free list, so its chunk exists.
        chunks[Int(index) >> Self.chunkBits].unsafelyUnwrapped + (Int(index) & (Self.chunkSize - 1))
    }

    /// A free slot index, allocating a new chunk when none is free; nil when the table is full.
    private func takeFreeIndex() -> UInt32? {
        lock.withLock { state -> UInt32? in
            if let index = state.free.popLast() { return index }
            guard state.allocatedChunks < Self.maxChunks else { return nil }
            let chunk = UnsafeMutablePointer<StreamSlot>.allocate(capacity: Self.chunkSize)
            chunk.initialize(repeating: StreamSlot(generation: 0, filter: nil), count: Self.chunkSize)
            let first = state.allocatedChunks << Self.chunkBits
            chunks[state.allocatedChunks] = chunk
            state.allocatedChunks += 1
            // Hand out low indices first (popLast), so a quiet process touches few slots.
            state.free.reserveCapacity(state.free.count + Self.chunkSize)
            for index in stride(from: first + Self.chunkSize - 1, to: first, by: -1) { state.free.append(UInt32(index)) }
            return UInt32(first)
        }
    }
}

/// Hooks that arrived for a destroyed stream: counted, and logged (the first few in full) rather
/// than followed into freed memory.
enum StaleStreamHandles {
    private static let seen = Atomic<Int>(0)

    /// How many such hooks this process has refused.
    static var count: Int { seen.load(ordering: .relaxed) }

    @inline(never)
    static func report(_ handle: UnsafeRawPointer) {
        let number = seen.add(1, ordering: .relaxed).newValue
        guard number <= 10 || number.isMultiple(of: 10_000) else { return }
        EnvoyLog.error(
            "sluice: a hook arrived for a destroyed stream (handle 0x\(String(UInt(bitPattern: handle), radix: 16)), \(number) so far); ignored")
    }
}

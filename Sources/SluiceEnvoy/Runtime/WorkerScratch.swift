// Buffers that live for one hook call, kept per worker thread so a request does not allocate them
// afresh: the complete request body a filter copies out of Envoy to route or translate, and the
// action buffers the policy machines fill and the filters empty before the hook returns, and the
// downstream filter's metadata batches.
//
// A worker's buffer is found by the worker's index, as `AggregatedCounters` finds its shard, and
// taken out of its slot (a swap under a lock nobody else takes on the hot path) for the hook's
// duration. Whoever finds the slot empty — a hook nested inside another (a local reply runs the
// encoder hooks at once), or a worker sharing a slot when there are more workers than slots —
// starts from an empty array and allocates, as before. Nothing a hook keeps can be overwritten:
// arrays are values, so storage still referenced elsewhere is copied on write, not reused.
internal import SluiceCore
import Synchronization

final class WorkerScratch<Element: Sendable>: Sendable {
    private final class Slot: Sendable {
        let buffer = Mutex<[Element]>([])
    }

    private let slots: [Slot]
    /// A buffer grown beyond this many elements goes back to malloc, so one large request does
    /// not keep its size per worker for the life of the process.
    private let keptCapacity: Int

    init(keptCapacity: Int, slotCount: Int = 64) {
        self.keptCapacity = keptCapacity
        slots = (0..<max(1, slotCount)).map { _ in Slot() }
    }

    /// An empty buffer: the storage this worker gave back last, if it is free.
    func take(worker: UInt32) -> [Element] {
        var taken: [Element] = []
        slot(worker).buffer.withLock { swap(&taken, &$0) }
        // Emptied here, not when given back: only here is the storage surely referenced once
        // (emptying storage referenced twice allocates new storage).
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    /// Keeps `buffer`'s storage for the worker's next `take`.
    func giveBack(_ buffer: consuming [Element], worker: UInt32) {
        var buffer = buffer
        guard buffer.capacity > 0, buffer.capacity <= keptCapacity else { return }
        slot(worker).buffer.withLock { swap(&buffer, &$0) }
    }

    private func slot(_ worker: UInt32) -> Slot { slots[Int(worker % UInt32(slots.count))] }
}

/// The complete request body the filters copy out of Envoy (`sluice` to route, `sluice_upstream`
/// to translate); bodies above 256 KiB are not kept.
let requestBodyScratch = WorkerScratch<UInt8>(keptCapacity: 256 * 1024)
/// The downstream filter's action buffer between its events.
let gatewayActionScratch = WorkerScratch<GatewayAction>(keptCapacity: 64)
/// The downstream filter's metadata batch (`GatewayStream.metadataStorage`) for an event.
let metadataBatchScratch = WorkerScratch<(FilterMetadataKey, String)>(keptCapacity: 16)
/// The upstream filter's action buffer between its events.
let upstreamActionScratch = WorkerScratch<UpstreamAction>(keptCapacity: 64)

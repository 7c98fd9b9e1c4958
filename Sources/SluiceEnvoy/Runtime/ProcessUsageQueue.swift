// The process's one usage-record queue, shared by the filters on Envoy's workers and the
// background worker on its main thread. It lives in this layer because publishing it lock-free
// needs an unmanaged reference in an atomic word: Swift has no atomic strong reference.

public import SluiceCore
import Synchronization

/// The queue of usage records the filters of this process push to, once a background worker
/// (the bootstrap extension) has published one; nil otherwise, so a filter in an Envoy without
/// the worker does nothing extra but one atomic load per request.
///
/// Envoy loads `libsluice.so` once per process, for the filters and the bootstrap extension
/// alike, so this global is shared by both. A published queue is never freed (filters on worker
/// threads may still hold it while the worker goes away): withdrawing it only stops new pushes.
public enum ProcessUsageQueue {
    private static let published = Atomic<UInt>(0)

    /// The published queue, if any. Any thread; one acquiring load.
    @inline(__always)
    public static var current: BoundedMPSCQueue<FleetUsageRecord>? {
        let bits = published.load(ordering: .acquiring)
        guard bits != 0, let pointer = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<BoundedMPSCQueue<FleetUsageRecord>>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Makes `queue` the process's queue. It stays allocated for the rest of the process.
    public static func publish(_ queue: BoundedMPSCQueue<FleetUsageRecord>) {
        let bits = UInt(bitPattern: Unmanaged.passRetained(queue).toOpaque())
        _ = published.exchange(bits, ordering: .acquiringAndReleasing)
        // A queue replaced here (tests only: Envoy has one bootstrap extension per process) is
        // intentionally leaked, like any published one.
    }

    /// Stops filters from pushing (the worker is going away). The queue itself stays allocated.
    public static func withdraw() {
        _ = published.exchange(0, ordering: .acquiringAndReleasing)
    }
}

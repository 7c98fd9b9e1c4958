// The hand-over of usage records from Envoy's worker threads to its main thread: a bounded,
// lock-free, multi-producer single-consumer ring (Dmitry Vyukov's bounded queue with one
// consumer).
//
// Why this shape: a worker pushes at the end of every LLM request and must never block or wait
// for the main thread; the main thread drains on its timer. Each slot carries a sequence number:
// a producer claims a position with one compare-and-exchange on the tail, writes the record into
// the slot it now owns, then publishes it by storing the sequence (release). The consumer reads a
// slot only once its sequence says it is published (acquire), moves the record out and hands the
// slot back to the producers one lap later. No producer ever waits on another: a full ring
// refuses the push at once (the caller counts it) instead of spinning.
//
// The ring's storage is allocated once; a push copies the record into it (no allocation: the
// record's strings are retained, not copied). Each slot is a small object holding its sequence
// and its element, so the ring needs no raw memory: the sequence's release/acquire pair is what
// hands the element from one thread to the other.

import Synchronization

/// A bounded multi-producer, single-consumer queue of `Element`, lock-free on both sides.
///
/// `push` may be called from any number of threads at once; `drain` from one thread at a time
/// (the queue does not check: the caller owns the consumer side).
public final class BoundedMPSCQueue<Element: Sendable>: @unchecked Sendable {
    // @unchecked: a slot's element is written only by the producer that claimed its position and
    // read only by the consumer after the slot's sequence published it (release/acquire pair).

    /// The number of slots (a power of two).
    public let capacity: Int
    private let mask: Int
    private let slots: [Slot]
    /// The next position a producer claims.
    private let tail = Atomic<Int>(0)
    /// The next position the consumer reads (only the consumer writes it; producers never read it).
    private var head = 0
    /// Pushes refused because the ring was full, since the last `takeRefusedCount()`.
    private let refused = Atomic<Int>(0)

    /// A queue of at least `minimumCapacity` slots (rounded up to a power of two, at least 2,
    /// at most 2^20).
    public init(minimumCapacity: Int) {
        var size = 2
        let wanted = min(max(minimumCapacity, 2), 1 << 20)
        while size < wanted { size <<= 1 }
        capacity = size
        mask = size - 1
        slots = (0..<size).map(Slot.init(sequence:))
    }

    /// One position of the ring: the lap it is ready for, and the element it holds while published.
    private final class Slot: @unchecked Sendable {
        // @unchecked: `element` is written only by the producer that claimed the slot's position
        // and read only by the consumer after `sequence` published it (release/acquire pair).
        let sequence: Atomic<Int>
        var element: Element?

        init(sequence: Int) { self.sequence = Atomic(sequence) }
    }

    /// Adds `element`; false, without waiting, when the ring is full (the refusal is counted).
    /// Any thread.
    @discardableResult
    public func push(_ element: consuming Element) -> Bool {
        var position = tail.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let sequence = slots[slot].sequence.load(ordering: .acquiring)
            let lag = sequence &- position
            if lag == 0 {
                // The slot is free for this lap: claim the position.
                let (won, current) = tail.compareExchange(
                    expected: position, desired: position &+ 1, ordering: .relaxed)
                if won {
                    slots[slot].element = element
                    slots[slot].sequence.store(position &+ 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if lag < 0 {
                // The slot still holds last lap's record: the ring is full.
                refused.add(1, ordering: .relaxed)
                return false
            } else {
                // Another producer claimed this position first.
                position = tail.load(ordering: .relaxed)
            }
        }
    }

    /// Moves up to `max` published records out, oldest first, into `body`; returns how many.
    /// Only one thread at a time (the consumer). A producer that has claimed a slot but not yet
    /// published it stops the drain there; its record comes with the next drain.
    @discardableResult
    public func drain(max: Int, _ body: (consuming Element) -> Void) -> Int {
        var moved = 0
        while moved < max {
            let slot = head & mask
            let cell = slots[slot]
            guard cell.sequence.load(ordering: .acquiring) == head &+ 1, let element = cell.element.take() else { break }
            body(element)
            cell.sequence.store(head &+ capacity, ordering: .releasing)
            head &+= 1
            moved += 1
        }
        return moved
    }

    /// Records published and not yet drained (approximate while producers run). Consumer thread.
    public var approximateCount: Int { Swift.max(0, tail.load(ordering: .relaxed) &- head) }

    /// Pushes refused since the last call (and resets the count). Any thread.
    public func takeRefusedCount() -> Int { refused.exchange(0, ordering: .relaxed) }
}

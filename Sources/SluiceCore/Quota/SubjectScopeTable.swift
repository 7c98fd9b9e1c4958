// Quota counters for consumers that are not in the config: JWT subjects, each limited by the same
// per-subject limits (`jwt.limits`) but counted on its own.
//
// The static scope table is an immutable dictionary built at config time. Subjects appear at run
// time, on any worker, so they need a table that grows without a lock: a fixed array of slots,
// each pre-built with its counters, claimed by one compare-and-exchange of the subject's 64-bit
// fingerprint (open addressing, linear probing). A claimed slot is never given back while the
// config lives, so a lookup is loads only. When every slot is taken, the remaining subjects share
// one overflow slot: their limits still hold, collectively, rather than not at all.
//
// Fingerprints are SipHash values seeded per process (Swift's `Hasher`): two subjects collide with
// probability about n²/2⁶⁵ (10⁻¹⁰ for 100,000 subjects), and an outsider cannot aim for a
// collision without the seed; subjects come from signed tokens besides.

import Synchronization

final class SubjectSlot: Sendable {
    /// 0 = free; otherwise the fingerprint of the subject that owns the slot.
    let owner: Atomic<UInt64>
    let counters: ScopeCounters

    init(owner: UInt64, counters: ScopeCounters) {
        self.owner = Atomic(owner)
        self.counters = counters
    }
}

final class SubjectScopeTable: Sendable {
    let limits: QuotaLimits
    private let slots: [SubjectSlot]
    private let mask: Int
    /// Where subjects go once every slot is owned.
    let overflow: ScopeCounters

    /// - Parameters:
    ///   - limits: the limits every subject gets.
    ///   - capacity: subjects with counters of their own (rounded up to a power of two).
    ///   - previous: the table of the config being replaced; its subjects keep their
    ///     counters where the limits allow (see `ScopeCounters.init(previous:)`).
    init(limits: QuotaLimits, capacity: Int, previous: SubjectScopeTable?) {
        var size = 1
        while size < max(1, min(capacity, 1 << 22)) { size <<= 1 }
        self.limits = limits
        mask = size - 1
        // Subjects of the previous table first, placed as lookups will probe for them.
        var owners = [UInt64](repeating: 0, count: size)
        var inherited = [ScopeCounters?](repeating: nil, count: size)
        for slot in previous?.slots ?? [] {
            let fingerprint = slot.owner.load(ordering: .acquiring)
            guard fingerprint != 0 else { continue }
            var index = Int(truncatingIfNeeded: fingerprint) & (size - 1)
            for _ in 0..<size where owners[index] != 0 { index = (index + 1) & (size - 1) }
            guard owners[index] == 0 else { break }  // the new table is smaller and full
            owners[index] = fingerprint
            inherited[index] = slot.counters
        }
        let placeholder = QuotaScope.key("")
        slots = (0..<size).map { index in
            SubjectSlot(
                owner: owners[index], counters: ScopeCounters(scope: placeholder, limits: limits, previous: inherited[index]))
        }
        overflow = ScopeCounters(scope: placeholder, limits: limits, previous: previous?.overflow)
    }

    /// The counters of `subject`, claiming a slot on first sight.
    func counters(for subject: String) -> ScopeCounters { find(subject, claiming: true) ?? overflow }

    /// The counters of `subject` if it has been seen, without claiming a slot.
    func existingCounters(for subject: String) -> ScopeCounters? { find(subject, claiming: false) }

    /// Probes from the subject's home slot to its own slot, or to the first free one (claimed when
    /// `claiming`, else nil); the overflow counters when every slot belongs to other subjects.
    private func find(_ subject: String, claiming: Bool) -> ScopeCounters? {
        let fingerprint = Self.fingerprint(subject)
        var index = Int(truncatingIfNeeded: fingerprint) & mask
        for _ in 0...mask {
            let slot = slots[index]
            var owner = slot.owner.load(ordering: .acquiring)
            if owner == 0 {
                guard claiming else { return nil }
                let (exchanged, current) = slot.owner.compareExchange(
                    expected: 0, desired: fingerprint, ordering: .acquiringAndReleasing)
                owner = exchanged ? fingerprint : current
            }
            if owner == fingerprint { return slot.counters }
            index = (index + 1) & mask
        }
        return overflow
    }

    /// Subjects that own a slot.
    var claimedCount: Int { slots.reduce(0) { $0 + ($1.owner.load(ordering: .relaxed) == 0 ? 0 : 1) } }

    /// A non-zero fingerprint (0 marks a free slot).
    static func fingerprint(_ subject: String) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(subject)
        let value = UInt64(truncatingIfNeeded: hasher.finalize())
        return value == 0 ? 1 : value
    }
}

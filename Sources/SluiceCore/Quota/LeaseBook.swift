// The module's side of fleet quota leases: per leased quantity, the slice sluiced granted this
// Envoy, which the filters admit against on their worker threads, and the bookkeeping the
// background worker turns into `POST /v1/fleet/leases` requests (what was spent, what to give
// back, what to ask for) and applies the answers of. Sans I/O: both clocks are passed in, so the
// worker drives it on its timer and the tests drive it directly.
//
// Admit path (any worker thread, lock-free): each slot keeps two windows' slices in a ring indexed
// by the window id's parity (the current window and the next, granted ahead of a rollover, or the
// previous, still settling). Each ring entry is ONE atomic word — window tag (low 22 bits of the
// window id) and the remaining amount (signed 42 bits) — updated by compare-and-exchange, so a grant
// for a new window replaces the old window's slice in the same exchange that tags it: no reader
// ever pairs one window's tag with another's amount. The expiry (monotonic nanoseconds) is a
// separate word; reading it a hair late admits at most in-flight requests at the very edge of the
// expiry, which the clock margin covers.
//
// Worker side (one thread: the worker's timer): `nextRequest` builds the next request, `apply`
// takes its answer in. A request stays pending until answered and `nextRequest` hands it out again
// verbatim, with its `seq`: sluiced ignores the spent and returned of a `seq` it has already
// applied, so a lost answer counts nothing twice, and spend settled meanwhile waits in the book.
import Synchronization

/// How one admission against a lease went.
public enum LeaseAdmission: Sendable, Equatable {
    /// Admitted against the slice of `window`; settle with the ticket.
    case admitted(LeaseTicket)
    case denied(LeaseDenial)
}

/// An admission to settle exactly once.
public struct LeaseTicket: Sendable, Equatable {
    public var window: Int64
    public var amount: Int64
    /// True when admitted by the fail_open policy, outside any slice.
    public var failOpen: Bool
}

/// Why a lease refused a request.
public enum LeaseDenial: Sendable, Equatable {
    /// The slice is spent and sluiced (which answered within the lease's TTL) has nothing more:
    /// the fleet's limit is reached. `consumed` and `limit` are the fleet's as last reported.
    case limitReached(limit: Int64, consumed: Int64, retryAfterMillis: Int64)
    /// No valid lease (sluiced unreachable past the expiry) and the scope is `fail_closed`.
    case unavailable
    /// No valid lease, the scope is `fail_open`, and this Envoy's local cap for the window is used up.
    case localCapReached(cap: Int64)
}

/// Tunables of the module's renewal decisions.
public struct LeaseBookSettings: Sendable, Equatable {
    /// How far ahead of demand to hold: the worker asks for recent rate × this.
    public let horizonMillis: Int64
    /// A slice is not used within this margin of its expiry (clock-rate drift between this host
    /// and sluiced's, and the time between reading the deadline and admitting).
    public let marginMillis: Int64
    /// What a slot keeps at least while its lease is valid, as a fraction of the limit (at least
    /// one unit): an idle Envoy's next request is admitted at once, and the ask it triggers
    /// comes with the next renewal. Everything above twice the rate's need is returned.
    public let floorFraction: Double
    /// Weight of the newest sample in the rate estimate (exponential moving average).
    public let rateWeight: Double

    /// Values are clamped to their ranges (horizon 1 ms to 10 min, margin 0 to 1 min): the
    /// nanosecond arithmetic on them cannot overflow.
    public init(horizonMillis: Int64 = 3_000, marginMillis: Int64 = 1_000, floorFraction: Double = 0.01, rateWeight: Double = 0.5) {
        self.horizonMillis = min(max(horizonMillis, 1), 600_000)
        self.marginMillis = min(max(marginMillis, 0), 60_000)
        self.floorFraction = min(max(floorFraction, 0), 1)
        self.rateWeight = min(max(rateWeight, 0.01), 1)
    }
}

/// One leased quantity of one scope on this Envoy (see the file comment).
public final class LeaseSlot: Sendable {
    public let key: LeaseKey
    /// The scope's limit in this dimension (the latest config's: a config update changes it in place).
    public var limit: Int64 { limitWord.load(ordering: .relaxed) }
    /// What to do without a valid lease (the latest config's).
    public var policy: LeaseFailurePolicy {
        let word = policyWord.load(ordering: .relaxed)
        return word < 0 ? .failClosed : .failOpen(localCap: word)
    }
    /// False once no filter config limits this quantity any more: the slot then asks for nothing
    /// and gives its slices back, but still reports what in-flight requests settle.
    public var isActive: Bool { activeWord.load(ordering: .relaxed) }

    private let limitWord: Atomic<Int64>
    /// The fail_open local cap, or −1 for fail_closed.
    private let policyWord: Atomic<Int64>
    private let activeWord = Atomic<Bool>(true)

    static let tagBits: UInt64 = 22
    static let amountBits: UInt64 = 42
    static let amountMask: UInt64 = (1 << amountBits) - 1
    static let tagMask: Int64 = (1 << 22) - 1
    /// The largest amount an entry holds; larger values are clamped (above every limit accepted).
    public static let maxAmount: Int64 = (1 << 41) - 1

    /// tag | remaining slice, per window parity.
    private let slices = WindowRing()
    /// tag | spent (settled, not yet reported), per window parity.
    private let spent = WindowRing()
    /// tag | units admitted by fail_open in that window, per window parity.
    private let failOpenUsed = WindowRing()
    /// Monotonic nanoseconds after which no slice of this slot is used (expiry − margin).
    private let deadlineNanos = Atomic<Int64>(Int64.min)
    /// Units requested since the worker's last sample, admitted or not (the demand rate).
    private let demand = Atomic<Int64>(0)
    /// The fleet's account as the last answer stated it (for denial messages).
    private let lastConsumed = Atomic<Int64>(0)
    private let lastFleetRemaining = Atomic<Int64>(0)
    /// Counters the filter turns into stats.
    let failOpenAdmitted = Atomic<Int64>(0)
    let failClosedDenied = Atomic<Int64>(0)
    let localCapDenied = Atomic<Int64>(0)
    let limitDenied = Atomic<Int64>(0)

    /// The denial and fail_open counts so far (for stats).
    public var counts: (failOpenAdmitted: Int64, failClosedDenied: Int64, localCapDenied: Int64, limitDenied: Int64) {
        (
            failOpenAdmitted.load(ordering: .relaxed), failClosedDenied.load(ordering: .relaxed),
            localCapDenied.load(ordering: .relaxed), limitDenied.load(ordering: .relaxed)
        )
    }

    /// Worker-only state (rate estimate, last demand time); never touched on the admit path.
    struct WorkerState {
        var rate: Double = 0
        var lastSampleNanos: Int64?
    }
    let worker = Mutex(WorkerState())

    /// Raised when a slice fell short of demand the fleet could still cover: the worker renews
    /// at its next tick instead of waiting for its interval. Shared by the slots of one book.
    let renewal: LeaseRenewalSignal

    public convenience init(key: LeaseKey, limit: Int64, policy: LeaseFailurePolicy) {
        self.init(key: key, limit: limit, policy: policy, renewal: LeaseRenewalSignal())
    }

    init(key: LeaseKey, limit: Int64, policy: LeaseFailurePolicy, renewal: LeaseRenewalSignal) {
        self.renewal = renewal
        self.key = key
        limitWord = Atomic(min(max(0, limit), Self.maxAmount))
        policyWord = Atomic(Self.policyWord(policy))
    }

    private static func policyWord(_ policy: LeaseFailurePolicy) -> Int64 {
        switch policy {
        case .failClosed: -1
        case .failOpen(let cap): min(max(0, cap), maxAmount)
        }
    }

    /// A config (re)states the limit and policy (main thread, config time).
    func configure(limit: Int64, policy: LeaseFailurePolicy) {
        limitWord.store(min(max(0, limit), Self.maxAmount), ordering: .relaxed)
        policyWord.store(Self.policyWord(policy), ordering: .relaxed)
    }

    func setActive(_ active: Bool) { activeWord.store(active, ordering: .relaxed) }

    // MARK: Admit path

    /// Admits `amount` units at `nowMillis` (wall clock: picks the window) and `nowNanos`
    /// (monotonic: checks the expiry). Lock-free.
    public func admit(_ amount: Int64, nowMillis: Int64, nowNanos: Int64) -> LeaseAdmission {
        let amount = min(max(0, amount), Self.maxAmount)
        let nowMillis = min(max(0, nowMillis), UTCCalendar.maxMillis)
        // never traps; a wrapped sum only lowers one sample
        let demandSinceSample = demand.wrappingAdd(amount, ordering: .relaxed).newValue
        let window = key.dimension.period.window(atMillis: nowMillis).id
        let tag = window & Self.tagMask
        if nowNanos < deadlineNanos.load(ordering: .relaxed) {
            var admitted = false
            var remainingAfter: Int64 = 0
            // The closure runs once per compare-and-exchange attempt: only the last one counts.
            slices.update(window) { storedTag, remaining in
                admitted = false
                guard storedTag == tag, remaining >= amount, remaining > 0 || amount == 0 else { return nil }
                admitted = true
                remainingAfter = remaining - amount
                return (tag, remaining - amount)
            }
            if admitted {
                // Running low: the demand since the worker's last sample (its last request) is as
                // large as what is left, so the slice it sized on an older rate lasts less than
                // one more interval. Wake the worker to sample the rate and top the slice up now,
                // while sluiced answers, rather than at its interval — a slice sized for the
                // horizon is what carries the Envoy through a sluiced outage or restart. Only while
                // sluiced had more to give: with the fleet's limit near, renewing sooner gains nothing.
                if demandSinceSample >= remainingAfter, lastFleetRemaining.load(ordering: .relaxed) > 0 { renewal.raise() }
                return .admitted(LeaseTicket(window: window, amount: amount, failOpen: false))
            }
            // A valid lease that cannot cover the request. When sluiced had nothing more at its
            // last answer, the fleet's limit is reached until the window ends; otherwise this
            // Envoy's slice is merely short (a burst outran the renewals): the worker is woken to
            // renew now, and a fail_open scope bridges the gap from its local allowance (counted
            // in F like any fail_open admit), so a burst far below the fleet's limit is not refused.
            let fleetHadMore = lastFleetRemaining.load(ordering: .relaxed) >= amount
            if fleetHadMore {
                renewal.raise()
                if case .failOpen(let cap) = policy, admitFailOpen(amount, window: window, tag: tag, cap: cap) {
                    return .admitted(LeaseTicket(window: window, amount: amount, failOpen: true))
                }
            }
            limitDenied.wrappingAdd(1, ordering: .relaxed)
            let retryAfter =
                fleetHadMore
                ? 1_000 : key.dimension.period.window(atMillis: nowMillis).endMillis - nowMillis
            return .denied(
                .limitReached(
                    limit: limit, consumed: lastConsumed.load(ordering: .relaxed), retryAfterMillis: max(1, retryAfter)))
        }
        // No valid lease: a request that never came (the scope's first demand) or one sluiced did
        // not answer. Either way the worker should ask now (it backs off by itself while sluiced
        // does not answer).
        renewal.raise()
        switch policy {
        case .failClosed:
            failClosedDenied.wrappingAdd(1, ordering: .relaxed)
            return .denied(.unavailable)
        case .failOpen(let cap):
            guard admitFailOpen(amount, window: window, tag: tag, cap: cap) else {
                localCapDenied.wrappingAdd(1, ordering: .relaxed)
                return .denied(.localCapReached(cap: cap))
            }
            return .admitted(LeaseTicket(window: window, amount: amount, failOpen: true))
        }
    }

    /// Takes `amount` from this window's fail_open allowance (`cap` per window), if it fits.
    private func admitFailOpen(_ amount: Int64, window: Int64, tag: Int64, cap: Int64) -> Bool {
        var admitted = false
        failOpenUsed.update(window) { storedTag, stored in
            admitted = false
            let spentSoFar = storedTag == tag ? stored : 0
            guard spentSoFar + amount <= cap else { return nil }
            admitted = true
            return (tag, spentSoFar + amount)
        }
        if admitted { failOpenAdmitted.wrappingAdd(1, ordering: .relaxed) }
        return admitted
    }

    /// Replaces the ticket's reservation by the `actual` amount used (0 releases it). The actual
    /// is owed to the fleet whatever happened since, fail_open admits included: it is reported
    /// against the ticket's window (dropped only if that window is two windows gone).
    public func settle(_ ticket: LeaseTicket, actual: Int64) {
        let actual = min(max(0, actual), Self.maxAmount)
        let tag = ticket.window & Self.tagMask
        if !ticket.failOpen {
            slices.update(ticket.window) { storedTag, remaining in
                storedTag == tag ? (tag, remaining + ticket.amount - actual) : nil
            }
        }
        guard actual > 0 else { return }
        spent.update(ticket.window) { storedTag, stored in
            // A newer tag wins; an entry two windows old (never reported) is overwritten.
            storedTag == tag ? (tag, stored + actual) : Self.isNewer(tag, than: storedTag) ? (tag, actual) : nil
        }
    }

    // MARK: Worker side

    /// Which of a slot's windows an item is for.
    enum WindowRole {
        /// Ended (or ending): report, return everything, ask nothing.
        case previous
        /// The one requests are admitted in now: report, return the excess, ask for the horizon.
        case current
        /// Starts within the horizon: ask ahead so the rollover finds a slice waiting.
        case next
    }

    /// The lease item to send for `window`, taking the spent and what to return off the book.
    /// Worker thread only. `draining` returns everything and asks for nothing.
    func collect(
        window: Int64, role: WindowRole, nowNanos: Int64, settings: LeaseBookSettings, draining: Bool
    ) -> LeaseItem {
        let tag = window & Self.tagMask
        var reported: Int64 = 0
        spent.update(window) { storedTag, stored in
            reported = 0
            guard storedTag == tag, stored > 0 else { return nil }
            reported = stored
            return (tag, 0)
        }
        let rate = worker.withLock { state -> Double in
            if role == .current {
                let sample = demand.exchange(0, ordering: .relaxed)
                if let last = state.lastSampleNanos, nowNanos > last {
                    let perSecond = Double(sample) * 1e9 / Double(nowNanos - last)
                    state.rate = settings.rateWeight * perSecond + (1 - settings.rateWeight) * state.rate
                } else if sample > 0 {
                    state.rate = max(state.rate, Double(sample))
                }
                // Below one unit per thousand seconds the scope is idle: stop asking (and keep no floor).
                if state.rate < 0.001 { state.rate = 0 }
                state.lastSampleNanos = nowNanos
            }
            return state.rate
        }
        let valid = nowNanos < deadlineNanos.load(ordering: .relaxed)
        // Only scopes in use ask: a gateway with thousands of limited keys holds slices of the busy ones.
        let asking = !draining && isActive && role != .previous && rate > 0
        let floor = max(1, Int64((Double(limit) * settings.floorFraction).rounded(.up)))
        let needed = (rate * Double(settings.horizonMillis) / 1000).rounded(.up)
        let need = needed.isFinite ? Int64(min(Double(Self.maxAmount), max(0, needed))) : 0
        let target = asking ? min(limit, max(floor, need)) : 0
        var returned: Int64 = 0
        var remaining: Int64 = 0
        slices.update(window) { storedTag, stored in
            returned = 0
            guard storedTag == tag else { return nil }
            remaining = stored
            // Give back what is beyond twice the target (hoarding starves the other Envoys; the
            // rate's estimate decays when idle, down to the floor), all of it when draining or
            // for a window that is over. Nothing while the lease is not valid: sluiced has
            // reclaimed it already.
            let keep: Int64 = role == .next && asking ? stored : 2 * target
            guard valid, stored > keep else { return nil }
            returned = stored - keep
            return (tag, keep)
        }
        remaining -= returned
        var want: Int64 = 0
        if asking && remaining < target { want = target - max(0, remaining) }
        // What this Envoy still holds by its own count: a sluiced restarted since the last answer
        // no longer knows the slice and gives it back to this holder from its stand-in, rather
        // than counting it twice (the stand-in's and a fresh grant) and answering that the fleet
        // has little left.
        let held = valid ? max(0, remaining) : 0
        return LeaseItem(key: key, window: window, limit: limit, spent: reported, returned: returned, want: want, held: held)
    }

    /// Takes in the answer to a request sent at `sentAtNanos`: the grant joins the window's slice
    /// and the lease is valid until `sentAtNanos + ttl − margin`.
    func apply(_ grant: LeaseGrant, sentAtNanos: Int64, settings: LeaseBookSettings) {
        let tag = grant.window & Self.tagMask
        let granted = min(max(0, grant.granted), Self.maxAmount)
        // A lease that had lapsed when the request left was reclaimed by sluiced (or soon will
        // be): what was left of the old slice is forfeit, only a debt (overshoot) carries over.
        // And the slice never exceeds what sluiced counts as held (`held` covers the unreported
        // spend and in-flight reservations too, so this only bites when sluiced forgot the slice:
        // reclaimed it, or restarted and holds it for a stand-in until it expires).
        let lapsed = deadlineNanos.load(ordering: .relaxed) <= sentAtNanos
        let held = min(max(0, grant.held), Self.maxAmount)
        slices.update(grant.window) { storedTag, stored in
            storedTag == tag ? (tag, min((lapsed ? min(0, stored) : stored) + granted, held)) : (tag, min(granted, held))
        }
        lastConsumed.store(grant.consumed, ordering: .relaxed)
        lastFleetRemaining.store(grant.remaining, ordering: .relaxed)
        let ttl = min(max(0, grant.ttlMillis), 3_600_000)
        let (deadline, overflow) = sentAtNanos.addingReportingOverflow((ttl - settings.marginMillis) * 1_000_000)
        guard !overflow else { return }
        // Only ever extended: an answer to an older request must not shorten a newer lease.
        var current = deadlineNanos.load(ordering: .relaxed)
        while deadline > current {
            let (exchanged, original) = deadlineNanos.compareExchange(
                expected: current, desired: deadline, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
    }

    /// The unused slice of `window` now (tests, stats).
    public func remaining(window: Int64) -> Int64 {
        let (tag, amount) = Self.unpack(slices.load(window))
        return tag == window & Self.tagMask ? amount : 0
    }

    /// True while the lease is valid at `nowNanos`.
    public func isValid(nowNanos: Int64) -> Bool { nowNanos < deadlineNanos.load(ordering: .relaxed) }

    // MARK: Packing

    static func pack(tag: Int64, amount: Int64) -> UInt64 {
        let amount = min(max(amount, -maxAmount), maxAmount)
        return (UInt64(truncatingIfNeeded: tag & tagMask) << amountBits)
            | (UInt64(bitPattern: amount) & amountMask)
    }

    static func unpack(_ word: UInt64) -> (tag: Int64, amount: Int64) {
        let tag = Int64(word >> amountBits)
        let amount = Int64(bitPattern: (word & amountMask) << tagBits) >> Int64(tagBits)
        return (tag, amount)
    }

    /// Window tags are window ids modulo 2^22; `a` is newer than `b` when it is less than half the
    /// tag space ahead.
    static func isNewer(_ a: Int64, than b: Int64) -> Bool {
        let distance = (a - b) & tagMask
        return distance != 0 && distance < (1 << 21)
    }
}

/// A flag the admit path raises (one relaxed store, only when a slice fell short) and the worker
/// takes on its tick.
final class LeaseRenewalSignal: Sendable {
    private let raised = Atomic<Bool>(false)

    /// A load first: while raised (sluiced away, every request without a lease) the admit path
    /// only reads the shared word, it does not bounce its cache line between threads.
    func raise() { if !raised.load(ordering: .relaxed) { raised.store(true, ordering: .relaxed) } }

    /// True (and lowered) when raised since the last call.
    func take() -> Bool { raised.load(ordering: .relaxed) && raised.exchange(false, ordering: .relaxed) }
}

/// Two packed words (window tag | amount), one per window parity: the current window and the
/// next or previous one.
final class WindowRing: Sendable {
    private let even = Atomic<UInt64>(LeaseSlot.pack(tag: -1, amount: 0))
    private let odd = Atomic<UInt64>(LeaseSlot.pack(tag: -1, amount: 0))

    func load(_ window: Int64) -> UInt64 {
        window & 1 == 0 ? even.load(ordering: .relaxed) : odd.load(ordering: .relaxed)
    }

    private func exchange(_ window: Int64, _ expected: UInt64, _ desired: UInt64) -> (Bool, UInt64) {
        let result =
            window & 1 == 0
            ? even.compareExchange(expected: expected, desired: desired, ordering: .relaxed)
            : odd.compareExchange(expected: expected, desired: desired, ordering: .relaxed)
        return (result.exchanged, result.original)
    }

    /// Compare-and-exchange loop on the word of `window`'s parity: `change` gets the stored (tag,
    /// amount) and returns the new one, or nil to leave the word as it is.
    func update(_ window: Int64, _ change: (Int64, Int64) -> (Int64, Int64)?) {
        var current = load(window)
        while true {
            let (tag, amount) = LeaseSlot.unpack(current)
            guard let (newTag, newAmount) = change(tag, amount) else { return }
            let next = LeaseSlot.pack(tag: newTag, amount: newAmount)
            if next == current { return }
            let (exchanged, original) = exchange(window, current, next)
            if exchanged { return }
            current = original
        }
    }
}

/// This Envoy's lease slots and the request/answer cycle with sluiced (see the file comment).
///
/// Slots come and go with the filter configs: each config `acquire`s the slots of the quantities
/// it limits (config time, main thread) and keeps the references, so the admit path never looks
/// anything up in the book; `release` when the config goes away. A slot no config holds stays in
/// the book inactive: it asks for nothing and returns its slices, and still reports what the
/// requests still in flight settle.
public final class LeaseBook: Sendable {
    public let settings: LeaseBookSettings
    public let envoy: String
    /// Identifies this process among restarts of the same node id.
    public let boot: String

    private struct Entry {
        let slot: LeaseSlot
        /// Filter configs holding the slot.
        var holders: Int
    }
    private let table: Mutex<[LeaseKey: Entry]>
    /// Raised by the slots this book made when a slice fell short (see `renewalWanted`).
    private let renewal = LeaseRenewalSignal()

    struct Pending {
        var seq: Int64
        var items: [LeaseItem]
    }
    private struct State {
        var seq: Int64 = 0
        var pending: Pending?
    }
    private let state = Mutex(State())

    /// A book holding `slots` (each as if acquired once).
    public init(envoy: String, boot: String, slots: [LeaseSlot] = [], settings: LeaseBookSettings = LeaseBookSettings()) {
        self.envoy = envoy
        self.boot = boot
        self.settings = settings
        var entries: [LeaseKey: Entry] = [:]
        for slot in slots { entries[slot.key] = Entry(slot: slot, holders: 1) }
        table = Mutex(entries)
    }

    /// The slot of `key`, if the book has one (active or not).
    public func slot(_ key: LeaseKey) -> LeaseSlot? { table.withLock { $0[key]?.slot } }

    /// Every slot, in a stable order (keys' descriptions).
    public var slots: [LeaseSlot] {
        table.withLock { $0.values.map(\.slot) }.sorted { $0.key.description < $1.key.description }
    }

    /// The slots of `wanted` for one filter config, made where missing, their limit and policy
    /// set to the config's (config time; the newest config wins where two disagree).
    public func acquire(_ wanted: [(key: LeaseKey, limit: Int64, policy: LeaseFailurePolicy)]) -> [LeaseKey: LeaseSlot] {
        table.withLock { table in
            var acquired: [LeaseKey: LeaseSlot] = [:]
            for (key, limit, policy) in wanted where acquired[key] == nil {
                if var entry = table[key] {
                    entry.slot.configure(limit: limit, policy: policy)
                    entry.slot.setActive(true)
                    entry.holders += 1
                    table[key] = entry
                    acquired[key] = entry.slot
                } else {
                    let slot = LeaseSlot(key: key, limit: limit, policy: policy, renewal: renewal)
                    table[key] = Entry(slot: slot, holders: 1)
                    acquired[key] = slot
                }
            }
            return acquired
        }
    }

    /// A filter config that acquired `keys` is gone; slots no config holds turn inactive.
    public func release(_ keys: some Sequence<LeaseKey>) {
        table.withLock { table in
            for key in keys {
                guard var entry = table[key] else { continue }
                entry.holders = max(0, entry.holders - 1)
                if entry.holders == 0 { entry.slot.setActive(false) }
                table[key] = entry
            }
        }
    }

    /// A request ready to send.
    public struct Request: Sendable, Equatable {
        public var seq: Int64
        public var items: [LeaseItem]
    }

    /// The request to send now (worker thread). An unanswered request is resent as it was;
    /// otherwise the items of every slot with something to report, return or ask, for the
    /// previous, current and (near its start) next window. nil when there is nothing to say and
    /// every lease is comfortably valid.
    public func nextRequest(nowMillis: Int64, nowNanos: Int64, draining: Bool = false) -> Request? {
        if let pending = state.withLock({ $0.pending }) { return Request(seq: pending.seq, items: pending.items) }
        var items: [LeaseItem] = []
        var renewDue = false
        for slot in slots {
            let period = slot.key.dimension.period
            let (current, end) = period.window(atMillis: nowMillis)
            var windows: [(Int64, LeaseSlot.WindowRole)] = [(current - 1, .previous), (current, .current)]
            if end - nowMillis <= settings.horizonMillis { windows.append((current + 1, .next)) }
            var currentItem: LeaseItem?
            for (window, role) in windows {
                let item = slot.collect(window: window, role: role, nowNanos: nowNanos, settings: settings, draining: draining)
                if item.spent > 0 || item.returned > 0 || item.want > 0 {
                    items.append(item)
                } else if role == .current {
                    currentItem = item
                }
            }
            // Renew the lease before it lapses even when there is nothing to report (the item
            // still states what the slice holds).
            if !draining && slot.isActive && slot.isValid(nowNanos: nowNanos)
                && !slot.isValid(nowNanos: nowNanos.addingReportingOverflow(settings.horizonMillis * 1_000_000).partialValue)
            {
                renewDue = true
                if let currentItem { items.append(currentItem) }
            }
        }
        guard !items.isEmpty || renewDue else { return nil }
        return state.withLock { state in
            state.seq += 1
            state.pending = Pending(seq: state.seq, items: items)
            return Request(seq: state.seq, items: items)
        }
    }

    /// True (once) when a slot's slice fell short of a demand the fleet could still cover since the
    /// last call: the worker should renew now rather than at its next interval.
    public func takeRenewalWanted() -> Bool { renewal.take() }

    /// True while a request waits for its answer (it is resent until one comes).
    public var hasPendingRequest: Bool { state.withLock { $0.pending != nil } }

    /// Takes in sluiced's answer to the pending request, sent at `sentAtNanos`.
    public func apply(_ grants: [LeaseGrant], seq: Int64, sentAtNanos: Int64) {
        let matched = state.withLock { state -> Bool in
            guard state.pending?.seq == seq else { return false }
            state.pending = nil
            return true
        }
        guard matched else { return }
        let table = table.withLock { table in grants.map { table[$0.key]?.slot } }
        for (grant, slot) in zip(grants, table) { slot?.apply(grant, sentAtNanos: sentAtNanos, settings: settings) }
    }
}

extension LeaseDenial {
    /// The stat the filter counts this denial in (under `sluice.`).
    public var statName: String {
        switch self {
        case .limitReached: "lease.limit_denied"
        case .unavailable: "lease.fail_closed_denied"
        case .localCapReached: "lease.fail_open_cap_denied"
        }
    }

    /// The 429 for a denial without a lease; `nil` for `.limitReached`, which answers with the
    /// same `rate_limit_exceeded` / `budget_exceeded` error as a local quota.
    public func unavailableError(_ key: LeaseKey) -> GatewayError? {
        switch self {
        case .limitReached: return nil
        case .unavailable:
            return GatewayError(
                status: 429, type: "insufficient_quota", code: "quota_unavailable",
                message: "The quota service is unreachable and this gateway's lease for \(key.scope) "
                    + "(\(key.dimension.rawValue)) has expired; the limit is fail_closed, so requests are "
                    + "refused until the quota service answers again.")
        case .localCapReached(let cap):
            return GatewayError(
                status: 429, type: "insufficient_quota", code: "quota_unavailable",
                message: "The quota service is unreachable and this gateway's fail_open allowance for \(key.scope) "
                    + "(\(key.dimension.rawValue): \(cap) per window) is used up; requests are refused until "
                    + "the quota service answers again.")
        }
    }
}

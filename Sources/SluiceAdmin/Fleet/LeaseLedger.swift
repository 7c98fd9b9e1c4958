// sluiced's ledger of fleet quota leases: per leased quantity (`LeaseKey`) and fixed UTC window,
// the limit, what the fleet reported spent, and the slice each Envoy holds with its expiry.
//
// The limit is sluiced's own (`LeaseLimits`, from the config it serves): an item for a scope
// sluiced does not limit is refused, and a limit an Envoy states that differs from sluiced's is
// ignored and counted, so no Envoy's config can raise a budget for the fleet.
//
// Invariant kept at every grant: consumed + Σ held + grant ≤ limit. Spend reported beyond a
// holder's slice (an estimate that fell short, fail_open admits) is still added to `consumed`, so
// the ledger's account is the fleet's actual spend, and it may exceed the limit by exactly the
// overspend FleetLeases.md bounds.
//
// Pure and clock-driven (`nowMillis` is passed in) so the simulation tests can run it in-process;
// not thread-safe: `LeaseService` serialises calls and stores the accounts each request touched
// (`rows`), which `restore` reads back after a restart. With SQLite one sluiced owns the ledger;
// with PostgreSQL `PostgresLeaseLedger` runs the same `apply` on the locked rows of one request
// inside a transaction, so replicas share one ledger (FleetLeases.md).
public import SluiceCore

/// Who holds a lease: an Envoy's node id and the boot id of its process (a restarted Envoy with
/// the same node id is a new holder; the old process's slices expire on their own).
public struct LeaseHolder: Sendable, Hashable, CustomStringConvertible {
    public var envoy: String
    public var boot: String

    public init(envoy: String, boot: String) {
        self.envoy = envoy
        self.boot = boot
    }

    public var description: String { "\(envoy)/\(boot)" }
}

/// Why an item was not applied.
public struct LeaseItemProblem: Sendable, Equatable {
    public var index: Int
    public var error: String

    public init(index: Int, error: String) {
        self.index = index
        self.error = error
    }
}

/// An item whose stated limit is not sluiced's: applied against sluiced's, the Envoy's ignored.
public struct LeaseLimitMismatch: Sendable, Equatable {
    /// The item's index in the request.
    public var index: Int
    public var key: LeaseKey
    /// What the Envoy's config says.
    public var reported: Int64
    /// What sluiced's config says (the one granted against).
    public var limit: Int64

    public init(index: Int, key: LeaseKey, reported: Int64, limit: Int64) {
        self.index = index
        self.key = key
        self.reported = reported
        self.limit = limit
    }
}

/// The ledger's answer to one request.
public struct LeaseAnswer: Sendable, Equatable {
    /// One per applied item, in request order.
    public var grants: [LeaseGrant]
    public var rejected: [LeaseItemProblem]
    /// True when `seq` was not newer than the holder's last: spent and returned were applied
    /// before and are ignored now; wants are still served.
    public var replay: Bool
    /// Items applied whose Envoy stated another limit than sluiced's.
    public var limitMismatches: [LeaseLimitMismatch] = []
}

/// Tunables of grant sizing and expiry.
public struct LeaseLedgerSettings: Sendable, Equatable {
    /// How long a slice stays its holder's after the holder's last contact. The module renews
    /// (contacts sluiced) every second or so; the TTL must cover a few missed renewals.
    public var ttlMillis: Int64 = 10_000
    /// A holder counts as active for fair sharing while it holds a slice or asked within this
    /// time (by default the TTL: a holder whose lease would have expired by now is gone).
    public var activeMillis: Int64
    /// How long before a window starts sluiced grants slices of it.
    public var lookaheadMillis: Int64 = 5_000

    public init(ttlMillis: Int64 = 10_000, activeMillis: Int64? = nil, lookaheadMillis: Int64 = 5_000) {
        self.ttlMillis = ttlMillis
        self.activeMillis = activeMillis ?? ttlMillis
        self.lookaheadMillis = lookaheadMillis
    }
}

/// Running totals for `/metrics`.
public struct LeaseLedgerTotals: Sendable, Equatable {
    /// Units of one dimension (requests, tokens or micro-dollars: never summed across dimensions).
    public struct Units: Sendable, Equatable {
        public var granted: Int64 = 0
        public var returned: Int64 = 0
        /// Taken back from holders past their expiry.
        public var reclaimed: Int64 = 0
    }

    public var requests: Int64 = 0
    public var replays: Int64 = 0
    public var reclaimedLeases: Int64 = 0
    public var rejectedItems: Int64 = 0
    /// Items refused because sluiced does not limit their scope in their dimension (also in `rejectedItems`).
    public var notLimitedItems: Int64 = 0
    /// Items whose Envoy stated a limit other than sluiced's (applied against sluiced's).
    public var limitMismatches: Int64 = 0
    public var units: [LeaseDimension: Units] = [:]

    /// Adds another ledger's counts (a shared ledger's request) to these.
    public mutating func add(_ other: LeaseLedgerTotals) {
        requests += other.requests
        replays += other.replays
        reclaimedLeases += other.reclaimedLeases
        rejectedItems += other.rejectedItems
        notLimitedItems += other.notLimitedItems
        limitMismatches += other.limitMismatches
        for (dimension, units) in other.units {
            var sum = self.units[dimension] ?? Units()
            sum.granted += units.granted
            sum.returned += units.returned
            sum.reclaimed += units.reclaimed
            self.units[dimension] = sum
        }
    }

    public func granted(_ dimension: LeaseDimension) -> Int64 { units[dimension]?.granted ?? 0 }
    public func returned(_ dimension: LeaseDimension) -> Int64 { units[dimension]?.returned ?? 0 }
    public func reclaimed(_ dimension: LeaseDimension) -> Int64 { units[dimension]?.reclaimed ?? 0 }
}

/// sluiced's lease ledger (see the file comment).
public struct LeaseLedger: Sendable {
    struct Slice: Sendable {
        var held: Int64 = 0
        var expiresAtMillis: Int64 = 0
        var lastAskMillis: Int64 = Int64.min
    }

    struct Account: Sendable {
        var limit: Int64
        var consumed: Int64 = 0
        var endMillis: Int64
        var slices: [LeaseHolder: Slice] = [:]

        var outstanding: Int64 { slices.values.reduce(0) { $0 + $1.held } }

        /// Moves up to `claim` from the restart's stand-in to a holder the account does not know
        /// yet (see `restore`); returns what moved. Σ held stays the same.
        mutating func takeOverFromStandIn(_ claim: Int64) -> Int64 {
            guard claim > 0, var standIn = slices[LeaseLedger.beforeRestart], standIn.held > 0 else { return 0 }
            let taken = min(claim, standIn.held)
            standIn.held -= taken
            slices[LeaseLedger.beforeRestart] = standIn
            return taken
        }
    }

    /// What a holder unknown to an account held before this request, by its own count: the free
    /// part it states (`held`, after the item's return) plus what the item spends and returns of
    /// it, which the apply then takes off as for any holder. A replay's spend and return are not
    /// applied, so only `held` counts.
    static func standInClaim(_ item: LeaseItem, replay: Bool) -> Int64 {
        replay ? item.held : add(add(item.held, item.spent), item.returned)
    }

    struct WindowKey: Sendable, Hashable {
        var key: LeaseKey
        var window: Int64
    }

    public let settings: LeaseLedgerSettings
    /// The limits grants are made against (sluiced's config).
    public private(set) var limits: LeaseLimits
    private var accounts: [WindowKey: Account] = [:]
    private var lastSeq: [LeaseHolder: (seq: Int64, seenMillis: Int64)] = [:]
    /// A holder silent this long is forgotten (every restart of an Envoy is a new holder; its
    /// slices expired long before). A request it resends after that has its spend counted
    /// again, which errs towards granting less.
    public static let forgetHolderMillis: Int64 = UTCCalendar.millisPerDay
    private var lastPrunedMillis: Int64 = 0
    public private(set) var totals = LeaseLedgerTotals()

    public init(settings: LeaseLedgerSettings = LeaseLedgerSettings(), limits: LeaseLimits = LeaseLimits()) {
        self.settings = settings
        self.limits = limits
    }

    /// Takes a new config's limits: every open account of a scope sluiced still limits follows
    /// its new limit at once (a lower one stops grants until spend and returns bring the account
    /// under it; nothing granted is taken back). Accounts of scopes no longer limited keep their
    /// figures, so a limit restored within the window finds what the window consumed.
    public mutating func setLimits(_ limits: LeaseLimits) {
        self.limits = limits
        for (windowKey, account) in accounts {
            if let limit = limits.limit(windowKey.key), limit != account.limit { accounts[windowKey]?.limit = limit }
        }
    }

    /// Applies one request of `holder` at `nowMillis`.
    /// - Parameters:
    ///   - holder: The Envoy asking (its fleet identity).
    ///   - seq: The holder's request number, increasing; a request with a `seq` already
    ///     seen (a retry after a lost answer) has its spent and returned ignored.
    ///   - items: What the holder spent, returns and asks for, per leased quantity.
    ///   - nowMillis: sluiced's wall clock.
    public mutating func apply(
        holder: LeaseHolder, seq: Int64, items: [LeaseItem], nowMillis: Int64
    ) -> LeaseAnswer {
        expire(nowMillis: nowMillis)
        totals.requests += 1
        let known = lastSeq[holder]?.seq ?? Int64.min
        let replay = seq <= known
        if replay { totals.replays += 1 }
        lastSeq[holder] = (max(seq, known), nowMillis)
        var answer = LeaseAnswer(grants: [], rejected: [], replay: replay)
        for (index, item) in items.enumerated() {
            let period = item.key.dimension.period
            let (now, nowEnd) = period.window(atMillis: nowMillis)
            // The next window is open for asks shortly before it starts, so a busy Envoy holds its
            // slice of the new window when the old one ends instead of refusing until it renews.
            let nextOpen = nowEnd - nowMillis <= settings.lookaheadMillis
            let current = item.window == now + 1 && nextOpen ? now + 1 : now
            let end = current == now ? nowEnd : period.window(atMillis: nowEnd).endMillis
            if item.window > current {
                answer.rejected.append(
                    .init(
                        index: index,
                        error: "window: \(item.window) is after sluiced's current \(period) \(current) (is the Envoy's clock ahead?)"))
                continue
            }
            if item.window < now - 1 {
                answer.rejected.append(
                    .init(
                        index: index,
                        error: "window: \(item.window) has ended; sluiced keeps the current \(period) \(now) and the one before"))
                continue
            }
            guard let limit = limits.limit(item.key) else {
                totals.notLimitedItems += 1
                answer.rejected.append(.init(index: index, error: limits.notLimitedProblem(item.key)))
                continue
            }
            if item.limit != limit {
                totals.limitMismatches += 1
                answer.limitMismatches.append(.init(index: index, key: item.key, reported: item.limit, limit: limit))
            }
            let windowKey = WindowKey(key: item.key, window: item.window)
            var account =
                accounts[windowKey]
                ?? Account(limit: limit, endMillis: item.window == current ? end : period.startMillis(atMillis: end - 1))
            account.limit = limit
            var slice = account.slices[holder] ?? Slice()
            if account.slices[holder] == nil, holder != Self.beforeRestart {
                slice.held = account.takeOverFromStandIn(Self.standInClaim(item, replay: replay))
            }
            if !replay {
                account.consumed = Self.add(account.consumed, item.spent)
                let returned = min(item.returned, max(0, slice.held - item.spent))
                slice.held = max(0, slice.held - item.spent - returned)
                totals.units[item.key.dimension, default: .init()].returned += returned
            }
            // A holder that gave everything back and asks for nothing is done with the window:
            // it no longer counts for the others' shares.
            if !replay && item.want == 0 && slice.held == 0 { slice.lastAskMillis = Int64.min }
            var granted: Int64 = 0
            if item.window == current, item.want > 0 {
                slice.lastAskMillis = nowMillis
                account.slices[holder] = slice  // its spend and return count before sizing
                granted = grantSize(account, holder: holder, want: item.want, nowMillis: nowMillis)
                slice.held += granted
                totals.units[item.key.dimension, default: .init()].granted += granted
            }
            if slice.held > 0 {
                slice.expiresAtMillis = nowMillis + settings.ttlMillis
            }
            account.slices[holder] = slice
            if slice.held == 0 && slice.lastAskMillis < nowMillis - settings.activeMillis {
                account.slices[holder] = nil
            }
            accounts[windowKey] = account
            let outstanding = account.outstanding
            answer.grants.append(
                LeaseGrant(
                    key: item.key, window: item.window, granted: granted, held: slice.held,
                    ttlMillis: settings.ttlMillis, expiresAtMillis: nowMillis + settings.ttlMillis, limit: account.limit,
                    consumed: account.consumed, outstanding: outstanding,
                    remaining: max(0, account.limit - account.consumed - outstanding),
                    windowEndMillis: account.endMillis))
        }
        totals.rejectedItems += Int64(answer.rejected.count)
        return answer
    }

    /// How much of `want` to grant: never more than limit − consumed − outstanding, and no more
    /// than an equal share of that among the holders active in the window, so the first Envoy to
    /// ask cannot take what the others will need.
    func grantSize(_ account: Account, holder: LeaseHolder, want: Int64, nowMillis: Int64) -> Int64 {
        let available = account.limit - account.consumed - account.outstanding
        guard available > 0 else { return 0 }
        let activeSince = nowMillis - settings.activeMillis
        var active: Int64 = 1
        for (other, slice) in account.slices where other != holder {
            if slice.held > 0 || slice.lastAskMillis >= activeSince { active += 1 }
        }
        let share = (available + active - 1) / active
        return min(want, share, available)
    }

    /// Takes back the slices of holders past their expiry and forgets windows that ended: a
    /// dead or cut-off Envoy's slice becomes grantable again.
    public mutating func expire(nowMillis: Int64) {
        if nowMillis - lastPrunedMillis >= 60_000 {
            lastPrunedMillis = nowMillis
            lastSeq = lastSeq.filter { nowMillis - $0.value.seenMillis < Self.forgetHolderMillis }
        }
        for (windowKey, var account) in accounts {
            let current = windowKey.key.dimension.period.window(atMillis: nowMillis).id
            if windowKey.window < current - 1 {
                accounts[windowKey] = nil
                continue
            }
            var changed = false
            for (holder, slice) in account.slices where slice.held > 0 && slice.expiresAtMillis <= nowMillis {
                totals.units[windowKey.key.dimension, default: .init()].reclaimed += slice.held
                totals.reclaimedLeases += 1
                account.slices[holder]?.held = 0
                changed = true
            }
            if changed { accounts[windowKey] = account }
        }
    }

    /// Counts items refused before they reached the ledger (invalid on the wire).
    public mutating func countRejected(_ count: Int) {
        totals.rejectedItems += Int64(count)
    }

    /// Σ of every slice held now, over the windows the ledger keeps (for `sluiced_leases_outstanding`).
    public var outstandingUnits: Int64 { accounts.values.reduce(0) { $0 + $1.outstanding } }
    /// Slices held now (one per holder, key and window).
    public var outstandingLeases: Int { accounts.values.reduce(0) { $0 + $1.slices.values.count { $0.held > 0 } } }
    /// Holders the ledger has seen.
    public var holders: Int { lastSeq.count }

    /// The account of `key` in `window`: limit, consumed, outstanding (tests and the admin API).
    public func account(_ key: LeaseKey, window: Int64) -> (limit: Int64, consumed: Int64, outstanding: Int64)? {
        accounts[WindowKey(key: key, window: window)].map { ($0.limit, $0.consumed, $0.outstanding) }
    }

    /// What `holder` holds of `key` in `window`.
    public func held(_ key: LeaseKey, window: Int64, by holder: LeaseHolder) -> Int64 {
        accounts[WindowKey(key: key, window: window)]?.slices[holder]?.held ?? 0
    }

    /// The holder that stands for the slices Envoys held before a restart (a boot id is never empty).
    public static let beforeRestart = LeaseHolder(envoy: "(before restart)", boot: "")

    /// The accounts of `keys` (key and window) as rows to store.
    public func rows(_ keys: [(LeaseKey, Int64)]) -> [LeaseAccountRow] {
        var seen = Set<WindowKey>()
        return keys.compactMap { key, window in
            let windowKey = WindowKey(key: key, window: window)
            guard seen.insert(windowKey).inserted, let account = accounts[windowKey] else { return nil }
            return LeaseAccountRow(
                key: key, window: window, limit: account.limit, consumed: account.consumed,
                outstanding: account.outstanding, windowEndMillis: account.endMillis)
        }
    }

    /// Takes back the accounts a previous sluiced stored: what each open window consumed, and
    /// what was outstanding, held by ``beforeRestart`` for one TTL from now. The Envoys holding
    /// those slices may spend them until their own deadlines, which fall within that TTL. An
    /// Envoy's first item for such an account takes its own slice back from the stand-in (up to
    /// what the item says it held, never more than the stand-in has left), so it keeps serving
    /// from it and the slice is not counted twice; what the stand-in still holds after the TTL is
    /// reclaimed (and counted in `reclaimed`, the bound's R).
    public mutating func restore(_ rows: [LeaseAccountRow], nowMillis: Int64) {
        for row in rows {
            let current = row.key.dimension.period.window(atMillis: nowMillis).id
            guard row.window >= current - 1 else { continue }
            let windowKey = WindowKey(key: row.key, window: row.window)
            var account = accounts[windowKey] ?? Account(limit: row.limit, endMillis: row.windowEndMillis)
            if let limit = limits.limit(row.key) { account.limit = limit }
            account.consumed = max(account.consumed, row.consumed)
            if row.outstanding > 0 {
                account.slices[Self.beforeRestart] = Slice(
                    held: row.outstanding, expiresAtMillis: nowMillis + settings.ttlMillis, lastAskMillis: Int64.min)
            }
            accounts[windowKey] = account
        }
    }

    // MARK: - One request's accounts, for PostgresLeaseLedger

    /// Puts an account read from the database (its row and slices) into this ledger.
    mutating func load(_ windowKey: WindowKey, _ account: Account) {
        accounts[windowKey] = account
    }

    /// The account as the ledger has it now (to write back).
    func loaded(_ windowKey: WindowKey) -> Account? { accounts[windowKey] }

    /// Sets what the ledger knows of `holder`'s requests (read from the database).
    mutating func remember(_ holder: LeaseHolder, seq: Int64, seenMillis: Int64) {
        lastSeq[holder] = (seq, seenMillis)
    }

    /// The holder's last `seq` as the ledger has it now.
    func lastSeq(of holder: LeaseHolder) -> Int64? { lastSeq[holder]?.seq }

    private static func add(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int64.max : sum
    }
}

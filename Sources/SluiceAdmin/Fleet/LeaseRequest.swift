// `POST /v1/fleet/leases`: the body an Envoy's background worker sends, read and checked, and the
// service that applies it to the ledger. Same conventions as `/v1/fleet/usage`: a malformed
// envelope is refused whole (400); each item is checked on its own and a bad one is rejected with
// a message naming its field and range while the others are applied; unknown members are ignored
// and named in the answer.
import Hummingbird
import Synchronization
public import SluiceCore

/// A lease request, read: who asks, its sequence number, the valid items and the others with why.
public struct LeaseRequestBody: Sendable, Equatable {
    public var holder: LeaseHolder
    public var seq: Int64
    /// The valid items with their index in the request's `items`.
    public var items: [(index: Int, item: LeaseItem)]
    public var rejected: [LeaseItemProblem]
    public var ignoredFields: [String] = []

    public init(
        holder: LeaseHolder, seq: Int64, items: [(index: Int, item: LeaseItem)], rejected: [LeaseItemProblem],
        ignoredFields: [String] = []
    ) {
        self.holder = holder
        self.seq = seq
        self.items = items
        self.rejected = rejected
        self.ignoredFields = ignoredFields
    }

    public static func == (lhs: LeaseRequestBody, rhs: LeaseRequestBody) -> Bool {
        lhs.holder == rhs.holder && lhs.seq == rhs.seq && lhs.rejected == rhs.rejected
            && lhs.ignoredFields == rhs.ignoredFields && lhs.items.map(\.index) == rhs.items.map(\.index)
            && lhs.items.map(\.item) == rhs.items.map(\.item)
    }
}

extension FleetProtocol {
    /// Items in one lease request.
    public static let leaseItems = 1...1_000
    /// `seq`: 1...2^53.
    public static let seqRange: ClosedRange<Int64> = 1...(1 << 53)
    /// `spent` and `returned`: 0...10^15 (a billion dollars in micro-dollars; more tokens than any window holds).
    public static let leaseAmountRange: ClosedRange<Int64> = 0...1_000_000_000_000_000

    static let leaseEnvelopeFields: Set<String> = ["envoy", "boot", "seq", "items"]
    static let leaseItemFields: Set<String> = ["scope", "name", "dimension", "window", "limit", "spent", "returned", "want", "held"]

    /// Reads a lease request.
    /// - Throws: `AdminError.invalidRequest` (400) when the envelope is malformed: not a JSON
    ///   object, `envoy` or `boot` not 1 to 128 printable ASCII, `seq` out of range, `items` not an
    ///   array of 1 to 1000. A bad item is not an error: it is listed in `rejected`.
    public static func readLeaseRequest(_ bytes: [UInt8]) throws(AdminError) -> LeaseRequestBody {
        let (envelope, unknownMembers) = try readEnvelope(bytes, known: leaseEnvelopeFields)
        let holder = LeaseHolder(envoy: try identifier("envoy", in: envelope), boot: try identifier("boot", in: envelope))
        var ignored = unknownMembers
        let seq: Int64
        switch integer(envelope["seq"], in: seqRange) {
        case .success(let value): seq = value
        case .failure(let problem): throw .invalid("seq", problem.message)
        }
        guard let itemsValue = envelope["items"] else { throw .invalid("items", "is required") }
        guard case .array(let elements) = itemsValue else {
            throw .invalid("items", "must be an array, got \(itemsValue.typeName)")
        }
        guard leaseItems.contains(elements.count) else {
            throw .invalid(
                "items", "must hold \(leaseItems.lowerBound) to \(leaseItems.upperBound) items, got \(elements.count)")
        }
        var body = LeaseRequestBody(holder: holder, seq: seq, items: [], rejected: [])
        for (index, element) in elements.enumerated() {
            if case .object(let object) = element, ignored.count < maxIgnoredFieldNames {
                for member in object.members where !leaseItemFields.contains(member.key) { ignored.insert(member.key) }
            }
            switch leaseItem(element) {
            case .success(let item): body.items.append((index, item))
            case .failure(let problem): body.rejected.append(LeaseItemProblem(index: index, error: problem.message))
            }
        }
        body.ignoredFields = Array(ignored.sorted().prefix(maxIgnoredFieldNames))
        return body
    }

    struct LeaseProblem: Error {
        var message: String
    }

    /// An integer member in `range`, or why not (without the field's name).
    private static func integer(_ value: JSONValue?, in range: ClosedRange<Int64>) -> Result<Int64, LeaseProblem> {
        guard let value else { return .failure(LeaseProblem(message: "is required")) }
        let problem = "must be an integer between \(range.lowerBound) and \(range.upperBound)"
        guard case .number(let number) = value else { return .failure(LeaseProblem(message: "\(problem), got \(value.typeName)")) }
        guard number.isInteger, let integer = number.int64, range.contains(integer) else {
            return .failure(LeaseProblem(message: "\(problem), got \(number.text)"))
        }
        return .success(integer)
    }

    /// One item, or the first thing wrong with it (`field: problem`).
    static func leaseItem(_ value: JSONValue) -> Result<LeaseItem, LeaseProblem> {
        guard case .object(let object) = value else {
            return .failure(LeaseProblem(message: "an item must be a JSON object, got \(value.typeName)"))
        }
        func fail(_ field: String, _ problem: String) -> Result<LeaseItem, LeaseProblem> {
            .failure(LeaseProblem(message: "\(field): \(problem)"))
        }
        guard let scopeValue = object["scope"] else { return fail("scope", "is required") }
        guard case .string(let scopeText) = scopeValue, let kind = QuotaScope.Kind(leaseWireName: scopeText) else {
            return fail("scope", "must be \"key\", \"team\" or \"model\", got \(Self.shown(scopeValue))")
        }
        guard let nameValue = object["name"] else { return fail("name", "is required") }
        guard case .string(let name) = nameValue else { return fail("name", "must be a string, got \(nameValue.typeName)") }
        guard (1...maxNameBytes).contains(name.utf8.count) else {
            return fail("name", "must be 1 to \(maxNameBytes) bytes, got \(name.utf8.count)")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return fail("name", "must not contain control characters")
        }
        guard let dimensionValue = object["dimension"] else { return fail("dimension", "is required") }
        guard case .string(let dimensionText) = dimensionValue, let dimension = LeaseDimension(rawValue: dimensionText) else {
            return fail(
                "dimension",
                "must be one of \(LeaseDimension.allCases.map(\.rawValue).joined(separator: ", ")), got \(Self.shown(dimensionValue))")
        }
        var item = LeaseItem(key: LeaseKey(QuotaScope(kind, name), dimension), window: 0, limit: 0)
        let checks: [(String, ClosedRange<Int64>, WritableKeyPath<LeaseItem, Int64>, Bool)] = [
            ("window", 0...dimension.period.maxWindow, \.window, true),
            ("limit", 1...dimension.maxLimit, \.limit, true),
            ("spent", leaseAmountRange, \.spent, false),
            ("returned", leaseAmountRange, \.returned, false),
            ("want", 0...dimension.maxLimit, \.want, false),
            ("held", 0...dimension.maxLimit, \.held, false),
        ]
        for (field, range, path, required) in checks {
            if !required && object[field] == nil { continue }
            switch integer(object[field], in: range) {
            case .success(let value): item[keyPath: path] = value
            case .failure(let problem): return fail(field, problem.message)
            }
        }
        return .success(item)
    }

    /// A string value quoted, anything else by its JSON type (for messages).
    private static func shown(_ value: JSONValue) -> String {
        if case .string(let text) = value { return "\"\(text.prefix(64))\"" }
        return value.typeName
    }
}

/// A ledger several sluiced share: each request's grants are decided in the database, under
/// locks, so replicas together never grant beyond a limit (`PostgresAdminStore`).
public protocol SharedLeaseLedger: Sendable {
    /// Applies one request in one transaction: reads the accounts it names (and the holder's
    /// last `seq`) under locks, runs `LeaseLedger.apply` on them, writes them back.
    func applyLeases(
        holder: LeaseHolder, seq: Int64, items: [LeaseItem], limits: LeaseLimits, settings: LeaseLedgerSettings,
        nowMillis: Int64
    ) async throws -> SharedLeaseOutcome
}

/// What a shared ledger did with one request.
public struct SharedLeaseOutcome: Sendable {
    public var answer: LeaseAnswer
    /// The counts of this request alone (reclaims of expired slices in the accounts it touched included).
    public var totals: LeaseLedgerTotals
    /// Slices held now and holders known, across every replica (for the gauges).
    public var outstandingLeases: Int
    public var holders: Int

    public init(answer: LeaseAnswer, totals: LeaseLedgerTotals, outstandingLeases: Int, holders: Int) {
        self.answer = answer
        self.totals = totals
        self.outstandingLeases = outstandingLeases
        self.holders = holders
    }
}

/// sluiced's lease ledger: in this process's memory behind a lock (SQLite: one sluiced), or in the
/// database (`SharedLeaseLedger`: PostgreSQL, any number of replicas). The HTTP handlers and
/// `/metrics` share it.
public final class LeaseService: Sendable {
    private let ledger: Mutex<LeaseLedger>
    private let clock: @Sendable () -> Int64
    /// The database's ledger when replicas share one; nil keeps the ledger in memory.
    public let shared: (any SharedLeaseLedger)?
    private struct SharedState {
        var totals = LeaseLedgerTotals()
        var outstandingLeases = 0
        var holders = 0
    }
    /// With a shared ledger: this replica's counts and the gauges as of its last request.
    private let sharedState = Mutex(SharedState())

    /// - Parameters:
    ///   - settings: The lease sizes and durations sluiced grants.
    ///   - nowMillis: sluiced's wall clock (tests pass their own).
    ///   - limits: the limits to grant against until `setLimits` (sluiced sets them from its config).
    ///   - shared: the database's ledger when several sluiced share one (PostgreSQL).
    public init(
        settings: LeaseLedgerSettings = LeaseLedgerSettings(), limits: LeaseLimits = LeaseLimits(),
        shared: (any SharedLeaseLedger)? = nil, nowMillis: @escaping @Sendable () -> Int64
    ) {
        ledger = Mutex(LeaseLedger(settings: settings, limits: limits))
        clock = nowMillis
        self.shared = shared
    }

    /// The limits grants are made against now.
    public var limits: LeaseLimits { ledger.withLock { $0.limits } }

    /// Takes a new config's limits (at every snapshot sluiced serves): open accounts follow them.
    public func setLimits(_ limits: LeaseLimits) {
        ledger.withLock { $0.setLimits(limits) }
    }

    /// Applies a request: in the database when the ledger is shared, else in memory followed by
    /// storing the accounts it touched in `store` (a failure to store is logged through
    /// `storeFailed` and the answer still given: the in-memory ledger decided).
    /// - Throws: with a shared ledger, the database's failure: no grant was made, and the Envoy
    ///   resends the request.
    public func handle(
        _ body: LeaseRequestBody, store: any LeaseAccountStore, storeFailed: @Sendable (any Error) -> Void
    ) async throws -> LeaseAnswer {
        guard let shared else {
            let (answer, rows) = apply(body)
            do {
                try await persist(rows, in: store)
            } catch {
                storeFailed(error)
            }
            return answer
        }
        let (settings, limits) = ledger.withLock { ($0.settings, $0.limits) }
        let outcome = try await shared.applyLeases(
            holder: body.holder, seq: body.seq, items: body.items.map(\.item), limits: limits, settings: settings,
            nowMillis: clock())
        sharedState.withLock { state in
            state.totals.add(outcome.totals)
            state.totals.rejectedItems += Int64(body.rejected.count)
            state.outstandingLeases = outcome.outstandingLeases
            state.holders = outcome.holders
        }
        return Self.numbered(outcome.answer, body)
    }

    /// The ledger's answer with its rejections (numbered among the valid items) mapped back to
    /// their index in the request and merged with the reader's.
    private static func numbered(_ answer: LeaseAnswer, _ body: LeaseRequestBody) -> LeaseAnswer {
        var answer = answer
        answer.rejected = (body.rejected + answer.rejected.map { LeaseItemProblem(index: body.items[$0.index].index, error: $0.error) })
            .sorted { $0.index < $1.index }
        answer.limitMismatches = answer.limitMismatches.map { mismatch in
            var mismatch = mismatch
            mismatch.index = body.items[mismatch.index].index
            return mismatch
        }
        return answer
    }

    /// Applies a request's valid items; the answer's rejections include the reader's, by index.
    /// Also returns the accounts the request touched, to store.
    public func apply(_ body: LeaseRequestBody) -> (answer: LeaseAnswer, rows: [LeaseAccountRow]) {
        let now = clock()
        let (answer, rows) = ledger.withLock { ledger in
            ledger.countRejected(body.rejected.count)
            let answer = ledger.apply(holder: body.holder, seq: body.seq, items: body.items.map(\.item), nowMillis: now)
            return (answer, ledger.rows(answer.grants.map { ($0.key, $0.window) }))
        }
        return (Self.numbered(answer, body), rows)
    }

    /// Stores the accounts of a request (after `apply`, before answering it). A failure is
    /// logged by the caller and the answer still sent: a lease server that refuses leases when its
    /// database hiccups would turn every scope fail_closed.
    public func persist(_ rows: [LeaseAccountRow], in store: any LeaseAccountStore) async throws {
        guard !rows.isEmpty else { return }
        try await store.saveLeaseAccounts(rows, nowMillis: clock())
    }

    /// Loads the accounts of the open windows a previous sluiced stored (at start).
    /// - Returns: How many accounts were restored.
    @discardableResult
    public func restore(from store: any LeaseAccountStore) async throws -> Int {
        let now = clock()
        // Month accounts end up to a month back and the ledger keeps the previous window: read a
        // little more than that, the ledger drops what it does not keep.
        let rows = try await store.leaseAccounts(endingAfter: now - 32 * UTCCalendar.millisPerDay)
        ledger.withLock { $0.restore(rows, nowMillis: now) }
        return rows.count
    }

    /// The ledger's state after taking back what expired by now: (slices held, totals).
    /// With a shared ledger: this replica's counts, and the gauges as of its last request (expiry
    /// happens in the database at the next request touching an account).
    public func snapshot() -> (outstandingLeases: Int, holders: Int, totals: LeaseLedgerTotals) {
        if shared != nil { return sharedState.withLock { ($0.outstandingLeases, $0.holders, $0.totals) } }
        let now = clock()
        return ledger.withLock { ledger in
            ledger.expire(nowMillis: now)
            return (ledger.outstandingLeases, ledger.holders, ledger.totals)
        }
    }

    /// What `holder` holds of `key` in its current window, and the account (tests).
    public func held(_ key: LeaseKey, by holder: LeaseHolder) -> Int64 {
        let now = clock()
        return ledger.withLock { ledger in
            ledger.expire(nowMillis: now)
            return ledger.held(key, window: key.dimension.period.window(atMillis: now).id, by: holder)
        }
    }
}

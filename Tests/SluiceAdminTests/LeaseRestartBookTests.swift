// An Envoy's LeaseBook renewing through sluiced's LeaseLedger while sluiced is killed and restarted
// on its stored accounts (issue 10, the fleet worker's kill-and-restart test): the Envoy keeps
// serving from the slice it held, and after the restart it is neither refused as if the fleet's
// limit were reached nor granted beyond the limit. Deterministic: one simulated clock drives both.
import SluiceAdmin
import SluiceCore
import Testing

@Suite("A lease book across a sluiced restart")
struct LeaseRestartBookTests {
    static let key = LeaseKey(.key("demo"), .tokensPerMinute)
    static let limit: Int64 = 200_000

    /// One Envoy's clients and worker, and sluiced (up or down), on one clock.
    struct Run {
        let book: LeaseBook
        let slot: LeaseSlot
        let holder: LeaseHolder
        var ledger: LeaseLedger?
        /// What the service stored after each answered request (read back at the restart).
        var stored: [LeaseAccountRow] = []
        var nowMillis: Int64
        var nowNanos: Int64 = 1_000_000_000
        var inFlight: [LeaseTicket] = []
        var denials: [(atMillis: Int64, denial: LeaseDenial)] = []
        var answers: [(atMillis: Int64, grant: LeaseGrant)] = []
        var admitted = 0

        /// Requests admitted per 50 ms step.
        let perStep: Int

        init(startMillis: Int64, perStep: Int) {
            self.perStep = perStep
            book = LeaseBook(envoy: "envoy-a", boot: "b1")
            slot = book.acquire([(Self.key, Self.limit, .failClosed)])[Self.key]!
            holder = LeaseHolder(envoy: book.envoy, boot: book.boot)
            ledger = LeaseLedger(limits: LeaseLimits([Self.key: Self.limit]))
            nowMillis = startMillis
        }

        static var key: LeaseKey { LeaseRestartBookTests.key }
        static var limit: Int64 { LeaseRestartBookTests.limit }

        /// 50 ms: the previous step's requests finish (100 tokens each, estimated 1043), new ones
        /// are admitted, and every 100 ms (or when the book asks) the worker renews.
        mutating func step(_ index: Int) {
            for ticket in inFlight { slot.settle(ticket, actual: 100) }
            inFlight.removeAll()
            for _ in 0..<perStep {
                switch slot.admit(1_043, nowMillis: nowMillis, nowNanos: nowNanos) {
                case .admitted(let ticket):
                    inFlight.append(ticket)
                    admitted += 1
                case .denied(let denial): denials.append((nowMillis, denial))
                }
            }
            if index % 2 == 0 || book.takeRenewalWanted(), let request = book.nextRequest(nowMillis: nowMillis, nowNanos: nowNanos) {
                if var ledger {
                    let answer = ledger.apply(holder: holder, seq: request.seq, items: request.items, nowMillis: nowMillis)
                    stored = ledger.rows(request.items.map { ($0.key, $0.window) })
                    self.ledger = ledger
                    book.apply(answer.grants, seq: request.seq, sentAtNanos: nowNanos)
                    for grant in answer.grants where grant.window == LeasePeriod.minute.window(atMillis: nowMillis).id {
                        answers.append((nowMillis, grant))
                    }
                }
            }
            nowMillis += 50
            nowNanos += 50_000_000
        }
    }

    /// 20 requests a second (four clients through one Envoy, as in the integration test) leave
    /// the fleet most of its budget; 80 a second make this Envoy hold nearly all of it, which
    /// before the fix turned into 429s "limit reached, retry in 38 s" right after the restart.
    @Test(
        "killed at 1 s and restarted at 2 s on its stored accounts, sluiced gives the Envoy its slice back and counts it once",
        arguments: [1, 4])
    func killAndRestart(perStep: Int) throws {
        // 20 s into a minute: the run stays in one window.
        let start: Int64 = 1_764_936_020_000
        var run = Run(startMillis: start, perStep: perStep)
        for index in 0..<20 { run.step(index) }
        let window = LeasePeriod.minute.window(atMillis: start).id
        let heldBeforeKill = try #require(run.ledger).held(Self.key, window: window, by: run.holder)
        #expect(heldBeforeKill > 10_000)
        // Killed: requests go unanswered (the book resends the pending one); the slice it holds stays valid.
        let rows = run.stored
        run.ledger = nil
        for index in 20..<40 { run.step(index) }
        var restarted = LeaseLedger(limits: LeaseLimits([Self.key: Self.limit]))
        restarted.restore(rows, nowMillis: run.nowMillis)
        run.ledger = restarted
        let answersBefore = run.answers.count
        for index in 40..<80 { run.step(index) }

        // The first requests come before any lease (fail_closed); after that none is refused:
        // not while sluiced is down (the slice is valid), not after the restart.
        let refused = run.denials.filter { $0.atMillis > start }
        #expect(refused.isEmpty, "refused: \(refused.map { "\($0.atMillis - start) ms: \($0.denial)" })")
        let after = run.answers[answersBefore...]
        #expect(after.count >= 10)
        let outstandingBeforeKill = try #require(rows.first).outstanding
        for (at, grant) in after {
            #expect(grant.consumed + grant.outstanding <= Self.limit, "at \(at - start) ms sluiced answered \(grant)")
            // Not counted twice (the stand-in's and a fresh grant): what is out stays about what
            // was out before the kill.
            #expect(grant.outstanding <= outstandingBeforeKill + Self.limit / 20, "at \(at - start) ms sluiced answered \(grant)")
        }
        // The first answer after the restart gave the Envoy its own slice back from the stand-in:
        // sluiced counts it as held by this Envoy, not twice.
        let first = try #require(after.first).grant
        #expect(first.held > heldBeforeKill / 2)
        let ledger = try #require(run.ledger)
        #expect(ledger.held(Self.key, window: window, by: LeaseLedger.beforeRestart) < Self.limit / 20)
        let account = try #require(ledger.account(Self.key, window: window))
        #expect(account.consumed + account.outstanding <= Self.limit)
        #expect(run.slot.remaining(window: window) > 0)
    }

    @Test("the book's item states what it holds; sluiced reads `held` range-checked, 0 when absent")
    func heldOnTheWire() throws {
        let bound = LeaseDimension.tokensPerMinute.maxLimit
        func item(_ extra: String) -> String {
            #"{"scope": "key", "name": "demo", "dimension": "tokens_per_minute", "window": 29000000, "limit": 200000\#(extra)}"#
        }
        let items = [item(""), item(#", "spent": 5, "held": 1234"#), item(#", "held": -1"#), item(#", "held": \#(bound + 1)"#)]
        let request = #"{"envoy": "gw-1", "boot": "b1", "seq": 4, "items": ["# + items.joined(separator: ", ") + "]}"
        let mixed = try FleetProtocol.readLeaseRequest(Array(request.utf8))
        #expect(mixed.items.map { $0.item.held } == [0, 1_234])
        #expect(mixed.items.last?.item == LeaseItem(key: Self.key, window: 29_000_000, limit: Self.limit, spent: 5, held: 1_234))
        #expect(mixed.ignoredFields.isEmpty)
        #expect(
            mixed.rejected == [
                LeaseItemProblem(index: 2, error: "held: must be an integer between 0 and \(bound), got -1"),
                LeaseItemProblem(index: 3, error: "held: must be an integer between 0 and \(bound), got \(bound + 1)"),
            ])
    }
}

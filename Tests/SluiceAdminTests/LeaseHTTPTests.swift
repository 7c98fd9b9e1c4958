// The module's lease book against sluiced's router over HTTP (in process): the worker's request
// body as LeaseWire writes it, sluiced's answer as LeaseWire reads it, grants applied to the
// book, admissions against them, spend reported back and counted once.
import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceAdmin
import SluiceCore
import Testing

@Suite("Lease HTTP")
struct LeaseHTTPTests {
    static let fleetToken = "fleet-token-0123456789abcdef"

    @Test("book → wire → POST /v1/fleet/leases → wire → book, and the spend comes back once")
    func roundTrip() async throws {
        var harness = APIHarness()
        // A long TTL: the round trip is under test, not expiry, and a loaded machine can stall this
        // test for longer than the default 10 s between the grant and the admission.
        let leases = LeaseService(
            settings: LeaseLedgerSettings(ttlMillis: 600_000),
            limits: LeaseLimits([LeaseKey(.team("payments"), .costPerDay): 1_000_000]), nowMillis: FleetIngest.wallClockMillis)
        harness.fleet = FleetIngest(token: try FleetToken(secret: Self.fleetToken), leases: leases)
        try await harness.run { api, _ in
            let key = LeaseKey(.team("payments"), .costPerDay)
            let slot = LeaseSlot(key: key, limit: 1_000_000, policy: .failClosed)
            let book = LeaseBook(envoy: "gw-1", boot: "boot-1", slots: [slot])
            let clock = ContinuousClock()
            let start = clock.now
            func nanos() -> Int64 {
                let elapsed = start.duration(to: clock.now).components
                return 1_000_000_000 + elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000
            }
            func exchange() async throws -> LeaseWire.Answer? {
                guard let request = book.nextRequest(nowMillis: FleetIngest.wallClockMillis(), nowNanos: nanos()) else { return nil }
                let sent = nanos()
                let body = String(decoding: LeaseWire.requestBody(request, envoy: book.envoy, boot: book.boot), as: UTF8.self)
                let response = try await api.call(.post, "/v1/fleet/leases", body, authorization: "Bearer \(Self.fleetToken)")
                #expect(response.status == .ok, "\(response.text)")
                let answer = try LeaseWire.readAnswer(Array(response.text.utf8), seq: request.seq).get()
                book.apply(answer.grants, seq: request.seq, sentAtNanos: sent)
                return answer
            }
            // Demand first (refused: no lease yet), then the worker's tick asks for it.
            #expect(slot.admit(5_000, nowMillis: FleetIngest.wallClockMillis(), nowNanos: nanos()) == .denied(.unavailable))
            let first = try await exchange()
            let granted = first?.grants.first?.granted ?? 0
            #expect(granted >= 5_000)
            #expect(first?.problems == [])
            guard case .admitted(let ticket) = slot.admit(5_000, nowMillis: FleetIngest.wallClockMillis(), nowNanos: nanos()) else {
                Issue.record("the granted slice should admit")
                return
            }
            slot.settle(ticket, actual: 4_200)
            let second = try await exchange()
            let account = second?.grants.first
            #expect(account?.consumed == 4_200)
            #expect(leases.held(key, by: LeaseHolder(envoy: "gw-1", boot: "boot-1")) == account?.held)
            // Nothing new to say: no request (the lease is fresh, nothing spent, the slice suffices).
            #expect(book.nextRequest(nowMillis: FleetIngest.wallClockMillis(), nowNanos: nanos())?.items.contains { $0.spent > 0 } != true)
        }
    }
}

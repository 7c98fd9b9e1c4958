// Hooks that arrive for a stream after its destroy (a host bug) are refused with a log line, never
// followed into freed memory; in exit tests, so a regression that traps fails only its own test.
import SluiceTestHost
import Testing

@Suite struct StreamHandleTests {
    static func stream(_ chain: FakeHTTPFilterChain) -> FakeHTTPStreamDriver? {
        chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-sluice-demo")])
    }

    @Test func hooksAfterDestroyAreRefusedAndLogged() async {
        await #expect(processExitsWith: .success) {
            let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
            guard let driver = Self.stream(chain) else {
                Issue.record("no stream")
                return
            }
            driver.destroy()
            let logged = FakeLog.lines(containing: "destroyed stream").count
            // Fail-closed defaults: request path stops, response path continues.
            #expect(driver.requestHeaders(endOfStream: true) == 1)
            #expect(driver.requestBody(Array("{}".utf8), endOfStream: true) == 3)
            #expect(driver.responseHeaders([(":status", "200")]) == 0)
            #expect(driver.responseBody([], endOfStream: true) == 0)
            driver.streamComplete()
            driver.destroyAgain()
            #expect(driver.stream.callbacksAfterDestroy == 0)
            #expect(FakeLog.lines(containing: "destroyed stream").count == logged + 6)
        }
    }

    /// The destroyed stream's slot is reused by the next stream: the old handle still names the
    /// old generation and reaches nothing, while the new stream works.
    @Test func aReusedSlotIsNotReachedThroughAnOldHandle() async {
        await #expect(processExitsWith: .success) {
            let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
            guard let old = Self.stream(chain) else { return }
            old.destroy()
            for _ in 0..<3 {
                guard let new = Self.stream(chain) else { return }
                #expect(old.requestHeaders(endOfStream: true) == 1)
                old.destroyAgain()
                #expect(new.stream.localReply == nil)
                #expect(new.requestHeaders(endOfStream: true) == 1)  // answered locally: the model list
                #expect(new.stream.localReply?.status == 200)
                new.destroy()
            }
            #expect(old.stream.callbacksAfterDestroy == 0)
        }
    }

    /// Many streams alive at once, destroyed in a scrambled order: every handle reaches its own filter.
    @Test func manyLiveStreamsKeepTheirOwnFilters() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        var drivers = try (0..<3000).map { _ in try #require(Self.stream(chain)) }
        // Destroy a scattered half (i × 7919 mod 3000 is a permutation, 7919 being prime to 3000).
        let destroyed = Set((0..<1500).map { $0 * 7919 % 3000 })
        for index in destroyed { drivers[index].destroy() }
        for (index, driver) in drivers.enumerated() where !destroyed.contains(index) {
            #expect(driver.requestHeaders(endOfStream: true) == 1)
            #expect(driver.stream.localReply?.status == 200)
        }
        drivers.removeAll()
    }
}

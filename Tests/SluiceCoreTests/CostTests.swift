// Prices per million tokens and the integer micro-dollar cost of a usage.

import Testing

@testable import SluiceCore

@Suite struct CostTests {
    static func table(_ json: String) throws -> PriceTable {
        var object = try ConfigObject(try JSONParser.parse(Array(json.utf8)), path: "prices")
        let table = try PriceTable.read(&object)
        try object.finish()
        return table
    }

    @Test func readsPricesAsMicrosPerMillion() throws {
        let table = try Self.table(
            """
            {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6},
             "claude-sonnet-4": {"input": 3, "cached_input": 0.3, "cache_write": 3.75, "output": 15}}
            """)
        #expect(
            table.price(for: "gpt-4o-mini")
                == ModelPrice(
                    inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 75_000,
                    cacheWriteMicrosPerMillion: 150_000, outputMicrosPerMillion: 600_000))
        #expect(table.price(for: "claude-sonnet-4")?.cacheWriteMicrosPerMillion == 3_750_000)
        #expect(table.cost(usage: TokenUsage(inputTokens: 1), model: "unknown") == nil)
    }

    @Test(arguments: [
        (#"{"m": {"input": 1}}"#, "prices.m.output: is required"),
        (#"{"m": {"output": 1}}"#, "prices.m.input: is required"),
        (#"{"m": {"input": 1, "output": -2}}"#, "prices.m.output: must be between 0.0 and 1000000.0, got -2.0"),
        (#"{"m": {"input": 1, "output": 2, "cached": 1}}"#, "prices.m.cached: unknown field"),
        (#"{"m": 3}"#, "prices.m: expected an object, got number"),
        (#"{"m": null}"#, "prices.m: expected an object, got null"),
    ])
    func rejectsBadPricesNamingTheField(json: String, message: String) {
        do {
            _ = try Self.table(json)
            Issue.record("accepted \(json)")
        } catch let error as ConfigError {
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func cachedTokensAreBilledAtTheirOwnRate() {
        let price = ModelPrice(
            inputMicrosPerMillion: 3_000_000, cachedInputMicrosPerMillion: 300_000,
            cacheWriteMicrosPerMillion: 3_750_000, outputMicrosPerMillion: 15_000_000)
        // 1000 prompt tokens: 600 read from cache, 100 written to it, 300 plain; 200 output (50 reasoning).
        let usage = TokenUsage(
            inputTokens: 1000, outputTokens: 200, cachedInputTokens: 600, cacheWriteInputTokens: 100,
            reasoningTokens: 50)
        // 300 × 3 + 600 × 0.3 + 100 × 3.75 + 200 × 15 = 900 + 180 + 375 + 3000 = 4455 µ$
        #expect(price.cost(usage) == 4455)
    }

    @Test func roundingHappensOnceOnTheExactTotal() {
        let mini = ModelPrice(
            inputMicrosPerMillion: 150_000, cachedInputMicrosPerMillion: 75_000, outputMicrosPerMillion: 600_000)
        #expect(mini.cost(TokenUsage(inputTokens: 1)) == 0)  // 0.15 µ$
        #expect(mini.cost(TokenUsage(inputTokens: 3)) == 0)  // 0.45
        #expect(mini.cost(TokenUsage(inputTokens: 4)) == 1)  // 0.6
        #expect(mini.cost(TokenUsage(inputTokens: 10)) == 2)  // 1.5 rounds half up
        // Four terms each below half a micro-dollar add up before rounding: 0.45 + 0.225 + 0.3 = 0.975.
        #expect(mini.cost(TokenUsage(inputTokens: 5, outputTokens: 1, cachedInputTokens: 3)) == 1)
        #expect(mini.cost(TokenUsage(inputTokens: 1_000_000, outputTokens: 1_000_000)) == 750_000)
    }

    @Test func absurdUsageSaturatesWithoutTrapping() async {
        // In an exit test: a trap fails this test alone instead of the whole suite.
        await #expect(processExitsWith: .success) { CostTests.absurdUsageSaturatesWithoutTrappingRun() }
    }

    static func absurdUsageSaturatesWithoutTrappingRun() {
        let expensive = ModelPrice(
            inputMicrosPerMillion: ModelPrice.maxMicrosPerMillion, outputMicrosPerMillion: Int64.max)
        let usage = TokenUsage(
            inputTokens: Int.max, outputTokens: Int.max, cachedInputTokens: Int.max, cacheWriteInputTokens: Int.min,
            reasoningTokens: Int.max)
        #expect(expensive.cost(usage) > 0)
        #expect(expensive.cost(TokenUsage(inputTokens: -5, outputTokens: -1)) == 0)
        // Cached count above the prompt count (a confused provider) does not bill negative tokens.
        #expect(expensive.cost(TokenUsage(inputTokens: 1, cachedInputTokens: 5)) == 5_000_000)
    }

    @Test(arguments: [
        (Int64(0), "0"), (123, "0.000123"), (1_500_000, "1.5"), (10_000_000, "10"), (9_990_000, "9.99"),
        (1, "0.000001"), (-2_500_001, "-2.500001"), (Int64.min, "-9223372036854.775808"),
    ])
    func dollarsFormatCompactly(micros: Int64, text: String) {
        #expect(Dollars.format(micros: micros) == text)
    }

    @Test func dollarsToMicros() {
        #expect(PriceTable.micros(fromDollars: 0.075) == 75_000)
        #expect(PriceTable.micros(fromDollars: 0.15) == 150_000)
        #expect(PriceTable.micros(fromDollars: 1e30) == Int64.max)
        #expect(PriceTable.micros(fromDollars: .nan) == 0)
    }
}

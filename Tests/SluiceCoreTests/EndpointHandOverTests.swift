// The filter→load-balancer hand-over header, the picker's config and least-request.
import SluiceCore
import Testing

struct EndpointHandOverTests {
    @Test func roundTripsHashesAndAdapter() throws {
        let hashes = PrefixBlockHashes(prompt: Array(String(repeating: "system prompt ", count: 200).utf8))
        #expect(hashes.count == 10)
        let value = EndpointHandOver.encode(prefix: hashes, adapter: AdapterID("sql-lora"))
        #expect(value.utf8.count == 17 + 16 * 10)
        let decoded = try #require(EndpointHandOver.decode(Array(value.utf8)))
        #expect(decoded.adapter == AdapterID("sql-lora"))
        #expect(decoded.prefix.count == 10)
        for index in 0..<10 { #expect(decoded.prefix[index] == hashes[index]) }
        let plain = try #require(EndpointHandOver.decode(Array(EndpointHandOver.encode(prefix: hashes, adapter: nil).utf8)))
        #expect(plain.adapter == nil && plain.prefix.count == 10)
    }

    @Test func atMost64BlocksTravel() throws {
        let long = PrefixBlockHashes(prompt: [UInt8](repeating: 0x61, count: 256 * 100))
        let value = EndpointHandOver.encode(prefix: long, adapter: nil)
        #expect(value.utf8.count == 1 + 16 * 64)
        #expect(try #require(EndpointHandOver.decode(Array(value.utf8))).prefix.count == 64)
    }

    @Test func malformedValuesDecodeToNil() {
        let sixteen = String(repeating: "a", count: 16)
        for bad in ["", "x", ";" + String(repeating: "a", count: 15), ";" + String(repeating: "A", count: 16),
                    String(repeating: "0", count: 16) + ";", "abc;" + sixteen, ";" + String(repeating: "0", count: 16),
                    ";" + String(repeating: "a", count: 16 * 65), sixteen + sixteen]
        {
            #expect(EndpointHandOver.decode(Array(bad.utf8)) == nil, "\(bad.prefix(40))")
        }
    }

    @Test func promptBytesStartAtTheMessages() {
        let body = Array(#"{"model":"m","stream":true,"messages":[{"role":"system","content":"x"}]}"#.utf8)
        let range = EndpointHandOver.promptBytes(of: body.span)
        #expect(Array(body[range]).starts(with: Array(#""messages""#.utf8)))
        let plain = Array("no keys here".utf8)
        #expect(EndpointHandOver.promptBytes(of: plain.span) == 0..<plain.count)
    }

    /// A Responses body: two requests that share `instructions` share the hashed bytes, however
    /// their `model` and `stream` differ; `input` first works the same.
    @Test func responsesPromptBytesStartAtInstructionsOrInput() {
        let one = Array(#"{"model":"a","stream":true,"instructions":"You are terse.","input":"hi"}"#.utf8)
        let two = Array(#"{"model":"bb","instructions":"You are terse.","input":"hello"}"#.utf8)
        let first = Array(one[EndpointHandOver.promptBytes(of: one.span)])
        let second = Array(two[EndpointHandOver.promptBytes(of: two.span)])
        #expect(first.starts(with: Array(#""instructions":"You are terse.","input":"h"#.utf8)))
        #expect(second.starts(with: Array(#""instructions":"You are terse.","input":"h"#.utf8)))
        let inputFirst = Array(#"{"model":"m","input":[{"role":"user","content":"x"}],"instructions":"s"}"#.utf8)
        #expect(Array(inputFirst[EndpointHandOver.promptBytes(of: inputFirst.span)]).starts(with: Array(#""input""#.utf8)))
    }

    @Test func pickerConfigParsesStrictly() throws {
        let config = try EndpointPickerConfig.parse(Array(#"{"pool":"llama","prefix_weight":5,"saturation_queue":"8"}"#.utf8))
        #expect(config.pool == "llama" && config.scoring.prefixWeight == 5 && config.scoring.saturationQueue == 8)
        #expect(throws: ConfigError(path: "pool", problem: "is required")) { try EndpointPickerConfig.parse(Array("{}".utf8)) }
        #expect(throws: ConfigError.self) { try EndpointPickerConfig.parse(Array(#"{"pool":"p","stale_after_ms":5}"#.utf8)) }
        #expect(throws: ConfigError.self) { try EndpointPickerConfig.parse(Array(#"{"pool":"p","extra":1}"#.utf8)) }
    }

    @Test func leastRequestRotatesTies() {
        let active: [UInt64] = [3, 1, 1, 4]
        let picks = (0..<4).compactMap { LeastRequest.pick(count: 4, candidates: .first(4), tieBreak: UInt64($0)) { active[$0] } }
        #expect(Set(picks) == [1, 2])
        var some = EndpointSet.first(4)
        some.remove(1)
        some.remove(2)
        #expect(LeastRequest.pick(count: 4, candidates: some, tieBreak: 0) { active[$0] } == 0)
        #expect(LeastRequest.pick(count: 4, candidates: EndpointSet(bits: 0), tieBreak: 0) { active[$0] } == nil)
    }

    @Test func modelsOptIntoEndpointPickingWithPreciseErrors() throws {
        let config = try GatewayConfig.parse(
            Array(#"{"models":[{"id":"llama","route":"pool","endpoint_picking":true},{"id":"sql-lora","route":"pool","endpoint_picking":true,"lora_adapter":true}]}"#.utf8))
        #expect(config.endpointPickingModels == ["llama": false, "sql-lora": true])
        #expect(throws: ConfigError.self) {
            try GatewayConfig.parse(Array(#"{"models":[{"id":"x","lora_adapter":true}]}"#.utf8))
        }
        #expect(throws: ConfigError(path: "models[0].endpoint_picking", problem: "expected a boolean, got string")) {
            try GatewayConfig.parse(Array(#"{"models":[{"id":"x","endpoint_picking":"yes"}]}"#.utf8))
        }
    }
}

// Identity from jwt_authn-verified payloads: config, claims, the gateway's precedence rules, and
// per-subject quota counters.

import Synchronization
import Testing

@testable import SluiceCore

@Suite struct JWTIdentityTests {
    static func config(_ json: String) throws(ConfigError) -> GatewayConfig {
        try GatewayConfig.parse(Array(json.utf8))
    }

    /// base64url without padding, as jwt_authn forwards a payload.
    static func payload(_ json: String) -> [UInt8] { Array(Base64URL.encode(Array(json.utf8)).utf8) }

    static let jwtSection = #"""
        "jwt":{"payload_header":"X-Sluice-JWT-Payload","payload_metadata_key":"jwt_payload","team_claim":"team",
               "models_claim":"models","models":["gpt-*"],"limits":{"requests_per_minute":2},"max_subjects":8}
        """#

    // MARK: - Config

    @Test func readsTheSectionWithDefaults() throws {
        let config = try Self.config("{\(Self.jwtSection)}")
        let jwt = try #require(config.jwt)
        #expect(jwt.payloadHeader == "x-sluice-jwt-payload")
        #expect(jwt.metadataNamespace == "envoy.filters.http.jwt_authn")
        #expect(jwt.subjectClaim == "sub")
        #expect(jwt.consumerPrefix == "jwt:")
        #expect(jwt.required == false)
        #expect(jwt.limits.requestsPerMinute == 2)
        #expect(jwt.maxSubjects == 8)
        #expect(jwt.defaultModels?.matches("gpt-4o") == true)
    }

    @Test func refusesBrokenSections() {
        let cases: [(String, String)] = [
            (#"{"jwt":{"payload_metadata_key":"p"}}"#, "jwt.payload_header: is required"),
            (#"{"jwt":{"payload_header":"x-p"}}"#, "jwt.payload_metadata_key: is required"),
            (#"{"jwt":{"payload_header":"bad header","payload_metadata_key":"p"}}"#, "jwt.payload_header: must be an HTTP header name"),
            (#"{"jwt":{"payload_header":"x-p","payload_metadata_key":"p","team_claim":""}}"#, "jwt.team_claim: must not be empty"),
            (#"{"jwt":{"payload_header":"x-p","payload_metadata_key":"p","models":["a*b*"]}}"#, "jwt.models[0]: must be a model name"),
            (#"{"jwt":{"payload_header":"x-p","payload_metadata_key":"p","max_subjects":0}}"#, "jwt.max_subjects: must be between"),
            (#"{"jwt":{"payload_header":"x-p","payload_metadata_key":"p","subjects":1}}"#, "jwt.subjects: unknown field"),
        ]
        for (json, expected) in cases {
            do {
                _ = try Self.config(json)
                Issue.record("accepted \(json)")
            } catch {
                #expect(error.message.hasPrefix(expected), "\(json) -> \(error.message)")
            }
        }
    }

    // MARK: - Claims

    @Test func base64URLDecodesWithAndWithoutPadding() {
        #expect(Base64URL.decode(Array("eyJhIjoxfQ".utf8)) == Array(#"{"a":1}"#.utf8))
        #expect(Base64URL.decode(Array("eyJhIjoxfQ==".utf8)) == Array(#"{"a":1}"#.utf8))
        #expect(Base64URL.decode(Array("_-8".utf8)) == [0xFF, 0xEF])
        #expect(Base64URL.decode(Array("a".utf8)) == nil)
        #expect(Base64URL.decode(Array("ab!c".utf8)) == nil)
        #expect(Base64URL.decode(Array("ab===".utf8)) == nil)
        #expect(Base64URL.decode([]) == [])
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
        #expect(Base64URL.encode(Array(#"{"a":1}"#.utf8)) == "eyJhIjoxfQ")
    }

    @Test func claimsBecomeAConsumer() throws {
        let jwt = try #require(try Self.config("{\(Self.jwtSection)}").jwt)
        let alice = jwt.consumer(payloadHeader: Self.payload(#"{"sub":"alice","team":"research","models":["claude-*"]}"#))
        let consumer = try alice.get()
        #expect(consumer.name == "jwt:alice")
        #expect(consumer.team == "research")
        #expect(consumer.isSubject)
        #expect(consumer.mayUse(model: "claude-sonnet-4-6"))
        #expect(!consumer.mayUse(model: "gpt-4o"))
        // A space-separated claim (OAuth `scope` style), and the config's default without one.
        let bob = try jwt.consumer(payloadHeader: Self.payload(#"{"sub":"bob","models":"gpt-4o o3-*"}"#)).get()
        #expect(bob.mayUse(model: "o3-mini") && bob.mayUse(model: "gpt-4o") && !bob.mayUse(model: "gpt-4o-mini"))
        let carol = try jwt.consumer(payloadHeader: Self.payload(#"{"sub":"carol"}"#)).get()
        #expect(carol.team == nil)
        #expect(carol.mayUse(model: "gpt-4o-mini") && !carol.mayUse(model: "claude-x"))
    }

    @Test func unusableClaimsAre401WithoutEchoingValues() throws {
        let jwt = try #require(try Self.config("{\(Self.jwtSection)}").jwt)
        let cases: [[UInt8]] = [
            Self.payload(#"{"team":"x"}"#), Self.payload(#"{"sub":42}"#), Self.payload(#"{"sub":""}"#),
            Self.payload(#"{"sub":"a","team":7}"#), Self.payload(#"{"sub":"a","models":[1]}"#),
            Self.payload(#"{"sub":"a","models":{"x":1}}"#), Self.payload(#"["sub"]"#), Array("%%%".utf8), [],
            Self.payload(#"{"sub":"a","models":["x**"]}"#), Self.payload(#"{"sub":"a","sub":"b"}"#),
            Self.payload(#"{"sub":"a","team":"x","team":"y"}"#), Self.payload(#"{"sub":"a","models":"gpt-4o","models":"*"}"#),
            Self.payload(#"{"sub":"a""#), Self.payload(#"{"sub":"a"} x"#),
            Self.payload("{\"sub\":\"\(String(repeating: "s", count: 300))\"}"),
        ]
        for value in cases {
            guard case .failure(let error) = jwt.consumer(payloadHeader: value) else {
                Issue.record("accepted \(String(decoding: value, as: UTF8.self))")
                continue
            }
            #expect(error.status == 401)
            #expect(error.code == "invalid_token")
        }
    }

    // MARK: - Gateway

    @Test func aVerifiedTokenDecidesAndKeysRemainUnlessRequired() throws {
        let optional = Gateway(config: try Self.config(#"{"api_keys":[{"name":"demo","key":"sk-demo"}],\#(Self.jwtSection)}"#))
        func head(auth: String?, payload: [UInt8]?) -> RequestHead {
            RequestHead(
                method: Array("POST".utf8), path: Array("/v1/chat/completions".utf8), authorization: auth.map { Array($0.utf8) },
                verifiedJWTPayload: payload)
        }
        guard case .forward(let consumer, _) = optional.decide(head(auth: nil, payload: Self.payload(#"{"sub":"alice"}"#)))
        else {
            Issue.record("verified token not accepted")
            return
        }
        #expect(consumer.name == "jwt:alice")
        guard case .forward(let keyed, _) = optional.decide(head(auth: "Bearer sk-demo", payload: nil)) else {
            Issue.record("API key refused although the token is optional")
            return
        }
        #expect(keyed.name == "demo" && !keyed.isSubject)
        guard case .reply(let bad, .unauthorized) = optional.decide(head(auth: "Bearer sk-demo", payload: Array("!".utf8)))
        else {
            Issue.record("an unusable verified token fell back to the key")
            return
        }
        #expect(bad.status == 401)

        let required = Gateway(
            config: try Self.config(
                #"{"api_keys":[{"name":"demo","key":"sk-demo"}],"jwt":{"payload_header":"x-p","payload_metadata_key":"p","required":true}}"#
            ))
        guard case .reply(let reply, .unauthorized) = required.decide(head(auth: "Bearer sk-demo", payload: nil)) else {
            Issue.record("API key accepted although a token is required")
            return
        }
        #expect(String(decoding: reply.body, as: UTF8.self).contains("missing_token"))
    }

    @Test func subjectsAreLimitedEachOnTheirOwn() throws {
        let gateway = Gateway(config: try Self.config("{\(Self.jwtSection)}"))
        let now: Int64 = 1_750_000_000_000
        func admit(_ subject: String) -> Bool {
            let request = QuotaRequest(
                key: "jwt:\(subject)", model: "gpt-4o", estimate: QuotaEstimate(inputTokens: 1, outputTokens: 1),
                keyIsSubject: true)
            if case .admitted = gateway.quotas.admit(request, now: now) { return true }
            return false
        }
        #expect(admit("alice") && admit("alice"))
        #expect(!admit("alice"))  // 2 requests a minute, per subject
        #expect(admit("bob") && admit("bob") && !admit("bob"))
        #expect(gateway.quotas.subjectCount == 2)
        #expect(gateway.quotas.used(.key("jwt:alice"), .requestsPerMinute, now: now) == 2)
        let headers = gateway.rateLimitHeaders(
            for: Consumer(name: "jwt:carol", isSubject: true), model: nil, now: now)
        #expect(headers.requests?.remaining == 2)
        // A configured key of the same name is a different scope.
        #expect(gateway.quotas.used(.key("alice"), .requestsPerMinute, now: now) == nil)
    }

    @Test func subjectTableOverflowSharesOneSetOfCounters() {
        let table = SubjectScopeTable(limits: QuotaLimits(requestsPerMinute: 10), capacity: 4, previous: nil)
        let owned = (0..<4).map { table.counters(for: "user-\($0)") }
        #expect(Set(owned.map(ObjectIdentifier.init)).count == 4)
        #expect(table.counters(for: "user-2") === owned[2])
        let extra = table.counters(for: "user-99")
        #expect(extra === table.overflow)
        #expect(table.counters(for: "user-100") === table.overflow)
        #expect(table.claimedCount == 4)
        // A reload keeps each subject's counters (same limits).
        let next = SubjectScopeTable(limits: QuotaLimits(requestsPerMinute: 10), capacity: 8, previous: table)
        _ = owned[1].requests?.reserve(3, nowNanos: 1_000)
        #expect(next.existingCounters(for: "user-1")?.requests === owned[1].requests)
        #expect(next.existingCounters(for: "nobody") == nil)
    }

    @Test func concurrentFirstSightsOfOneSubjectAgreeOnItsCounters() async {
        let table = SubjectScopeTable(limits: QuotaLimits(requestsPerMinute: 100_000), capacity: 64, previous: nil)
        final class Seen: Sendable { let ids = Mutex<Set<ObjectIdentifier>>([]) }
        let seen = Seen()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for round in 0..<200 {
                        let counters = table.counters(for: "subject-\(round % 20)")
                        if round % 20 == 7 { seen.ids.withLock { _ = $0.insert(ObjectIdentifier(counters)) } }
                    }
                }
            }
        }
        #expect(seen.ids.withLock { $0.count } == 1)
        #expect(table.claimedCount == 20)
    }
}

// The safe wrappers of the ABI layer against the fake host: each call reaches the right
// callback with the right bytes, and edge values (empty, absent, invalid) behave.
@testable import SluiceEnvoy
import SluiceTestHost
import Testing

@Suite struct HostWrapperTests {
    let config = FakeFilterConfig()
    /// Envoy keeps its stream objects alive while the module holds their handles; so do we.
    let streams = StreamKeeper()

    final class StreamKeeper: @unchecked Sendable { var all: [FakeStream] = [] }

    func makeStream(_ headers: [(String, String)] = []) -> (FakeStream, EnvoyHTTPStream) {
        let fake = FakeStream(config: config, requestHeaders: headers)
        streams.all.append(fake)
        return (fake, EnvoyHTTPStream(fake.pointer))
    }

    /// The upstream filter's one read of the header map answers as the per-header calls would.
    @Test func aHeaderSnapshotAnswersPresenceOnlyValuesAndRepeats() {
        let (_, stream) = makeStream([("x-a", "1"), ("x-a", "2"), ("x-b", "v"), ("x-empty", ""), (":path", "/v1/chat/completions")])
        stream.withRequestHeaderSnapshot { headers in
            #expect(headers.contains("x-a") && headers.contains("x-empty") && !headers.contains("x-c"))
            #expect(headers.holds("x-b", only: "v"))
            #expect(!headers.holds("x-b", only: "w") && !headers.holds("x-b", only: "vv") && !headers.holds("x-c", only: "v"))
            #expect(!headers.holds("x-a", only: "1"))  // repeated: setting it leaves one value
            #expect(headers.holds("x-empty", only: ""))
            #expect(headers.value("x-a") == nil && headers.value("x-b") == "v" && headers.value(":path") == "/v1/chat/completions")
            #expect(!headers.contains("X-B"))  // names are lower-case
        }
        let (_, empty) = makeStream()
        empty.withRequestHeaderSnapshot { headers in
            #expect(!headers.contains("x-a") && headers.value("x-a") == nil && !headers.holds("x-a", only: ""))
        }
    }

    @Test func headersReadWriteIterate() {
        let (fake, stream) = makeStream([("x-a", "1"), ("x-a", "2"), ("x-b", "")])
        #expect(stream.header("x-a") == "1")
        #expect(stream.withHeader(named: "x-a", index: 1) { $0.map { String(decoding: $0, as: UTF8.self) } } == "2")
        #expect(stream.headerValueCount("x-a") == 2)
        #expect(stream.header("x-b") == "")
        #expect(stream.header("x-missing") == nil)
        #expect(stream.headerCount() == 3)
        stream.setHeader("x-a", "3")
        #expect(fake.requestHeaders.values(Array("x-a".utf8)).map(\.string) == ["3"])
        stream.addHeader("x-a", "4")
        #expect(stream.headerValueCount("x-a") == 2)
        stream.removeHeader("x-a")
        #expect(stream.header("x-a") == nil)
        stream.setHeader("x-empty", "")
        #expect(stream.header("x-empty") == "")  // empty is a value, not a removal
        #expect(stream.headers().map(\.name) == ["x-b", "x-empty"])
        stream.setHeader(":status", "201", in: .response)
        #expect(fake.responseHeaders[":status"] == "201")
    }

    @Test func bodyChunksAppendDrain() {
        let (fake, stream) = makeStream()
        fake.bufferedRequestBody = [StableBytes(Array("hello ".utf8)), StableBytes(Array("world".utf8))]
        #expect(stream.bodySize(.bufferedRequest) == 11)
        var chunks: [String] = []
        stream.forEachBodyChunk(.bufferedRequest) { chunks.append(String(decoding: $0, as: UTF8.self)) }
        #expect(chunks == ["hello ", "world"])
        var copy: [UInt8] = []
        stream.appendBody(of: .bufferedRequest, to: &copy)
        #expect(copy == Array("hello world".utf8))
        stream.drainBody(.bufferedRequest, 6)
        stream.appendToBody(.bufferedRequest, Array("!".utf8))
        #expect(fake.bodyBytes(fake.bufferedRequestBody) == Array("world!".utf8))
        stream.drainBody(.bufferedRequest, Int.max)
        #expect(stream.bodySize(.bufferedRequest) == 0)
        #expect(stream.bodySize(.receivedResponse) == 0)
        stream.bufferLimit = 4096
        #expect(fake.bufferLimit == 4096)
    }

    @Test func localRepliesAndStreamedResponses() {
        let (fake, stream) = makeStream()
        var headers = ModuleHeaderList()
        headers.append(name: "content-type", value: "text/plain")
        headers.append(name: "x-empty", value: "")
        stream.sendLocalReply(status: 418, headers: headers, body: Array("teapot".utf8), details: "sluice_test")
        #expect(fake.localReply?.status == 418)
        #expect(fake.localReply?.headers["x-empty"] == "")
        #expect(fake.localReply?.bodyString == "teapot")
        #expect(fake.localReply?.details == "sluice_test")

        var start = ModuleHeaderList()
        start.append(name: ":status", value: "200")
        stream.sendResponseHeaders(start, endStream: false)
        stream.sendResponseData(Array("data: 1\n\n".utf8), endStream: false)
        stream.sendResponseTrailers(ModuleHeaderList([("grpc-status", "0")]))
        #expect(fake.streamedResponseHeaders?[":status"] == "200")
        #expect(String(decoding: fake.streamedResponse, as: UTF8.self) == "data: 1\n\n")
        #expect(fake.streamedResponseEnded)
    }

    @Test func metadataAndFilterState() {
        let (fake, stream) = makeStream()
        stream.setMetadata(namespace: "sluice", key: "model", "gpt")
        stream.setMetadata(namespace: "sluice", key: "tokens", 12.0)
        stream.setMetadata(namespace: "sluice", key: "streamed", true)
        #expect(stream.metadataString(.dynamic, namespace: "sluice", key: "model") == "gpt")
        #expect(stream.metadataNumber(.dynamic, namespace: "sluice", key: "tokens") == 12)
        #expect(stream.metadataBool(.dynamic, namespace: "sluice", key: "streamed") == true)
        #expect(stream.metadataString(.dynamic, namespace: "sluice", key: "tokens") == nil)
        fake.otherMetadata[MetadataSource.route.rawValue] = ["sluice": ["backend": .string("openai")]]
        #expect(stream.metadataString(.route, namespace: "sluice", key: "backend") == "openai")
        #expect(stream.setFilterState("sluice.request", Array("x".utf8)))
        #expect(stream.filterState("sluice.request") == Array("x".utf8))
        #expect(stream.filterState("absent") == nil)
    }

    @Test func metricsByIDWithLabels() throws {
        let handle = FilterConfigHandle(config.pointer)
        let counter = try handle.defineCounter("tokens_total", labels: ["model", "type"])
        let gauge = try handle.defineGauge("in_flight")
        let histogram = try handle.defineHistogram("latency_ms")
        let (_, stream) = makeStream()
        stream.increment(counter, labels: ["gpt", "input"], by: 7)
        stream.increment(counter, labels: ["gpt", "input"], by: 3)
        stream.increment(counter, labels: ["only-one"])  // wrong label count: refused by Envoy, not fatal
        stream.add(gauge, 5)
        stream.subtract(gauge, 2)
        stream.record(histogram, 42)
        handle.increment(counter, labels: ["gpt", "output"], by: 1)
        #expect(config.value("tokens_total", labels: ["gpt", "input"]) == 10)
        #expect(config.value("tokens_total", labels: ["gpt", "output"]) == 1)
        #expect(config.value("in_flight") == 3)
        #expect(config.metrics[2].samples[[]] == [42])
        config.statsFrozen = true
        #expect(throws: MetricError.frozen) { try handle.defineCounter("late") }
    }

    @Test func genericSecretsFollowRotation() throws {
        config.secrets["openai-key"] = StableBytes("sk-1")
        let handle = FilterConfigHandle(config.pointer)
        let secret = try #require(handle.subscribeGenericSecret("openai-key"))
        #expect(handle.subscribeGenericSecret("") == nil)
        let (_, stream) = makeStream()
        #expect(stream.withGenericSecret(secret) { $0.map { String(decoding: $0, as: UTF8.self) } } == "sk-1")
        config.rotateSecret("openai-key", to: "sk-2")
        #expect(stream.withGenericSecret(secret) { $0.map { String(decoding: $0, as: UTF8.self) } } == "sk-2")
        #expect(handle.withGenericSecret(secret) { $0?.count } == 4)
    }

    @Test func routingAndUpstreamControl() {
        let (fake, stream) = makeStream()
        stream.clearRouteCache()
        stream.clearRouteClusterCache()
        #expect(fake.routeCacheClears == 1 && fake.clusterCacheClears == 1)
        #expect(stream.setUpstreamOverrideHost("127.0.0.1:8000", strict: true))
        #expect(fake.upstreamOverrideHost?.host == "127.0.0.1:8000")
        #expect(!stream.setUpstreamOverrideHost("not a host", strict: false))
        #expect(stream.clusterName == "upstream")
        #expect(stream.perRouteConfig == nil)
        fake.workerIndex = 1
        #expect(stream.workerIndex == 1)
        stream.continueDecoding()
        stream.continueEncoding()
        #expect(fake.continueDecodingCalls == 1 && fake.continueEncodingCalls == 1)
        fake.attributes[Attribute.requestID.rawValue] = "req-1"
        #expect(stream.attributeString(.requestID) == "req-1")
        #expect(stream.attributeInt(.responseCode) == nil)
        stream.resetStream(details: "sluice_reset")
        #expect(fake.resetDetails == "sluice_reset")
    }

    @Test func schedulersAndCallouts() throws {
        let (fake, stream) = makeStream()
        let scheduler = try #require(stream.makeScheduler())
        scheduler.commit(7)
        #expect(fake.schedulerCommits == [7])

        var headers = ModuleHeaderList()
        headers.append(name: ":method", value: "POST")
        headers.append(name: ":path", value: "/v1/usage")
        headers.append(name: "host", value: "sluiced")
        let id = try stream.startCallout(cluster: "sluiced", headers: headers, body: Array("{}".utf8), timeoutMilliseconds: 500).get()
        #expect(fake.callouts.first?.id == id)
        #expect(fake.callouts.first?.body == Array("{}".utf8))
        #expect(stream.startCallout(cluster: "nope", headers: headers, body: [], timeoutMilliseconds: 1) == .failure(.clusterNotFound))
        #expect(
            stream.startCallout(cluster: "sluiced", headers: ModuleHeaderList(), body: [], timeoutMilliseconds: 1)
                == .failure(.missingRequiredHeaders))
        let streamID = try stream.startStream(
            cluster: "sluiced", headers: headers, body: [], endStream: false, timeoutMilliseconds: 0
        ).get()
        #expect(stream.sendStreamData(streamID, Array("chunk".utf8), endStream: true))
        #expect(fake.streamData[streamID] == Array("chunk".utf8))
        stream.resetStream(streamID)
        #expect(fake.resetCallouts == [streamID])

        let handle = FilterConfigHandle(config.pointer)
        let configScheduler = try #require(handle.makeScheduler())
        configScheduler.commit(3)
        #expect(config.schedulerCommits == [3])
        _ = try handle.startCallout(cluster: "sluiced", headers: headers, body: [], timeoutMilliseconds: 100).get()
        #expect(config.callouts.count == 1)
    }
}

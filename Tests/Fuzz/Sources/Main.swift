// libFuzzer entry points of `sluice-fuzz`: one binary, one SluiceCore build, many targets.
//
// The target is chosen by name with `--target=<name>` (libFuzzer ignores flags that start with
// `--`) or the environment variable `SLUICE_FUZZ_TARGET`; `--list` prints the targets.
// Build and run through `Tests/Fuzz/run.sh`.

import SluiceCore

#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a name, what it covers, and the function that runs one input.
struct FuzzTarget: Sendable {
    let name: String
    let summary: String
    let run: @Sendable ([UInt8]) -> Void
}

let allTargets: [FuzzTarget] = [
    FuzzTarget(name: "json", summary: "JSONScanner and JSONParser agree; DOM round trip; scanner accessors on any range",
               run: fuzzJSON),
    FuzzTarget(name: "openai_request", summary: "RequestSummary.read, then the OpenAI request to every backend schema",
               run: fuzzOpenAIRequest),
    FuzzTarget(name: "anthropic_request", summary: "RequestSummary.read, then the Anthropic request to every backend schema",
               run: fuzzAnthropicRequest),
    FuzzTarget(name: "response", summary: "non-streamed 2xx bodies of every schema to both client APIs, usage readers",
               run: fuzzResponse),
    FuzzTarget(name: "error", summary: "error bodies of every schema to both client APIs", run: fuzzError),
    FuzzTarget(name: "rerank", summary: "rerank requests of both client shapes, and rerank answers of both backend kinds",
               run: fuzzRerank),
    FuzzTarget(name: "sse", summary: "SSEParser, chunked at fuzzer-chosen points", run: fuzzSSE),
    FuzzTarget(name: "aws_eventstream", summary: "AWSEventStreamDecoder, chunked, CRCs optionally fixed up",
               run: fuzzAWSEventStream),
    FuzzTarget(name: "stream_openai", summary: "OpenAI/Azure streams: usage filter, hub -> Anthropic stream",
               run: fuzzStreamOpenAI),
    FuzzTarget(name: "stream_anthropic", summary: "Anthropic streams to OpenAI and Anthropic clients",
               run: fuzzStreamAnthropic),
    FuzzTarget(name: "stream_gemini", summary: "Gemini/Vertex streams to OpenAI and Anthropic clients",
               run: fuzzStreamGemini),
    FuzzTarget(name: "stream_bedrock", summary: "Bedrock ConverseStream event streams to OpenAI and Anthropic clients",
               run: fuzzStreamBedrock),
    FuzzTarget(name: "jwt", summary: "verified JWT payload claims (JWTIdentityConfig.consumer, Gateway.decide)",
               run: fuzzJWT),
    FuzzTarget(name: "config", summary: "GatewayConfig.parse, UpstreamConfig.parse, BackendConfig.parse and their use",
               run: fuzzConfig),
    FuzzTarget(name: "multipart", summary: "multipart/form-data reader, model-part rewrite, images and audio usage readers",
               run: fuzzMultipart),
    FuzzTarget(name: "endpoints", summary: "x-sluice-epp hand-over decode (canonical), EndpointPickerConfig.parse, /metrics pages",
               run: fuzzEndpoints),
]

nonisolated(unsafe) var selectedTarget: FuzzTarget?

private func printError(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

private func listTargets() {
    for target in allTargets {
        print("\(target.name)\t\(target.summary)")
    }
}

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> Int32 {
    var name: String?
    if let value = getenv("SLUICE_FUZZ_TARGET") { name = String(cString: value) }
    if let args = argv.pointee {
        for index in 0..<Int(argc.pointee) {
            guard let arg = args[index] else { continue }
            let text = String(cString: arg)
            if text == "--list" {
                listTargets()
                exit(0)
            }
            if text.hasPrefix("--target=") { name = String(text.dropFirst("--target=".count)) }
        }
    }
    guard let name, let target = allTargets.first(where: { $0.name == name }) else {
        printError("sluice-fuzz: choose a target with --target=<name> or SLUICE_FUZZ_TARGET=<name>; targets:")
        for target in allTargets { printError("  \(target.name)\t\(target.summary)") }
        exit(2)
    }
    selectedTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget?.run(bytes)
    return 0
}

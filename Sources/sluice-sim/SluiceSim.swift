import ArgumentParser
import Foundation
import Hummingbird
import SluiceSimEngine

/// Serves loopback simulators of the LLM providers Sluice talks to, one listener per provider.
@main
struct SluiceSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-sim",
        abstract: "Realistic loopback simulators of OpenAI, Azure OpenAI, Anthropic, Bedrock, Gemini, Cohere and vLLM.",
        discussion: "Every provider simulator listens on its default port unless --listen moves it (a port or host:port; "
            + "0 disables it). GET /__sim/last?provider=<name> returns the last request a provider received "
            + "(secrets redacted).\n\nProvider simulators (name, default port):\n" + SimulatedProvider.helpLines
    )

    @Option(
        name: .customLong("listen"),
        help: ArgumentHelp(
            "Where a provider simulator listens: NAME=PORT or NAME=HOST:PORT, 0 disables it; repeatable.",
            valueName: "name=address"))
    var listen: [String] = []
    @Flag(help: "Print the provider simulators as a JSON object, name to default port, and exit.") var list = false
    @Option(name: .customLong("pace-ms"), help: "Milliseconds per generated token.") var paceMs = 10
    @Option(help: "JSON file with credentials and the self-hosted model name.") var config: String?
    @Option(name: .customLong("compat-model"), help: "The model the self-hosted server serves.")
    var compatModel: String?

    // The vLLM-like pool: replicas timed by a model of a vLLM engine (see VLLMReplica).
    @Option(name: .customLong("vllm-pool"), help: "vLLM-like replicas to run (0: none).") var vllmPool = 0
    @Option(name: .customLong("vllm-base-port"), help: "Port of the first replica; the others follow.")
    var vllmBasePort = 18111
    @Option(name: .customLong("vllm-ports"), help: "Comma-separated ports (or host:port) of the replicas; overrides --vllm-pool.")
    var vllmPorts: String?
    @Option(name: .customLong("vllm-model"), help: "The base model the replicas serve.")
    var vllmModel = "llama-3.1-8b-instruct"
    @Option(name: .customLong("vllm-lora-adapters"), help: "Comma-separated LoRA adapter names served on top of the model (empty: LoRA off).")
    var vllmLoRAAdapters = "sql-lora,chat-lora,code-lora,summarize-lora"
    @Option(name: .customLong("vllm-max-num-seqs"), help: "Running sequences per replica.") var vllmMaxNumSeqs = 8
    @Option(name: .customLong("vllm-max-num-batched-tokens"), help: "Tokens per engine step (chunked prefill).")
    var vllmMaxNumBatchedTokens = 2048
    @Option(name: .customLong("vllm-num-blocks"), help: "KV-cache blocks of 64 tokens (256 prompt bytes) per replica.")
    var vllmNumBlocks = 256
    @Option(name: .customLong("vllm-max-model-len"), help: "Prompt + output tokens a request may take.")
    var vllmMaxModelLen = 8192
    @Option(name: .customLong("vllm-prefill-us-per-token"), help: "Simulated microseconds per uncached prompt token.")
    var vllmPrefillMicros = 25
    @Option(name: .customLong("vllm-step-us"), help: "Simulated microseconds of one engine step (forward pass).")
    var vllmStepMicros = 4000
    @Option(name: .customLong("vllm-decode-us-per-seq"), help: "Microseconds added to a step per sequence in the batch.")
    var vllmDecodeMicros = 400
    @Option(name: .customLong("vllm-max-loras"), help: "LoRA adapters loaded at once per replica.") var vllmMaxLoRAs = 2
    @Option(name: .customLong("vllm-lora-load-us"), help: "Microseconds a step stalls to load an adapter.")
    var vllmLoRALoadMicros = 20000
    @Flag(name: .customLong("vllm-legacy-cache-metric"), help: "Also export vllm:gpu_cache_usage_perc (vLLM's older name).")
    var vllmLegacyCacheMetric = false

    /// The pool's settings from the options; throws on an out-of-range value.
    func vllmSettings() throws -> VLLMPoolSettings {
        var settings = VLLMPoolSettings()
        settings.model = vllmModel
        settings.adapters = vllmLoRAAdapters.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        settings.engine.maxNumSeqs = vllmMaxNumSeqs
        settings.engine.maxNumBatchedTokens = vllmMaxNumBatchedTokens
        settings.engine.numBlocks = vllmNumBlocks
        settings.engine.maxModelLen = vllmMaxModelLen
        settings.engine.prefillMicrosPerToken = vllmPrefillMicros
        settings.engine.stepMicros = vllmStepMicros
        settings.engine.decodeMicrosPerSequence = vllmDecodeMicros
        settings.engine.maxLoRAs = settings.adapters.isEmpty ? 0 : vllmMaxLoRAs
        settings.engine.loRALoadMicros = vllmLoRALoadMicros
        settings.legacyCacheMetric = vllmLegacyCacheMetric
        if let problem = settings.engine.problem() { throw ValidationError("--vllm-*: \(problem)") }
        if !settings.adapters.isEmpty, settings.engine.maxLoRAs < 1 {
            throw ValidationError("--vllm-max-loras must be at least 1 when adapters are served")
        }
        if settings.adapters.contains(vllmModel) { throw ValidationError("an adapter may not be named like the model") }
        return settings
    }

    /// Where the replicas listen.
    func vllmAddresses() throws -> [(String, Int)] {
        if let vllmPorts {
            return try vllmPorts.split(separator: ",").map { text in
                guard let address = Self.parseAddress(String(text)), address.1 > 0 else {
                    throw ValidationError("bad --vllm-ports entry '\(text)'")
                }
                return address
            }
        }
        guard (0...64).contains(vllmPool) else { throw ValidationError("--vllm-pool must be 0...64") }
        guard vllmPool == 0 || (1...(65535 - vllmPool + 1)).contains(vllmBasePort) else {
            throw ValidationError("--vllm-base-port out of range")
        }
        return (0..<vllmPool).map { ("127.0.0.1", vllmBasePort + $0) }
    }

    /// Each provider's address: its default port, or where `--listen` moves it.
    func providerAddresses() throws -> [(SimulatedProvider, String)] {
        var moved: [String: String] = [:]
        for entry in listen {
            guard let equals = entry.firstIndex(of: "="), let provider = SimulatedProvider.named(String(entry[..<equals]))
            else {
                let names = SimulatedProvider.all.map(\.name).joined(separator: ", ")
                throw ValidationError("bad --listen '\(entry)': NAME=PORT or NAME=HOST:PORT, with NAME one of \(names)")
            }
            guard moved.updateValue(String(entry[entry.index(after: equals)...]), forKey: provider.name) == nil else {
                throw ValidationError("--listen names \(provider.name) twice")
            }
        }
        return SimulatedProvider.all.map { ($0, moved[$0.name] ?? String($0.defaultPort)) }
    }

    func run() async throws {
        if list {
            print(SimulatedProvider.listing)
            return
        }
        var credentials = try SimCredentials.load(path: config)
        if let compatModel { credentials.compatModel = compatModel }
        let state = SimState()
        let addresses = try providerAddresses()
        var listeners: [(host: String, port: Int, responder: CallbackResponder<BasicRequestContext>, name: String)] = []
        for (provider, address) in addresses {
            guard let (host, port) = Self.parseAddress(address) else {
                throw ValidationError("bad listener address '\(address)' for \(provider.name)")
            }
            if port == 0 { continue }
            let simulator = provider.make(credentials)
            guard simulator.name == provider.name else {
                throw ValidationError("the \(provider.name) entry of SimulatedProvider.all makes a simulator named \(simulator.name)")
            }
            let pace = min(max(0, paceMs), 10_000)
            let listener = SimListener(simulator: simulator, state: state, paceMilliseconds: pace)
            let responder = CallbackResponder<BasicRequestContext> { request, _ in
                await listener.respond(to: request)
            }
            listeners.append((host, port, responder, simulator.name))
        }
        func application(
            _ listener: (host: String, port: Int, responder: CallbackResponder<BasicRequestContext>, name: String),
            services: [Application<CallbackResponder<BasicRequestContext>>] = []
        ) -> Application<CallbackResponder<BasicRequestContext>> {
            logLine("sluice-sim: \(listener.name) on http://\(listener.host):\(listener.port)")
            return Application(
                responder: listener.responder,
                configuration: .init(
                    address: .hostname(listener.host, port: listener.port), serverName: "sluice-sim-\(listener.name)"),
                services: services
            )
        }
        let settings = try vllmSettings()
        var replicas: [VLLMReplica] = []
        for (index, (host, port)) in try vllmAddresses().enumerated() {
            let replica = VLLMReplica(index: index, settings: settings)
            replicas.append(replica)
            let responder = CallbackResponder<BasicRequestContext> { request, _ in
                await replica.respond(to: request)
            }
            listeners.append((host, port, responder, "vllm-\(index)"))
        }
        for replica in replicas {
            Task { await replica.run() }
        }
        guard let head = listeners.first else {
            throw ValidationError("every listener is disabled")
        }
        // The first application runs the others as its services, so one signal handler stops all.
        let first = application(head, services: listeners.dropFirst().map { application($0) })
        try await first.runService()
    }

    /// Parses `port` or `host:port`.
    static func parseAddress(_ text: String) -> (String, Int)? {
        let host: String
        let portText: Substring
        if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        } else {
            host = "127.0.0.1"
            portText = Substring(text)
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else { return nil }
        return (host, port)
    }
}

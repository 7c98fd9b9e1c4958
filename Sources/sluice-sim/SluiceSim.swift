import ArgumentParser
import Hummingbird

/// Serves loopback simulators of the LLM providers Sluice talks to, one listener per provider.
@main
struct SluiceSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-sim",
        abstract: "Realistic loopback simulators of OpenAI, Azure OpenAI, Anthropic, Bedrock, Gemini and vLLM.",
        discussion: "Each listener takes a port or host:port; 0 disables it. GET /__sim/last?provider=<name> "
            + "returns the last request a provider received (secrets redacted)."
    )

    @Option(help: "OpenAI listener.") var openai = "18101"
    @Option(help: "Azure OpenAI listener.") var azure = "18102"
    @Option(help: "Anthropic listener.") var anthropic = "18103"
    @Option(help: "Bedrock Converse listener.") var bedrock = "18104"
    @Option(help: "Gemini / Vertex listener.") var gemini = "18105"
    @Option(help: "OpenAI-compatible self-hosted (vLLM-like) listener.") var compat = "18106"
    @Option(name: .customLong("pace-ms"), help: "Milliseconds per generated token.") var paceMs = 10
    @Option(help: "JSON file with credentials and the self-hosted model name.") var config: String?
    @Option(name: .customLong("compat-model"), help: "The model the self-hosted server serves.")
    var compatModel: String?

    func run() async throws {
        var credentials = try SimCredentials.load(path: config)
        if let compatModel { credentials.compatModel = compatModel }
        let state = SimState()
        let simulators: [(String, any ProviderSimulator)] = [
            (openai, OpenAISimulator(flavor: .openAI, credentials: credentials)),
            (azure, OpenAISimulator(flavor: .azure, credentials: credentials)),
            (anthropic, AnthropicSimulator(credentials: credentials)),
            (bedrock, BedrockSimulator(credentials: credentials)),
            (gemini, GeminiSimulator(credentials: credentials)),
            (compat, OpenAISimulator(flavor: .compat, credentials: credentials)),
        ]
        var listeners: [(host: String, port: Int, responder: CallbackResponder<BasicRequestContext>, name: String)] = []
        for (address, simulator) in simulators {
            guard let (host, port) = Self.parseAddress(address) else {
                throw ValidationError("bad listener address '\(address)' for \(simulator.name)")
            }
            if port == 0 { continue }
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

/// One provider simulator `sluice-sim` can serve on a listener of its own.
///
/// `name` is the listener's name everywhere: `--listen <name>=<port>`, `--list`, the
/// `provider` of `/__sim/last`, and the simulator's own `ProviderSimulator.name`. The test
/// harnesses and benchmarks read this table through `sluice-sim --list` rather than keeping
/// copies of it.
struct SimulatedProvider: Sendable {
    let name: String
    /// The port the listener takes when no `--listen` moves it (the demo config,
    /// envoy-module/sluice.yaml, addresses the simulators there).
    let defaultPort: Int
    /// What it simulates, for `--help`.
    let help: String
    let make: @Sendable (SimCredentials) -> any ProviderSimulator

    /// Every provider simulator, in listing order: adding one is one entry here.
    static let all: [SimulatedProvider] = [
        SimulatedProvider(name: "openai", defaultPort: 18101, help: "OpenAI") {
            OpenAISimulator(flavor: .openAI, credentials: $0)
        },
        SimulatedProvider(name: "azure", defaultPort: 18102, help: "Azure OpenAI") {
            OpenAISimulator(flavor: .azure, credentials: $0)
        },
        SimulatedProvider(name: "anthropic", defaultPort: 18103, help: "Anthropic") { AnthropicSimulator(credentials: $0) },
        SimulatedProvider(name: "bedrock", defaultPort: 18104, help: "Bedrock (Converse, and Claude on InvokeModel)") {
            BedrockSimulator(credentials: $0)
        },
        SimulatedProvider(name: "gemini", defaultPort: 18105, help: "Gemini and Vertex AI (Gemini, and Claude)") {
            GeminiSimulator(credentials: $0)
        },
        SimulatedProvider(name: "compat", defaultPort: 18106, help: "an OpenAI-compatible self-hosted server") {
            OpenAISimulator(flavor: .compat, credentials: $0)
        },
        SimulatedProvider(name: "cohere", defaultPort: 18107, help: "Cohere (rerank)") { CohereSimulator(credentials: $0) },
    ]

    /// The provider named `name`, if there is one.
    static func named(_ name: String) -> SimulatedProvider? { all.first { $0.name == name } }

    /// `--list`'s answer: a JSON object of name → default port, in table order.
    static var listing: String {
        "{" + all.map { "\"\($0.name)\": \($0.defaultPort)" }.joined(separator: ", ") + "}"
    }

    /// The table for `--help`, one provider a line.
    static var helpLines: String {
        let width = all.map(\.name.count).max() ?? 0
        return all.map { provider in
            provider.name + String(repeating: " ", count: width - provider.name.count + 2) + "\(provider.defaultPort)  \(provider.help)"
        }.joined(separator: "\n")
    }
}

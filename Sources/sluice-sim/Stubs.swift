struct BedrockSimulator: ProviderSimulator {
    let credentials: SimCredentials
    var name: String { "bedrock" }
    func authenticate(_ request: SimRequest) -> SimResponse? { nil }
    func handle(_ request: SimRequest, context: SimContext) -> (SimResponse, SimUsage?) { (.json(404, []), nil) }
}

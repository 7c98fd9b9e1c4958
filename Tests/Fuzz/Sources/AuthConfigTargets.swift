// `jwt`: the verified JWT payload header (base64url JSON claims) and the request-head decision
// around it. `config`: the filters' configs, and a request through what they configure.
//
// jwt flags: bit 0 the body is the header value as is (else the body is the payload JSON, encoded),
//   bit 1 a config without team/models claims, bit 3 the body is an Authorization header instead,
//   bit 4 the body is a request head `METHOD PATH\nAUTHORIZATION\nX-API-KEY`.
// config flags: bits 0-1 which reader (0 gateway, 1 upstream, 2 one backend, 3 gateway).

import SluiceCore

private func makeGateway(_ json: String) -> Gateway {
    do {
        return Gateway(config: try GatewayConfig.parse(Array(json.utf8)))
    } catch {
        fatalError("fuzz gateway config: \(error)")
    }
}

private let jwtGateway = makeGateway(#"""
    {"api_keys":[{"name":"k","key":"sk-fuzz","models":["gpt-*"]}],
     "models":[{"id":"gpt-4o-mini","route":"openai"},{"id":"claude-x","route":"anthropic"}],
     "routes":[{"name":"anthropic","model_prefix":"claude-"}],
     "jwt":{"payload_header":"x-sluice-jwt-payload","payload_metadata_key":"jwt_payload","team_claim":"team",
            "models_claim":"models","models":["gpt-*"],"limits":{"requests_per_minute":2},"max_subjects":8}}
    """#)

private let plainJWTGateway = makeGateway(#"""
    {"models":[{"id":"gpt-4o-mini","route":"openai"}],
     "jwt":{"payload_header":"x-p","payload_metadata_key":"p","subject_claim":"email","consumer_prefix":""}}
    """#)

private let chatBody = Array(#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#.utf8)
private let post = Array("POST".utf8)
private let chatPath = Array("/v1/chat/completions".utf8)

func fuzzJWT(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    let gateway = input.flag(1) ? plainJWTGateway : jwtGateway
    let head: RequestHead
    if input.flag(4) {
        // A whole request head from the client: `METHOD PATH\nAUTHORIZATION\nX-API-KEY`.
        let lines = input.body.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false).map(Array.init)
        let requestLine = lines[0].split(separator: 0x20, maxSplits: 1, omittingEmptySubsequences: false).map(Array.init)
        head = RequestHead(
            method: requestLine[0], path: requestLine.count > 1 ? requestLine[1] : [],
            authorization: lines.count > 1 ? lines[1] : nil, apiKey: lines.count > 2 ? lines[2] : nil)
        let endpoint = Endpoint.classify(method: head.method, path: head.path)
        switch gateway.decide(head) {
        case .forward(_, let forwarded):
            require(forwarded == endpoint, "decide forwarded \(forwarded) for \(endpoint)")
        case .reply(let reply, _), .listModels(let reply, _):
            requireValidJSON(reply.body, "gateway reply")
        }
        return
    } else if input.flag(3) {
        head = RequestHead(method: post, path: chatPath, authorization: input.body)
    } else {
        let header = input.flag(0) ? input.body : Array(Base64URL.encode(input.body).utf8)
        if !input.flag(0) {
            require(Base64URL.decode(header) == input.body, "base64url round trip")
        } else if let decoded = Base64URL.decode(header) {
            require(Base64URL.decode(Array(Base64URL.encode(decoded).utf8)) == decoded, "base64url re-encode")
        }
        if let jwt = gateway.config.jwt, case .success(let consumer) = jwt.consumer(payloadHeader: header) {
            require(consumer.name.utf8.starts(with: jwt.consumerPrefix.utf8) && consumer.name.utf8.count > jwt.consumerPrefix.utf8.count,
                    "JWT consumer name \(consumer.name)")
            require(consumer.isSubject, "a JWT consumer is a subject")
        }
        head = RequestHead(method: post, path: chatPath, verifiedJWTPayload: header)
    }
    switch gateway.decide(head) {
    case .forward(let consumer, let endpoint):
        _ = gateway.route(body: chatBody, endpoint: endpoint, consumer: consumer) { _ in nil }
        _ = gateway.rateLimitHeaders(for: consumer, model: "gpt-4o-mini", now: 0)
    case .reply(let reply, _):
        require(reply.status == 401, "an identity failure answers \(reply.status)")
        requireValidJSON(reply.body, "identity error body")
    case .listModels:
        require(false, "listModels for a POST")
    }
}

func fuzzConfig(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    switch input.flags & 3 {
    case 1:
        guard let config = try? UpstreamConfig.parse(input.body) else { return }
        require(!config.backends.isEmpty, "an upstream config without backends")
        for backend in config.backends { useBackend(backend) }
        _ = config.backend(named: config.backends[0].name)
    case 2:
        guard let backend = try? BackendConfig.parse(input.body) else { return }
        useBackend(backend)
    default:
        guard let config = try? GatewayConfig.parse(input.body) else { return }
        let gateway = Gateway(config: config)
        let head = RequestHead(method: post, path: chatPath, authorization: Array("Bearer sk-fuzz".utf8))
        if case .forward(let consumer, let endpoint) = gateway.decide(head) {
            _ = gateway.route(body: chatBody, endpoint: endpoint, consumer: consumer) { _ in "a" }
        }
        _ = gateway.decide(RequestHead(method: Array("GET".utf8), path: Array("/v1/models".utf8), apiKey: Array("sk-fuzz".utf8)))
    }
}

/// A chat request through a configured backend: plan, translation, signing.
private func useBackend(_ backend: BackendConfig) {
    for model in Array(backend.modelOverrides.keys.sorted().prefix(2)) + ["gpt-4o-mini"] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("model")
        writer.string(model)
        writer.key("messages")
        writer.raw(#"[{"role":"user","content":"hi"}]"#.utf8)
        writer.endObject()
        let body = writer.bytes
        var exchange = UpstreamExchange(
            backend: backend, clientAPI: .openAI, endpoint: .chatCompletions, requestModel: model, stream: false,
            includeUsage: false, created: 0, requestID: "fuzz")
        guard let plan = try? exchange.requestPlan() else { continue }
        require(plan.path.hasPrefix("/") || backend.pathPrefix.isEmpty == false, "path \(plan.path)")
        guard let translated = try? exchange.translateRequest(body) else { continue }
        requireValidJSON(translated, "\(backend.schema.rawValue) request")
        if case .signature(let signing) = plan.credential {
            let request = SignableRequest(
                method: plan.method ?? "POST", host: backend.host ?? "bedrock-runtime.us-east-1.amazonaws.com", path: plan.path,
                body: translated)
            let credentials: [[UInt8]?] = [Array("AKID".utf8), Array("secret".utf8), Array("token".utf8)]
            let headers = (try? exchange.signatureHeaders(
                signing, request: request, credentials: credentials, unixSeconds: 1_700_000_000)) ?? []
            require(!headers.isEmpty, "no signature headers for \(backend.name)")
            for (name, value) in headers {
                require(!name.isEmpty && !(name + value).utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }),
                        "SigV4 header \(name): \(value) has control bytes")
            }
        }
    }
}

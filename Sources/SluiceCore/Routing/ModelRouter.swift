// Model-based routing: picks the route (an Envoy route, selected by the `x-sluice-route` header
// the filter sets) for a request from its model name and headers. Compiled once per config into
// a dictionary for exact names and an ordered rule list; first match wins.

/// One routing rule of the config.
public struct RouteRule: Sendable, Equatable {
    /// The route's name: the value of the `x-sluice-route` request header Envoy's routes match on.
    public var name: String
    /// Exact model names this rule takes.
    public var models: [String]
    /// A model-name prefix this rule takes (nil = none; "" = any model).
    public var modelPrefix: String?
    /// Request headers that must all be present with exactly these values (names lower-case).
    public var headers: [(name: String, value: String)]

    public init(name: String, models: [String] = [], modelPrefix: String? = nil, headers: [(name: String, value: String)] = []) {
        self.name = name
        self.models = models
        self.modelPrefix = modelPrefix
        self.headers = headers
    }

    public static func == (lhs: RouteRule, rhs: RouteRule) -> Bool {
        lhs.name == rhs.name && lhs.models == rhs.models && lhs.modelPrefix == rhs.modelPrefix
            && lhs.headers.elementsEqual(rhs.headers, by: { $0.name == $1.name && $0.value == $1.value })
    }

    func matches(model: String, header: (String) -> String?) -> Bool {
        let modelMatches = models.contains(model) || (modelPrefix.map { model.hasPrefix($0) } ?? false)
        guard modelMatches else { return false }
        return headers.allSatisfy { header($0.name) == $0.value }
    }
}

public struct ModelRouter: Sendable {
    /// Rules without header conditions that name exact models: the common case, O(1).
    private let exact: [String: String]
    /// Every other rule, in config order.
    private let ordered: [(index: Int, rule: RouteRule)]
    private let exactIndex: [String: Int]

    public init(_ rules: [RouteRule]) {
        var exact: [String: String] = [:]
        var exactIndex: [String: Int] = [:]
        var ordered: [(index: Int, rule: RouteRule)] = []
        for (index, rule) in rules.enumerated() {
            if rule.headers.isEmpty && rule.modelPrefix == nil {
                for model in rule.models where exact[model] == nil {
                    exact[model] = rule.name
                    exactIndex[model] = index
                }
            } else {
                ordered.append((index, rule))
            }
        }
        self.exact = exact
        self.exactIndex = exactIndex
        self.ordered = ordered
    }

    /// The route for `model`, or nil when no rule takes it. `header` reads a request header by
    /// lower-case name (only called for rules with header conditions).
    public func route(model: String, header: (String) -> String?) -> String? {
        let exactHit = exact[model]
        let exactPosition = exactIndex[model] ?? Int.max
        // A conditional rule listed before the exact rule still wins: config order decides.
        for (index, rule) in ordered where index < exactPosition {
            if rule.matches(model: model, header: header) { return rule.name }
        }
        return exactHit
    }

    /// Whether any rule has header conditions (the filter then keeps the headers it needs).
    public var headerNames: Set<String> {
        Set(ordered.flatMap { $0.rule.headers.map(\.name) })
    }
}

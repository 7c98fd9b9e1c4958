// Fake Envoy for the load-balancing-policy extension: a priority set of hosts with health and
// active-request counts, a request context with downstream headers and a retry's hosts to
// avoid, the policy's counters, and a driver calling the module's LB hooks as Envoy 1.40 does.
// Index spaces as in Envoy: "healthy" callbacks index the healthy hosts of a priority (in host
// order), the others index all hosts.
public import CEnvoyABI

public final class FakeLoadBalancer: @unchecked Sendable {
    // @unchecked: driven from one test thread (the worker).
    public struct Host {
        public var address: String
        public var healthy: Bool
        public var activeRequests: UInt64
        public init(_ address: String, healthy: Bool = true, activeRequests: UInt64 = 0) {
            self.address = address
            self.healthy = healthy
            self.activeRequests = activeRequests
        }
    }

    /// Hosts per priority.
    public var priorities: [[Host]]
    public var counters: [String: UInt64] = [:]
    var counterNames: [String] = []
    /// Stable copies of the addresses handed out during one hook.
    var handedOut: [StableBytes] = []

    public private(set) var lbPointer: UnsafeRawPointer?

    /// `lb_config_new(name, config)` then, if accepted, `lb_new` (one worker).
    public init(name: String = "sluice_endpoint_picker", config: String, hosts: [[Host]]) {
        priorities = hosts
        _ = envoy_dynamic_module_on_program_init()
        let made = withEnvoyBuffer(Array(name.utf8)) { nameBuffer in
            withEnvoyBuffer(Array(config.utf8)) { envoy_dynamic_module_on_lb_config_new(pointer, nameBuffer, $0) }
        }
        configPointerStorage = made
        if let made { lbPointer = envoy_dynamic_module_on_lb_new(made, pointer) }
    }

    private var configPointerStorage: UnsafeRawPointer?
    public var loaded: Bool { configPointerStorage != nil }

    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> FakeLoadBalancer? {
        guard let pointer else { return nil }
        return Unmanaged<FakeLoadBalancer>.fromOpaque(pointer).takeUnretainedValue()
    }

    func healthyHosts(_ priority: UInt32) -> [Host] {
        guard Int(priority) < priorities.count else { return [] }
        return priorities[Int(priority)].filter(\.healthy)
    }

    func hosts(_ priority: UInt32) -> [Host] {
        Int(priority) < priorities.count ? priorities[Int(priority)] : []
    }

    func hand(_ text: String) -> envoy_dynamic_module_type_envoy_buffer {
        let stable = StableBytes(Array(text.utf8))
        handedOut.append(stable)
        return envoyBuffer(stable)
    }

    /// `choose_host` with `context` (nil: Envoy passes no context). Returns the chosen host's
    /// address (resolved in the healthy space of the returned priority), or nil for no host.
    public func choose(_ context: FakeLBContext? = FakeLBContext()) -> String? {
        guard let lbPointer else { return nil }
        var priority: UInt32 = 0
        var index: UInt32 = 0
        let chosen = envoy_dynamic_module_on_lb_choose_host(pointer, lbPointer, context?.pointer, &priority, &index)
        handedOut.removeAll()
        guard chosen else { return nil }
        let healthy = healthyHosts(priority)
        // Envoy logs and routes nowhere on an out-of-range index; the test sees it as a failure.
        guard Int(index) < healthy.count else { return "invalid index \(index)" }
        return healthy[Int(index)].address
    }

    public func membershipUpdate(added: Int, removed: Int) {
        guard let lbPointer else { return }
        envoy_dynamic_module_on_lb_on_host_membership_update(pointer, lbPointer, added, removed)
    }

    public func destroy() {
        if let lbPointer { envoy_dynamic_module_on_lb_destroy(lbPointer) }
        lbPointer = nil
        if let configPointerStorage { envoy_dynamic_module_on_lb_config_destroy(configPointerStorage) }
        configPointerStorage = nil
    }
}

/// Envoy's LoadBalancerContext for one host selection.
public final class FakeLBContext: @unchecked Sendable {
    public var headers: [(String, String)]
    /// Addresses the retry's host predicate rejects (`previous_hosts`).
    public var avoid: Set<String>
    public var retryCount: UInt32
    var handedOut: [StableBytes] = []

    public init(headers: [(String, String)] = [], avoid: Set<String> = [], retryCount: UInt32 = 0) {
        self.headers = headers
        self.avoid = avoid
        self.retryCount = retryCount
    }

    public var pointer: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ pointer: UnsafeMutableRawPointer?) -> FakeLBContext? {
        guard let pointer else { return nil }
        return Unmanaged<FakeLBContext>.fromOpaque(pointer).takeUnretainedValue()
    }
}

private func writeAddress(_ lb: FakeLoadBalancer, _ address: String?, _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?) -> Bool {
    guard let result else { return false }
    guard let address else {
        result.pointee = envoy_dynamic_module_type_envoy_buffer(ptr: nil, length: 0)
        return false
    }
    result.pointee = lb.hand(address)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_hosts_count(_ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ priority: UInt32) -> Int {
    FakeLoadBalancer.from(lb_envoy_ptr)?.hosts(priority).count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_healthy_hosts_count(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ priority: UInt32
) -> Int {
    FakeLoadBalancer.from(lb_envoy_ptr)?.healthyHosts(priority).count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_priority_set_size(_ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?) -> Int {
    FakeLoadBalancer.from(lb_envoy_ptr)?.priorities.count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_healthy_host_address(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ priority: UInt32, _ index: Int,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let lb = FakeLoadBalancer.from(lb_envoy_ptr) else { return false }
    let healthy = lb.healthyHosts(priority)
    return writeAddress(lb, index >= 0 && index < healthy.count ? healthy[index].address : nil, result)
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_host_address(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ priority: UInt32, _ index: Int,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let lb = FakeLoadBalancer.from(lb_envoy_ptr) else { return false }
    let hosts = lb.hosts(priority)
    return writeAddress(lb, index >= 0 && index < hosts.count ? hosts[index].address : nil, result)
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_host_stat(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ priority: UInt32, _ index: Int,
    _ stat: envoy_dynamic_module_type_host_stat
) -> UInt64 {
    guard let lb = FakeLoadBalancer.from(lb_envoy_ptr), stat == envoy_dynamic_module_type_host_stat_RqActive else { return 0 }
    let hosts = lb.hosts(priority)
    return index >= 0 && index < hosts.count ? hosts[index].activeRequests : 0
}

@c @implementation
public func envoy_dynamic_module_callback_lb_get_cluster_name(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) {
    guard let lb = FakeLoadBalancer.from(lb_envoy_ptr) else { return }
    _ = writeAddress(lb, "fake_pool", result)
}

@c @implementation
public func envoy_dynamic_module_callback_lb_context_get_downstream_header(
    _ context_envoy_ptr: envoy_dynamic_module_type_lb_context_envoy_ptr?, _ key: envoy_dynamic_module_type_module_buffer,
    _ result_buffer: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?, _ index: Int,
    _ optional_size: UnsafeMutablePointer<Int>?
) -> Bool {
    guard let context = FakeLBContext.from(context_envoy_ptr), let result_buffer else { return false }
    let name = string(key).lowercased()
    let values = context.headers.filter { $0.0.lowercased() == name }.map(\.1)
    optional_size?.pointee = values.count
    guard index >= 0, index < values.count else {
        result_buffer.pointee = envoy_dynamic_module_type_envoy_buffer(ptr: nil, length: 0)
        return false
    }
    let stable = StableBytes(Array(values[index].utf8))
    context.handedOut.append(stable)
    result_buffer.pointee = envoyBuffer(stable)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_lb_context_get_host_selection_retry_count(
    _ context_envoy_ptr: envoy_dynamic_module_type_lb_context_envoy_ptr?
) -> UInt32 {
    FakeLBContext.from(context_envoy_ptr)?.retryCount ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_lb_context_should_select_another_host(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?, _ context_envoy_ptr: envoy_dynamic_module_type_lb_context_envoy_ptr?,
    _ priority: UInt32, _ index: Int
) -> Bool {
    guard let lb = FakeLoadBalancer.from(lb_envoy_ptr), let context = FakeLBContext.from(context_envoy_ptr) else { return false }
    let hosts = lb.hosts(priority)
    guard index >= 0, index < hosts.count else { return false }
    return context.avoid.contains(hosts[index].address)
}

@c @implementation
public func envoy_dynamic_module_callback_lb_context_get_override_host(
    _ context_envoy_ptr: envoy_dynamic_module_type_lb_context_envoy_ptr?,
    _ address: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?, _ strict: UnsafeMutablePointer<Bool>?
) -> Bool {
    false
}

@c @implementation
public func envoy_dynamic_module_callback_lb_config_define_counter(
    _ lb_config_envoy_ptr: envoy_dynamic_module_type_lb_config_envoy_ptr?, _ name: envoy_dynamic_module_type_module_buffer,
    _ label_names: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_names_length: Int,
    _ counter_id_ptr: UnsafeMutablePointer<Int>?
) -> envoy_dynamic_module_type_metrics_result {
    guard let lb = FakeLoadBalancer.from(lb_config_envoy_ptr) else { return envoy_dynamic_module_type_metrics_result_MetricNotFound }
    let text = string(name)
    lb.counterNames.append(text)
    lb.counters[text] = 0
    counter_id_ptr?.pointee = lb.counterNames.count - 1
    return envoy_dynamic_module_type_metrics_result_Success
}

@c @implementation
public func envoy_dynamic_module_callback_lb_config_increment_counter(
    _ lb_config_envoy_ptr: envoy_dynamic_module_type_lb_config_envoy_ptr?, _ id: Int,
    _ label_values: UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, _ label_values_length: Int, _ value: UInt64
) -> envoy_dynamic_module_type_metrics_result {
    guard let lb = FakeLoadBalancer.from(lb_config_envoy_ptr), id >= 0, id < lb.counterNames.count else {
        return envoy_dynamic_module_type_metrics_result_MetricNotFound
    }
    lb.counters[lb.counterNames[id], default: 0] += value
    return envoy_dynamic_module_type_metrics_result_Success
}

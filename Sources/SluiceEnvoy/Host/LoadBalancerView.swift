// Safe views of Envoy's load-balancer objects for one `choose_host` (or membership) hook: the
// per-worker load balancer (`lb_envoy_ptr`: host sets, health, per-host stats) and the request
// context (`lb_context_envoy_ptr`: downstream headers, retry state). Both pointers are valid only
// during the hook; the view is not kept past it.
//
// Index spaces (Envoy 1.40, load_balancing_policies/dynamic_modules/abi_impl.cc): "healthy"
// callbacks index `healthyHosts()` of a priority; `get_host_address`, `get_host_stat` and
// `should_select_another_host` index `hosts()`, all of them. `choose_host` answers in the
// healthy space.
internal import CEnvoyABI
internal import SluiceCore

/// What the request's hand-over header said.
enum HandOverRead {
    case absent
    case malformed
    case request(EndpointRequest)
}

struct LoadBalancerView {
    let lb: UnsafeMutableRawPointer
    let context: UnsafeMutableRawPointer?

    var prioritySetSize: Int { envoy_dynamic_module_callback_lb_get_priority_set_size(lb) }

    func hostCount(priority: UInt32) -> Int { envoy_dynamic_module_callback_lb_get_hosts_count(lb, priority) }

    func healthyCount(priority: UInt32) -> Int { envoy_dynamic_module_callback_lb_get_healthy_hosts_count(lb, priority) }

    /// Whether healthy host `healthy` is host `host` (both of `priority`), by address.
    func isSame(priority: UInt32, healthy: Int, host: Int) -> Bool {
        var healthyAddress = envoy_dynamic_module_type_envoy_buffer.empty
        var hostAddress = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_lb_get_healthy_host_address(lb, priority, healthy, &healthyAddress),
            envoy_dynamic_module_callback_lb_get_host_address(lb, priority, host, &hostAddress)
        else { return false }
        return healthyAddress.rawBytes.elementsEqual(hostAddress.rawBytes)
    }

    /// Whether host `host` of `priority` has address `address`.
    func hostAddress(priority: UInt32, host: Int, equals address: [UInt8]) -> Bool {
        var hostAddress = envoy_dynamic_module_type_envoy_buffer.empty
        guard envoy_dynamic_module_callback_lb_get_host_address(lb, priority, host, &hostAddress) else { return false }
        return hostAddress.rawBytes.elementsEqual(address)
    }

    /// Requests in flight to host `host` (all-hosts index), per process (Envoy's `rq_active`).
    func activeRequests(priority: UInt32, host: Int) -> UInt64 {
        envoy_dynamic_module_callback_lb_get_host_stat(lb, priority, host, envoy_dynamic_module_type_host_stat_RqActive)
    }

    var hasContext: Bool { context != nil }

    /// The retry logic asks to avoid host `host` (all-hosts index), e.g. `previous_hosts`.
    func shouldAvoid(priority: UInt32, host: Int) -> Bool {
        guard let context else { return false }
        return envoy_dynamic_module_callback_lb_context_should_select_another_host(lb, context, priority, host)
    }

    /// The `x-sluice-epp` hand-over, decoded in place from Envoy's header bytes.
    func handOver() -> HandOverRead {
        guard let (value, count) = downstreamHeader(EndpointHandOver.headerName) else { return .absent }
        // Two copies of the header: a client's and the gateway's would be ambiguous; trust neither.
        guard count == 1 else { return .malformed }
        guard let request = EndpointHandOver.decode(value.bindMemory(to: UInt8.self).span) else { return .malformed }
        return .request(request)
    }

    /// The `SessionTable` key of the session named by request header `name`, or nil when the
    /// header is absent, repeated, empty or over-long.
    func sessionKey(header name: String) -> UInt64? {
        guard let (value, count) = downstreamHeader(name), count == 1 else { return nil }
        return SessionTable.key(of: value.bindMemory(to: UInt8.self).span)
    }

    /// The first value of the request header `name` (Envoy's bytes, valid during the hook) and how
    /// many values it has; nil without a context or without the header.
    private func downstreamHeader(_ name: String) -> (value: UnsafeRawBufferPointer, count: Int)? {
        guard let context else { return nil }
        var value = envoy_dynamic_module_type_envoy_buffer.empty
        var count = 0
        let found = ModuleBuffer.with(name) { key in
            envoy_dynamic_module_callback_lb_context_get_downstream_header(context, key, &value, 0, &count)
        }
        guard found else { return nil }
        return (value.rawBytes, count)
    }
}

/// Envoy's LB config object (`lb_config_envoy_ptr`): the policy's stats. Define on the main
/// thread in `lb_config_new`; increment from any worker.
struct LoadBalancerConfigHandle: @unchecked Sendable {
    // @unchecked: only Envoy dereferences the pointer; its counters are thread-safe.
    let raw: UnsafeMutableRawPointer

    func defineCounter(_ name: String) throws(MetricError) -> CounterID {
        var id = 0
        let result = ModuleBuffer.with(name) {
            envoy_dynamic_module_callback_lb_config_define_counter(raw, $0, nil, 0, &id)
        }
        guard result == envoy_dynamic_module_type_metrics_result_Success else {
            throw MetricError(rawValue: result.rawValue) ?? .unknown
        }
        return CounterID(raw: id)
    }

    func increment(_ counter: CounterID) {
        _ = envoy_dynamic_module_callback_lb_config_increment_counter(raw, counter.raw, nil, 0, 1)
    }
}

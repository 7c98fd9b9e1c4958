// The load-balancing-policy hooks Envoy 1.40 calls (`envoy.load_balancing_policies.dynamic_modules`):
// trampolines from the C ABI to `EndpointPickerPolicy` (one per cluster config) and
// `EndpointPickerWorker` (one per worker thread). Envoy resolves all 6 when a cluster names the
// module's policy.
public import CEnvoyABI
internal import SluiceCore

@c @implementation
public func envoy_dynamic_module_on_lb_config_new(
    _ lb_config_envoy_ptr: envoy_dynamic_module_type_lb_config_envoy_ptr?,
    _ name: envoy_dynamic_module_type_envoy_buffer,
    _ config: envoy_dynamic_module_type_envoy_buffer
) -> envoy_dynamic_module_type_lb_config_module_ptr? {
    guard let lb_config_envoy_ptr else { return nil }
    let handle = LoadBalancerConfigHandle(raw: lb_config_envoy_ptr)
    let policyName = name.stringCopy
    switch EndpointPickerPolicy.make(name: policyName, config: config.bytesCopy, stats: { _ throws(MetricError) in try EndpointPickerStats(handle) }) {
    case .success(let policy):
        EnvoyLog.info("sluice: endpoint picker for pool '\(policy.config.pool)'")
        return UnsafeRawPointer(Unmanaged.passRetained(policy).toOpaque())
    case .failure(let error):
        EnvoyLog.error("sluice: rejecting load-balancing policy '\(policyName)': \(error.message)")
        return nil
    }
}

@c @implementation
public func envoy_dynamic_module_on_lb_config_destroy(_ lb_config_module_ptr: envoy_dynamic_module_type_lb_config_module_ptr?) {
    guard let lb_config_module_ptr else { return }
    Unmanaged<EndpointPickerPolicy>.fromOpaque(lb_config_module_ptr).release()
}

@c @implementation
public func envoy_dynamic_module_on_lb_new(
    _ lb_config_module_ptr: envoy_dynamic_module_type_lb_config_module_ptr?,
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?
) -> envoy_dynamic_module_type_lb_module_ptr? {
    guard let lb_config_module_ptr else { return nil }
    let policy = Unmanaged<EndpointPickerPolicy>.fromOpaque(lb_config_module_ptr).takeUnretainedValue()
    return UnsafeRawPointer(Unmanaged.passRetained(EndpointPickerWorker(policy: policy)).toOpaque())
}

@inline(__always)
private func pickerWorker(_ pointer: UnsafeRawPointer?) -> EndpointPickerWorker? {
    guard let pointer else { return nil }
    return Unmanaged<EndpointPickerWorker>.fromOpaque(pointer).takeUnretainedValue()
}

@c @implementation
public func envoy_dynamic_module_on_lb_choose_host(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?,
    _ lb_module_ptr: envoy_dynamic_module_type_lb_module_ptr?,
    _ context_envoy_ptr: envoy_dynamic_module_type_lb_context_envoy_ptr?,
    _ result_priority: UnsafeMutablePointer<UInt32>?,
    _ result_index: UnsafeMutablePointer<UInt32>?
) -> Bool {
    guard let lb_envoy_ptr, let result_priority, let result_index, let worker = pickerWorker(lb_module_ptr) else { return false }
    guard let pick = worker.choose(LoadBalancerView(lb: lb_envoy_ptr, context: context_envoy_ptr)) else { return false }
    result_priority.pointee = pick.priority
    result_index.pointee = pick.index
    return true
}

@c @implementation
public func envoy_dynamic_module_on_lb_on_host_membership_update(
    _ lb_envoy_ptr: envoy_dynamic_module_type_lb_envoy_ptr?,
    _ lb_module_ptr: envoy_dynamic_module_type_lb_module_ptr?,
    _ num_hosts_added: Int,
    _ num_hosts_removed: Int
) {
    pickerWorker(lb_module_ptr)?.membershipChanged()
}

@c @implementation
public func envoy_dynamic_module_on_lb_destroy(_ lb_module_ptr: envoy_dynamic_module_type_lb_module_ptr?) {
    guard let lb_module_ptr else { return }
    Unmanaged<EndpointPickerWorker>.fromOpaque(lb_module_ptr).release()
}

// Fake Envoy: the HTTP-filter callbacks, implemented over `FakeStream` / `FakeFilterConfig`.
// Each mirrors Envoy's behaviour as SluiceEnvoy.docc/EnvoyDynamicModulesABI.md records it, including
// its failure values.
public import CEnvoyABI

// MARK: - Headers

@c @implementation
public func envoy_dynamic_module_callback_http_get_header(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ header_type: envoy_dynamic_module_type_http_header_type,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?,
    _ index: Int,
    _ optional_size: UnsafeMutablePointer<Int>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return false }
    let values = stream.headerMap(header_type.rawValue).values(bytes(key))
    optional_size?.pointee = values.count
    guard index >= 0, index < values.count else {
        result?.pointee = envoyBuffer(nil)
        return false
    }
    result?.pointee = envoyBuffer(values[index])
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_headers_size(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ header_type: envoy_dynamic_module_type_http_header_type
) -> Int {
    FakeStream.from(filter_envoy_ptr)?.headerMap(header_type.rawValue).entries.count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_headers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ header_type: envoy_dynamic_module_type_http_header_type,
    _ result_headers: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_http_header>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let result_headers else { return false }
    for (index, entry) in stream.headerMap(header_type.rawValue).entries.enumerated() {
        let name = envoyBuffer(entry.name)
        let value = envoyBuffer(entry.value)
        result_headers[index] = envoy_dynamic_module_type_envoy_http_header(
            key_ptr: name.ptr, key_length: name.length, value_ptr: value.ptr, value_length: value.length)
    }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_header(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ header_type: envoy_dynamic_module_type_http_header_type,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: envoy_dynamic_module_type_module_buffer
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return false }
    let newValue: [UInt8]? = value.ptr == nil ? nil : bytes(value)
    stream.updateHeaderMap(header_type.rawValue) { $0.set(bytes(key), newValue) }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_add_header(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ header_type: envoy_dynamic_module_type_http_header_type,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: envoy_dynamic_module_type_module_buffer
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), value.ptr != nil else { return false }
    stream.updateHeaderMap(header_type.rawValue) { $0.add(bytes(key), bytes(value)) }
    return true
}

// MARK: - Body

@c @implementation
public func envoy_dynamic_module_callback_http_get_body_size(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ body_type: envoy_dynamic_module_type_http_body_type
) -> Int {
    FakeStream.from(filter_envoy_ptr)?.body(body_type.rawValue).reduce(0) { $0 + $1.count } ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_body_chunks_size(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ body_type: envoy_dynamic_module_type_http_body_type
) -> Int {
    FakeStream.from(filter_envoy_ptr)?.body(body_type.rawValue).count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_body_chunks(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ body_type: envoy_dynamic_module_type_http_body_type,
    _ result_buffer_vector: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let result_buffer_vector else { return false }
    for (index, chunk) in stream.body(body_type.rawValue).enumerated() { result_buffer_vector[index] = envoyBuffer(chunk) }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_append_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ body_type: envoy_dynamic_module_type_http_body_type,
    _ data: envoy_dynamic_module_type_module_buffer
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), stream.hasBody(body_type.rawValue) else { return false }
    let appended = bytes(data)
    if !appended.isEmpty { stream.updateBody(body_type.rawValue) { $0.append(StableBytes(appended)) } }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_drain_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ body_type: envoy_dynamic_module_type_http_body_type,
    _ number_of_bytes: Int
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), stream.hasBody(body_type.rawValue) else { return false }
    stream.updateBody(body_type.rawValue) { chunks in
        var all = chunks.flatMap(\.bytes)
        all.removeFirst(min(number_of_bytes, all.count))
        chunks = all.isEmpty ? [] : [StableBytes(all)]
    }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_received_buffered_request_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> Bool {
    FakeStream.from(filter_envoy_ptr)?.receivedBufferedRequest ?? false
}

@c @implementation
public func envoy_dynamic_module_callback_http_received_buffered_response_body(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?
) -> Bool {
    FakeStream.from(filter_envoy_ptr)?.receivedBufferedResponse ?? false
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_buffer_limit(_ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?)
    -> UInt64
{
    FakeStream.from(filter_envoy_ptr)?.bufferLimit ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_buffer_limit(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?, _ limit: UInt64
) {
    FakeStream.from(filter_envoy_ptr)?.bufferLimit = limit
}

// MARK: - Local replies

func headerMap(_ headers: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?, _ count: Int) -> FakeHeaderMap {
    var map = FakeHeaderMap()
    guard let headers, count > 0 else { return map }
    for header in UnsafeBufferPointer(start: headers, count: count) {
        map.add(
            bytes(.init(ptr: header.key_ptr, length: header.key_length)),
            bytes(.init(ptr: header.value_ptr, length: header.value_length)))
    }
    return map
}

@c @implementation
public func envoy_dynamic_module_callback_http_send_response(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ status_code: UInt32,
    _ headers_vector: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_vector_size: Int,
    _ body: envoy_dynamic_module_type_module_buffer,
    _ details: envoy_dynamic_module_type_module_buffer
) {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return }
    stream.localReply = FakeLocalReply(
        status: status_code, headers: headerMap(headers_vector, headers_vector_size), body: bytes(body), details: string(details))
}

@c @implementation
public func envoy_dynamic_module_callback_http_send_response_headers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ headers_vector: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ headers_vector_size: Int,
    _ end_stream: Bool
) {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return }
    stream.streamedResponseHeaders = headerMap(headers_vector, headers_vector_size)
    stream.streamedResponseEnded = end_stream
}

@c @implementation
public func envoy_dynamic_module_callback_http_send_response_data(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ data: envoy_dynamic_module_type_module_buffer,
    _ end_stream: Bool
) {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return }
    stream.streamedResponse.append(contentsOf: bytes(data))
    stream.streamedResponseEnded = end_stream
}

@c @implementation
public func envoy_dynamic_module_callback_http_send_response_trailers(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ trailers_vector: UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?,
    _ trailers_vector_size: Int
) {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return }
    stream.responseTrailers = headerMap(trailers_vector, trailers_vector_size)
    stream.streamedResponseEnded = true
}

// MARK: - Metadata and filter state

private func setMetadata(
    _ pointer: UnsafeMutableRawPointer?, _ ns: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer, _ value: FakeMetadataValue
) {
    guard let stream = FakeStream.from(pointer) else { return }
    stream.dynamicMetadata[string(ns), default: [:]][string(key)] = value
}

private func metadata(
    _ pointer: UnsafeMutableRawPointer?, _ source: envoy_dynamic_module_type_metadata_source,
    _ ns: envoy_dynamic_module_type_module_buffer, _ key: envoy_dynamic_module_type_module_buffer
) -> (FakeStream, FakeMetadataValue)? {
    guard let stream = FakeStream.from(pointer) else { return nil }
    let table = source.rawValue == 0 ? stream.dynamicMetadata : (stream.otherMetadata[source.rawValue] ?? [:])
    guard let value = table[string(ns)]?[string(key)] else { return nil }
    return (stream, value)
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_dynamic_metadata_string(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: envoy_dynamic_module_type_module_buffer
) {
    setMetadata(filter_envoy_ptr, filter_namespace, key, .string(string(value)))
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_dynamic_metadata_string_batch(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ entries: UnsafePointer<envoy_dynamic_module_type_module_key_value_pair>?,
    _ entries_size: Int
) {
    guard let entries else { return }
    FakeStream.from(filter_envoy_ptr)?.metadataBatches += 1
    for index in 0..<entries_size {
        let entry = entries[index]
        let key = envoy_dynamic_module_type_module_buffer(ptr: entry.key_ptr, length: entry.key_length)
        let value = envoy_dynamic_module_type_module_buffer(ptr: entry.value_ptr, length: entry.value_length)
        setMetadata(filter_envoy_ptr, filter_namespace, key, .string(string(value)))
    }
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_dynamic_metadata_number(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: Double
) {
    setMetadata(filter_envoy_ptr, filter_namespace, key, .number(value))
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_dynamic_metadata_bool(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: Bool
) {
    setMetadata(filter_envoy_ptr, filter_namespace, key, .bool(value))
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_metadata_string(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ metadata_source: envoy_dynamic_module_type_metadata_source,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let (stream, value) = metadata(filter_envoy_ptr, metadata_source, filter_namespace, key),
        case .string(let text) = value
    else { return false }
    // Keep the bytes alive for the rest of the hook, like Envoy's metadata storage does.
    let stable = StableBytes(text)
    stream.filterState["__metadata_view"] = stable
    result?.pointee = envoyBuffer(stable)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_metadata_number(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ metadata_source: envoy_dynamic_module_type_metadata_source,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ result: UnsafeMutablePointer<Double>?
) -> Bool {
    guard let (_, value) = metadata(filter_envoy_ptr, metadata_source, filter_namespace, key),
        case .number(let number) = value
    else { return false }
    result?.pointee = number
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_metadata_bool(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ metadata_source: envoy_dynamic_module_type_metadata_source,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ result: UnsafeMutablePointer<Bool>?
) -> Bool {
    guard let (_, value) = metadata(filter_envoy_ptr, metadata_source, filter_namespace, key),
        case .bool(let flag) = value
    else { return false }
    result?.pointee = flag
    return true
}

private func metadataKeys(
    _ pointer: UnsafeMutableRawPointer?, _ source: envoy_dynamic_module_type_metadata_source,
    _ ns: envoy_dynamic_module_type_module_buffer
) -> (FakeStream, [String])? {
    guard let stream = FakeStream.from(pointer) else { return nil }
    let table = source.rawValue == 0 ? stream.dynamicMetadata : (stream.otherMetadata[source.rawValue] ?? [:])
    guard let keys = table[string(ns)]?.keys else { return nil }
    return (stream, keys.sorted())
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_metadata_keys_count(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ metadata_source: envoy_dynamic_module_type_metadata_source,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer
) -> Int {
    metadataKeys(filter_envoy_ptr, metadata_source, filter_namespace)?.1.count ?? 0
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_metadata_keys(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ metadata_source: envoy_dynamic_module_type_metadata_source,
    _ filter_namespace: envoy_dynamic_module_type_module_buffer,
    _ result_buffer_vector: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let (stream, keys) = metadataKeys(filter_envoy_ptr, metadata_source, filter_namespace), let result_buffer_vector
    else { return false }
    for (index, key) in keys.enumerated() {
        // Keep the bytes alive for the rest of the hook, like Envoy's metadata storage does.
        let stable = StableBytes(key)
        stream.filterState["__metadata_key_view_\(index)"] = stable
        result_buffer_vector[index] = envoyBuffer(stable)
    }
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_filter_state_bytes(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ value: envoy_dynamic_module_type_module_buffer
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr) else { return false }
    stream.filterState[string(key)] = StableBytes(bytes(value))
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_filter_state_bytes(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ result: UnsafeMutablePointer<envoy_dynamic_module_type_envoy_buffer>?
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let value = stream.filterState[string(key)] else { return false }
    result?.pointee = envoyBuffer(value)
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_set_filter_state_object(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ key: envoy_dynamic_module_type_module_buffer,
    _ object: UnsafeMutableRawPointer?,
    _ destructor: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?,
    _ life_span: envoy_dynamic_module_type_filter_state_life_span
) -> Bool {
    guard let stream = FakeStream.from(filter_envoy_ptr), let object, let destructor,
        !stream.readOnlyFilterStateKeys.contains(string(key))
    else { return false }
    // As Envoy: a new object under the key replaces (and lets go of) the one before.
    stream.filterStateObjects.updateValue(FakeFilterStateObject(object: object, destructor: destructor), forKey: string(key))?
        .release()
    return true
}

@c @implementation
public func envoy_dynamic_module_callback_http_get_filter_state_object(
    _ filter_envoy_ptr: envoy_dynamic_module_type_http_filter_envoy_ptr?,
    _ key: envoy_dynamic_module_type_module_buffer
) -> UnsafeMutableRawPointer? {
    FakeStream.from(filter_envoy_ptr)?.filterStateObjects[string(key)]?.object
}

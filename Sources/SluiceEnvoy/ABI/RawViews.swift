// The one place where Envoy's (pointer, length) pairs become Swift views and back.
//
// Rules ("Conventions of the interface" in SluiceEnvoy.docc/EnvoyDynamicModulesABI.md):
// `envoy_buffer` bytes belong to Envoy and are valid only until the current hook returns or until
// we call a callback that may mutate the same object; we never keep them past the closure that
// receives them. `module_buffer` bytes belong to us and must stay valid only for the duration of
// the callback that receives them (Envoy copies what it keeps).
internal import CEnvoyABI

// MARK: - Envoy-owned bytes -> Swift

extension envoy_dynamic_module_type_envoy_buffer {
    /// A view of the bytes, valid only while the Envoy object they come from is untouched.
    /// `(NULL, n)` is a contract violation and reads as empty rather than crashing.
    @inline(__always)
    var rawBytes: UnsafeRawBufferPointer {
        guard let ptr, length > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: ptr, count: length)
    }

    /// An owned copy of the bytes.
    @inline(__always)
    var bytesCopy: [UInt8] { Array(rawBytes) }

    /// An owned `String`; invalid UTF-8 is repaired with U+FFFD (header bytes are not guaranteed UTF-8).
    @inline(__always)
    var stringCopy: String { String(decoding: rawBytes, as: UTF8.self) }

    static var empty: Self { Self(ptr: nil, length: 0) }
}

// MARK: - Swift -> module-owned bytes

/// Module buffers handed to Envoy. Each helper keeps the Swift storage alive for the closure only.
enum ModuleBuffer {
    static var absent: envoy_dynamic_module_type_module_buffer { .init(ptr: nil, length: 0) }

    @inline(__always)
    static func of(_ raw: UnsafeRawBufferPointer) -> envoy_dynamic_module_type_module_buffer {
        guard let base = raw.baseAddress, raw.count > 0 else {
            // Envoy treats NULL as "absent"; an empty value must still be a valid pointer.
            return envoy_dynamic_module_type_module_buffer(ptr: emptyStringPointer, length: 0)
        }
        return envoy_dynamic_module_type_module_buffer(ptr: base.assumingMemoryBound(to: CChar.self), length: raw.count)
    }

    /// Calls `body` with a module buffer over the UTF-8 of `string`.
    @inline(__always)
    static func with<R>(_ string: String, _ body: (envoy_dynamic_module_type_module_buffer) -> R) -> R {
        var string = string
        return string.withUTF8 { body(of(UnsafeRawBufferPointer($0))) }
    }

    /// Calls `body` with a module buffer over `bytes`.
    @inline(__always)
    static func with<R>(_ bytes: [UInt8], _ body: (envoy_dynamic_module_type_module_buffer) -> R) -> R {
        bytes.withUnsafeBytes { body(of($0)) }
    }

    /// A module buffer over a static string; no copy, valid forever.
    @inline(__always)
    static func of(_ string: StaticString) -> envoy_dynamic_module_type_module_buffer {
        guard string.hasPointerRepresentation else { return absent }
        return envoy_dynamic_module_type_module_buffer(
            ptr: UnsafeRawPointer(string.utf8Start).assumingMemoryBound(to: CChar.self),
            length: string.utf8CodeUnitCount
        )
    }

    /// Points at a static NUL byte so an empty value is never confused with "absent".
    private static var emptyStringPointer: UnsafePointer<CChar> {
        let empty: StaticString = ""
        return UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Module buffers over several Swift strings at once, pointing into each string's own UTF-8 storage
/// (a native string has one; a small string is copied to the stack by `withUTF8`), in a C array on
/// the stack: no heap allocation and no copy into an arena, for the calls a request makes every
/// time (labelled stats, metadata batches).
enum ModuleBufferArray {
    /// Calls `body` with one buffer per string `string(i)`, `i` in `0..<count`, valid during `body`.
    static func with<R>(
        count: Int, _ string: (Int) -> String, _ body: (UnsafeMutablePointer<envoy_dynamic_module_type_module_buffer>?, Int) -> R
    ) -> R {
        if count <= 0 { return body(nil, 0) }
        return withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_module_buffer.self, capacity: count) { out in
            // Each string's bytes stay valid only inside its `withUTF8`, so the closures nest:
            // the call into Envoy happens at the innermost level.
            func fill(_ index: Int) -> R {
                guard index < count else { return body(out.baseAddress, count) }
                var text = string(index)
                return text.withUTF8 { utf8 in
                    out.initializeElement(at: index, to: ModuleBuffer.of(UnsafeRawBufferPointer(utf8)))
                    return fill(index + 1)
                }
            }
            return fill(0)
        }
    }

    /// Calls `body` with a C array of `count` key/value pairs, keys static, values `value(i)`,
    /// valid during `body`.
    static func withKeyValuePairs<R>(
        count: Int, key: (Int) -> StaticString, value: (Int) -> String,
        _ body: (UnsafePointer<envoy_dynamic_module_type_module_key_value_pair>?, Int) -> R
    ) -> R {
        if count <= 0 { return body(nil, 0) }
        return with(count: count, value) { values, _ in
            withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_module_key_value_pair.self, capacity: count) { out in
                for index in 0..<count {
                    let keyBuffer = ModuleBuffer.of(key(index))
                    let valueBuffer = values?[index] ?? ModuleBuffer.absent
                    out.initializeElement(
                        at: index,
                        to: envoy_dynamic_module_type_module_key_value_pair(
                            key_ptr: keyBuffer.ptr, key_length: keyBuffer.length, value_ptr: valueBuffer.ptr,
                            value_length: valueBuffer.length))
                }
                return body(UnsafePointer(out.baseAddress), count)
            }
        }
    }
}

/// Header (name, value) pairs to hand to Envoy; all bytes live in one arena so a reply costs
/// two allocations however many headers it has.
public struct ModuleHeaderList: Sendable {
    private(set) var arena: [UInt8] = []
    /// (nameStart, nameCount, valueStart, valueCount) into `arena`.
    private(set) var entries: [(Int, Int, Int, Int)] = []

    public init() {}

    public init(_ headers: [(name: String, value: String)]) {
        self.init(headers, [])
    }

    /// `headers` then `more`, in one arena sized up front (no regrowth per header).
    public init(_ headers: [(name: String, value: String)], _ more: [(name: String, value: String)]) {
        reserve(headers)
        reserve(more)
        for header in headers { append(name: header.name, value: header.value) }
        for header in more { append(name: header.name, value: header.value) }
    }

    private mutating func reserve(_ headers: [(name: String, value: String)]) {
        var bytes = arena.count
        for header in headers { bytes += header.name.utf8.count + header.value.utf8.count }
        arena.reserveCapacity(bytes)
        entries.reserveCapacity(entries.count + headers.count)
    }

    /// Room for `count` more entries of `bytes` name and value bytes in all, so appending them
    /// does not regrow the arena or the entry list.
    public mutating func reserveCapacity(entries count: Int, bytes: Int) {
        arena.reserveCapacity(arena.count + bytes)
        entries.reserveCapacity(entries.count + count)
    }

    public mutating func append(name: String, value: String) {
        let nameStart = arena.count
        arena.append(contentsOf: name.utf8)
        let valueStart = arena.count
        arena.append(contentsOf: value.utf8)
        entries.append((nameStart, valueStart - nameStart, valueStart, arena.count - valueStart))
    }

    public var count: Int { entries.count }

    /// Calls `body` with a C array of headers valid for the duration of the call.
    func withUnsafeHeaders<R>(
        _ body: (UnsafeMutablePointer<envoy_dynamic_module_type_module_http_header>?, Int) -> R
    ) -> R {
        if entries.isEmpty { return body(nil, 0) }
        return arena.withUnsafeBytes { raw in
            withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_module_http_header.self, capacity: entries.count) { out in
                for (index, entry) in entries.enumerated() {
                    let name = ModuleBuffer.of(UnsafeRawBufferPointer(rebasing: raw[entry.0..<(entry.0 + entry.1)]))
                    let value = ModuleBuffer.of(UnsafeRawBufferPointer(rebasing: raw[entry.2..<(entry.2 + entry.3)]))
                    out.initializeElement(
                        at: index,
                        to: envoy_dynamic_module_type_module_http_header(
                            key_ptr: name.ptr, key_length: name.length, value_ptr: value.ptr, value_length: value.length))
                }
                return body(out.baseAddress, entries.count)
            }
        }
    }
}

// A request's header map read in one call into Envoy (`http_get_headers`): the downstream filter
// reads five headers of every request, and an upstream attempt asks a dozen questions of them (is
// a credential header there? is `:path` already this?). One call answering all of them costs less
// than a call per question.
internal import CEnvoyABI
internal import Glibc
internal import SluiceCore

/// Views into Envoy's header map, valid only while the map is unchanged and inside the hook:
/// `EnvoyHTTPStream.withRequestHeaderSnapshot` hands it to a closure that must not edit headers.
struct HeaderMapSnapshot: CurrentRequestHeaders {
    fileprivate let entries: UnsafeBufferPointer<envoy_dynamic_module_type_envoy_http_header>

    func contains(_ name: String) -> Bool {
        var found = false
        forEachValue(of: name) { _ in
            found = true
            return false
        }
        return found
    }

    func holds(_ name: String, only value: String) -> Bool {
        var matches = 0
        var other = false
        withUTF8(of: value) { expected in
            forEachValue(of: name) { bytes in
                if Self.equal(bytes, expected) { matches += 1 } else { other = true }
                return !other && matches < 2
            }
        }
        return matches == 1 && !other
    }

    func value(_ name: String) -> String? {
        var found: UnsafeRawBufferPointer?
        var repeated = false
        forEachValue(of: name) { bytes in
            if found != nil {
                repeated = true
                return false
            }
            found = bytes
            return true
        }
        guard !repeated, let found else { return nil }
        return String(decoding: found, as: UTF8.self)
    }

    func values(_ name: String) -> [String] {
        var values: [String] = []
        forEachValue(of: name) { bytes in
            values.append(String(decoding: bytes, as: UTF8.self))
            return true
        }
        return values
    }

    /// Appends the first value of `name` to `bytes` and returns where it went; nil when absent (a
    /// value Envoy hands over without bytes counts as absent, as `EnvoyHTTPStream.withHeader`
    /// reads it). The caller's buffer, reused, holds the values of a hook without allocating.
    func appendFirst(_ name: String, to bytes: inout [UInt8]) -> Range<Int>? {
        var found: Range<Int>?
        forEachValue(of: name) { value in
            if value.baseAddress != nil {
                let start = bytes.count
                bytes.append(contentsOf: value)
                found = start..<bytes.count
            }
            return false
        }
        return found
    }

    /// Calls `body` with each value of `name` until it returns false.
    private func forEachValue(of name: String, _ body: (UnsafeRawBufferPointer) -> Bool) {
        withUTF8(of: name) { key in
            for entry in entries where entry.key_length == key.count {
                guard let keyPointer = entry.key_ptr,
                    Self.equal(UnsafeRawBufferPointer(start: keyPointer, count: entry.key_length), key)
                else { continue }
                let value = UnsafeRawBufferPointer(start: entry.value_ptr, count: entry.value_ptr == nil ? 0 : entry.value_length)
                if !body(value) { return }
            }
        }
    }

    /// The string's UTF-8 bytes in place (names and values here are native strings: no copy).
    private func withUTF8(of string: String, _ body: (UnsafeRawBufferPointer) -> Void) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { body(UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = string
            copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
    }

    private static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let x = a.baseAddress, let y = b.baseAddress else { return a.count == 0 }
        return memcmp(x, y, a.count) == 0
    }
}

extension EnvoyHTTPStream {
    /// Calls `body` with the request headers as they are now, read in one call. `body` must not
    /// edit the header map (the views would dangle) and must not keep the snapshot.
    func withRequestHeaderSnapshot<R>(_ body: (HeaderMapSnapshot) -> R) -> R {
        let count = headerCount(in: .request)
        return withUnsafeTemporaryAllocation(of: envoy_dynamic_module_type_envoy_http_header.self, capacity: max(count, 1)) {
            out in
            guard count > 0, let base = out.baseAddress else { return body(HeaderMapSnapshot(entries: .init(start: nil, count: 0))) }
            base.initialize(repeating: .init(key_ptr: nil, key_length: 0, value_ptr: nil, value_length: 0), count: count)
            let filled = envoy_dynamic_module_callback_http_get_headers(raw, HeaderMap.request.c, base)
            return body(HeaderMapSnapshot(entries: .init(start: base, count: filled ? count : 0)))
        }
    }
}

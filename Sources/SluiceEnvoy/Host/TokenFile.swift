// Reads the fleet token from its file (a few bytes on local disk, read on the main thread when
// the worker first needs it and again after sluiced refuses it).
#if canImport(Glibc)
internal import Glibc
#endif

enum TokenFile {
    /// The most a token file may hold (sluiced writes 64 hex characters and a newline).
    static let maxBytes = 4096

    /// The token in `path`, without surrounding whitespace: 1...4096 printable ASCII bytes.
    static func read(_ path: String) -> Result<String, TokenFileError> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(TokenFileError("cannot open \(path): errno \(errno)")) }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return -1 }
                return Glibc.read(descriptor, base + filled, raw.count - filled)
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(TokenFileError("cannot read \(path): errno \(errno)"))
            }
            if count == 0 { break }
            filled += count
        }
        guard filled <= maxBytes else { return .failure(TokenFileError("\(path) holds more than \(maxBytes) bytes")) }
        var token = bytes[0..<filled]
        while let last = token.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { token.removeLast() }
        while let first = token.first, first == 0x0A || first == 0x0D || first == 0x20 || first == 0x09 { token.removeFirst() }
        guard !token.isEmpty else { return .failure(TokenFileError("\(path) is empty")) }
        guard token.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(TokenFileError("\(path) holds bytes other than printable ASCII"))
        }
        return .success(String(decoding: token, as: UTF8.self))
    }
}

struct TokenFileError: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}

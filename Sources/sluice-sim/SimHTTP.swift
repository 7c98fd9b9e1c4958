import Foundation
import HTTPTypes
import Hummingbird
import SluiceCore

/// A request as a simulator sees it: the whole body collected, headers in arrival order.
struct SimRequest: Sendable {
    let method: String
    /// The path exactly as received (still percent-encoded), without the query.
    let rawPath: String
    /// The raw query string, without the leading `?` (empty when absent).
    let rawQuery: String
    let headers: [(name: String, value: String)]
    let body: [UInt8]

    /// The percent-decoded path, used for routing.
    var path: String { rawPath.removingPercentEncoding ?? rawPath }

    /// The first value of a header, matched case-insensitively.
    func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// Decoded query parameters (`+` is a space, as form encoding has it).
    var query: [String: String] {
        var result: [String: String] = [:]
        for pair in rawQuery.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            if result[name] == nil { result[name] = value }
        }
        return result
    }

    private static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    /// The body parsed as JSON, or nil when it is not JSON.
    func json() -> JSONValue? {
        try? JSONParser.parse(body)
    }
}

/// What a simulator answers: a whole body, or a paced stream of chunks.
struct SimResponse: Sendable {
    enum Body: Sendable {
        case bytes([UInt8])
        /// Chunks written one by one, `--pace-ms` apart (the first goes out at once).
        case stream([[UInt8]])
    }

    var status: Int
    var headers: [(String, String)]
    var body: Body
    /// Milliseconds between streamed chunks when not the listener's `--pace-ms` (speech audio
    /// streams at its own pace, so tests can see it arrive in pieces).
    var paceMilliseconds: Int?

    init(status: Int, headers: [(String, String)] = [], body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response.
    static func json(_ status: Int, _ body: [UInt8], headers: [(String, String)] = []) -> SimResponse {
        SimResponse(status: status, headers: [("content-type", "application/json")] + headers, body: .bytes(body))
    }

    /// A JSON response written by a closure over a `JSONWriter`.
    static func json(
        _ status: Int, headers: [(String, String)] = [], _ write: (inout JSONWriter) -> Void
    ) -> SimResponse {
        var writer = JSONWriter()
        write(&writer)
        return .json(status, writer.bytes, headers: headers)
    }

    /// A server-sent-events stream.
    static func sse(_ chunks: [[UInt8]], headers: [(String, String)] = []) -> SimResponse {
        SimResponse(
            status: 200,
            headers: [("content-type", "text/event-stream"), ("cache-control", "no-cache")] + headers,
            body: .stream(chunks)
        )
    }

    /// Adds a header (after the existing ones).
    func with(header name: String, _ value: String) -> SimResponse {
        var copy = self
        copy.headers.append((name, value))
        return copy
    }
}

extension Array where Element == UInt8 {
    /// UTF-8 bytes of a string.
    init(utf8 text: String) { self = Array(text.utf8) }
}

/// Builds one SSE frame `data: <json>\n\n`, optionally with an `event:` line.
func sseFrame(event: String? = nil, _ json: [UInt8], separator: String = "\n") -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(json.count + 32)
    if let event {
        out += Array("event: \(event)\(separator)".utf8)
    }
    out += Array("data: ".utf8)
    out += json
    out += Array("\(separator)\(separator)".utf8)
    return out
}

/// Writes a JSON object with a closure; shorthand for building event payloads.
func jsonObject(_ write: (inout JSONWriter) -> Void) -> [UInt8] {
    var writer = JSONWriter()
    writer.beginObject()
    write(&writer)
    writer.endObject()
    return writer.bytes
}

/// Converts a simulator response into Hummingbird's, pacing streamed chunks.
func makeResponse(
    _ response: SimResponse, paceMilliseconds: Int, onFinish: @escaping @Sendable () -> Void
) -> Response {
    var fields = HTTPFields()
    for (name, value) in response.headers {
        if let fieldName = HTTPField.Name(name) {
            fields.append(HTTPField(name: fieldName, value: value))
        }
    }
    // Only well-formed codes reach here (all are literals in the simulators); clamp anyway
    // because HTTPResponse.Status traps outside 100...999.
    let code = (100...999).contains(response.status) ? response.status : 500
    let status = HTTPResponse.Status(code: code, reasonPhrase: reasonPhrase(code))
    switch response.body {
    case .bytes(let bytes):
        onFinish()
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    case .stream(let chunks):
        let paceMilliseconds = response.paceMilliseconds ?? paceMilliseconds
        let body = ResponseBody { writer in
            defer { onFinish() }
            for (index, chunk) in chunks.enumerated() {
                if index > 0, paceMilliseconds > 0 {
                    try await Task.sleep(for: .milliseconds(paceMilliseconds))
                }
                try await writer.write(ByteBuffer(bytes: chunk))
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: fields, body: body)
    }
}

private func reasonPhrase(_ code: Int) -> String {
    switch code {
    case 200: "OK"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 413: "Payload Too Large"
    case 429: "Too Many Requests"
    case 500: "Internal Server Error"
    case 503: "Service Unavailable"
    case 529: "Overloaded"
    default: ""
    }
}

/// Writes one line to stderr.
func logLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

// A bounded reader of `multipart/form-data` bodies (RFC 7578 over RFC 2046's multipart syntax),
// for the audio endpoints whose `model` travels in a form field next to the uploaded file.
//
// The reader walks the body once and keeps only ranges: each part's headers are read (bounded),
// its content is skipped over by searching for the next delimiter, never copied. A part's value
// is materialised only when asked for, and only for small text fields (`model`, `stream`).
//
// Bounds, so a hostile body costs at most one linear scan of a body the gateway already limits to
// `max_request_bytes`:
// - the boundary is 1...70 characters of RFC 2046's `bchars` (so it holds no CR, which keeps the
//   delimiter search linear: `\r` occurs in the delimiter only at its start);
// - at most `maxParts` parts, each with at most `maxHeaderBytes` of headers;
// - values read as text are at most `maxFieldValueBytes`.
//
// Every index is checked before use; malformed input is a `GatewayError` 400 saying what is wrong.

/// One part of a `multipart/form-data` body, as ranges into the body.
public struct MultipartPart: Sendable, Equatable {
    /// The `name` parameter of its `Content-Disposition`.
    public var name: String
    /// The `filename` parameter, when the part is a file.
    public var filename: String?
    /// The part's content (between its headers' blank line and the next delimiter).
    public var content: Range<Int>
}

public struct MultipartForm: Sendable, Equatable {
    /// Most parts a form may have (OpenAI's transcription form has about a dozen fields).
    public static let maxParts = 64
    /// Most bytes of one part's header block.
    public static let maxHeaderBytes = 4096
    /// Most bytes of a field value read as text.
    public static let maxFieldValueBytes = 1024
    /// RFC 2046: a boundary is 1 to 70 characters.
    public static let maxBoundaryBytes = 70

    public let parts: [MultipartPart]

    // MARK: - Content type

    /// The boundary of a `multipart/form-data` content type.
    /// - Throws: `GatewayError` 400 `invalid_multipart` when the content type is not
    ///   `multipart/form-data` or names no valid boundary.
    public static func boundary(contentType: String?) throws(GatewayError) -> [UInt8] {
        guard let contentType else {
            throw .invalidMultipart("This endpoint needs a multipart/form-data body; the request has no content-type.")
        }
        let bytes = Array(contentType.utf8)
        // media-type *( ";" parameter ), parameters possibly quoted.
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        var inQuotes = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                inQuotes.toggle()
            } else if byte == UInt8(ascii: "\\"), inQuotes {
                index += 1
            } else if byte == UInt8(ascii: ";"), !inQuotes {
                pieces.append(bytes[start..<index])
                start = index + 1
            }
            index += 1
        }
        pieces.append(bytes[min(start, bytes.count)..<bytes.count])
        guard let mediaType = pieces.first, asciiLowercased(trimmed(mediaType)) == Array("multipart/form-data".utf8) else {
            throw .invalidMultipart("This endpoint needs a multipart/form-data body, not '\(contentType)'.")
        }
        var found: [UInt8]?
        for piece in pieces.dropFirst() {
            guard let (name, value) = parameter(trimmed(piece)) else { continue }
            if name == Array("boundary".utf8) {
                guard found == nil else { throw .invalidMultipart("The content-type names more than one boundary.") }
                found = value
            }
        }
        guard let boundary = found else {
            throw .invalidMultipart("The multipart/form-data content-type has no boundary parameter.")
        }
        guard (1...maxBoundaryBytes).contains(boundary.count), boundary.allSatisfy(isBoundaryCharacter),
            boundary.last != UInt8(ascii: " ")
        else {
            throw .invalidMultipart(
                "The multipart boundary must be 1 to 70 characters of letters, digits and '()+_,-./:=? (RFC 2046).")
        }
        return boundary
    }

    // MARK: - Body

    /// Reads the parts of `body` delimited by `boundary` (from `boundary(contentType:)`).
    /// - Throws: `GatewayError` 400 `invalid_multipart` for a body that is not well-formed
    ///   multipart (no opening delimiter, a part without headers' end or `name`, no closing
    ///   delimiter), or 400 `too_many_parts` / `part_header_too_large` beyond the bounds.
    public static func read(_ body: [UInt8], boundary: [UInt8]) throws(GatewayError) -> MultipartForm {
        guard !boundary.isEmpty, boundary.count <= maxBoundaryBytes else {
            throw .invalidMultipart("The multipart boundary is invalid.")
        }
        // "\r\n--" + boundary: every delimiter but a first one at the very start of the body.
        let delimiter = Array("\r\n--".utf8) + boundary
        let dashBoundary = delimiter[2...]
        // The first delimiter: at the start, or after a preamble.
        var position: Int
        if body.count >= dashBoundary.count, body[0..<dashBoundary.count].elementsEqual(dashBoundary) {
            position = dashBoundary.count
        } else if let found = find(delimiter, in: body, from: 0) {
            position = found + delimiter.count
        } else {
            throw .invalidMultipart("The body holds no multipart delimiter for the content-type's boundary.")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a delimiter: "--" closes the body; otherwise optional padding and CRLF.
            if position + 2 <= body.count, body[position] == UInt8(ascii: "-"), body[position + 1] == UInt8(ascii: "-") {
                break
            }
            while position < body.count, body[position] == UInt8(ascii: " ") || body[position] == UInt8(ascii: "\t") {
                position += 1
            }
            guard position + 2 <= body.count, body[position] == 13, body[position + 1] == 10 else {
                throw .invalidMultipart("The multipart body ends early or has garbage after a delimiter (truncated?).")
            }
            position += 2
            guard parts.count < maxParts else {
                throw GatewayError(
                    status: 400, type: "invalid_request_error", code: "too_many_parts",
                    message: "The multipart body has more than \(maxParts) parts.")
            }
            // The part's headers end at the first empty line, within the bound (a part without
            // headers starts with that empty line).
            let headerLimit = min(body.count, position + maxHeaderBytes + 4)
            let headersEnd: Int
            if position + 2 <= body.count, body[position] == 13, body[position + 1] == 10 {
                headersEnd = position - 2
            } else if let found = find(Array("\r\n\r\n".utf8), in: body, from: position, before: headerLimit) {
                headersEnd = found
            } else {
                if headerLimit < body.count {
                    throw GatewayError(
                        status: 400, type: "invalid_request_error", code: "part_header_too_large",
                        message: "A multipart part's headers exceed \(maxHeaderBytes) bytes.")
                }
                throw .invalidMultipart("A multipart part's headers do not end (truncated body?).")
            }
            let headers = headersEnd >= position ? body[position..<headersEnd] : body[position..<position]
            let contentStart = headersEnd + 4
            guard let contentEnd = find(delimiter, in: body, from: contentStart) else {
                throw .invalidMultipart("The multipart body has no closing delimiter (truncated body?).")
            }
            let disposition = try contentDisposition(headers)
            parts.append(MultipartPart(name: disposition.name, filename: disposition.filename, content: contentStart..<contentEnd))
            position = contentEnd + delimiter.count
        }
        return MultipartForm(parts: parts)
    }

    /// The parts named `name`.
    public func parts(named name: String) -> [MultipartPart] { parts.filter { $0.name == name } }

    /// The text of the only field named `name`: nil when absent.
    /// - Throws: `GatewayError` 400 when the field is repeated, is a file, is longer than
    ///   `maxFieldValueBytes` or is not UTF-8.
    public func textField(_ name: String, in body: [UInt8]) throws(GatewayError) -> String? {
        let named = parts(named: name)
        guard let part = named.first else { return nil }
        guard named.count == 1 else {
            throw .invalidMultipart("The multipart body has more than one '\(name)' field.", param: name)
        }
        guard part.filename == nil else {
            throw .invalidMultipart("The '\(name)' field must be text, not a file.", param: name)
        }
        guard part.content.count <= Self.maxFieldValueBytes, part.content.lowerBound >= 0,
            part.content.upperBound <= body.count
        else {
            throw .invalidMultipart("The '\(name)' field is longer than \(Self.maxFieldValueBytes) bytes.", param: name)
        }
        guard let text = String(validating: body[part.content], as: UTF8.self) else {
            throw .invalidMultipart("The '\(name)' field is not UTF-8 text.", param: name)
        }
        return text
    }

    // MARK: - Editing

    /// `body` with the content of `part` replaced by `text` (a byte edit: the rest of the body,
    /// the uploaded file included, is copied as it is, once).
    /// - Throws: `TranslateError` 400 when `text` could end the part early (CR or LF in it) or the
    ///   range is not inside the body.
    public static func replacing(_ part: MultipartPart, in body: [UInt8], with text: String) throws(TranslateError)
        -> [UInt8]
    {
        let replacement = Array(text.utf8)
        guard !replacement.contains(13), !replacement.contains(10) else {
            throw .invalidBody("The value for '\(part.name)' cannot hold a line break in a multipart body.")
        }
        guard part.content.lowerBound >= 0, part.content.upperBound <= body.count else {
            throw .invalidBody("The multipart part '\(part.name)' is not inside the body.")
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count - part.content.count + replacement.count)
        out += body[..<part.content.lowerBound]
        out += replacement
        out += body[part.content.upperBound...]
        return out
    }

    // MARK: - Helpers

    /// The first index of `needle` in `haystack[from..<before]` (the needle wholly inside).
    /// Linear when `needle`'s first byte occurs in it only at the start (true for the delimiter,
    /// whose boundary holds no CR, and for CRLFCRLF).
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int, before: Int? = nil) -> Int? {
        let end = min(before ?? haystack.count, haystack.count)
        guard let first = needle.first, from >= 0, end - from >= needle.count else { return nil }
        var index = from
        let last = end - needle.count
        while index <= last {
            if haystack[index] == first {
                var matched = 1
                while matched < needle.count, haystack[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index }
                // The bytes after `index` equal needle[1..<matched]: a match can start among them
                // only where `first` occurs in that prefix; otherwise skip them all.
                index += needle[1..<matched].contains(first) ? 1 : matched
            } else {
                index += 1
            }
        }
        return nil
    }

    /// RFC 2046 `bchars`.
    static func isBoundaryCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            true
        default:
            Array("'()+_,-./:=? ".utf8).contains(byte)
        }
    }

    /// The `name` and `filename` of a part's `Content-Disposition: form-data` header.
    private static func contentDisposition(_ headers: ArraySlice<UInt8>) throws(GatewayError) -> (name: String, filename: String?) {
        var index = headers.startIndex
        while index < headers.endIndex {
            var lineEnd = index
            while lineEnd < headers.endIndex, headers[lineEnd] != 13 { lineEnd += 1 }
            let line = headers[index..<lineEnd]
            index = min(headers.endIndex, lineEnd + 2)
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
                throw .invalidMultipart("A multipart part has a header line without ':'.")
            }
            guard asciiLowercased(trimmed(line[line.startIndex..<colon])) == Array("content-disposition".utf8) else { continue }
            var pieces: [ArraySlice<UInt8>] = []
            let value = line[(colon + 1)...]
            var start = value.startIndex
            var inQuotes = false
            var cursor = value.startIndex
            while cursor < value.endIndex {
                let byte = value[cursor]
                if byte == UInt8(ascii: "\"") {
                    inQuotes.toggle()
                } else if byte == UInt8(ascii: "\\"), inQuotes {
                    cursor += 1
                } else if byte == UInt8(ascii: ";"), !inQuotes {
                    pieces.append(value[start..<cursor])
                    start = cursor + 1
                }
                cursor += 1
            }
            pieces.append(value[min(start, value.endIndex)..<value.endIndex])
            guard let kind = pieces.first, asciiLowercased(trimmed(kind)) == Array("form-data".utf8) else {
                throw .invalidMultipart("A multipart part's Content-Disposition is not form-data.")
            }
            var name: String?
            var filename: String?
            for piece in pieces.dropFirst() {
                guard let (key, raw) = parameter(trimmed(piece)) else { continue }
                if key == Array("name".utf8) {
                    name = String(decoding: raw, as: UTF8.self)
                } else if key == Array("filename".utf8) {
                    filename = String(decoding: raw, as: UTF8.self)
                }
            }
            guard let name else { throw .invalidMultipart("A multipart part's Content-Disposition has no name.") }
            return (name, filename)
        }
        throw .invalidMultipart("A multipart part has no Content-Disposition header.")
    }

    /// `name=value` or `name="quoted \" value"`: the lower-cased name and the unquoted value.
    private static func parameter(_ piece: ArraySlice<UInt8>) -> (name: [UInt8], value: [UInt8])? {
        guard let equals = piece.firstIndex(of: UInt8(ascii: "=")) else { return nil }
        let name = asciiLowercased(trimmed(piece[piece.startIndex..<equals]))
        let raw = trimmed(piece[(equals + 1)...])
        guard raw.first == UInt8(ascii: "\"") else { return (name, Array(raw)) }
        var value: [UInt8] = []
        var index = raw.startIndex + 1
        while index < raw.endIndex {
            let byte = raw[index]
            if byte == UInt8(ascii: "\"") { return (name, value) }
            if byte == UInt8(ascii: "\\"), index + 1 < raw.endIndex {
                index += 1
                value.append(raw[index])
            } else {
                value.append(byte)
            }
            index += 1
        }
        return nil  // an unterminated quoted string
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { slice = slice.dropFirst() }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { slice = slice.dropLast() }
        return slice
    }

    private static func asciiLowercased(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 | 0x20 : $0 }
    }
}

extension GatewayError {
    /// 400 `invalid_multipart`: a `multipart/form-data` body the gateway cannot read.
    @inline(never)
    public static func invalidMultipart(_ message: String, param: String? = nil) -> GatewayError {
        GatewayError(status: 400, type: "invalid_request_error", code: "invalid_multipart", message: message, param: param)
    }
}

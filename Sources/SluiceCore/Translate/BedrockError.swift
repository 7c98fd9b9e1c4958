// Bedrock runtime errors -> GatewayError with a faithful status.
//
// HTTP errors carry the type in the `x-amzn-errortype` header (sometimes suffixed with ":<namespace URL>") and a
// `{"message": ...}` body (some services spell it `Message`). Mid-stream errors arrive as event-stream messages
// with `:message-type: exception`, `:exception-type: throttlingException` (lower camel case) and the same body.
// Both funnel through `gatewayError(status:errorType:body:)`.

/// Maps Bedrock errors to gateway errors.
public enum BedrockError {
    /// The HTTP status Bedrock documents for an error type (either spelling: `ThrottlingException` or
    /// `throttlingException`), or nil for types we do not know.
    public static func status(forErrorType type: String) -> UInt32? {
        switch canonicalName(type) {
        case "ThrottlingException", "ModelNotReadyException", "TooManyRequestsException": 429
        case "ValidationException", "ServiceQuotaExceededException", "IncompleteSignatureException",
            "SerializationException", "ConflictException":
            400
        case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
            "ExpiredTokenException", "MissingAuthenticationTokenException":
            403
        case "ResourceNotFoundException", "UnknownOperationException": 404
        case "ModelTimeoutException": 408
        case "ModelErrorException", "ModelStreamErrorException": 424
        case "InternalServerException", "InternalFailure": 500
        case "ServiceUnavailableException": 503
        default: nil
        }
    }

    /// The error for a Bedrock error response or exception message.
    ///
    /// - Parameters:
    ///   - status: The upstream HTTP status; nil for a mid-stream exception, which has none of its own.
    ///   - errorType: `x-amzn-errortype` or `:exception-type`.
    ///   - body: The error body, `{"message": ...}` or plain text (e.g. from a load balancer).
    public static func gatewayError(status: UInt32?, errorType: String?, body: [UInt8]) -> GatewayError {
        let name = errorType.map(canonicalName) ?? ""
        let finalStatus: UInt32
        if let status, status >= 400, status <= 599 {
            finalStatus = status
        } else {
            finalStatus = Self.status(forErrorType: name) ?? 502
        }
        var message = ""
        if let parsed = try? JSONParser.parse(body), let object = parsed.objectValue {
            message = object["message"]?.stringValue ?? object["Message"]?.stringValue ?? ""
        } else {
            // Not JSON (a proxy's HTML or text page): wrap a bounded, valid-UTF-8 prefix of it.
            message = String(decoding: body.prefix(512), as: UTF8.self).trimmingSpaces
        }
        if message.isEmpty {
            message = name.isEmpty ? "Bedrock returned HTTP \(finalStatus)." : "Bedrock returned \(name)."
        }
        return GatewayError(
            status: finalStatus, type: openAIType(forStatus: finalStatus),
            code: name.isEmpty ? "bedrock_error" : snakeCase(name), message: message)
    }

    /// OpenAI's `error.type` for a status.
    static func openAIType(forStatus status: UInt32) -> String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 408: "timeout_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
    }

    /// `throttlingException:http://…` -> `ThrottlingException`.
    static func canonicalName(_ type: String) -> String {
        let bare = type.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        guard let first = bare.first else { return "" }
        return first.uppercased() + bare.dropFirst()
    }

    /// `ThrottlingException` -> `throttling_exception`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for (index, character) in name.enumerated() {
            if character.isUppercase {
                if index > 0 { out += "_" }
                out += character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }
}

extension String {
    /// The string without leading and trailing ASCII whitespace.
    fileprivate var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}

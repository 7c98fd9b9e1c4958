// Errors the gateway answers itself, in the error shape of the API the client speaks.

/// The API family a client speaks, which decides the shape of errors it can parse.
public enum ClientAPI: Sendable, Equatable {
    /// `{"error":{"message","type","param","code"}}`
    case openAI
    /// `{"type":"error","error":{"type","message"}}`
    case anthropic
    /// `{"message"}` (Cohere's rerank clients, `/cohere/v2/rerank`)
    case cohere
}

/// A small, concrete error value: a stable code, the HTTP status, and a message.
public struct GatewayError: Error, Sendable, Equatable {
    public var status: UInt32
    /// OpenAI `error.type`, e.g. `invalid_request_error`.
    public var type: String
    /// OpenAI `error.code`, stable for tests and clients, e.g. `invalid_api_key`.
    public var code: String
    public var message: String
    /// OpenAI `error.param`: the request field at fault, if any.
    public var param: String?

    public init(status: UInt32, type: String, code: String, message: String, param: String? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
    }

    /// Anthropic's `error.type` for this status.
    public var anthropicType: String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 529: "overloaded_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
    }

    /// The JSON body in `api`'s error shape.
    public func body(for api: ClientAPI) -> [UInt8] {
        var writer = JSONWriter()
        switch api {
        case .openAI:
            writer.beginObject()
            writer.key("error")
            writer.beginObject()
            writer.key("message")
            writer.string(message)
            writer.key("type")
            writer.string(type)
            writer.key("param")
            if let param { writer.string(param) } else { writer.null() }
            writer.key("code")
            writer.string(code)
            writer.endObject()
            writer.endObject()
        case .anthropic:
            writer.beginObject()
            writer.key("type")
            writer.string("error")
            writer.key("error")
            writer.beginObject()
            writer.key("type")
            writer.string(anthropicType)
            writer.key("message")
            writer.string(message)
            writer.endObject()
            writer.endObject()
        case .cohere:
            writer.beginObject()
            writer.key("message")
            writer.string(message)
            writer.endObject()
        }
        return writer.bytes
    }

    // MARK: - The errors the gateway raises (cold paths, built on demand)

    @inline(never)
    public static func missingKey() -> GatewayError {
        GatewayError(
            status: 401, type: "invalid_request_error", code: "missing_api_key",
            message: "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.")
    }

    @inline(never)
    public static func invalidKey() -> GatewayError {
        GatewayError(
            status: 401, type: "invalid_request_error", code: "invalid_api_key",
            message: "Incorrect API key provided. Check the key issued to you for this gateway.")
    }

    @inline(never)
    public static func revokedKey() -> GatewayError {
        GatewayError(
            status: 401, type: "invalid_request_error", code: "api_key_revoked",
            message: "The API key provided has been revoked.")
    }

    @inline(never)
    public static func expiredKey() -> GatewayError {
        GatewayError(
            status: 401, type: "invalid_request_error", code: "api_key_expired",
            message: "The API key provided has expired.")
    }

    /// A verified JWT whose claims the gateway cannot use (says which claim, never its value).
    @inline(never)
    public static func invalidToken(_ reason: String) -> GatewayError {
        GatewayError(status: 401, type: "invalid_request_error", code: "invalid_token", message: "Unusable token: \(reason).")
    }

    /// The gateway accepts only verified JWTs and this request had none.
    @inline(never)
    public static func missingToken() -> GatewayError {
        GatewayError(
            status: 401, type: "invalid_request_error", code: "missing_token",
            message: "You didn't provide a valid token. Send a JWT as 'Authorization: Bearer <token>'.")
    }

    @inline(never)
    public static func modelNotAllowed(_ model: String) -> GatewayError {
        GatewayError(
            status: 403, type: "invalid_request_error", code: "model_not_allowed",
            message: "Your API key is not allowed to use the model `\(model)`.", param: "model")
    }
}

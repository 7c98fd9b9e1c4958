// The access log sluiced gives every listener with `access_log: true` (the default): one line a
// request on Envoy's stdout, with who called, what was routed where, the tokens and the cost.
//
// The `sluice` filter writes each dynamic-metadata key per request whether anything reads it or
// not (each is an edit Envoy makes to a protobuf Struct), so the filter config names the keys this
// format prints, and none when no listener logs (`ConfigCompiler`).

/// The access log format of sluiced's listeners, and the metadata keys it reads.
public enum AccessLog {
    public static let format =
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(:PATH)%\" %RESPONSE_CODE% %RESPONSE_CODE_DETAILS% "
        + "consumer=%DYNAMIC_METADATA(sluice:consumer)% model=%DYNAMIC_METADATA(sluice:model)% "
        + "route=%DYNAMIC_METADATA(sluice:route)% backend=%DYNAMIC_METADATA(sluice:backend)% "
        + "tokens_in=%DYNAMIC_METADATA(sluice:input_tokens)% tokens_out=%DYNAMIC_METADATA(sluice:output_tokens)% "
        + "cost_usd=%DYNAMIC_METADATA(sluice:cost_usd)% %DURATION%ms\n"

    /// The `sluice` keys `format` reads, by name, in the order they appear.
    static let metadataKeys: [String] = {
        var names: [String] = []
        var rest = Substring(format)
        let opening = "%DYNAMIC_METADATA(sluice:"
        while let start = rest.firstRange(of: opening) {
            rest = rest[start.upperBound...]
            guard let end = rest.firstIndex(where: { $0 == ")" || $0 == ":" }) else { break }
            let name = String(rest[..<end])
            if !names.contains(name) { names.append(name) }
            rest = rest[end...]
        }
        return names
    }()
}

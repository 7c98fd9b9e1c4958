// The field names the loader accepts, per section. The loader refuses every other name (with a
// did-you-mean against this table), and a test walks `sluice.schema.json` and compares it with
// this table, so the editor's completion and the loader can never disagree.

/// The accepted field names of each section of a config, keyed by section path.
///
/// Keys name sections the way paths do, with `[]` for "every element of a list" and `{}` for
/// "every value of a map whose keys are free" (`backends[].aws`, `prices{}`). Maps whose keys
/// are free and whose values are plain strings (`model_overrides`, `headers`, `overrides`) have no
/// entry of their own.
public enum ConfigFields {
    static let limits = [
        "requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute",
        "budget_usd_per_day", "budget_usd_per_month",
    ]
    /// Limits of a scope the fleet leases (a consumer, team or model): the limits and what the
    /// scope does when sluiced is unreachable past its lease.
    static let leasedLimits = limits + ["lease_failure"]
    static let leaseFailure = ["policy", "local_cap_percent"]
    static let price = ["input", "cached_input", "cache_write", "output", "search_unit"]
    static let credential = ["env", "file", "sds", "sds_path", "demo_value"]
    static let backend = [
        "name", "schema", "address", "addresses", "credential", "azure", "aws", "gcp", "model_overrides",
        "default_max_tokens", "path_prefix", "http2", "tls_verify", "responses_api",
    ]
    static let pool = [
        "name", "schema", "endpoints", "credential", "model_overrides", "default_max_tokens", "path_prefix", "http2",
        "tls_verify", "lb", "endpoint_picker", "responses_api",
    ]
    static let endpointPicker = [
        "metrics_path", "stale_after_ms", "saturation_queue", "saturation_kv_cache", "prefix_weight", "queue_weight",
        "kv_cache_weight", "lora_weight", "session_weight", "prefix_blocks_per_endpoint", "session_header",
        "session_entries",
    ]

    /// Names other gateways (LiteLLM, Envoy AI Gateway, OpenAI SDKs) use for a field: section
    /// path → unknown name → the field meant (if one) and what to say.
    static let familiarNames: [String: [String: (field: String?, hint: String)]] = [
        "backends[]": [
            "url": ("address", "; did you mean 'address'?"), "base_url": ("address", "; did you mean 'address'?"),
            "api_base": ("address", "; did you mean 'address'?"),
            "endpoints": ("addresses", "; did you mean 'addresses'? ('endpoints' is for pools)"),
            "api_key": (
                "credential",
                "; did you mean 'credential'? It names where the key is: { env: OPENAI_API_KEY }, { file: PATH } or { sds: NAME }"
            ),
        ],
        "pools[]": [
            "address": ("endpoints", "; a pool lists its servers under 'endpoints'"),
            "addresses": ("endpoints", "; a pool lists its servers under 'endpoints'"),
            "url": ("endpoints", "; a pool lists its servers under 'endpoints'"),
        ],
        "models[]": [
            "model_name": ("id", "; did you mean 'id'?"), "name": ("id", "; did you mean 'id'?"),
            "model": ("upstream_model", "; did you mean 'upstream_model'? (the name sent upstream)"),
            "rpm": ("limits", "; limits go under 'limits': { requests_per_minute: N }"),
            "tpm": ("limits", "; limits go under 'limits': { tokens_per_minute: N }"),
        ],
        "consumers[]": ["api_key": ("key_sha256", "; did you mean 'key_sha256'?")],
    ]

    /// Section path → the field names accepted there, in documentation order.
    public static let sections: [String: [String]] = [
        "": ["listeners", "backends", "pools", "models", "routes", "consumers", "teams", "prices", "model_limits", "gateway"],
        "listeners[]": ["name", "address", "port", "tls", "access_log"],
        "listeners[].tls": ["cert_file", "key_file"],
        "backends[]": backend,
        "backends[].credential": credential,
        "backends[].azure": ["api_version"],
        "backends[].aws": ["region", "access_key_id", "secret_access_key", "session_token"],
        "backends[].aws.access_key_id": credential,
        "backends[].aws.secret_access_key": credential,
        "backends[].aws.session_token": credential,
        "backends[].gcp": ["project", "location"],
        "pools[]": pool,
        "pools[].credential": credential,
        "pools[].endpoint_picker": endpointPicker,
        "models[]": [
            "id", "backend", "fallback", "upstream_model", "overrides", "owned_by", "created", "aliases", "limits", "price",
            "lora_adapter",
        ],
        "models[].limits": leasedLimits,
        "models[].limits.lease_failure": leaseFailure,
        "models[].price": price,
        "routes[]": ["models", "model_prefix", "headers", "backend", "fallback"],
        "consumers[]": ["name", "key", "key_sha256", "team", "models", "expires_at", "disabled", "limits"],
        "consumers[].limits": leasedLimits,
        "consumers[].limits.lease_failure": leaseFailure,
        "teams[]": ["name", "limits"],
        "teams[].limits": leasedLimits,
        "teams[].limits.lease_failure": leaseFailure,
        "prices{}": price,
        "model_limits{}": leasedLimits,
        "model_limits{}.lease_failure": leaseFailure,
        "gateway": [
            "max_request_bytes", "response_cost_header", "default_output_tokens_estimate", "timeout_seconds",
            "default_backend", "jwt", "quota_lease_failure",
        ],
        "gateway.jwt": [
            "payload_header", "payload_metadata_key", "metadata_namespace", "subject_claim", "team_claim", "models_claim",
            "models", "consumer_prefix", "required", "limits", "max_subjects",
        ],
        "gateway.jwt.limits": limits,
        "gateway.quota_lease_failure": leaseFailure,
    ]
}

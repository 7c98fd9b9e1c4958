// The demo gateway's config, embedded: what `sluiced` serves when no --config is given.
// A copy of envoy-module/sluice.yaml (a test checks they are identical): edit both together.

extension SluiceConfig {
    /// The demo config (`envoy-module/sluice.yaml`): the provider simulators on
    /// 127.0.0.1:18101-18107 behind the gateway on 127.0.0.1:10000, demo key `sk-sluice-demo`.
    public static let defaultYAML = #"""
# yaml-language-server: $schema=../Sources/SluiceControl/sluice.schema.json
# The demo gateway (sluiced's embedded default): the provider simulators of sluice-sim
# (127.0.0.1:18101-18107, vLLM-like pool 18111-18114) behind one endpoint. Same gateway as envoy.yaml.
listeners:
  - { name: gateway, address: 127.0.0.1, port: 10000 }

backends:  # demo_value: the simulators' fake keys; real keys come from env, file or sds
  - { name: openai, schema: openai, address: http://127.0.0.1:18101, credential: { demo_value: sk-sim-openai } }
  - name: azure
    schema: azure_openai
    address: http://127.0.0.1:18102
    credential: { demo_value: sim-azure-key }
    azure: { api_version: "2024-10-21" }
  - { name: anthropic, schema: anthropic, address: http://127.0.0.1:18103, credential: { demo_value: sk-ant-sim }, default_max_tokens: 4096 }
  - name: bedrock
    schema: bedrock_converse
    address: http://127.0.0.1:18104
    aws: { region: us-east-1, access_key_id: { demo_value: AKIDSLUICESIM }, secret_access_key: { demo_value: sluice-sim-secret } }
  - { name: gemini, schema: gemini, address: http://127.0.0.1:18105, credential: { demo_value: sim-gemini-key } }
  - name: vertex
    schema: vertex_gemini
    address: http://127.0.0.1:18105
    credential: { demo_value: sim-vertex-token }
    gcp: { project: sluice-demo, location: us-central1 }
  - { name: vertex-claude, schema: vertex_anthropic, address: http://127.0.0.1:18105, credential: { demo_value: sim-vertex-token }, gcp: { project: sluice-demo, location: us-east5 } }
  - { name: bedrock-claude, schema: bedrock_anthropic, address: http://127.0.0.1:18104, aws: { region: us-east-1, access_key_id: { demo_value: AKIDSLUICESIM }, secret_access_key: { demo_value: sluice-sim-secret } } }
  - { name: cohere, schema: cohere, address: http://127.0.0.1:18107, credential: { demo_value: sim-cohere-key } }  # rerank

pools:  # self-hosted OpenAI-compatible servers (vLLM, SGLang, TGI, ...)
  - { name: local, endpoints: [http://127.0.0.1:18106] }
  - { name: vllm_pool, lb: endpoint_picker, endpoints: [http://127.0.0.1:18111, http://127.0.0.1:18112, http://127.0.0.1:18113, http://127.0.0.1:18114], endpoint_picker: { session_header: x-session-id } }  # sluice-sim --vllm-pool 4; scored on live metrics, sessions kept together

models:  # price: USD per 1M tokens
  - { id: gpt-4o-mini, backend: openai, created: 1721172741, price: { input: 0.15, cached_input: 0.075, output: 0.6 } }
  - { id: text-embedding-3-small, backend: openai, created: 1705948997, price: { input: 0.02, output: 0 } }
  - { id: azure-gpt-4o-mini, backend: azure, upstream_model: gpt-4o-mini-deployment, created: 1721172741, price: { input: 0.165, cached_input: 0.083, output: 0.66 } }
  - { id: claude-sonnet-4-6, backend: anthropic, created: 1771286400, price: { input: 3.0, cached_input: 0.3, cache_write: 3.75, output: 15.0 } }
  - { id: bedrock-claude-haiku, backend: bedrock, upstream_model: "anthropic.claude-3-5-haiku-20241022-v1:0", owned_by: aws-bedrock, created: 1729555200, price: { input: 0.8, cached_input: 0.08, output: 4.0 } }
  - { id: gemini-2.5-flash, backend: gemini, owned_by: google, created: 1750118400, price: { input: 0.3, cached_input: 0.075, output: 2.5 } }
  - { id: gemini-embedding-001, backend: gemini, owned_by: google, created: 1752537600, price: { input: 0.15, output: 0 } }
  - { id: vertex-gemini-2.5-flash, backend: vertex, upstream_model: gemini-2.5-flash, owned_by: google-vertex, created: 1750118400, price: { input: 0.3, cached_input: 0.075, output: 2.5 } }
  - { id: vertex-claude-sonnet-4-5, backend: vertex-claude, upstream_model: "claude-sonnet-4-5@20250929", owned_by: google-vertex, created: 1759104000, price: { input: 3.0, cached_input: 0.3, cache_write: 3.75, output: 15.0 } }
  - { id: bedrock-invoke-claude-haiku, backend: bedrock-claude, upstream_model: "anthropic.claude-3-5-haiku-20241022-v1:0", owned_by: aws-bedrock, created: 1729555200, price: { input: 0.8, cached_input: 0.08, cache_write: 1.0, output: 4.0 } }
  - { id: sim-llama-3-8b, backend: local, owned_by: self-hosted, created: 1713312000 }
  - { id: llama-3.1-8b-instruct, backend: vllm_pool, owned_by: self-hosted, created: 1721606400 }
  # Rerank (/v1/rerank, /cohere/v2/rerank): Cohere bills search units (one query over up to 100 documents).
  - { id: rerank-v3.5, backend: cohere, owned_by: cohere, created: 1733097600, price: { input: 0, output: 0, search_unit: 0.002 } }
  - { id: bge-reranker-v2-m3, backend: local, owned_by: self-hosted, created: 1710460800 }
  # OpenAI first; on 429, 5xx or a failed connection the retry goes to Azure.
  - { id: gpt-4o-mini-failover, fallback: [openai, azure], upstream_model: gpt-4o-mini, overrides: { azure: gpt-4o-mini-deployment }, created: 1721172741 }
  - { id: gpt-image-1, backend: openai, created: 1745452800, price: { input: 5.0, output: 40.0 } }  # images, audio: README "Images and audio"
  - { id: tts-1, backend: openai, created: 1681940951, price: { input: 15.0, output: 0 } }  # per 1M input characters
  - { id: whisper, backend: openai, upstream_model: whisper-1, created: 1677532384, price: { input: 100.0, output: 0 } }  # per 1M audio seconds
  - { id: azure-dall-e-3, backend: azure, upstream_model: dall-e-3-deployment, created: 1698785189, price: { input: 0, output: 40000 } }  # per 1M images
  - { id: azure-tts, backend: azure, upstream_model: tts-deployment, created: 1681940951, price: { input: 15.0, output: 0 } }
  - { id: azure-whisper, backend: azure, upstream_model: whisper-deployment, created: 1677532384, price: { input: 100.0, output: 0 } }

consumers:
  - { name: demo, key: sk-sluice-demo, team: demo-team, limits: { requests_per_minute: 600, tokens_per_minute: 200000, budget_usd_per_day: 5 } }

teams:
  - { name: demo-team, limits: { tokens_per_minute: 500000, budget_usd_per_month: 100 } }

gateway: { max_request_bytes: 8388608, default_backend: local }  # default_backend: the catch-all route

"""#

    /// The name diagnostics give the embedded default.
    public static let defaultFileName = "sluice.yaml (embedded default)"

    /// The embedded default, loaded.
    public static func loadDefault() throws(ConfigLoadError) -> Loaded {
        try load(yaml: defaultYAML, file: defaultFileName)
    }
}

// sluice.yaml for Claude on the clouds: `vertex_anthropic` needs `gcp` and a credential (an OAuth token),
// `bedrock_anthropic` needs `aws` and takes no credential; both default to the cloud's public endpoint.
import SluiceCore
import Testing

@testable import SluiceControl

@Suite struct ClaudeCloudConfigTests {
    @Test func bothSchemasLoadWithTheCloudsHosts() throws {
        let yaml = """
            backends:
              - { name: vc, schema: vertex_anthropic, credential: { file: /run/token }, gcp: { project: p, location: us-east5 } }
              - { name: vg, schema: vertex_anthropic, credential: { file: /run/token }, gcp: { project: p, location: global } }
              - { name: bc, schema: bedrock_anthropic, aws: { region: eu-west-1, access_key_id: { env: A }, secret_access_key: { env: B } } }
            models:
              - { id: claude, backend: vc }
            """
        let backends = try SluiceConfig.load(yaml: yaml).config.backends
        #expect(backends.map(\.schema) == [.vertexAnthropic, .vertexAnthropic, .bedrockAnthropic])
        #expect(backends.map { $0.endpoints.first?.host } == [
            "us-east5-aiplatform.googleapis.com", "aiplatform.googleapis.com", "bedrock-runtime.eu-west-1.amazonaws.com",
        ])
        #expect(backends[0].gcp?.project == "p" && backends[2].aws?.region == "eu-west-1")
    }

    @Test func missingAndMisplacedSettingsAreNamed() {
        let yaml = """
            backends:
              - { name: a, schema: vertex_anthropic, address: https://x.example }
              - { name: b, schema: bedrock_anthropic, address: https://y.example }
              - { name: c, schema: bedrock_anthropic, credential: { env: K }, gcp: { project: p, location: l }, aws: { region: us-east-1, access_key_id: { env: A }, secret_access_key: { env: B } } }
              - { name: d, schema: vertex_anthropic, credential: { env: K }, gcp: { project: p } }
            pools:
              - { name: e, schema: vertex_anthropic, endpoints: [http://10.0.0.3:8000] }
            models:
              - { id: m, backend: a }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:2:5: backends[0]: missing required field 'gcp' (project and location) for schema vertex_anthropic",
            "sluice.yaml:2:5: backends[0]: missing required field 'credential' for schema vertex_anthropic (env, file or sds)",
            "sluice.yaml:3:5: backends[1]: missing required field 'aws' (region and keys) for schema bedrock_anthropic",
            "sluice.yaml:4:43: backends[2].credential: bedrock_anthropic signs with the keys under 'aws'; remove 'credential'",
            "sluice.yaml:4:67: backends[2].gcp: only applies to schema vertex_gemini or vertex_anthropic; this backend's schema is bedrock_anthropic",
            "sluice.yaml:5:5: backends[3]: missing required field 'address' (like https://api.openai.com or http://127.0.0.1:8000)",
            "sluice.yaml:5:71: backends[3].gcp: missing required field 'location'",
            "sluice.yaml:7:24: pools[0].schema: a pool's servers speak openai, anthropic or gemini; vertex_anthropic is a cloud provider's API (a backend)",
        ])
    }
}

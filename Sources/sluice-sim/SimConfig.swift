import Foundation
import SluiceCore

/// Credentials each simulator accepts; defaults match the README and the integration tests.
struct SimCredentials: Sendable {
    var openAIKey = "sk-sim-openai"
    var azureKey = "sim-azure-key"
    var anthropicKey = "sk-ant-sim"
    var awsAccessKeyID = "AKIDSLUICESIM"
    var awsSecretAccessKey = "sluice-sim-secret"
    var awsRegion = "us-east-1"
    var awsService = "bedrock"
    var geminiKey = "sim-gemini-key"
    var vertexToken = "sim-vertex-token"
    /// The optional key of the self-hosted server (`Bearer sim-local`; no header is also accepted).
    var compatKey = "sim-local"
    /// The model the self-hosted server serves (`/v1/models`, and the only `model` it accepts).
    var compatModel = "sim-llama-3-8b"
    /// The reranker the self-hosted server also serves (`/v1/rerank`, vLLM's shape).
    var compatRerankModel = "bge-reranker-v2-m3"
    var cohereKey = "sim-cohere-key"

    /// Reads overrides from a JSON file such as
    /// `{"openai":{"api_key":"…"},"bedrock":{"access_key_id":"…","secret_access_key":"…","region":"…"}}`.
    static func load(path: String?) throws -> SimCredentials {
        var credentials = SimCredentials()
        guard let path else { return credentials }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SimConfigError(message: "cannot read config file \(path)")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(Array(data))
        } catch {
            throw SimConfigError(message: "config file \(path) is not JSON: \(error)")
        }
        func string(_ section: String, _ key: String) -> String? { root[section]?[key]?.stringValue }
        credentials.openAIKey = string("openai", "api_key") ?? credentials.openAIKey
        credentials.azureKey = string("azure", "api_key") ?? credentials.azureKey
        credentials.anthropicKey = string("anthropic", "api_key") ?? credentials.anthropicKey
        credentials.awsAccessKeyID = string("bedrock", "access_key_id") ?? credentials.awsAccessKeyID
        credentials.awsSecretAccessKey = string("bedrock", "secret_access_key") ?? credentials.awsSecretAccessKey
        credentials.awsRegion = string("bedrock", "region") ?? credentials.awsRegion
        credentials.geminiKey = string("gemini", "api_key") ?? credentials.geminiKey
        credentials.vertexToken = string("gemini", "vertex_token") ?? credentials.vertexToken
        credentials.compatKey = string("compat", "api_key") ?? credentials.compatKey
        credentials.compatModel = string("compat", "model") ?? credentials.compatModel
        credentials.compatRerankModel = string("compat", "rerank_model") ?? credentials.compatRerankModel
        credentials.cohereKey = string("cohere", "api_key") ?? credentials.cohereKey
        return credentials
    }
}

struct SimConfigError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Constant-time comparison of two secrets (length leaks, content does not).
func secretsEqual(_ lhs: String, _ rhs: String) -> Bool {
    let a = Array(lhs.utf8)
    let b = Array(rhs.utf8)
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices {
        difference |= a[index] ^ b[index]
    }
    return difference == 0
}

import Testing

@testable import SluiceCore

/// Provider credentials delivered by sluiced over the ADS stream (`"sds": "ads"`).
@Suite struct CredentialSourceADSTests {
    @Test func adsSecretParsesAndNamesTheADSConfigSource() throws {
        let config = try BackendConfig.parse(Array(#"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"}}"#.utf8))
        #expect(config.credential == .secret(name: "openai-key", sds: .ads))
        #expect(config.credential?.configSourceJSON == #"{"ads":{},"resource_api_version":"V3"}"#)
    }

    @Test func bootstrapAndFileSecretsAreUnchanged() throws {
        let plain = try BackendConfig.parse(Array(#"{"backend":"a","schema":"anthropic","credential":{"secret":"k"}}"#.utf8))
        #expect(plain.credential == .secret(name: "k", sds: .bootstrap))
        #expect(plain.credential == .secret(name: "k", sdsPath: nil))
        #expect(plain.credential?.configSourceJSON == "")
        let file = try BackendConfig.parse(Array(#"{"backend":"a","schema":"anthropic","credential":{"secret":"k","sds_path":"/s/k.yaml"}}"#.utf8))
        #expect(file.credential == .secret(name: "k", sds: .file("/s/k.yaml")))
    }

    @Test func awsCredentialsMayComeOverADS() throws {
        let config = try BackendConfig.parse(Array("""
            {"backend":"bedrock","schema":"bedrock_converse",
             "aws":{"region":"us-east-1","access_key_id":{"secret":"aws-id","sds":"ads"},"secret_access_key":{"secret":"aws-key","sds":"ads"}}}
            """.utf8))
        #expect(config.aws?.accessKeyID == .secret(name: "aws-id", sds: .ads))
        #expect(config.aws?.secretAccessKey == .secret(name: "aws-key", sds: .ads))
    }

    @Test(arguments: [
        (#"{"secret":"k","sds":"file"}"#, "credential.sds: unknown SDS source 'file'; the only one is 'ads'"),
        (#"{"secret":"k","sds":"ads","sds_path":"/s/k.yaml"}"#, "credential: has both 'sds_path' and 'sds'; give only one"),
        (#"{"value":"v","sds":"ads"}"#, "credential.sds: only applies to 'secret'"),
        (#"{"secret":"k","sds":7}"#, "credential.sds: expected a string, got number"),
    ])
    func invalidADSCredentialsAreRefused(credential: String, message: String) {
        do {
            _ = try BackendConfig.parse(Array(#"{"backend":"a","schema":"anthropic","credential":\#(credential)}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == message)
        }
    }
}

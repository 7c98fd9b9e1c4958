// The lists of backend schemas in sluice.schema.json and in the ConfigLanguage article, written
// from the adapters (`BackendSchema.adapter`), so a new schema reaches them without a hand edit.
// A test compares the checked-in text with what the adapters say and fails, naming the command,
// when it is stale; that command (`SLUICE_UPDATE_FIXTURES=1`) rewrites it, as it does the
// translation fixtures. The prose around each list is written here too.
import Foundation
import SluiceCore
import Testing

/// What the config language says about one backend schema, read from its adapter.
struct SchemaFacts {
    let schema: BackendSchema
    let required: BackendSettings
    let optional: BackendSettings
    let servesPools: Bool
    let defaultAddress: DefaultAddress

    /// Where a backend goes when its config gives no `address`.
    enum DefaultAddress: Equatable {
        /// Nowhere: the config must give one.
        case none
        case fixed(host: String)
        /// The provider's endpoint in `aws.region` (the host shown for an example region).
        case inAWSRegion(example: String, host: String)
        /// The provider's endpoint in `gcp.location` (the host shown for an example location).
        case inGCPLocation(example: String, host: String)
    }

    init(_ schema: BackendSchema) {
        let adapter = schema.adapter
        self.schema = schema
        required = adapter.requiredSettings(of: schema)
        optional = adapter.optionalSettings(of: schema)
        servesPools = adapter.servesPools(of: schema)
        let region = "us-east-1"
        let location = "us-central1"
        if let host = adapter.defaultHost(of: schema, awsRegion: nil, gcpLocation: nil) {
            defaultAddress = .fixed(host: host)
        } else if let host = adapter.defaultHost(of: schema, awsRegion: region, gcpLocation: nil) {
            defaultAddress = .inAWSRegion(example: region, host: host)
        } else if let host = adapter.defaultHost(of: schema, awsRegion: nil, gcpLocation: location) {
            defaultAddress = .inGCPLocation(example: location, host: host)
        } else {
            defaultAddress = .none
        }
    }

    var name: String { schema.rawValue }
    var summary: String { schema.adapter.summary(of: schema) }

    /// Every schema, in `BackendSchema`'s order.
    static let all = BackendSchema.allCases.map(SchemaFacts.init)
    /// The schemas a `pools` entry may speak.
    static var pooled: [SchemaFacts] { all.filter(\.servesPools) }
}

/// The generated text: values of sluice.schema.json and a block of the ConfigLanguage article.
enum ProviderLists {
    static let updateCommand = "SLUICE_UPDATE_FIXTURES=1 swift test --filter ProviderListsTests"

    /// "a", "a and b", "a, b and c".
    static func list(_ names: [String]) -> String {
        guard let last = names.last else { return "" }
        return names.count == 1 ? last : names.dropLast().joined(separator: ", ") + " and " + last
    }

    static func names(_ schemas: [SchemaFacts], code: Bool = false) -> [String] {
        schemas.map { code ? "`\($0.name)`" : $0.name }
    }

    /// "schema a" or "schemas a and b".
    static func schemaWord(_ schemas: [SchemaFacts]) -> String {
        (schemas.count == 1 ? "schema " : "schemas ") + list(names(schemas))
    }

    // MARK: sluice.schema.json

    static let schemaFile = "Sources/SluiceControl/sluice.schema.json"

    /// Each generated value of sluice.schema.json, by its path of member names.
    static func schemaValues(pools: [SchemaFacts] = SchemaFacts.pooled) -> [(path: [String], value: JSONValue)] {
        let all = SchemaFacts.all
        let backend = ["properties", "backends", "items", "properties"]
        let pool = ["properties", "pools", "items", "properties"]
        func names(_ schemas: [SchemaFacts]) -> JSONValue { .array(schemas.map { .string($0.name) }) }
        func needing(_ setting: BackendSettings, in schemas: [SchemaFacts] = all) -> [SchemaFacts] {
            schemas.filter { $0.required.contains(setting) }
        }
        return [
            (backend + ["schema", "enum"], names(all)),
            (pool + ["schema", "enum"], names(pools)),
            (backend + ["address", "description"], .string(addressDescription())),
            (backend + ["credential", "description"], .string(credentialDescription(all))),
            (pool + ["credential", "description"], .string(credentialDescription(pools))),
            (backend + ["azure", "description"], .string("Azure OpenAI settings (\(schemaWord(needing(.azure)))).")),
            (backend + ["aws", "description"],
             .string("AWS settings (\(schemaWord(needing(.aws)))): requests are SigV4-signed.")),
            (backend + ["gcp", "description"], .string("Google Cloud settings (\(schemaWord(needing(.gcp)))).")),
            (backend + ["responses_api", "description"], .string(responsesAPIDescription(all))),
            (pool + ["responses_api", "description"], .string(responsesAPIDescription(pools))),
        ]
    }

    static func addressDescription() -> String {
        var required: [SchemaFacts] = []
        var fixed: [SchemaFacts] = []
        var inRegion: [SchemaFacts] = []
        var inLocation: [SchemaFacts] = []
        for facts in SchemaFacts.all {
            switch facts.defaultAddress {
            case .none: required.append(facts)
            case .fixed: fixed.append(facts)
            case .inAWSRegion: inRegion.append(facts)
            case .inGCPLocation: inLocation.append(facts)
            }
        }
        var defaulted = names(fixed)
        if !inRegion.isEmpty { defaulted.append(list(names(inRegion)) + " (from aws.region)") }
        if !inLocation.isEmpty { defaulted.append(list(names(inLocation)) + " (from gcp.location)") }
        var text = "Where the backend is: scheme, host and optional port (https://api.openai.com, http://127.0.0.1:8000). "
            + "https means TLS with the host as SNI; the port defaults to 443 or 80."
        if !required.isEmpty { text += " Required for \(list(names(required)))" }
        if !defaulted.isEmpty {
            text += (required.isEmpty ? " " : "; ") + defaulted.joined(separator: ", ")
                + " default to the provider's public endpoint"
        }
        return text + "."
    }

    static func credentialDescription(_ schemas: [SchemaFacts]) -> String {
        let withKey = schemas.filter { $0.required.contains(.credential) && !$0.required.contains(.gcp) }
        let withToken = schemas.filter { $0.required.contains(.credential) && $0.required.contains(.gcp) }
        let signing = schemas.filter { $0.required.contains(.aws) }
        var clauses: [String] = []
        var requiredFor: [String] = []
        if !withKey.isEmpty { requiredFor.append(list(names(withKey))) }
        if !withToken.isEmpty {
            requiredFor.append("for " + list(names(withToken)) + ", whose key is an OAuth access token")
        }
        if !requiredFor.isEmpty { clauses.append("required for " + requiredFor.joined(separator: ", and ")) }
        if !signing.isEmpty { clauses.append(list(names(signing)) + (signing.count == 1 ? " uses" : " use") + " `aws`") }
        return "The key sent to the backend" + (clauses.isEmpty ? "." : " (" + clauses.joined(separator: "; ") + ").")
    }

    static func responsesAPIDescription(_ schemas: [SchemaFacts]) -> String {
        let taking = schemas.filter { $0.optional.contains(.responsesAPI) }
        return (taking.count == 1 ? "Schema " : "Schemas ") + list(names(taking))
            + " only: false for a server without /v1/responses (SGLang, TGI, llama.cpp); "
            + "Responses clients then reach its chat completions through the gateway's translation (default true)."
    }

    /// sluice.schema.json as it should be: the checked-in document with the generated values put in.
    static func expectedSchemaText(from checkedIn: JSONValue) throws -> String {
        var document = checkedIn
        for (path, value) in schemaValues() {
            do {
                document = try document.replacing(path, with: value)
            } catch {
                throw GenerationError("\(schemaFile) has no member \(path.joined(separator: ".")) to write")
            }
        }
        return PythonStyleJSON.text(document)
    }

    // MARK: ConfigLanguage.md

    static let articleFile = "Sources/SluiceControl/SluiceControl.docc/ConfigLanguage.md"
    static let blockStart = "<!-- The table of schemas is generated from the adapters (ProviderAdapter); after changing one, run `"
        + updateCommand + "`. -->"
    static let blockEnd = "<!-- End of the generated table of schemas. -->"

    /// The table of schemas in the backends section of the article.
    static func schemaTable() -> String {
        var lines = [
            "| `schema` | what it is | without `address` | requires | in `pools` |",
            "| --- | --- | --- | --- | --- |",
        ]
        for facts in SchemaFacts.all {
            let address: String
            switch facts.defaultAddress {
            case .none: address = "`address` required"
            case .fixed(let host): address = "`https://\(host)`"
            case .inAWSRegion(let region, let host): address = "`https://\(host)` for `aws.region: \(region)`"
            case .inGCPLocation(let location, let host): address = "`https://\(host)` for `gcp.location: \(location)`"
            }
            lines.append(
                "| `\(facts.name)` | \(facts.summary) | \(address) | \(requirements(facts)) | \(facts.servesPools ? "yes" : "no") |")
        }
        return lines.joined(separator: "\n")
    }

    /// The settings a schema requires, as the loader checks them (ConfigLoader).
    static func requirements(_ facts: SchemaFacts) -> String {
        let order: [(BackendSettings, String)] = [(.azure, "`azure`"), (.aws, "`aws`"), (.gcp, "`gcp`"), (.credential, "`credential`")]
        var parts = order.filter { facts.required.contains($0.0) }.map(\.1)
        if facts.required.contains(.gcp), facts.required.contains(.credential), let last = parts.indices.last {
            parts[last] += " (an OAuth access token)"
        }
        if facts.required.contains(.aws), let first = parts.indices.first {
            parts[first] += " (its keys sign each request, SigV4); no `credential`"
        }
        var text = parts.isEmpty ? "nothing; `credential` optional" : parts.joined(separator: ", ")
        if facts.optional.contains(.responsesAPI) { text += "; takes `responses_api`" }
        return text
    }

    /// The article with its generated block rewritten.
    static func expectedArticle(from article: String) throws -> String {
        guard let start = article.range(of: blockStart), let end = article.range(of: blockEnd),
            start.upperBound <= end.lowerBound
        else {
            throw GenerationError("\(articleFile) lacks the generated block's markers:\n\(blockStart)\n...\n\(blockEnd)")
        }
        // Blank lines around the table, so neither comment is read as part of it.
        return String(article[..<start.upperBound]) + "\n\n" + schemaTable() + "\n\n" + String(article[end.lowerBound...])
    }

    struct GenerationError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

@Suite struct ProviderListsTests {
    static var updating: Bool { ProcessInfo.processInfo.environment["SLUICE_UPDATE_FIXTURES"] != nil }

    static func url(_ path: String) -> URL { DefaultConfigTests.repository.appendingPathComponent(path) }

    /// Compares `expected` with the file at `path`, or writes it there in update mode.
    static func check(_ path: String, expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = try String(contentsOf: url(path), encoding: .utf8)
        if actual == expected { return }
        if updating {
            try Data(expected.utf8).write(to: url(path))
            return
        }
        let line = zip(actual.split(separator: "\n", omittingEmptySubsequences: false),
                       expected.split(separator: "\n", omittingEmptySubsequences: false))
            .enumerated().first { $0.element.0 != $0.element.1 }
        let detail = line.map { "first difference at line \($0.offset + 1):\n  checked in: \($0.element.0)\n  generated:  \($0.element.1)" }
            ?? "the files differ in length"
        Issue.record(
            "\(path) is stale (its schema lists come from the adapters): run `\(ProviderLists.updateCommand)` and review the diff; \(detail)",
            sourceLocation: sourceLocation)
    }

    @Test func theSchemaFileRoundTripsThroughThePrinter() throws {
        let bytes = try Data(contentsOf: Self.url(ProviderLists.schemaFile))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(PythonStyleJSON.text(try JSONParser.parse(Array(bytes))) == text,
                "the printer must reproduce the checked-in file byte for byte (json.dumps(indent=2, ensure_ascii=False))")
    }

    @Test func thePrinterEscapesAsPythonDoes() throws {
        // python3 -c 'import json; print(json.dumps({"a": ["x\"\\\n\t\u0001é/", 1.5, True, None, {}, []]}, indent=2, ensure_ascii=False))'
        let value: JSONValue = ["a": [.string("x\"\\\n\t\u{01}é/"), 1.5, true, nil, .object(JSONObject()), []]]
        #expect(PythonStyleJSON.text(value) == """
            {
              "a": [
                "x\\"\\\\\\n\\t\\u0001é/",
                1.5,
                true,
                null,
                {},
                []
              ]
            }

            """)
    }

    @Test func theSchemaFileListsWhatTheAdaptersSay() throws {
        let checkedIn = try JSONParser.parse(Array(try Data(contentsOf: Self.url(ProviderLists.schemaFile))))
        try Self.check(ProviderLists.schemaFile, expected: try ProviderLists.expectedSchemaText(from: checkedIn))
    }

    @Test func theArticleListsWhatTheAdaptersSay() throws {
        let article = try String(contentsOf: Self.url(ProviderLists.articleFile), encoding: .utf8)
        try Self.check(ProviderLists.articleFile, expected: try ProviderLists.expectedArticle(from: article))
    }

    @Test func everySchemaHasASummaryOnOneLine() {
        for facts in SchemaFacts.all {
            #expect(!facts.summary.isEmpty && !facts.summary.contains("\n") && !facts.summary.contains("|"), "\(facts.name)")
        }
    }
}

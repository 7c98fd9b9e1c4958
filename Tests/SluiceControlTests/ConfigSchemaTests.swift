// sluice.schema.json (editor completion) and the loader accept the same field names.
import Foundation
import SluiceControl
import SluiceCore
import Testing

@Suite struct ConfigSchemaTests {
    static func schema() throws -> JSONValue {
        let url = DefaultConfigTests.repository.appendingPathComponent("Sources/SluiceControl/sluice.schema.json")
        return try JSONParser.parse(Array(try Data(contentsOf: url)))
    }

    /// Section path → property names, walking objects, array items, map values and `$ref`s
    /// the way `ConfigFields.sections` names them.
    static func sections(of root: JSONValue) throws -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        func resolve(_ node: JSONValue) -> JSONValue {
            guard let ref = node["$ref"]?.stringValue, ref.hasPrefix("#/$defs/") else { return node }
            return root["$defs"]?[String(ref.dropFirst("#/$defs/".count))] ?? node
        }
        func walk(_ node: JSONValue, _ path: String) {
            let node = resolve(node)
            if let properties = node["properties"]?.objectValue {
                #expect(node["additionalProperties"] == .bool(false), "\(path) must refuse unknown fields")
                result[path] = Set(properties.keys)
                for (key, child) in properties.members {
                    #expect(child["description"]?.stringValue?.isEmpty == false, "\(path).\(key) has no description")
                    walk(child, path.isEmpty ? key : "\(path).\(key)")
                }
            }
            if let items = node["items"] { walk(items, path + "[]") }
            if let values = node["additionalProperties"], values.objectValue != nil { walk(values, path + "{}") }
        }
        walk(root, "")
        return result
    }

    @Test func theSchemaAndTheLoaderKnowTheSameFields() throws {
        let schema = try Self.schema()
        #expect(schema["$schema"]?.stringValue == "https://json-schema.org/draft/2020-12/schema")
        let fromSchema = try Self.sections(of: schema)
        let fromLoader = ConfigFields.sections.mapValues(Set.init)
        #expect(Set(fromSchema.keys) == Set(fromLoader.keys))
        for (section, fields) in fromLoader {
            #expect(fromSchema[section] == fields, "section '\(section)'")
        }
    }

    // The schema names and the lists of schemas in the descriptions are generated from the
    // adapters: ProviderListsTests.
}

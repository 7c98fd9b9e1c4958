// Any YAML document as a JSON value: for tests and tools that read Envoy YAML (the static
// bootstrap `sluiced render` writes and envoy-module/envoy.yaml) and compare it with a plan.
internal import Foundation
package import SluiceCore
internal import Yams

package enum YAMLJSON {
    /// The document as JSON: mappings become objects (in order), sequences arrays, scalars what
    /// their resolved YAML tag says (integers and floats numbers, booleans, null, strings).
    package static func parse(_ yaml: String) throws -> JSONValue {
        guard let node = try Yams.compose(yaml: yaml) else { return .null }
        return convert(node)
    }

    static func convert(_ node: Node) -> JSONValue {
        switch node {
        case .mapping(let mapping):
            return .object(JSONObject(mapping.map { (key: $0.key.scalar?.string ?? "", value: convert($0.value)) }))
        case .sequence(let sequence):
            return .array(sequence.map(convert))
        case .alias:
            return .null
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool) ?? .string(scalar.string)
            case .int, .float:
                let text = scalar.string.replacingOccurrences(of: "_", with: "")
                if let number = JSONNumber(text) { return .number(number) }
                if let double = Double(text), let number = JSONNumber(double) { return .number(number) }
                return .string(scalar.string)
            default: return .string(scalar.string)
            }
        }
    }
}

import SluiceCore
import Testing

@Suite("JSONWriter")
struct JSONWriterTests {
    private func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Escaping

    @Test(arguments: [
        ("", #""""#),
        ("plain", #""plain""#),
        ("\"", #""\"""#),
        ("\\", #""\\""#),
        ("/", #""/""#),
        ("\n", #""\n""#),
        ("\r", #""\r""#),
        ("\t", #""\t""#),
        ("\u{08}", #""\b""#),
        ("\u{0C}", #""\f""#),
        ("\u{00}", #""\u0000""#),
        ("\u{01}", #""\u0001""#),
        ("\u{1B}", #""\u001b""#),
        ("\u{1F}", #""\u001f""#),
        ("\u{20}", #"" ""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("é", "\"é\""),
        ("😀", "\"😀\""),
        ("\u{2028}", "\"\u{2028}\""),
        ("a\"b\\c\nd", #""a\"b\\c\nd""#),
    ])
    func escapingTable(input: String, expected: String) throws {
        #expect(text(JSONWriter.escaped(input)) == expected)
        // Whatever we escape must parse back to the original string.
        #expect(try JSONParser.parse(JSONWriter.escaped(input)) == .string(input))
    }

    @Test func everyASCIIScalarRoundTrips() throws {
        let all = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        #expect(try JSONParser.parse(JSONWriter.escaped(all)) == .string(all))
    }

    // MARK: Structure

    @Test func commasInNestedStructures() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a")
        writer.beginArray()
        writer.int(1)
        writer.int(2)
        writer.beginObject()
        writer.key("b")
        writer.null()
        writer.endObject()
        writer.beginArray()
        writer.endArray()
        writer.endArray()
        writer.key("c")
        writer.beginObject()
        writer.endObject()
        writer.key("d")
        writer.string("x")
        writer.key("e")
        writer.bool(true)
        writer.key("f")
        writer.bool(false)
        writer.endObject()
        #expect(text(writer.bytes) == #"{"a":[1,2,{"b":null},[]],"c":{},"d":"x","e":true,"f":false}"#)
    }

    @Test func nonFiniteDoublesAreWrittenAsNull() {
        var writer = JSONWriter()
        writer.beginArray()
        for value in [Double.infinity, -Double.infinity, Double.nan, 1.5, -0.0, 1e300, 0.1, 100] {
            writer.double(value)
        }
        writer.endArray()
        #expect(text(writer.bytes) == "[null,null,null,1.5,-0.0,1e+300,0.1,100.0]")
        #expect(throws: Never.self) { try JSONParser.parse(writer.bytes) }
    }

    @Test func integerExtremes() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.int(Int64.min)
        writer.int(Int64.max)
        writer.int(0)
        writer.int(-7)
        writer.int(10)
        writer.uint(UInt64.max)
        writer.uint(0)
        writer.uint(1_000_000)
        writer.endArray()
        let expected = "[-9223372036854775808,9223372036854775807,0,-7,10,18446744073709551615,0,1000000]"
        #expect(text(writer.bytes) == expected)
    }

    @Test func rawPassesScannedValuesThrough() throws {
        let body = Array(#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi\n"}]}"#.utf8)
        let scanner = JSONScanner(body)
        let messages = try #require(try scanner.findTopLevel("messages"))
        var writer = JSONWriter(reservingCapacity: body.count)
        writer.beginObject()
        writer.key("model")
        writer.string("claude")
        writer.key("messages")
        writer.raw(body[messages])
        writer.key("max_tokens")
        writer.int(16)
        writer.endObject()
        let expected = #"{"model":"claude","messages":[{"role":"user","content":"hi\n"}],"max_tokens":16}"#
        #expect(text(writer.bytes) == expected)
    }

    @Test func appendsToExistingBytesAndWritesTopLevelValuesWithoutCommas() {
        var writer = JSONWriter(bytes: Array("data: ".utf8))
        writer.beginObject()
        writer.key("n")
        writer.number(JSONNumber(1))
        writer.endObject()
        writer.bytes.append(contentsOf: Array("\n\ndata: ".utf8))
        writer.beginArray()
        writer.endArray()
        writer.bytes.append(UInt8(ascii: "\n"))
        writer.string("x")
        #expect(text(writer.bytes) == "data: {\"n\":1}\n\ndata: []\n\"x\"")
    }

    @Test func keysAreEscaped() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("a\"b\n")
        writer.int(1)
        writer.endObject()
        #expect(text(writer.bytes) == #"{"a\"b\n":1}"#)
    }

    // MARK: Trees

    @Test func serializesValues() {
        let value: JSONValue = ["b": [1, 2.5, "s", nil, true, [:]], "a": ["x": []], "e": ""]
        #expect(text(value.serialized()) == #"{"b":[1,2.5,"s",null,true,{}],"a":{"x":[]},"e":""}"#)
        #expect(text(JSONValue.null.serialized()) == "null")
        #expect(text(JSONValue.string("\u{0}").serialized()) == #""\u0000""#)
    }

    @Test func deepTreesSerializeIteratively() throws {
        var value: JSONValue = [:]
        for index in 0..<1000 {
            value = index.isMultiple(of: 2) ? [value] : ["k": value]
        }
        let bytes = value.serialized()
        #expect(bytes.first == UInt8(ascii: "{"))
        #expect(bytes.last == UInt8(ascii: "}"))
        #expect(try JSONParser.parse(bytes, limits: .init(maxDepth: 1001)) == value)
    }
}

// `json`: the scanner (request bodies, usage reading) and the DOM parser (translators, config) are
// two readers of one grammar; they must agree on every input.

import SluiceCore

func fuzzJSON(_ data: [UInt8]) {
    checkJSON(data, limits: JSONLimits())
    checkJSON(data, limits: JSONLimits(maxDepth: 3, maxBytes: 256, maxStringBytes: 12))
    checkArbitraryRanges(data)
    checkNumberText(data)
}

private func checkJSON(_ data: [UInt8], limits: JSONLimits) {
    let scanner = JSONScanner(data, limits: limits)
    var scanned: Result<JSONKind, JSONParseError>
    do { scanned = .success(try scanner.validate()) } catch { scanned = .failure(error) }
    var parsed: Result<JSONValue, JSONParseError>
    do { parsed = .success(try JSONParser.parse(data, limits: limits)) } catch { parsed = .failure(error) }

    switch (scanned, parsed) {
    case (.success(let kind), .success(let value)):
        require(kind == value.kind, "scanner kind \(kind) != parser kind \(value.kind)")
    case (.failure(let scanError), .failure(let parseError)):
        // The parser also rejects duplicate keys, which the scanner (by design) does not look for.
        if case .duplicateKey = parseError.kind { return }
        require(scanError == parseError, "scanner error \(scanError) != parser error \(parseError)")
        return
    case (.success, .failure(let parseError)):
        if case .duplicateKey = parseError.kind { return }
        require(false, "scanner accepts what the parser rejects: \(parseError)")
        return
    case (.failure(let scanError), .success):
        require(false, "parser accepts what the scanner rejects: \(scanError)")
        return
    }
    guard case .success(let value) = parsed else { return }

    // The DOM serialises to JSON that parses back to the same DOM, and serialising is idempotent.
    let text = value.serialized()
    let roundTripLimits = JSONLimits(maxDepth: limits.maxDepth, maxBytes: Int.max)
    do {
        let again = try JSONParser.parse(text, limits: roundTripLimits)
        require(again == value, "DOM round trip changed the value: \(String(decoding: text, as: UTF8.self))")
        require(again.serialized() == text, "serialisation is not idempotent")
    } catch {
        require(false, "serialised DOM does not parse (\(error)): \(String(decoding: text, as: UTF8.self))")
    }

    // Top-level members: the scanner's view of each equals the DOM's.
    guard let object = value.objectValue else {
        do {
            require(try scanner.findTopLevel("model") == nil, "findTopLevel found a member of a non-object")
        } catch {
            require(false, "findTopLevel throws on a document validate accepts: \(error)")
        }
        return
    }
    let members = object.members
    var index = 0
    var ranges: [Range<Int>] = []
    do {
        try scanner.forEachTopLevelMember { member in
            require(index < members.count, "scanner reports more members than the DOM has")
            guard index < members.count else { return }
            let (key, expected) = members[index]
            index += 1
            ranges.append(member.value)
            require(scanner.key(of: member, equals: key), "member \(index - 1): key differs from '\(key)'")
            require(scanner.kind(at: member.value) == expected.kind, "member \(key): kind differs")
            require(scanner.stringValue(at: member.value) == expected.stringValue, "member \(key): string differs")
            require(scanner.boolValue(at: member.value) == expected.boolValue, "member \(key): bool differs")
            require(scanner.int64Value(at: member.value) == expected.int64Value, "member \(key): int64 differs")
            require(scanner.doubleValue(at: member.value) == expected.doubleValue, "member \(key): double differs")
            require(scanner.isNull(at: member.value) == expected.isNull, "member \(key): null differs")
            // The member's raw bytes are, on their own, the same value.
            let raw = Array(data[member.value])
            do {
                let alone = try JSONParser.parse(raw, limits: roundTripLimits)
                require(alone == expected, "member \(key): its raw bytes parse to another value")
            } catch {
                require(false, "member \(key): its raw bytes do not parse: \(error)")
            }
        }
    } catch {
        require(false, "forEachTopLevelMember throws on a document validate accepts: \(error)")
    }
    require(index == members.count, "scanner reports \(index) members, the DOM has \(members.count)")
    // (Each lookup scans the document: the first members only, so a large object stays linear.)
    for (offset, member) in members.enumerated().prefix(32) where offset < ranges.count {
        do {
            let found = try scanner.findTopLevel(member.key)
            require(found == ranges[offset], "findTopLevel(\(member.key)) = \(String(describing: found)), expected \(ranges[offset])")
            let foundUTF8 = try scanner.findTopLevel(Array(member.key.utf8))
            require(foundUTF8 == found, "findTopLevel by bytes differs for \(member.key)")
        } catch {
            require(false, "findTopLevel(\(member.key)) throws on a valid document without duplicates: \(error)")
        }
    }
}

/// The value accessors take any range (they are public): none may trap, whatever the range.
private func checkArbitraryRanges(_ data: [UInt8]) {
    let scanner = JSONScanner(data)
    let count = data.count
    guard count > 0 else {
        _ = scanner.stringValue(at: 0..<0)
        _ = scanner.kind(at: -1..<3)
        return
    }
    for index in 0..<min(6, count) {
        let lower = (Int(data[index]) &* 31 &+ index) % (count + 4) - 2
        let length = Int(data[(index + 1) % count]) % 48
        let range = lower..<(lower + length)
        _ = scanner.stringValue(at: range)
        _ = scanner.boolValue(at: range)
        _ = scanner.int64Value(at: range)
        _ = scanner.doubleValue(at: range)
        _ = scanner.isNull(at: range)
        _ = scanner.kind(at: range)
        _ = TokenUsage.count(at: range, in: data.span)
    }
}

/// `JSONNumber(text)` and the scanner's number readers agree on the same text.
private func checkNumberText(_ data: [UInt8]) {
    guard data.count <= 64, let number = JSONNumber(String(decoding: data, as: UTF8.self)) else { return }
    let text = Array(number.description.utf8)
    let scanner = JSONScanner(text)
    let range = 0..<text.count
    require(scanner.kind(at: range) == .number, "JSONNumber accepted a non-number: \(number)")
    require(scanner.int64Value(at: range) == number.int64, "int64 of \(number) differs")
    require(scanner.doubleValue(at: range) == number.double, "double of \(number) differs")
    let count = TokenUsage.count(JSONValue.number(number))
    require(count >= 0 && count <= TokenUsage.maxCount, "TokenUsage.count(\(number)) = \(count)")
    require(count == TokenUsage.count(at: range, in: text.span), "TokenUsage.count differs for \(number)")
}

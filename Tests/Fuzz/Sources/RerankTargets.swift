// `rerank`: a rerank body as the upstream filter handles it. flags bit 0: the client is Cohere's
// (`/cohere/v2/rerank`), else `/v1/rerank`; bit 1: the backend is `cohere`, else `openai` (vLLM);
// bit 2: the body is the client's request (read, then written for the backend), else the backend's
// 2xx answer to a request of 1 + (bits 3-5) documents with `top_n` = bits 6-7 (0: none).
//
// Invariants: nothing traps; an accepted request writes valid JSON naming every document; a
// translated answer is valid JSON whose indices name the request's documents, each once, at most
// `top_n` of them, with the usage the readers bounded; a refused answer is a 502.

import SluiceCore

func fuzzRerank(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    let endpoint: Endpoint = input.flag(0) ? .cohereRerank : .rerank
    let schema: BackendSchema = input.flag(1) ? .cohere : .openAI
    var exchange = makeExchange(schema, client: endpoint.clientAPI, endpoint: endpoint, stream: false, includeUsage: false)
    let what = "rerank \(endpoint.name) on \(schema.rawValue)"
    if input.flag(2) {
        do {
            let sent = try exchange.translateRequest(input.body)
            requireValidJSON(sent, "\(what): request")
            let documents = (try? JSONParser.parse(sent))?["documents"]?.arrayValue?.count
            require(documents == exchange.attempt.rerank?.documents.count, "\(what): documents sent \(String(describing: documents))")
        } catch {
            require(error.status == 400, "\(what): request refused with \(error.status)")
            requireValidJSON(error.gatewayError.body(for: endpoint.clientAPI), "\(what): error body")
        }
        return
    }
    let documentCount = 1 + Int((input.flags >> 3) & 7)
    let topN = Int(input.flags >> 6)
    let documents = (0..<documentCount).map { "\"d\($0)\"" }.joined(separator: ",")
    let request = Array(("{\"model\":\"m\",\"query\":\"q\",\"documents\":[\(documents)]" + (topN > 0 ? ",\"top_n\":\(topN)}" : "}")).utf8)
    do {
        _ = try exchange.translateRequest(request)
    } catch {
        require(false, "\(what): the fixed request was refused: \(error)")
    }
    require(exchange.responseMode(status: 200) == .translateBody, "\(what): not translated")
    do {
        let translated = try exchange.translateResponse(input.body)
        requireValidJSON(translated.body, what)
        requireBounded(translated.usage, what)
        meter(translated.usage)
        let results = (try? JSONParser.parse(translated.body))?["results"]?.arrayValue ?? []
        let indices = results.compactMap { $0["index"]?.int64Value }
        require(indices.count == results.count, "\(what): a result without an integer index")
        require(indices.allSatisfy { (0..<Int64(documentCount)).contains($0) }, "\(what): index out of range \(indices)")
        require(Set(indices).count == indices.count, "\(what): repeated index \(indices)")
        require(topN == 0 || results.count <= topN, "\(what): \(results.count) results for top_n \(topN)")
        require(results.allSatisfy { $0["relevance_score"]?.doubleValue?.isFinite == true }, "\(what): a score is not a finite number")
    } catch {
        require(error.status == 502, "\(what): answer refused with \(error.status)")
        requireValidJSON(error.gatewayError.body(for: endpoint.clientAPI), "\(what): error body")
    }
    let shaped = exchange.translateError(status: 400, body: input.body)
    require(shaped.status == 400, "\(what): error status changed")
    requireValidJSON(shaped.body, "\(what): error body")
}

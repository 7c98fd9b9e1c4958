// `multipart`: a transcription form as the gateway reads it (MediaEndpoints.summary, MultipartForm),
// the model-part rewrite an OpenAI model override makes, and the images and audio usage readers.
// Flags: bit 0 a content type taken from the body's first line (so the fuzzer can write its own),
// else the fixed boundary "B"; bits 1-2 the endpoint whose answer reader the body also goes through.

import SluiceCore

func fuzzMultipart(_ bytes: [UInt8]) {
    let input = FuzzInput(plain: bytes)
    var body = input.body
    var contentType = "multipart/form-data; boundary=B"
    if input.flag(0), let newline = body.firstIndex(of: 10) {
        contentType = String(decoding: body[..<newline], as: UTF8.self)
        body = Array(body[(newline + 1)...])
    }
    do {
        let summary = try MediaEndpoints.summary(multipart: body, contentType: contentType)
        require(!summary.model.isEmpty, "a routed form has a model")
        let boundary = try MultipartForm.boundary(contentType: contentType)
        let form = try MultipartForm.read(body, boundary: boundary)
        for part in form.parts {
            require(part.content.lowerBound >= 0 && part.content.upperBound <= body.count, "part \(part.name) inside the body")
        }
        // The override's byte edit: the rewritten form reads back with the new model, same parts.
        if let model = form.parts(named: "model").first {
            let rewritten = try MultipartForm.replacing(model, in: body, with: "whisper-1")
            let reread = try MediaEndpoints.summary(multipart: rewritten, contentType: contentType)
            require(reread.model == "whisper-1", "rewritten model read back as \(reread.model)")
            require(try MultipartForm.read(rewritten, boundary: boundary).parts.count == form.parts.count, "same parts")
        }
    } catch let error as GatewayError {
        require(error.status == 400, "form error status \(error.status)")
        requireValidJSON(error.body(for: .openAI), "form error body")
    } catch {
        require(false, "unexpected error \(error)")
    }
    let endpoints: [Endpoint] = [.imagesGenerations, .audioSpeech, .audioTranscriptions, .audioTranslations]
    let read = MediaEndpoints.usage(ofAnswer: input.body, endpoint: endpoints[Int(input.flags >> 1) & 3])
    requireBounded(read.usage, "images/audio answer usage")
}

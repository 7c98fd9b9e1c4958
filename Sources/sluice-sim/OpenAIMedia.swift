import SluiceCore

/// OpenAI's and Azure's images and audio endpoints: `images/generations` (a deterministic tiny
/// PNG as b64_json, or a URL), `audio/speech` (audio bytes in several chunks over time, so a
/// client can see them stream), `audio/transcriptions` and `audio/translations` (a multipart form
/// whose text answer is derived from the uploaded file's bytes, in `json`, `text`, `srt`, `vtt`
/// or `verbose_json`). Answers are deterministic for the same request.
extension OpenAISimulator {
    static let mediaOperations: Set<String> = ["images/generations", "audio/speech", "audio/transcriptions", "audio/translations"]

    /// Milliseconds between speech chunks (fixed, so streaming is observable whatever `--pace-ms`).
    static let speechChunkPaceMilliseconds = 80
    static let speechChunks = 6

    func media(_ operation: String, request: SimRequest, deployment: String?, context: SimContext) -> (SimResponse, SimUsage?) {
        do {
            switch operation {
            case "images/generations":
                guard let body = request.json() else { return (invalidJSONBody(), nil) }
                return try images(body, request: request, deployment: deployment, context: context)
            case "audio/speech":
                guard let body = request.json() else { return (invalidJSONBody(), nil) }
                return try speech(body, request: request, deployment: deployment)
            default:
                return try transcription(
                    request, translate: operation == "audio/translations", deployment: deployment, context: context)
            }
        } catch let invalid {
            return (error(400, invalid.message, type: "invalid_request_error", param: invalid.param, code: nil), nil)
        }
    }

    private func invalidJSONBody() -> SimResponse {
        error(400, "We could not parse the JSON body of your request.", type: "invalid_request_error", param: nil, code: nil)
    }

    /// The model the answer is for: the Azure deployment, or a requested model this endpoint serves.
    private func mediaModel(_ requested: String?, deployment: String?, prefixes: [String]) throws(SimInvalid) -> String? {
        if let deployment { return deployment }
        guard let requested, !requested.isEmpty else { throw SimInvalid("you must provide a model parameter", param: "model") }
        return prefixes.contains(where: { requested.hasPrefix($0) }) ? requested : nil
    }

    private func unknownModel(_ model: String?) -> SimResponse {
        modelNotFound(SimInvalid("The model `\(model ?? "")` does not exist or you do not have access to it.", param: "model"))
    }

    // MARK: Images

    private func images(_ body: JSONValue, request: SimRequest, deployment: String?, context: SimContext) throws(SimInvalid)
        -> (SimResponse, SimUsage?)
    {
        let requested = body["model"]?.stringValue
        guard let model = try mediaModel(requested, deployment: deployment, prefixes: ["dall-e-", "gpt-image-"]) else {
            return (unknownModel(requested), nil)
        }
        guard let prompt = body["prompt"]?.stringValue, !prompt.isEmpty else {
            throw SimInvalid("Missing required parameter: 'prompt'.", param: "prompt")
        }
        if let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: prompt) {
            return (faultResponse(fault, promptTokens: 0, model: model), nil)
        }
        let n = body["n"].map { $0.int64Value ?? -1 } ?? 1
        guard (1...10).contains(n) else {
            throw SimInvalid("Invalid 'n': integer must be between 1 and 10.", param: "n")
        }
        let size = body["size"]?.stringValue ?? "1024x1024"
        let sizes = ["256x256", "512x512", "1024x1024", "1792x1024", "1024x1792", "1536x1024", "1024x1536", "auto"]
        guard sizes.contains(size) else {
            throw SimInvalid("Invalid value: '\(size)'. Supported values are: \(sizes.map { "'\($0)'" }.joined(separator: ", ")).", param: "size")
        }
        let tokenPriced = model.contains("gpt-image")
        let format = body["response_format"]?.stringValue ?? (tokenPriced ? "b64_json" : "url")
        guard format == "b64_json" || format == "url" else {
            throw SimInvalid("Invalid value: '\(format)'. Supported values are: 'url' and 'b64_json'.", param: "response_format")
        }
        let sequence = context.state.nextID()
        let promptTokens = max(1, prompt.split(separator: " ").count)
        let bytes = jsonObject { w in
            w.key("created"); w.int(context.now)
            w.key("data")
            w.beginArray()
            for index in 0..<Int(n) {
                w.beginObject()
                if format == "b64_json" {
                    w.key("b64_json"); w.string(Base64.encode(SimPNG.tiny(seed: Array("\(prompt)#\(index)".utf8))))
                } else {
                    w.key("url"); w.string("https://sim.openai.invalid/images/img-sim\(sequence)-\(index).png")
                }
                if model.hasPrefix("dall-e-3") { w.key("revised_prompt"); w.string(prompt) }
                w.endObject()
            }
            w.endArray()
            if tokenPriced {
                // gpt-image-1 reports tokens: the prompt's, and 272 output tokens per low-quality square image.
                w.key("usage")
                w.beginObject()
                w.key("input_tokens"); w.int(promptTokens)
                w.key("input_tokens_details")
                w.beginObject()
                w.key("text_tokens"); w.int(promptTokens)
                w.key("image_tokens"); w.int(0)
                w.endObject()
                w.key("output_tokens"); w.int(272 * Int(n))
                w.key("total_tokens"); w.int(promptTokens + 272 * Int(n))
                w.endObject()
            }
        }
        return (.json(200, bytes, headers: responseHeaders(sequence) + [("x-sim-model", model)]), nil)
    }

    // MARK: Speech

    private func speech(_ body: JSONValue, request: SimRequest, deployment: String?) throws(SimInvalid) -> (SimResponse, SimUsage?) {
        let requested = body["model"]?.stringValue
        guard let model = try mediaModel(requested, deployment: deployment, prefixes: ["tts-", "gpt-4o-mini-tts"]) else {
            return (unknownModel(requested), nil)
        }
        guard let input = body["input"]?.stringValue, !input.isEmpty else {
            throw SimInvalid("Missing required parameter: 'input'.", param: "input")
        }
        guard input.count <= 4096 else {
            throw SimInvalid("Invalid 'input': string too long. Expected a string with maximum length 4096, but got a string with length \(input.count) instead.", param: "input")
        }
        let voices = ["alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"]
        guard let voice = body["voice"]?.stringValue, voices.contains(voice) else {
            throw SimInvalid("Invalid value for 'voice'. Supported values are: \(voices.map { "'\($0)'" }.joined(separator: ", ")).", param: "voice")
        }
        if let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: input) {
            return (faultResponse(fault, promptTokens: 0, model: model), nil)
        }
        let format = body["response_format"]?.stringValue ?? "mp3"
        let contentTypes = ["mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                            "wav": "audio/wav", "pcm": "audio/pcm"]
        guard let contentType = contentTypes[format] else {
            throw SimInvalid("Invalid value for 'response_format'. Supported values are: 'mp3', 'opus', 'aac', 'flac', 'wav' and 'pcm'.", param: "response_format")
        }
        // 60 ms of 24 kHz 16-bit mono per character, a tone whose pitch follows the voice.
        let samples = SimAudio.tone(sampleCount: input.count * 1440, pitch: 200 + 20 * (voices.firstIndex(of: voice) ?? 0))
        let audio: [UInt8] = switch format {
        case "wav": SimAudio.wav(samples: samples)
        case "pcm": samples
        case "mp3": Array("ID3".utf8) + [4, 0, 0, 0, 0, 0, 0] + samples
        default: Array(format.utf8) + samples
        }
        var chunks: [[UInt8]] = []
        let chunkSize = max(1, (audio.count + Self.speechChunks - 1) / Self.speechChunks)
        var start = 0
        while start < audio.count {
            chunks.append(Array(audio[start..<min(audio.count, start + chunkSize)]))
            start += chunkSize
        }
        var response = SimResponse(
            status: 200, headers: [("content-type", contentType), ("x-sim-model", model)], body: .stream(chunks))
        response.paceMilliseconds = Self.speechChunkPaceMilliseconds
        return (response, nil)
    }

    // MARK: Transcriptions and translations

    private func transcription(_ request: SimRequest, translate: Bool, deployment: String?, context: SimContext)
        throws(SimInvalid) -> (SimResponse, SimUsage?)
    {
        let body = request.body
        let form: MultipartForm
        do throws(GatewayError) {
            form = try MultipartForm.read(body, boundary: try MultipartForm.boundary(contentType: request.header("content-type")))
        } catch {
            throw SimInvalid(error.message, param: error.param)
        }
        func field(_ name: String) throws(SimInvalid) -> String? {
            do throws(GatewayError) {
                return try form.textField(name, in: body)
            } catch {
                throw SimInvalid(error.message, param: name)
            }
        }
        let requested = try field("model")
        let prefixes = translate ? ["whisper-"] : ["whisper-", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"]
        guard let model = try mediaModel(requested, deployment: deployment, prefixes: prefixes) else {
            return (unknownModel(requested), nil)
        }
        guard let file = form.parts(named: "file").first, file.filename != nil else {
            throw SimInvalid("Missing required parameter: 'file'.", param: "file")
        }
        let prompt = try field("prompt") ?? ""
        if let fault = SimFault.requested(header: request.header("x-sim-error"), prompt: prompt) {
            return (faultResponse(fault, promptTokens: 0, model: model), nil)
        }
        let tokenPriced = model.contains("transcribe")
        let format = try field("response_format") ?? "json"
        let formats = tokenPriced ? ["json", "text"] : ["json", "text", "srt", "verbose_json", "vtt"]
        guard formats.contains(format) else {
            throw SimInvalid("response_format '\(format)' is not compatible with model '\(model)'. Use \(formats.joined(separator: " or ")).", param: "response_format")
        }
        let stream = try field("stream") == "true"
        if stream, !tokenPriced {
            throw SimInvalid("Streaming is not supported for the whisper-1 model.", param: "stream")
        }
        let audio = Array(body[file.content])
        let words = SimAudio.words(for: audio)
        let text = words.joined(separator: " ")
        // The upload as 16 kHz 16-bit mono: its length in seconds, a tenth at least.
        let duration = max(0.1, (Double(audio.count) / 32_000 * 10).rounded() / 10)
        let seconds = Int(duration.rounded(.up))
        let audioTokens = max(1, Int(duration * 10))
        let language = translate ? "english" : (try field("language")).map(SimAudio.languageName) ?? "english"
        let headers = responseHeaders(context.state.nextID()) + [("x-sim-model", model)]

        func writeUsage(_ w: inout JSONWriter) {
            w.key("usage")
            w.beginObject()
            if tokenPriced {
                w.key("type"); w.string("tokens")
                w.key("input_tokens"); w.int(audioTokens)
                w.key("input_token_details")
                w.beginObject()
                w.key("text_tokens"); w.int(0)
                w.key("audio_tokens"); w.int(audioTokens)
                w.endObject()
                w.key("output_tokens"); w.int(words.count)
                w.key("total_tokens"); w.int(audioTokens + words.count)
            } else {
                w.key("type"); w.string("duration")
                w.key("seconds"); w.int(seconds)
            }
            w.endObject()
        }

        if stream {
            var chunks: [[UInt8]] = []
            for word in words {
                chunks.append(sseFrame(jsonObject { w in
                    w.key("type"); w.string("transcript.text.delta")
                    w.key("delta"); w.string(word + " ")
                }))
            }
            chunks.append(sseFrame(jsonObject { w in
                w.key("type"); w.string("transcript.text.done")
                w.key("text"); w.string(text)
                writeUsage(&w)
            }))
            return (.sse(chunks, headers: headers), nil)
        }
        switch format {
        case "text":
            return (SimResponse(status: 200, headers: [("content-type", "text/plain; charset=utf-8")] + headers, body: .bytes(Array((text + "\n").utf8))), nil)
        case "srt", "vtt":
            let stamp = SimAudio.timestamp(duration, comma: format == "srt")
            let start = SimAudio.timestamp(0, comma: format == "srt")
            let cue = format == "srt" ? "1\n\(start) --> \(stamp)\n\(text)\n\n" : "WEBVTT\n\n\(start) --> \(stamp)\n\(text)\n\n"
            return (SimResponse(status: 200, headers: [("content-type", "text/plain; charset=utf-8")] + headers, body: .bytes(Array(cue.utf8))), nil)
        case "verbose_json":
            let bytes = jsonObject { w in
                w.key("task"); w.string(translate ? "translate" : "transcribe")
                w.key("language"); w.string(language)
                w.key("duration"); w.double(duration)
                w.key("text"); w.string(text)
                w.key("segments")
                w.beginArray()
                w.beginObject()
                w.key("id"); w.int(0)
                w.key("seek"); w.int(0)
                w.key("start"); w.double(0)
                w.key("end"); w.double(duration)
                w.key("text"); w.string(" " + text)
                w.key("tokens"); w.beginArray(); w.endArray()
                w.key("temperature"); w.double(0)
                w.key("avg_logprob"); w.double(-0.25)
                w.key("compression_ratio"); w.double(1.2)
                w.key("no_speech_prob"); w.double(0.01)
                w.endObject()
                w.endArray()
                writeUsage(&w)
            }
            return (.json(200, bytes, headers: headers), nil)
        default:
            let bytes = jsonObject { w in
                w.key("text"); w.string(text)
                writeUsage(&w)
            }
            return (.json(200, bytes, headers: headers), nil)
        }
    }
}

/// Deterministic audio bytes and transcripts.
enum SimAudio {
    static let vocabulary = ["the", "quick", "sluice", "gate", "opens", "river", "flows", "gently", "under", "bridge",
        "morning", "light", "carries", "quiet", "voices", "across", "water", "stone", "harbor", "signal"]

    /// Words for an upload: 3 plus one per 4 KB (at most 60), each picked by a hash of the bytes.
    static func words(for audio: [UInt8]) -> [String] {
        let count = min(60, 3 + audio.count / 4096)
        var hash = UInt64(CRC32.checksum(audio)) | (UInt64(audio.count) << 32)
        var words: [String] = []
        for _ in 0..<count {
            hash = hash &* 6364136223846793005 &+ 1442695040888963407
            words.append(vocabulary[Int((hash >> 33) % UInt64(vocabulary.count))])
        }
        if var first = words.first, let letter = first.first {
            first.replaceSubrange(first.startIndex...first.startIndex, with: String(letter).uppercased())
            words[0] = first
        }
        if let last = words.last { words[words.count - 1] = last + "." }
        return words
    }

    static func languageName(_ code: String) -> String {
        ["en": "english", "de": "german", "fr": "french", "es": "spanish", "ja": "japanese"][code] ?? code
    }

    /// `00:00:01,500` (SRT) or `00:00:01.500` (VTT).
    static func timestamp(_ seconds: Double, comma: Bool) -> String {
        let millis = Int((seconds * 1000).rounded())
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(millis / 3_600_000, 2)):\(pad(millis / 60_000 % 60, 2)):\(pad(millis / 1000 % 60, 2))\(comma ? "," : ".")\(pad(millis % 1000, 3))"
    }

    /// 16-bit little-endian mono samples of a square-ish tone (no floating point needed).
    static func tone(sampleCount: Int, pitch: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(sampleCount * 2)
        let period = max(2, 24_000 / max(1, pitch))
        for index in 0..<sampleCount {
            let phase = index % period
            let value: Int16 = phase < period / 2 ? 3000 : -3000
            out.append(UInt8(truncatingIfNeeded: value))
            out.append(UInt8(truncatingIfNeeded: value >> 8))
        }
        return out
    }

    /// A WAV file (RIFF, PCM 16-bit mono 24 kHz) around `samples`.
    static func wav(samples: [UInt8]) -> [UInt8] {
        func le32(_ value: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        func le16(_ value: Int) -> [UInt8] { (0..<2).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        var out = Array("RIFF".utf8) + le32(36 + samples.count) + Array("WAVEfmt ".utf8)
        out += le32(16) + le16(1) + le16(1) + le32(24_000) + le32(48_000) + le16(2) + le16(16)
        out += Array("data".utf8) + le32(samples.count) + samples
        return out
    }
}

/// A tiny PNG (8×8, 8-bit RGB) whose colours follow a seed.
enum SimPNG {
    static func tiny(seed: [UInt8]) -> [UInt8] {
        let side = 8
        let crc = CRC32.checksum(seed)
        let colour = [UInt8(truncatingIfNeeded: crc), UInt8(truncatingIfNeeded: crc >> 8), UInt8(truncatingIfNeeded: crc >> 16)]
        var raw: [UInt8] = []
        for y in 0..<side {
            raw.append(0)  // filter: none
            for x in 0..<side {
                let shade = UInt8(truncatingIfNeeded: (x + y) * 16)
                raw += colour.map { $0 ^ shade }
            }
        }
        func be32(_ value: UInt32) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) } }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let typed = Array(type.utf8) + data
            return be32(UInt32(data.count)) + typed + be32(CRC32.checksum(typed))
        }
        // zlib: one stored (uncompressed) deflate block, then the Adler-32 of the data.
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in raw {
            a = (a + UInt32(byte)) % 65_521
            b = (b + a) % 65_521
        }
        let length = UInt16(raw.count)
        let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            + raw + be32(b << 16 | a)
        let header = be32(UInt32(side)) + be32(UInt32(side)) + [8, 2, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", zlib) + chunk("IEND", [])
    }
}

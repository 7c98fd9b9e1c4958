// `GET /v1/models` in OpenAI's list shape, rendered once per config (the answer never changes
// while the config lives, so the hot path only copies bytes).

public enum ModelList {
    /// `{"object":"list","data":[{"id","object":"model","created","owned_by"}...]}`
    public static func render(_ models: [ModelConfig]) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("object")
        writer.string("list")
        writer.key("data")
        writer.beginArray()
        for model in models {
            writer.beginObject()
            writer.key("id")
            writer.string(model.id)
            writer.key("object")
            writer.string("model")
            writer.key("created")
            writer.int(model.created)
            writer.key("owned_by")
            writer.string(model.ownedBy)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return writer.bytes
    }
}

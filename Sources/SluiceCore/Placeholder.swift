public enum SluiceCoreVersion { public static let value = "0.1.0" }

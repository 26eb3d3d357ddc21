/// The rule every project, dataset, branch and tag name must pass (SPEC §7).
public enum NameRules {
    public static let maxBytes = 255

    /// Throws `.invalidName` or `.nameTooLong` with a message that says which rule failed.
    public static func validate(_ name: String, kind: String) throws {
        if name.isEmpty {
            throw ArtifactError(.invalidName, "\(kind) name is empty")
        }
        if name.utf8.count > maxBytes {
            throw ArtifactError(.nameTooLong, "\(kind) name is longer than \(maxBytes) bytes", path: name)
        }
        if name.hasPrefix(".") || name.hasPrefix("@") {
            throw ArtifactError(.invalidName, "\(kind) name must not start with '.' or '@'", path: name)
        }
        for scalar in name.unicodeScalars {
            if scalar == "/" {
                throw ArtifactError(.invalidName, "\(kind) name must not contain '/'", path: name)
            }
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                throw ArtifactError(.invalidName, "\(kind) name must not contain NUL or control characters", path: name)
            }
        }
    }
}

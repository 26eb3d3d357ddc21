/// The release of artifactfs this binary is (`artifactfs --version`), semantic versioning:
/// the minor number follows the issue whose work the release closes.
public enum ArtifactFSVersion {
    public static let current = "0.13.0"
}

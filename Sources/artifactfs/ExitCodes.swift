import ArgumentParser
import ArtifactCore
import Foundation

/// Named exit codes, documented in `artifactfs --help` and the README.
enum ExitCodes {
    static let failure: Int32 = 1
    static let problemsFound: Int32 = 3
    static let notFound: Int32 = 4
    static let busy: Int32 = 5
    /// `import`: some files could not be read; the rest was registered.
    static let someFilesFailed: Int32 = 6
}

/// Prints `artifactfs: <path>: <reason>` on stderr and exits with the matching code.
func fail(_ error: Error) -> ExitCode {
    let message: String
    var code = ExitCodes.failure
    if let e = error as? ArtifactError {
        message = e.description
        switch e.code {
        case .notFound, .notMounted: code = ExitCodes.notFound
        case .busy: code = ExitCodes.busy
        default: break
        }
    } else {
        message = "\(error)"
    }
    FileHandle.standardError.write(Data("artifactfs: \(message)\n".utf8))
    return ExitCode(code)
}

func absolutePath(_ p: String) -> String {
    let joined = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    return URL(fileURLWithPath: joined).standardizedFileURL.path
}

/// True when standard error is a terminal (progress bars) rather than a log or pipe.
var isTerminal: Bool { isatty(2) == 1 }

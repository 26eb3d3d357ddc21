import ArgumentParser
import ArtifactCore
import Foundation

/// Named exit codes, documented in `artifactfs --help` and the README (tested by a table
/// test in `CLITests`).
enum ExitCodes {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    /// `verify` found problems.
    static let problemsFound: Int32 = 3
    /// No such store (a folder that is not one), project, dataset, branch, tag, version, run
    /// or path.
    static let notFound: Int32 = 4
    /// Busy: files still open for writing, the store in use, uncommitted changes in the way.
    static let busy: Int32 = 5
    /// `import`: some files could not be read; the rest was registered.
    static let someFilesFailed: Int32 = 6
    /// The mount's daemon is not running (a dead mount), or stopped while it was asked:
    /// the outcome is unknown.
    static let daemonGone: Int32 = 7
    /// No space left on the store's disk.
    static let noSpace: Int32 = 8
    /// Bad usage: an unknown option, a missing argument, an invalid value or name.
    static let usage: Int32 = 64
    /// Permission denied: the caller lacks the grant it needs, or the store is not private
    /// enough to serve (sysexits.h's EX_NOPERM).
    static let permissionDenied: Int32 = 77

    static let table = """
        0 success; 1 failure; 3 verify found problems; 4 not found (a folder that is not a store, \
        or no such project, dataset, branch, tag, version, run or path); 5 busy (files open for \
        writing, store in use, uncommitted changes); 6 import left out files it could not read (the \
        rest is registered); 7 the mount's daemon is not running or stopped while asked (outcome \
        unknown); 8 no space left on the store's disk; 64 bad usage (option, argument, value or name); \
        77 permission denied (a grant is missing, or the store folder is not private).
        """

    /// The exit code for an error of kind `code`.
    static func of(_ code: ArtifactError.Code) -> Int32 {
        switch code {
        case .notFound, .notMounted: return notFound
        case .busy, .notEmpty: return busy
        case .daemonGone: return daemonGone
        case .noSpace: return noSpace
        case .invalidName, .nameTooLong, .invalidArgument: return usage
        case .permissionDenied, .notPermitted: return permissionDenied
        default: return failure
        }
    }
}

/// Prints `artifactfs: <path>: <reason>` on stderr and returns the matching exit code to throw.
func fail(_ error: Error) -> ExitCode {
    if let code = error as? ExitCode { return code }
    if let e = error as? ArtifactError {
        printError(e.description)
        return ExitCode(ExitCodes.of(e.code))
    }
    printError("\(error)")
    return ExitCode(ExitCodes.failure)
}

/// One line on stderr, `artifactfs: TEXT`, with control characters escaped (`\n`, `\t`,
/// `\x1b`) so that a name holding one cannot break the line or drive the terminal.
func printError(_ text: String) {
    FileHandle.standardError.write(Data("artifactfs: \(escapingControlCharacters(text))\n".utf8))
}

/// `text` with C0 control characters and DEL written as escapes, as `git` quotes odd names.
func escapingControlCharacters(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += String(format: "\\x%02x", scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out
}

func absolutePath(_ p: String) -> String {
    let joined = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    return URL(fileURLWithPath: joined).standardizedFileURL.path
}

/// True when standard error is a terminal (progress bars) rather than a log or pipe.
var isTerminal: Bool { isatty(2) == 1 }

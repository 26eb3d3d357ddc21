import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Changes the CLI asks a mounted daemon to make (SPEC §6: "every command that changes a
/// mounted store reaches the daemon through the mount, so the daemon knows who asks"): tag,
/// branch, pipeline, forget. The CLI sets `user.artifactfs.request` on the mount's root to a
/// JSON document `{"id": ID, …}`, where ID is 32 random hex digits it chose; the daemon checks
/// the caller's right, makes the change in its own catalog and keeps the outcome, which the
/// same user then reads from `user.artifactfs.result.ID` (at most `ControlOutcome.chunk`
/// bytes per read, until an empty read). An extended attribute carries the request because
/// the kernel gives the daemon the caller's uid and groups with it, which no file in the
/// store could.
///
/// The core carries the requests and outcomes; what a request means is the executable's
/// (`ControlRequestHandler`), since it spans the core and the pipeline.
public protocol ControlRequestHandler: Sendable {
    /// Decodes `request`, checks `caller`'s right with `access`, makes the change in `store`,
    /// and returns the result as JSON. `forgotten` drops the kernel's entries of forgotten
    /// runs. Throws `ArtifactError`s, which reach the CLI whole.
    func handle(_ request: [UInt8], caller: Caller, access: AccessPolicy, store: ArtifactStore,
                forgotten: (ForgottenRuns) throws -> Void) throws -> [UInt8]
}

/// What the daemon answers to one request: the result (JSON) or the error, whole.
public struct ControlOutcome: Codable, Sendable {
    /// The most a read of `user.artifactfs.result.ID` returns (the kernel's limit for one
    /// extended attribute is 64 KiB).
    public static let chunk = 60_000

    public var result: String?
    public var code: String?
    public var message: String?
    public var path: String?

    public init(result: [UInt8]) { self.result = String(decoding: result, as: UTF8.self) }

    public init(error: Error) {
        let e = error as? ArtifactError ?? ArtifactError(.io, "\(error)")
        code = e.code.rawValue; message = e.message; path = e.path
    }

    /// The result, or the error thrown as it was in the daemon.
    public func get() throws -> Data {
        if let result { return Data(result.utf8) }
        throw ArtifactError(ArtifactError.Code(rawValue: code ?? "") ?? .io, message ?? "the daemon did not say", path: path)
    }
}

extension MountControl {
    /// Asks the daemon of `mountpoint` to make change `request` (an Encodable with the fields
    /// its handler reads; `id` is added) and returns its result. Throws the daemon's error as
    /// it was, `.daemonGone` for a dead mount or a daemon that stopped while asked,
    /// `.notMounted` for a mount whose daemon does not take requests.
    public static func request(_ request: some Encodable, mountpoint: String) throws -> Data {
        let id = (0..<4).map { _ in String(format: "%08x", UInt32.random(in: 0...UInt32.max)) }.joined()
        var body = try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? [String: Any] ?? [:]
        body["id"] = id
        let bytes = try JSONSerialization.data(withJSONObject: body)
        do {
            try ExtendedAttributes.set(mountpoint, ControlAttribute.request, String(decoding: bytes, as: UTF8.self))
        } catch let e as ArtifactError {
            switch e.underlying {
            case .socketNotConnected?, .connectionAbort?:
                throw ArtifactError(.daemonGone, "outcome unknown: the mount's daemon is not running or stopped while asked; "
                                    + "`artifactfs unmount \(mountpoint)`, mount it again and check", path: mountpoint)
            default:
                throw ArtifactError(.notMounted, "the mount did not take the request (\(e.message)); is its daemon older than this command?", path: mountpoint)
            }
        }
        var outcome = Data()
        while true {
            let part = try ExtendedAttributes.getLarge(mountpoint, ControlAttribute.result + "." + id)
            outcome.append(contentsOf: part)
            if part.count < ControlOutcome.chunk { break }
        }
        return try JSONDecoder().decode(ControlOutcome.self, from: outcome).get()
    }
}

import ArgumentParser
import ArtifactCore
import Foundation

/// A project or dataset named on the command line: `projects/P`, `datasets/D`, or a path in
/// a mount under one. Its grants are read and changed as `StoreChange`s: through the mount when
/// the store is mounted, so the daemon checks who asks (SPEC §6).
struct AccessTarget {
    /// `ControlAttribute.project` or `.dataset`.
    let attribute: String
    /// What `GlobalOptions.perform` locates: the path in the mount, or the bare name.
    let argument: String

    /// Throws `.invalidArgument` for anything but `projects/P`, `datasets/D` or a path under
    /// one in a mount, `.daemonGone` for a path in a dead mount.
    init(_ argument: String) throws {
        if let located = try MountedPath.locate(argument) {
            let inside = located.absolute.dropFirst(located.mountpoint == "/" ? 1 : located.mountpoint.count + 1)
            let parts = inside.split(separator: "/").prefix(2).map(String.init)
            guard parts.count == 2, parts[0] == "projects" || parts[0] == "datasets" else {
                throw ArtifactError(.invalidArgument, "not in a project or dataset of the mount (projects/P or datasets/D)", path: argument)
            }
            attribute = parts[0] == "projects" ? ControlAttribute.project : ControlAttribute.dataset
            self.argument = argument
            return
        }
        let parts = argument.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 2, parts[0] == "projects" || parts[0] == "datasets" else {
            throw ArtifactError(.invalidArgument, "name a project or dataset as projects/P or datasets/D, or give its folder in a mount", path: argument)
        }
        attribute = parts[0] == "projects" ? ControlAttribute.project : ControlAttribute.dataset
        self.argument = parts[1]
    }

    var folder: String { attribute == ControlAttribute.project ? "projects" : "datasets" }

    /// Sets `right` for `principal` (`.none` revokes); returns `projects/P` or `datasets/D`.
    func set(_ right: Right, for principal: Principal, global: GlobalOptions) throws -> String {
        let (name, _) = try global.perform(argument, by: attribute, {
            .grant(folder: folder, name: $0, principal: principal.wire, right: right.description)
        }, as: NoResult.self)
        return "\(folder)/\(name)"
    }

    /// The grants and `projects/P` or `datasets/D`.
    func grants(global: GlobalOptions) throws -> (String, [Grant]) {
        let (name, wire) = try global.perform(argument, by: attribute, { .listGrants(folder: folder, name: $0) }, as: [GrantWire].self)
        return ("\(folder)/\(name)", wire.compactMap { g in
            Principal(wire: g.principal).flatMap { p in Right(name: g.right).map { Grant(principal: p, right: $0) } }
        })
    }
}
struct GrantCommand: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Give a user or group a right on a project or dataset (needs admin there).",
        discussion: """
            RIGHT is read (list and read), write (also change incoming/ and @branch/, seal, \
            commit, make branches) or admin (also grant, pipelines, tags, branch deletion, \
            forget). A new grant replaces the one the user or group had. Through the mount \
            when the store is mounted, so the daemon checks who asks.
            """)

    @OptionGroup var global: GlobalOptions
    @Argument(help: "projects/P or datasets/D, or a folder of one in a mount.") var resource: String
    @Argument(help: "A user name or uid, or @GROUP (a group name or gid).") var principal: String
    @Argument(help: "read, write or admin.") var right: String

    func validate() throws {
        guard let r = Right(name: right), r != .none else { throw ValidationError("the right must be read, write or admin (revoke removes a grant)") }
    }

    func run() throws {
        do {
            let who = try Principal(parsing: principal)
            let name = try AccessTarget(resource).set(Right(name: right)!, for: who, global: global)
            if json { try printJSON(GrantLine(resource: name, principal: who, right: Right(name: right)!)); return }
            if !quiet { print("\(who) has \(right) on \(name)") }
        } catch { throw fail(error) }
    }
}

struct Revoke: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove a user's or group's grant on a project or dataset (needs admin there).",
        discussion: "Takes effect at the next operation; a file already open stays open, as with chmod. The last admin cannot be removed.")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "projects/P or datasets/D, or a folder of one in a mount.") var resource: String
    @Argument(help: "A user name or uid, or @GROUP.") var principal: String

    func run() throws {
        do {
            let who = try Principal(parsing: principal)
            let name = try AccessTarget(resource).set(.none, for: who, global: global)
            if json { try printJSON(GrantLine(resource: name, principal: who, right: .none)); return }
            if !quiet { print("\(who) has no grant on \(name)") }
        } catch { throw fail(error) }
    }
}

struct Grants: ParsableCommand, GlobalCommand {
    static let configuration = CommandConfiguration(abstract: "List who has which right on a project or dataset (needs read there).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "projects/P or datasets/D, or a folder of one in a mount.") var resource: String

    func run() throws {
        do {
            let (name, grants) = try AccessTarget(resource).grants(global: global)
            if json { try printJSON(grants.map { GrantLine(resource: name, principal: $0.principal, right: $0.right) }); return }
            for g in grants { print("\(g.principal)\t\(g.right)") }
        } catch { throw fail(error) }
    }
}

/// `grant`, `revoke` and `grants --json`: `{"resource", "principal", "kind", "id", "right"}`,
/// with `kind` `user` or `group`, `id` the uid or gid, `principal` its name (`@GROUP` for a
/// group) and `right` `none` after a revoke.
private struct GrantLine: Encodable {
    var resource: String
    var principal: String
    var kind: String
    var id: UInt32
    var right: String

    init(resource: String, principal: Principal, right: Right) {
        self.resource = resource
        self.principal = principal.description
        switch principal {
        case .user(let u): kind = "user"; id = u
        case .group(let g): kind = "group"; id = g
        }
        self.right = right.description
    }
}

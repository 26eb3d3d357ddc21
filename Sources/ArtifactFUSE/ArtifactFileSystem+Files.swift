import ArtifactCore
import CFuse3
import CSystemShims
import Foundation
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

extension ArtifactFileSystem {
    // MARK: files


    /// A blob open for reading, checked as it is read (`BlobCheck`). A missing (or
    /// quarantined) blob, or one whose size is not the catalogued size, is never served: EIO.
    /// A blob of several blocks stored before block checksums were kept is read whole once,
    /// here, checked against its name, and its checksums recorded.
    func openBlob(_ hash: BlobHash, size: Int64) throws -> FileHandle {
        let path = store.blobs.path(of: hash)
        let fd: Int32
        do { fd = try Syscalls.open(path, flags: O_RDONLY) } catch {
            do {
                if let bytes = try store.blobs.readPacked(hash, size: size) { return try openInMemory(hash, bytes) }
            } catch {
                logger.error("blob \(hash.hex): \(error)")
                throw error
            }
            logger.error("blob \(hash.hex) is missing\(store.blobs.quarantineReason(hash).map { " (in quarantine: \($0))" } ?? "")")
            throw ArtifactError(.corrupt, "blob missing", path: path)
        }
        guard let st = try? Syscalls.fstat(fd), Int64(st.st_size) == size else {
            // Damage like a bad block (SPEC §7): quarantined, so that verify names it and the
            // same content stored again heals it.
            let actual = (try? Syscalls.fstat(fd)).map { Int64($0.st_size) } ?? -1
            quarantine(hash, reason: "size is \(actual), the catalog says \(size)", fd: fd)
            close(fd)
            throw ArtifactError(.corrupt, "blob damaged", path: path)
        }
        do {
            var sums = size > Int64(BlockSums.blockSize) ? try store.catalog.blockSums(of: hash) : nil
            if size > Int64(BlockSums.blockSize), sums == nil {
                let digest = try BlobStore.digest(fd: fd, path: path)
                guard digest.hash == hash else {
                    quarantine(hash, reason: "content hashes to \(digest.hash.hex)", fd: fd)
                    throw ArtifactError(.corrupt, "blob damaged", path: path)
                }
                try? store.catalog.recordBlockSums(digest.blocks, of: hash)
                sums = digest.blocks
            }
            return FileHandle(fd: fd, staged: nil, writable: false, check: BlobCheck(hash: hash, size: size, sums: sums))
        } catch {
            close(fd)
            throw error
        }
    }

    /// A packed blob (at most `PackFile.sizeLimit` bytes, read whole at open and checked by
    /// `BlobStore.readPacked`) is served from an anonymous file in memory (memfd): its reads
    /// need no checks, and the pack's other blobs are never within reach of this descriptor.
    private func openInMemory(_ hash: BlobHash, _ bytes: [UInt8]) throws -> FileHandle {
        let fd = afs_memfd_create("artifactfs-blob")
        guard fd >= 0 else { throw ArtifactError.system(Errno(rawValue: afs_errno()), "cannot hold blob in memory", path: store.blobs.path(of: hash)) }
        do {
            try Syscalls.writeAll(fd, bytes)
        } catch let e as Errno {
            close(fd)
            throw ArtifactError.system(e, "cannot hold blob in memory", path: store.blobs.path(of: hash))
        }
        return FileHandle(fd: fd, staged: nil, writable: false)
    }

    /// Checks the blocks a read of `handle` touches before it is answered; a block that does
    /// not match quarantines the blob and throws `.corrupt` (EIO), so neither this read nor
    /// any later open returns the bad bytes.
    func checkRead(_ handle: FileHandle, offset: Int64, length: Int) throws {
        guard let check = handle.check else { return }
        let bad: Int?
        do { bad = try check.firstBadBlock(fd: handle.fd, offset: offset, length: length, keepOpen: handle) } catch let e as Errno {
            throw ArtifactError.system(e, "cannot read blob \(check.hash.hex)", path: store.blobs.path(of: check.hash))
        }
        guard let bad else { return }
        quarantine(check.hash, reason: "block \(bad) does not match its checksum", fd: handle.fd)
        throw ArtifactError(.corrupt, "blob damaged", path: store.blobs.path(of: check.hash))
    }

    /// Moves a damaged blob, the file open as `fd`, to quarantine/ (once, and only while it is
    /// still the file at the blob's name: a good copy stored since stays) and logs it.
    func quarantine(_ hash: BlobHash, reason: String, fd: Int32) {
        logger.error("blob \(hash.hex) is damaged (\(reason)); moved to quarantine/, reads answer EIO")
        do { try store.blobs.quarantine(hash, reason: "read: \(reason)", onlyIf: try Syscalls.fstat(fd)) } catch {
            if store.blobs.quarantineReason(hash) == nil { logger.error("cannot quarantine blob \(hash.hex): \(error)") }
        }
    }

    /// The names listxattr shows, as Linux would: none on a symlink or a special file (user
    /// attributes exist only on regular files and folders; the kernel answers ENODATA for
    /// them), and in the writable trees only the user's own, so that `rsync -X` into
    /// `incoming/` or `@branch/` does not try to remove the daemon's computed
    /// `user.artifactfs.*` (they still answer getxattr by name).
    func listedAttributes(_ inode: Inode) throws -> [String] {
        let writable: Bool
        switch inode.kind {
        case .staged(let s):
            guard let st = try? s.stat(), st.st_mode & S_IFMT == S_IFREG || st.st_mode & S_IFMT == S_IFDIR else { return [] }
            writable = true
        case .virtual(let node):
            let attrs = try namespace.attributes(node)
            guard attrs.isDirectory || attrs.kind == .regular else { return [] }
            if case .worktree = node { writable = true } else { writable = false }
        }
        let names = try extendedAttributes(inode).map(\.0)
        return writable ? names.filter { !$0.hasPrefix(UserXattrs.reservedPrefix) } : names
    }

    /// Every extended attribute a file shows: the daemon's `user.artifactfs.*` (computed) and
    /// the user's own `user.*` (kept on the staged file, or in the catalog once sealed).
    func extendedAttributes(_ inode: Inode) throws -> [(String, [UInt8])] {
        switch inode.kind {
        case .virtual(let node):
            var out = try namespace.extendedAttributes(node).map { ($0.0, Array($0.1.utf8)) }
            if node == .root {
                out.append((ControlAttribute.pid, Array(String(getpid()).utf8)))
                out.append((ControlAttribute.inodes, Array(String(inodes.count).utf8)))
                out.append((ControlAttribute.requests, Array(FUSESession.requestCounts().utf8)))
            }
            return out + (try namespace.userXattrs(node)).entries.map { ($0.name, $0.value) }
        case .staged(let s):
            guard let project = try store.catalog.project(id: s.projectId) else { return [] }
            var out = [(ControlAttribute.project, Array(project.name.utf8))]
            let own = try s.withFD { _, path -> UserXattrs in
                if !s.isDirectory, StagingMark.has(StagingMark.interrupted, procPath: path) {
                    out.append((ControlAttribute.interrupted, Array("true".utf8)))
                }
                return s.isSymlink ? UserXattrs() : UserXattrs.read(PathBytes(path), following: true)
            }
            if s.isDirectory, let last = try store.catalog.lastRun(projectId: s.projectId) {
                out.append((ControlAttribute.lastRun, Array(last.name.utf8)))
            }
            return out + own.entries.map { ($0.name, $0.value) }
        }
    }

    // MARK: folders

    /// An open folder; its listing is taken at the first readdir (`DirectoryHandle`).
    func openDirectory(_ inode: Inode) throws -> DirectoryHandle {
        switch inode.kind {
        case .virtual(let node):
            guard node.isDirectory else { throw Errno.notDirectory }
            let namespace = self.namespace
            return DirectoryHandle {
                var entries = try namespace.children(node).map {
                    DirectoryHandle.Entry(name: $0.name, virtualNode: $0.node, attributes: $0.attributes, isDirectory: $0.attributes.isDirectory)
                }
                if case .project = node {
                    entries.append(DirectoryHandle.Entry(name: "incoming", virtualNode: nil, attributes: nil, isDirectory: true))
                    entries.sort { $0.name < $1.name }
                }
                return entries
            }
        case .staged(let s):
            // Taken now: a staged folder changes, and opendir is when its listing is fixed.
            let fd = try s.withFD { _, path in try Syscalls.open(path, flags: O_RDONLY | O_DIRECTORY) }
            defer { close(fd) }
            let entries = try Syscalls.listDirectory("/proc/self/fd/\(fd)").map {
                DirectoryHandle.Entry(name: $0.name, virtualNode: nil, attributes: nil, isDirectory: $0.type == DT_DIR)
            }.sorted { $0.name < $1.name }
            return DirectoryHandle { entries }
        }
    }

    /// Folders whose listing the kernel may keep (`cache_readdir` with `keep_cache`): a run's
    /// raw_source/ tree and a version's tree, which never change, and a working tree's
    /// folders, whose listing changes only through the kernel (a commit leaves it as it is).
    /// The kernel drops a kept listing itself when a change through it bumps the folder's
    /// version, or when the folder's mtime moves. Not incoming/: a seal empties it behind the
    /// kernel's back.
    func keepsListing(_ inode: Inode) -> Bool {
        switch inode.kind {
        case .virtual(.runSource), .virtual(.versionDir), .virtual(.worktree): return true
        default: return false
        }
    }

    func readDirectory(req: fuse_req_t, ino: UInt64, size: Int, offset: off_t, fi: UnsafeMutablePointer<fuse_file_info>?, plus: Bool) {
        guard let fi, let dir = Handles.from(fi.pointee.fh) as? DirectoryHandle, let inode = inodes.get(ino) else {
            fuse_reply_err(req, EBADF); return
        }
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate() }
        var used = 0
        // Offsets 1 and 2 are "." and ".."; entry i is at offset i + 3.
        let entries: [DirectoryHandle.Entry]
        do { entries = try dir.entries() } catch { fuse_reply_err(req, errnoValue(for: error)); return }
        var index = Int(offset)
        let total = entries.count + 2
        // On a shared mount the entries are shown for this caller: one right for a folder's
        // children, which belong to the same project or dataset (projects/ and datasets/ ask
        // per child).
        let shared = plus && access.shared
        let childRight: Right? = shared && (try? resource(of: inode)) != nil ? (try? right(on: inode, req)) ?? Right.none : nil
        while index < total {
            let next = off_t(index + 1)
            let added: Int
            if index < 2 {
                var st = Glibc.stat()
                st.st_ino = index == 0 ? UInt(ino) : 1
                st.st_mode = S_IFDIR
                if plus {
                    var e = fuse_entry_param()
                    e.attr = st
                    added = fuse_add_direntry_plus(req, buffer + used, size - used, index == 0 ? "." : "..", &e, next)
                } else {
                    added = fuse_add_direntry(req, buffer + used, size - used, index == 0 ? "." : "..", &st, next)
                }
            } else {
                let entry = entries[index - 2]
                if plus {
                    guard var e = try? childEntry(parent: inode, entry: entry) else { index += 1; continue }
                    if shared, let child = inodes.get(e.ino) {
                        e.attr_timeout = 0
                        if childRight != nil { e.entry_timeout = 0 }  // see `forCaller`
                        if let childRight { Self.mask(&e.attr, right: childRight, writable: writable(child) != nil) } else { forCaller(&e, req) }
                    }
                    added = entry.name.withCString { fuse_add_direntry_plus(req, buffer + used, size - used, $0, &e, next) }
                    if added > size - used { inodes.forget(e.ino, 1) }
                } else {
                    var st = Glibc.stat()
                    st.st_ino = UInt(index + 100)
                    st.st_mode = entry.isDirectory ? S_IFDIR : S_IFREG
                    added = entry.name.withCString { fuse_add_direntry(req, buffer + used, size - used, $0, &st, next) }
                }
            }
            if added > size - used { break }
            used += added
            index += 1
        }
        fuse_reply_buf(req, buffer, used)
    }

    /// The entry for one listed child (readdirplus): one more lookup on its inode.
    private func childEntry(parent: Inode, entry: DirectoryHandle.Entry) throws -> fuse_entry_param {
        switch parent.kind {
        case .staged(let s):
            return try stagedEntry(parent: s, name: entry.name)
        case .virtual(let node):
            if let child = entry.virtualNode, let attrs = entry.attributes {
                return virtualEntry(child, attrs: attrs, ino: inodes.lookupVirtual(child, linkIdentity: attrs.linkIdentity).ino, parent: node)
            }
            guard case .project(let p) = node else { throw Errno.noSuchFileOrDirectory }
            return try incomingRootEntry(projectId: p)
        }
    }
}

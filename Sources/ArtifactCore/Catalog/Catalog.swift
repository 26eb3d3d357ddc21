import Foundation
import GRDB
import Logging

/// The SQLite catalog: owns the database pool and its migrations ("AppDatabase" pattern).
///
/// WAL mode lets the daemon's readers, `status` and `verify` run beside the one writer.
public final class Catalog: Sendable {
    /// The one database handle. Only the catalog's own files use it; the modules that own
    /// tables of their own (the pipeline's jobs, memo and outputs) reach it through
    /// `ownerRead`/`ownerWrite` (SPI `CatalogTables`), and everyone else through typed methods.
    let pool: DatabasePool

    public init(path: String, readOnly: Bool = false) throws {
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.maximumReaderCount = 8
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A seal of a million files is one transaction, and the WAL grows to hold it
            // (600 MB in Benchmarks/scale.sh); without a limit SQLite keeps the file at that
            // size after every later checkpoint. With it, a checkpoint that resets the WAL
            // truncates the file to 64 MiB (SQLite's journal_size_limit).
            try db.execute(sql: "PRAGMA journal_size_limit = \(Catalog.walSizeLimit)")
            // Takes effect on a new catalog (before its first table); an old one needs the
            // VACUUM of `useIncrementalVacuum`.
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL") }
            db.add(function: PathBytes.sqlDir)
            db.add(function: PathBytes.sqlName)
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch let e as DatabaseError where e.resultCode == .SQLITE_FULL {
            // Opening writes (the WAL's index, the first connection's pragmas): a full disk is
            // the user's to mend (exit 8), not a damaged catalog.
            throw ArtifactError(.noSpace, "cannot open catalog: no space left on the store's disk", path: path, cause: e)
        } catch {
            throw ArtifactError(.io, "cannot open catalog: \(error)", path: path)
        }
        // A catalog a newer release changed (packed blobs, say) would be misread by this one.
        let superseded: Bool
        do { superseded = try pool.read { try Catalog.migrator.hasBeenSuperseded($0) } } catch {
            throw ArtifactError(.io, "cannot read catalog: \(error)", path: path)
        }
        if superseded {
            throw ArtifactError(.unsupported, "the catalog was written by a newer artifactfs, whose changes this release does not know; "
                                + "use that release or a newer one", path: path)
        }
        if !readOnly {
            let logger = Logger(label: "artifactfs.catalog")
            let migrator = Catalog.migrator
            let (started, complete) = try pool.read { (try migrator.appliedMigrations($0), try migrator.hasCompletedMigrations($0)) }
            if !started.isEmpty, !complete {
                logger.info("migrating the catalog to this release's format, once", metadata: ["path": "\(path)"])
            }
            try migrator.migrate(pool)
            Catalog.useIncrementalVacuum(pool, path: path, logger: logger)
        }
    }

    /// Turns on SQLite's incremental auto-vacuum for a catalog made before it was the default
    /// (`PRAGMA auto_vacuum = INCREMENTAL` applies to an existing catalog only through a
    /// `VACUUM`): then `checkpoint()` can hand back the pages a seal's bookkeeping freed, and
    /// the one `VACUUM` also packs the tables the v7 migration rebuilt. It rewrites the
    /// catalog once (seconds per million files) and needs about twice its size free; when it
    /// cannot run (no space, another process busy) the catalog is used as it is, a warning is
    /// logged, and the next open tries again.
    private static func useIncrementalVacuum(_ pool: DatabasePool, path: String, logger: Logger) {
        do {
            try pool.writeWithoutTransaction { db in
                guard try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") != 2 else { return }
                logger.info("compacting the catalog, once", metadata: ["path": "\(path)"])
                try db.execute(sql: "VACUUM")
            }
        } catch {
            logger.warning("cannot compact the catalog now (tried again at the next mount): \(error)", metadata: ["path": "\(path)"])
        }
    }

    /// Bytes the WAL file is truncated to after a checkpoint resets it (64 MiB).
    static let walSizeLimit = 64 << 20

    /// Hands free pages back to the file system (`PRAGMA incremental_vacuum`: a seal's
    /// `seal_cleanup` rows leave about 70 bytes per sealed file), then copies the WAL into the
    /// database and empties it (`PRAGMA wal_checkpoint(TRUNCATE)`): what a clean unmount
    /// leaves is the catalog file alone, no larger than its rows. Waits for readers (busy
    /// timeout); throws `.io` when they keep it from finishing.
    public func checkpoint() throws {
        do {
            _ = try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA incremental_vacuum")
                return try db.checkpoint(.truncate)
            }
        } catch {
            throw ArtifactError(.io, "cannot checkpoint the catalog: \(error)", path: pool.path)
        }
    }

    /// Registered once; a migration is never edited after it ships. SPI for tests that
    /// build a catalog as an older release left it.
    @_spi(CatalogTables) public static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-projects-runs-files-blobs") { db in
            try db.create(table: "project") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("owner_uid", .integer).notNull()
                t.column("created_at", .double).notNull()
            }
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("project_id", .integer).notNull().references("project")
                t.column("name", .text).notNull()
                t.column("timestamp", .integer).notNull()
                t.column("seq", .integer).notNull()
                t.column("action", .text).notNull()
                t.column("status", .text).notNull()
                t.column("uid", .integer).notNull()
                t.column("created_at", .double).notNull()
                t.column("completed_at", .double)
                t.column("error", .text)
                t.column("files_new", .integer).notNull()
                t.column("files_superseded", .integer).notNull()
                t.column("files_duplicate", .integer).notNull()
                t.column("bytes", .integer).notNull()
                t.uniqueKey(["project_id", "name"])
            }
            try db.create(index: "run_by_project_time", on: "run", columns: ["project_id", "timestamp", "seq"])
            try db.create(table: "blob") { t in
                t.primaryKey("hash", .text)
                t.column("size", .integer).notNull()
                t.column("refcount", .integer).notNull()
                t.column("created_at", .double).notNull()
            }
            try db.create(table: "file") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("project_id", .integer).notNull().references("project")
                t.column("run_id", .integer).notNull().references("run")
                t.column("path", .text).notNull()
                t.column("dir", .text).notNull()
                t.column("name", .text).notNull()
                t.column("blob", .text).notNull().references("blob")
                t.column("size", .integer).notNull()
                t.column("mode", .integer).notNull()
                t.column("mtime_ns", .integer).notNull()
                t.column("uid", .integer).notNull()
                t.column("gid", .integer).notNull()
                t.column("status", .text).notNull()
                t.column("superseded_by", .integer).references("file")
                t.column("created_at", .double).notNull()
                t.column("processed_at", .double)
            }
            try db.create(index: "file_by_run", on: "file", columns: ["run_id", "dir", "name"], unique: true)
            try db.create(index: "file_by_project_path", on: "file", columns: ["project_id", "path", "run_id"])
            try db.create(index: "file_by_hash", on: "file", columns: ["blob"])
            try db.execute(sql: """
                CREATE INDEX file_current ON file(project_id, dir, name) WHERE superseded_by IS NULL
                """)
            // Folders of each run, so that listing a folder never scans its files' paths.
            try db.create(table: "dir") { t in
                t.column("project_id", .integer).notNull()
                t.column("run_id", .integer).notNull()
                t.column("parent", .text).notNull()
                t.column("name", .text).notNull()
                t.primaryKey(["run_id", "parent", "name"])
            }
            try db.create(index: "dir_by_project", on: "dir", columns: ["project_id", "parent", "name"])
            // Staged files that a committed seal still has to remove from incoming/ (crash-safe
            // exactly-once: a restart removes them instead of sealing them again).
            try db.create(table: "seal_cleanup") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("project_id", .integer).notNull()
                t.column("staged_path", .text).notNull()
                t.column("ino", .integer).notNull()
            }
        }
        m.registerMigration("v2-pipeline") { db in
            try db.create(table: "pipeline") { t in
                t.primaryKey("project_id", .integer).references("project")
                t.column("source", .text).notNull()
                t.column("hash", .text).notNull()
                t.column("updated_at", .double).notNull()
            }
            // Every definition ever set, by hash, so a run keeps the one it started with.
            try db.create(table: "pipeline_version") { t in
                t.primaryKey("hash", .text)
                t.column("source", .text).notNull()
                t.column("created_at", .double).notNull()
            }
            // Which definition processed each run (NULL: not handed to the pipeline yet).
            try db.alter(table: "run") { t in t.add(column: "pipeline_hash", .text) }
            // The durable stage queue: one row per (run, stage, input).
            try db.create(table: "job") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().references("run")
                t.column("stage", .text).notNull()
                t.column("stage_hash", .text).notNull()
                // What memoization looks up: the stage hash, plus the input's name, run and
                // project when the command uses them (they shape the outputs then).
                t.column("memo_key", .text).notNull()
                t.column("input_path", .text).notNull()
                t.column("input_blob", .text)
                t.column("status", .text).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("max_attempts", .integer).notNull()
                t.column("timeout", .double).notNull()
                t.column("not_before", .double).notNull().defaults(to: 0)
                t.column("started_at", .double)
                t.column("ended_at", .double)
                t.column("error", .text)
                t.column("memoized", .boolean).notNull().defaults(to: false)
                t.uniqueKey(["run_id", "stage", "input_path"])
            }
            try db.create(index: "job_by_status", on: "job", columns: ["status", "not_before"])
            // Stage outputs, stored in the blob store like raw files.
            try db.create(table: "output") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("run_id", .integer).notNull().references("run")
                t.column("stage", .text).notNull()
                t.column("path", .text).notNull()
                t.column("dir", .text).notNull()
                t.column("name", .text).notNull()
                t.column("blob", .text).notNull().references("blob")
                t.column("size", .integer).notNull()
                t.column("mode", .integer).notNull()
                t.column("mtime_ns", .integer).notNull()
                t.column("input_path", .text).notNull()
                t.column("job_id", .integer)
                t.uniqueKey(["run_id", "stage", "path"])
            }
            try db.create(index: "output_by_dir", on: "output", columns: ["run_id", "stage", "dir", "name"])
            try db.create(index: "output_by_hash", on: "output", columns: ["blob"])
            try db.create(table: "output_dir") { t in
                t.column("run_id", .integer).notNull()
                t.column("stage", .text).notNull()
                t.column("parent", .text).notNull()
                t.column("name", .text).notNull()
                t.primaryKey(["run_id", "stage", "parent", "name"])
            }
            // Memoized results: (memo key, input content) -> outputs as JSON.
            try db.create(table: "memo") { t in
                t.column("memo_key", .text).notNull()
                t.column("input_blob", .text).notNull()
                t.column("outputs", .text).notNull()
                t.column("created_at", .double).notNull()
                t.primaryKey(["memo_key", "input_blob"])
            }
        }
        m.registerMigration("v3-datasets") { db in
            try db.create(table: "dataset") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("owner_uid", .integer).notNull()
                t.column("owner_gid", .integer).notNull()
                t.column("created_at", .double).notNull()
            }
            // One committed tree. Its files are its parent's plus the entries it wrote.
            try db.create(table: "version") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).notNull().references("dataset")
                t.column("name", .text).notNull()
                t.column("timestamp", .integer).notNull()
                t.column("seq", .integer).notNull()
                t.column("parent_id", .integer).references("version")
                // Distance from the root version: the newest entry of a path wins by depth.
                t.column("depth", .integer).notNull()
                t.column("branch", .text).notNull()
                t.column("author_uid", .integer).notNull()
                t.column("message", .text).notNull()
                t.column("created_at", .double).notNull()
                t.column("changes", .integer).notNull()
                t.uniqueKey(["dataset_id", "name"])
            }
            // What a version changed: a file or folder it added or replaced, or a path it deleted.
            try db.create(table: "entry") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).notNull()
                t.column("version_id", .integer).notNull().references("version")
                t.column("path", .text).notNull()
                t.column("dir", .text).notNull()
                t.column("name", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("blob", .text).references("blob")
                t.column("size", .integer).notNull()
                t.column("mode", .integer).notNull()
                t.column("mtime_ns", .integer).notNull()
                t.column("uid", .integer).notNull()
                t.column("gid", .integer).notNull()
                t.column("schema", .text)
            }
            try db.create(index: "entry_by_path", on: "entry", columns: ["dataset_id", "path"])
            try db.create(index: "entry_by_dir", on: "entry", columns: ["dataset_id", "dir"])
            try db.create(index: "entry_by_version", on: "entry", columns: ["version_id"])
            try db.create(index: "entry_by_hash", on: "entry", columns: ["blob"])
            // Branches move; tags never do. NULL version: a branch with no commit yet.
            try db.create(table: "ref") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).notNull().references("dataset")
                t.column("kind", .text).notNull()
                t.column("name", .text).notNull()
                t.column("version_id", .integer).references("version")
                t.column("created_at", .double).notNull()
                t.uniqueKey(["dataset_id", "kind", "name"])
            }
            // A branch's uncommitted changes over its head, one row per changed path. File bytes
            // written in the working tree live in staging/worktrees/<branch>/<upper>.
            try db.create(table: "worktree_change") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("branch_id", .integer).notNull().references("ref")
                t.column("path", .text).notNull()
                t.column("dir", .text).notNull()
                t.column("name", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("blob", .text)
                t.column("upper", .text)
                t.column("size", .integer).notNull()
                t.column("mode", .integer).notNull()
                t.column("mtime_ns", .integer).notNull()
                t.column("uid", .integer).notNull()
                t.column("gid", .integer).notNull()
                t.uniqueKey(["branch_id", "path"])
            }
            try db.create(index: "worktree_change_by_dir", on: "worktree_change", columns: ["branch_id", "dir"])
        }
        // Names are bytes (SPEC §1): every column holding a file name or a path under a tree
        // becomes a BLOB, which SQLite compares byte by byte, like the kernel. Rows written
        // before held the same bytes as TEXT; a TEXT value never equals a BLOB, so convert all.
        m.registerMigration("v4-names-are-bytes") { db in
            let columns: [(String, [String])] = [
                ("file", ["path", "dir", "name"]), ("dir", ["parent", "name"]), ("seal_cleanup", ["staged_path"]),
                ("job", ["input_path"]), ("output", ["path", "dir", "name", "input_path"]), ("output_dir", ["parent", "name"]),
                ("entry", ["path", "dir", "name"]), ("worktree_change", ["path", "dir", "name"]),
            ]
            for (table, names) in columns {
                let sets = names.map { "\($0) = CAST(\($0) AS BLOB)" }.joined(separator: ", ")
                try db.execute(sql: "UPDATE \(table) SET \(sets)")
            }
        }
        // Whole trees (SPEC §1): what a run's file is (regular, symlink, FIFO, socket, device),
        // its user.* attributes, its hard-link group within the run, its device number and
        // atime; a run's folders keep their own mode, owner, mtime and attributes. Versions and
        // working trees get the same fields. A symlink's target is its blob, as in git.
        m.registerMigration("v5-whole-trees") { db in
            try db.alter(table: "file") { t in
                t.add(column: "kind", .text).notNull().defaults(to: "file")
                t.add(column: "xattrs", .blob)
                t.add(column: "link_group", .integer)
                t.add(column: "nlink", .integer).notNull().defaults(to: 1)
                t.add(column: "rdev", .integer).notNull().defaults(to: 0)
                t.add(column: "atime_ns", .integer)
            }
            try db.alter(table: "dir") { t in
                t.add(column: "mode", .integer)
                t.add(column: "uid", .integer)
                t.add(column: "gid", .integer)
                t.add(column: "mtime_ns", .integer)
                t.add(column: "xattrs", .blob)
            }
            for table in ["entry", "worktree_change"] {
                try db.alter(table: table) { t in
                    t.add(column: "xattrs", .blob)
                    t.add(column: "rdev", .integer).notNull().defaults(to: 0)
                    t.add(column: "atime_ns", .integer)
                }
            }
            // Hard links in a version: the id of the group's first entry, and how many names it has.
            try db.alter(table: "entry") { t in
                t.add(column: "link_group", .integer)
                t.add(column: "nlink", .integer).notNull().defaults(to: 1)
            }
            // A working tree's own ctime for rows without an upper file (an upper file has its own).
            try db.alter(table: "worktree_change") { t in t.add(column: "ctime_ns", .integer) }
            // Hard links in a working tree are rows sharing one upper file; nlink counts them.
            try db.create(index: "worktree_change_by_upper", on: "worktree_change", columns: ["branch_id", "upper"])
        }
        m.registerMigration("v6-folder-link-counts") { db in
            // A folder's link count is 2 + its folders: these find the folders of a folder
            // without reading its files (`VersionTrees.subfolders`, `Worktrees.folderLinkCount`).
            try db.execute(sql: "CREATE INDEX entry_folders ON entry(dataset_id, dir) WHERE kind = 'dir'")
            try db.execute(sql: "CREATE INDEX worktree_change_folders ON worktree_change(branch_id, dir) WHERE kind = 'dir'")
        }
        // A lean catalog (SPEC §8: at most 300 bytes per file). Blob names become their 32
        // digest bytes instead of 64 hex characters, in `blob` and in every row that names one;
        // `blob` is keyed by its name with no rowid (its primary key was a second copy of every
        // name); `file` drops its whole path (it is `dir/name`); and the `*_by_hash` indexes go.
        // No query looks rows up by blob, and the foreign keys from rows to `blob` go with
        // them: SQLite would scan every row table for each blob row a collection deletes.
        // `BlobReferences` (the one refcount writer) and `verify` keep rows and blobs agreeing.
        m.registerMigration("v7-lean-catalog") { db in
            db.add(function: Catalog.blobNameFromHex)
            try db.execute(sql: """
                CREATE TABLE new_blob (
                    hash BLOB NOT NULL PRIMARY KEY, size INTEGER NOT NULL, refcount INTEGER NOT NULL, created_at DOUBLE NOT NULL
                ) WITHOUT ROWID;
                INSERT INTO new_blob SELECT afs_blob_name(hash), size, refcount, created_at FROM blob;

                CREATE TABLE new_file (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    project_id INTEGER NOT NULL REFERENCES project(id),
                    run_id INTEGER NOT NULL REFERENCES run(id),
                    dir BLOB NOT NULL, name BLOB NOT NULL, blob BLOB NOT NULL,
                    size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                    uid INTEGER NOT NULL, gid INTEGER NOT NULL, status TEXT NOT NULL,
                    superseded_by INTEGER REFERENCES file(id), created_at DOUBLE NOT NULL, processed_at DOUBLE,
                    kind TEXT NOT NULL DEFAULT 'file', xattrs BLOB, link_group INTEGER,
                    nlink INTEGER NOT NULL DEFAULT 1, rdev INTEGER NOT NULL DEFAULT 0, atime_ns INTEGER
                );
                INSERT INTO new_file (id, project_id, run_id, dir, name, blob, size, mode, mtime_ns, uid, gid, status,
                                      superseded_by, created_at, processed_at, kind, xattrs, link_group, nlink, rdev, atime_ns)
                    SELECT id, project_id, run_id, dir, name, afs_blob_name(blob), size, mode, mtime_ns, uid, gid, status,
                           superseded_by, created_at, processed_at, kind, xattrs, link_group, nlink, rdev, atime_ns FROM file;

                CREATE TABLE new_output (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id INTEGER NOT NULL REFERENCES run(id),
                    stage TEXT NOT NULL, path BLOB NOT NULL, dir BLOB NOT NULL, name BLOB NOT NULL, blob BLOB NOT NULL,
                    size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                    input_path BLOB NOT NULL, job_id INTEGER,
                    UNIQUE (run_id, stage, path)
                );
                INSERT INTO new_output (id, run_id, stage, path, dir, name, blob, size, mode, mtime_ns, input_path, job_id)
                    SELECT id, run_id, stage, path, dir, name, afs_blob_name(blob), size, mode, mtime_ns, input_path, job_id FROM output;

                CREATE TABLE new_entry (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    dataset_id INTEGER NOT NULL,
                    version_id INTEGER NOT NULL REFERENCES version(id),
                    path BLOB NOT NULL, dir BLOB NOT NULL, name BLOB NOT NULL, kind TEXT NOT NULL, blob BLOB,
                    size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                    uid INTEGER NOT NULL, gid INTEGER NOT NULL, schema TEXT,
                    xattrs BLOB, rdev INTEGER NOT NULL DEFAULT 0, atime_ns INTEGER,
                    link_group INTEGER, nlink INTEGER NOT NULL DEFAULT 1
                );
                INSERT INTO new_entry (id, dataset_id, version_id, path, dir, name, kind, blob, size, mode, mtime_ns,
                                       uid, gid, schema, xattrs, rdev, atime_ns, link_group, nlink)
                    SELECT id, dataset_id, version_id, path, dir, name, kind, afs_blob_name(blob), size, mode, mtime_ns,
                           uid, gid, schema, xattrs, rdev, atime_ns, link_group, nlink FROM entry;

                -- Keep each table's AUTOINCREMENT high-water mark: ids are never reused (the
                -- daemon derives inode numbers from them).
                CREATE TEMP TABLE kept_sequence AS SELECT name, seq FROM sqlite_sequence WHERE name IN ('file', 'output', 'entry');
                DROP TABLE blob; DROP TABLE file; DROP TABLE output; DROP TABLE entry;
                ALTER TABLE new_blob RENAME TO blob;
                ALTER TABLE new_file RENAME TO file;
                ALTER TABLE new_output RENAME TO output;
                ALTER TABLE new_entry RENAME TO entry;
                UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT k.seq FROM kept_sequence k WHERE k.name = sqlite_sequence.name))
                    WHERE name IN (SELECT name FROM kept_sequence);
                INSERT INTO sqlite_sequence (name, seq)
                    SELECT name, seq FROM kept_sequence WHERE name NOT IN (SELECT name FROM sqlite_sequence);
                DROP TABLE kept_sequence;

                CREATE UNIQUE INDEX file_by_run ON file(run_id, dir, name);
                CREATE INDEX file_by_name ON file(project_id, dir, name);
                CREATE INDEX file_current ON file(project_id, dir, name) WHERE superseded_by IS NULL;
                CREATE INDEX output_by_dir ON output(run_id, stage, dir, name);
                CREATE INDEX entry_by_path ON entry(dataset_id, path);
                CREATE INDEX entry_by_dir ON entry(dataset_id, dir);
                CREATE INDEX entry_by_version ON entry(version_id);
                CREATE INDEX entry_folders ON entry(dataset_id, dir) WHERE kind = 'dir';

                UPDATE worktree_change SET blob = afs_blob_name(blob) WHERE blob IS NOT NULL;
                UPDATE job SET input_blob = afs_blob_name(input_blob) WHERE input_blob IS NOT NULL;
                UPDATE memo SET input_blob = afs_blob_name(input_blob);
                """)
        }
        // The store's lifecycle (SPEC §6). `released_at`: when a blob's last reference went (gc
        // waits a grace period from then); `blocks`: the checksums of its 1 MiB blocks, recorded
        // at ingest and checked on reads. `deleted_ref`: a deleted branch, kept so that its
        // versions stay for the retention period and `log` shows them. `retention`: a keep
        // policy stored for a project or dataset, applied by gc.
        m.registerMigration("v8-lifecycle") { db in
            try db.execute(sql: """
                ALTER TABLE blob ADD COLUMN released_at DOUBLE;
                ALTER TABLE blob ADD COLUMN blocks BLOB;
                UPDATE blob SET released_at = created_at WHERE refcount = 0;
                CREATE TABLE deleted_ref (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    dataset_id INTEGER NOT NULL REFERENCES dataset(id),
                    name TEXT NOT NULL, version_id INTEGER, deleted_at DOUBLE NOT NULL
                );
                CREATE INDEX deleted_ref_by_dataset ON deleted_ref(dataset_id, deleted_at);
                CREATE TABLE retention (
                    kind TEXT NOT NULL, owner_id INTEGER NOT NULL, policy TEXT NOT NULL, updated_at DOUBLE NOT NULL,
                    PRIMARY KEY (kind, owner_id)
                );
                """)
        }
        // `artifactfs import` (SPEC §6): what an import in progress has stored, one row per path
        // of the tree, keyed by (target, source folder), so a killed import resumes without
        // reading again what it stored; `pass` marks the rows the current attempt found in the
        // folder. Its blobs are named by these rows only, so gc treats them as named
        // (v13 dropped the index by blob: `JournaledBlobs`). `import_done`: an import whose run or version committed,
        // until its run is handed to the pipeline and the mount told (a rerun finishes that).
        m.registerMigration("v9-import-journal") { db in
            try db.execute(sql: """
                CREATE TABLE import_journal (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    target TEXT NOT NULL, source BLOB NOT NULL, path BLOB NOT NULL, kind TEXT NOT NULL, blob BLOB,
                    size INTEGER NOT NULL, mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
                    uid INTEGER NOT NULL, gid INTEGER NOT NULL, ino INTEGER NOT NULL, dev INTEGER NOT NULL,
                    nlink INTEGER NOT NULL, rdev INTEGER NOT NULL, atime_ns INTEGER, xattrs BLOB, schema TEXT,
                    stored INTEGER NOT NULL, pass INTEGER NOT NULL, blocks BLOB,
                    UNIQUE (target, source, path)
                );
                CREATE INDEX import_journal_by_blob ON import_journal(blob) WHERE blob IS NOT NULL;
                CREATE TABLE import_done (
                    target TEXT NOT NULL, source BLOB NOT NULL, summary TEXT NOT NULL, PRIMARY KEY (target, source)
                );
                """)
        }
        // A deleted tag is kept like a deleted branch (its versions stay for the retention
        // period): `deleted_ref.kind` says which it was.
        m.registerMigration("v10-deleted-tags") { db in
            try db.execute(sql: "ALTER TABLE deleted_ref ADD COLUMN kind TEXT NOT NULL DEFAULT 'branch'")
        }
        // Access (SPEC §6): who may read, write or administer a project or a dataset. The
        // creator of each existing one becomes its admin, as a new one's creator does.
        m.registerMigration("v11-grants") { db in
            try db.execute(sql: """
                CREATE TABLE access_grant (
                    resource_kind TEXT NOT NULL CHECK (resource_kind IN ('project', 'dataset')),
                    resource_id INTEGER NOT NULL,
                    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('user', 'group')),
                    principal_id INTEGER NOT NULL,
                    right INTEGER NOT NULL CHECK (right BETWEEN 1 AND 3),
                    granted_at REAL NOT NULL,
                    PRIMARY KEY (resource_kind, resource_id, principal_kind, principal_id)
                ) WITHOUT ROWID;
                INSERT INTO access_grant SELECT 'project', id, 'user', owner_uid, 3, created_at FROM project;
                INSERT INTO access_grant SELECT 'dataset', id, 'user', owner_uid, 3, created_at FROM dataset;
                """)
        }
        // Small blobs an import stores many of at once live in pack files (`BlobStore`, after
        // restic's packs and git's packfiles). A packed blob's row says where: which pack, at
        // which offset (its length is its size). A row made by packing has refcount 0 until a
        // run or version names it. In the blob row, not a table of its own: a second row keyed
        // by the 32-byte name would cost the catalog about 90 bytes more per file (SPEC §8).
        m.registerMigration("v12-packs") { db in
            try db.execute(sql: """
                CREATE TABLE pack (
                    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, size INTEGER NOT NULL, created_at REAL NOT NULL
                );
                ALTER TABLE blob ADD COLUMN pack INTEGER REFERENCES pack(id);
                ALTER TABLE blob ADD COLUMN pack_offset INTEGER;
                """)
        }
        // An import's batch says where it packed each blob in its journal rows (written in path
        // order) instead of in the blob rows (keyed by hash: random writes over the whole
        // table per batch); the registration moves the location into the blob row. The index
        // by blob, random writes too, goes: gc reads the journal's blobs once per pass. The index
        // by pack (ids only grow: written at its end) is what gc asks before it drops a pack.
        m.registerMigration("v13-journal-packs") { db in
            try db.execute(sql: """
                ALTER TABLE import_journal ADD COLUMN pack INTEGER REFERENCES pack(id);
                ALTER TABLE import_journal ADD COLUMN pack_offset INTEGER;
                DROP INDEX import_journal_by_blob;
                CREATE INDEX import_journal_by_pack ON import_journal(pack) WHERE pack IS NOT NULL;
                """)
        }
        return m
    }

    /// `afs_blob_name(x)`, for the migration to 32-byte blob names: 64 lowercase hex
    /// characters become the 32 bytes they spell; anything else (damage `verify` reports)
    /// stays as it was.
    private static let blobNameFromHex = DatabaseFunction("afs_blob_name", argumentCount: 1, pure: true) { values in
        guard let text = String.fromDatabaseValue(values[0]), let hash = BlobHash(hex: text) else { return values[0] }
        return Data(hash.bytes)
    }
}

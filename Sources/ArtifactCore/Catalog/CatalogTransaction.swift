import GRDB

/// One open transaction on the catalog, for work whose reads must see one snapshot or whose
/// writes must land together (a working-tree change, a commit's plan, a registration).
///
/// Code outside `Catalog/` gets one from `Catalog.reading`, `writing` or `staging` and calls
/// its typed methods, which live beside the tables they touch (`Transaction+Versions.swift`,
/// `Transaction+Worktrees.swift`, …); it never sees SQL or GRDB. That keeps the catalog the
/// only door to its tables, and gives a second catalog (PostgreSQL) one surface to implement.
struct CatalogTransaction {
    let db: Database
}

extension Catalog {
    /// One read snapshot (WAL: it never waits for the writer).
    func reading<T>(_ body: (CatalogTransaction) throws -> T) throws -> T {
        try read { try body(CatalogTransaction(db: $0)) }
    }

    /// One durable write transaction; `what` names the change that did not happen in errors.
    func writing<T>(_ what: String? = nil, _ body: (CatalogTransaction) throws -> T) throws -> T {
        if let what { return try write(what) { try body(CatalogTransaction(db: $0)) } }
        return try write { try body(CatalogTransaction(db: $0)) }
    }

    /// One staging write transaction (see `writeStaging`: it does not wait for the disk).
    func staging<T>(_ body: (CatalogTransaction) throws -> T) throws -> T {
        try writeStaging { try body(CatalogTransaction(db: $0)) }
    }
}

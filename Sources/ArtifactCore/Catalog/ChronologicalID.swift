import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// The ids of runs and versions: UTC second plus a three-digit sequence, e.g.
/// 20261121T143005Z-001, so that plain `ls` lists them in the order they were made.
public struct ChronologicalID: Sendable, Equatable {
    public var timestamp: Int64
    public var seq: Int64

    /// The id text for this time and sequence.
    public var name: String {
        var t = time_t(timestamp)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ-%03lld",
                      Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), seq)
    }

    /// The next id after the newest row of `table` whose `ownerColumn` is `ownerId`. Call it in
    /// the transaction that inserts the row.
    static func next(_ db: Database, table: String, ownerColumn: String, ownerId: Int64, now: Date) throws -> ChronologicalID {
        var id = ChronologicalID(timestamp: Int64(now.timeIntervalSince1970.rounded(.down)), seq: 1)
        if let last = try Row.fetchOne(db, sql: """
            SELECT timestamp, seq FROM \(table) WHERE \(ownerColumn) = ? ORDER BY timestamp DESC, seq DESC LIMIT 1
            """, arguments: [ownerId]) {
            let lastTs: Int64 = last["timestamp"], lastSeq: Int64 = last["seq"]
            // Ids must sort in order even if two share a second or the clock steps back.
            if id.timestamp <= lastTs { id = ChronologicalID(timestamp: lastTs, seq: lastSeq + 1) }
            // Three digits keep ids sorting as text; past 999 in one second, borrow the next second.
            if id.seq > 999 { id = ChronologicalID(timestamp: id.timestamp + 1, seq: 1) }
        }
        return id
    }
}

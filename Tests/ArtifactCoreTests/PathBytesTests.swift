import ArtifactCore
import Foundation
import GRDB
import XCTest

final class PathBytesTests: XCTestCase {
    let nfc = PathBytes([0x63, 0x61, 0x66, 0xC3, 0xA9])            // "café", NFC
    let nfd = PathBytes([0x63, 0x61, 0x66, 0x65, 0xCC, 0x81])      // "café", NFD
    let latin1 = PathBytes([0xE9, 0x2E, 0x74, 0x78, 0x74])         // "\xe9.txt", not UTF-8

    func testEqualityAndHashingAreByteWise() {
        XCTAssertEqual(nfc.description, "café")
        XCTAssertEqual(nfd.description, "café")
        XCTAssertEqual(nfc.description, nfd.description, "String merges them: the reason for this type")
        XCTAssertNotEqual(nfc, nfd)
        XCTAssertEqual(Set([nfc, nfd]).count, 2)
        XCTAssertEqual([nfc: 1, nfd: 2].count, 2)
        XCTAssertNotEqual(latin1, PathBytes([0xE8, 0x2E, 0x74, 0x78, 0x74]))
        XCTAssertTrue(nfd < nfc, "bytes order: 'e' (0x65) before 0xC3")
    }

    func testCStringKeepsInvalidUTF8() {
        let raw: [CChar] = [CChar(bitPattern: 0xE9), 0x2E, 0x74, 0x78, 0x74, 0]
        let name = raw.withUnsafeBufferPointer { PathBytes(cString: $0.baseAddress!) }
        XCTAssertEqual(name, latin1)
        XCTAssertNil(name.validUTF8)
        name.withCString { XCTAssertEqual(strlen($0), 5) }
    }

    func testPathComponents() {
        let p = PathBytes("a/b").appending(latin1)
        XCTAssertEqual(p.parent, "a/b")
        XCTAssertEqual(p.lastComponent, latin1)
        XCTAssertEqual(PathBytes.empty.appending("x"), "x")
        XCTAssertEqual(PathBytes("x").parent, .empty)
        XCTAssertTrue(p.isWithin("a"))
        XCTAssertTrue(p.isBelow("a/b"))
        XCTAssertFalse(PathBytes("ab/c").isWithin("a"))
        XCTAssertFalse(PathBytes("a").isBelow("a"))
        XCTAssertEqual(p.replacingPrefix("a/b", with: "z"), PathBytes("z").appending(latin1))
        XCTAssertEqual(p.components.count, 3)
    }

    func testQuotedIsOneLineAndShowsEveryByte() {
        XCTAssertEqual(PathBytes("plain name.csv").quoted, "plain name.csv")
        XCTAssertEqual(nfd.quoted, "café")
        XCTAssertEqual(latin1.quoted, "\"\\351.txt\"")
        XCTAssertEqual(PathBytes("two\nlines").quoted, "\"two\\nlines\"")
        XCTAssertEqual(PathBytes("q\"b\\").quoted, "\"q\\\"b\\\\\"")
        XCTAssertFalse(PathBytes([0x61, 0x0A, 0xFF]).quoted.contains("\n"))
    }

    func testJSONFieldsAreReversible() throws {
        XCTAssertEqual(nfc.jsonFields("path"), ["path": "café"])
        let fields = latin1.jsonFields("path")
        XCTAssertEqual(fields["path"], "\u{FFFD}.txt")
        XCTAssertEqual(Data(base64Encoded: try XCTUnwrap(fields["path_bytes"])).map(Array.init), latin1.bytes)
        // Codable (memo rows, JSON) round-trips either kind.
        for name in [nfc, nfd, latin1] {
            let data = try JSONEncoder().encode([name])
            XCTAssertEqual(try JSONDecoder().decode([PathBytes].self, from: data), [name])
        }
    }

    func testCatalogStoresBlobsAndReadsOldText() throws {
        let db = try DatabaseQueue()
        try db.write { db in
            try db.execute(sql: "CREATE TABLE t (name TEXT)")
            try db.execute(sql: "INSERT INTO t VALUES (?), (?), (?)", arguments: [nfc, nfd, latin1])
            try db.execute(sql: "INSERT INTO t VALUES ('old text')")
            XCTAssertEqual(try String.fetchAll(db, sql: "SELECT typeof(name) FROM t"), ["blob", "blob", "blob", "text"])
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM t WHERE name = ?", arguments: [nfd]), 1)
            XCTAssertEqual(try PathBytes.fetchAll(db, sql: "SELECT name FROM t ORDER BY rowid"), [nfc, nfd, latin1, "old text"])
        }
    }
}

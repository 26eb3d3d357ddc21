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

    /// Reports keyed by name keep NFC, NFD and non-UTF-8 names apart (JSONEncoder alone merges
    /// the first two), in byte order, and never touch a value that looks like a placeholder.
    func testNameKeyedJSONKeepsEveryNameApart() throws {
        struct Report: Codable { var byName: NameKeyed<String>; var note: String }
        var byName = NameKeyed<String>()
        byName[nfd] = "D"
        byName[nfc] = "C"
        byName[latin1] = "L"
        byName["plain \"quoted\""] = "P"
        let data = try NameKeyedJSON.encode(Report(byName: byName, note: "\u{1}00000000"))
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.hasSuffix("}\n"), text)
        // Python's json (code-point keys) reads four entries with the exact names back.
        let script = """
            import json, sys
            d = json.load(sys.stdin)
            print(sorted((k.encode("utf-8", "surrogateescape").hex(), v) for k, v in d["byName"].items()), repr(d["note"]))
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        python.arguments = ["-c", script]
        let input = Pipe(), output = Pipe()
        python.standardInput = input
        python.standardOutput = output
        try python.run()
        input.fileHandleForWriting.write(data)
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        let expected: [(String, String)] = [(nfc, "C"), (nfd, "D"), (PathBytes(latin1.quoted), "L"), ("plain \"quoted\"", "P")]
            .map { (Data($0.0.bytes).map { String(format: "%02x", $0) }.joined(), $0.1) }
            .sorted { $0.0 < $1.0 }
        XCTAssertEqual(printed, "[" + expected.map { "('\($0.0)', '\($0.1)')" }.joined(separator: ", ") + "] '\\x0100000000'\n")
        // In byte order of the names.
        XCTAssertEqual(byName.names, [PathBytes("plain \"quoted\""), nfd, nfc, latin1].sorted())
        let positions = [nfc, nfd].map { name in text.utf8.firstRange(of: Array(name.bytes))!.lowerBound }
        XCTAssertEqual(positions[0] < positions[1], nfc < nfd)
    }

    /// A run's report lists two inputs whose names are equal as Unicode once each.
    func testRunReportKeepsEquivalentInputsApart() throws {
        let jobs = [nfc, nfd].map {
            StageJob(stage: "s", inputPath: PathBytes("raw_source").appending($0), status: .completed, attempts: 1,
                     startedAt: nil, endedAt: nil, error: nil, memoized: false)
        }
        let stage = StageReport(jobs: jobs)
        XCTAssertEqual(stage.inputs.count, 2)
        let text = String(decoding: try NameKeyedJSON.encode(stage), as: UTF8.self)
        for name in [nfc, nfd] {
            XCTAssertNotNil(text.utf8.firstRange(of: Array(PathBytes("raw_source").appending(name).bytes)), text)
        }
    }

    func testFolderAndAncestorsWalksUpToTheTop() {
        XCTAssertEqual(PathBytes("a/b/c").folderAndAncestors, ["a/b/c", "a/b", "a"])
        XCTAssertEqual(PathBytes("a").folderAndAncestors, ["a"])
        XCTAssertEqual(PathBytes.empty.folderAndAncestors, [])
        XCTAssertEqual(PathBytes([0xE9]).appending(nfd).folderAndAncestors, [PathBytes([0xE9]).appending(nfd), PathBytes([0xE9])])
    }
}

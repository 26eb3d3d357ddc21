import ArtifactCore
import Foundation
import TabularSchemas
import XCTest

/// Parquet schemas from the footer, on fixtures written by pyarrow (Tests/Fixtures/parquet/make.py:
/// types.parquet has 3 rows in 2 row groups; empty.parquet has two columns and no rows).
final class ParquetFooterTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/parquet")

    func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))
    }

    func testEveryColumnKindOfTheFixture() throws {
        let path = Self.fixtures.appendingPathComponent("types.parquet").path
        let schema = try XCTUnwrap(SchemaInference.infer(path: path, name: "types.parquet"))
        XCTAssertNil(schema.error)
        XCTAssertEqual(schema.format, "parquet")
        XCTAssertEqual(schema.rows, 3, "rows of both row groups")
        let expected: [(String, String, Bool)] = [
            ("id", "integer", false), ("name", "string", true), ("score", "float", true), ("ok", "boolean", true),
            ("day", "date", true), ("ts", "datetime", true), ("price", "decimal", true), ("tags", "array", true),
            ("meta", "object", true), ("raw", "binary", true), ("small", "integer", true),
        ]
        XCTAssertEqual(schema.columns.map(\.name), expected.map(\.0), "top-level columns only, in order")
        XCTAssertEqual(schema.columns.map(\.type), expected.map(\.1))
        XCTAssertEqual(schema.columns.map(\.nullable), expected.map(\.2))
        // The same from bytes in memory.
        XCTAssertEqual(SchemaInference.infer(bytes: try fixture("types.parquet"), format: "parquet"), schema)
    }

    func testEmptyFileHasColumnsAndNoRows() throws {
        let schema = SchemaInference.infer(bytes: try fixture("empty.parquet"), format: "parquet")
        XCTAssertNil(schema.error)
        XCTAssertEqual(schema.rows, 0)
        XCTAssertEqual(schema.columns, [FileSchema.Column(name: "a", type: "integer", nullable: true),
                                        FileSchema.Column(name: "b", type: "string", nullable: true)])
    }

    func testDamagedFilesAreReportedNotTrusted() throws {
        let good = try fixture("types.parquet")
        func error(_ bytes: [UInt8]) -> String { SchemaInference.infer(bytes: bytes, format: "parquet").error ?? "" }
        XCTAssertTrue(error([]).contains("too short"))
        XCTAssertTrue(error(Array("PAR1".utf8)).contains("too short"))
        XCTAssertTrue(error(Array(good.dropLast())).contains("no PAR1 magic"), "cut short")
        XCTAssertTrue(error(Array("id,name\n1,a\n2,b\n".utf8)).contains("not a Parquet file"), "a CSV")
        var encrypted = good
        encrypted.replaceSubrange((good.count - 4)..., with: Array("PARE".utf8))
        XCTAssertTrue(error(encrypted).contains("encrypted"))
        var huge = good
        huge.replaceSubrange((good.count - 8)..<(good.count - 4), with: [0xff, 0xff, 0xff, 0x7f])
        XCTAssertTrue(error(huge).contains("corrupt footer length"), error(huge))
        // A length pointing into the middle of the footer: parsed from the wrong place, refused.
        let length = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8
        var short = good
        short.replaceSubrange((good.count - 8)..<(good.count - 6), with: [UInt8((length / 2) & 0xff), UInt8((length / 2) >> 8)])
        XCTAssertTrue(error(short).contains("corrupt footer"), error(short))
        // A missing file.
        let missing = try XCTUnwrap(SchemaInference.infer(path: "/nonexistent/x.parquet", name: "x.parquet"))
        XCTAssertTrue(missing.error?.contains("cannot open file") ?? false)
    }

    /// Random damage anywhere in the footer never traps: every result is a schema or an error.
    func testRandomFooterDamageNeverCrashes() throws {
        let good = try fixture("types.parquet")
        let length = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8 | Int(good[good.count - 6]) << 16
        let footerStart = good.count - 8 - length
        var rng = SystemRandomNumberGenerator()
        var errors = 0
        for _ in 0..<3000 {
            var bytes = good
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: footerStart..<(good.count - 8), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let schema = SchemaInference.infer(bytes: bytes, format: "parquet")
            if schema.error != nil { errors += 1 }
            XCTAssertLessThanOrEqual(schema.columns.count, length, "never more columns than footer bytes")
        }
        XCTAssertGreaterThan(errors, 0, "some damage must be detected")
    }
}

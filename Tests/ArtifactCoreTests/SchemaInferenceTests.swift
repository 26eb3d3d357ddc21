import ArtifactCore
import Foundation
import TabularSchemas
import XCTest

final class SchemaInferenceTests: XCTestCase {
    private func infer(_ text: String, _ format: String = "csv", chunkSize: Int = 1 << 20) -> FileSchema {
        SchemaInference.infer(bytes: Array(text.utf8), format: format, chunkSize: chunkSize)
    }

    private func names(_ schema: FileSchema) -> [String] { schema.columns.map(\.name) }
    private func types(_ schema: FileSchema) -> [String] { schema.columns.map(\.type) }
    private func nullables(_ schema: FileSchema) -> [Bool] { schema.columns.map(\.nullable) }

    // MARK: 1. RFC 4180 quoting, CRLF, BOM

    func testQuotedFieldsCRLFAndBOM() {
        let text = "\u{FEFF}id,name,note,amount\r\n"
            + "1,\"Smith, John\",\"line one\r\nline two\",10\r\n"
            + "2,\"say \"\"hi\"\"\",plain,2.5\r\n"
            + "3,\"\",\"a\nb\",-7\r\n"
        let schema = infer(text)
        XCTAssertEqual(names(schema), ["id", "name", "note", "amount"], "BOM must not leak into the first name")
        XCTAssertEqual(types(schema), ["integer", "string", "string", "float"])
        XCTAssertEqual(nullables(schema), [false, true, false, false], "a quoted empty field is still empty")
        XCTAssertEqual(schema.rows, 3)
        XCTAssertNil(schema.error)
        XCTAssertEqual(schema.format, "csv")
    }

    func testQuotedHeaderNamesAndLFOnly() {
        let schema = infer("\"a,1\",\"b\"\"2\",c\n1,2,3")   // no trailing newline
        XCTAssertEqual(names(schema), ["a,1", "b\"2", "c"])
        XCTAssertEqual(types(schema), ["integer", "integer", "integer"])
        XCTAssertEqual(schema.rows, 1)
        XCTAssertNil(schema.error)
    }

    func testTypeInferenceAndWidening() {
        let text = """
        i,f,mix,b,d,dt,widen,txt,big,words,signed
        1,1.5,1,true,2024-01-31,2024-01-31T10:20:30,2024-01-01,2024-13-01,9223372036854775807,nan,+5
        -2,1e5,2.25,FALSE,1999-12-01,2024-01-31 10:20:30.123Z,2024-01-02T00:00:00+02:00,x,9223372036854775808,inf,-0
        3,.5,7,True,2000-02-29,2024-01-31T10:20:30.5-0530,2024-01-03,12:00,1,Infinity,+12

        """
        let schema = infer(text)
        XCTAssertNil(schema.error)
        XCTAssertEqual(schema.rows, 3)
        XCTAssertEqual(types(schema), [
            "integer", "float", "float", "boolean", "date", "datetime", "datetime", "string",
            "float",   // 2^63 does not fit Int64, so the column widens to float
            "string",  // nan/inf words are not numbers
            "integer",
        ])
        XCTAssertEqual(nullables(schema), Array(repeating: false, count: 11))
    }

    func testIncompatibleMixBecomesString() {
        let schema = infer("a,b,c\n1,true,2024-01-01\ntrue,1,5\n")
        XCTAssertEqual(types(schema), ["string", "string", "string"])
    }

    func testBareValuesThatAreNotNumbers() {
        let schema = infer("a,b,c,d,e\n1.2.3,-,1e,0x10, 42\n")
        XCTAssertEqual(types(schema), ["string", "string", "string", "string", "string"])
    }

    // MARK: 2. Empty values

    func testEmptyValuesAreNullableAndDoNotChangeType() {
        let schema = infer("a,b,c,d\n1,,x,\n,2.5,,\n3,1.5,y,\n")
        XCTAssertEqual(types(schema), ["integer", "float", "string", "null"])
        XCTAssertEqual(nullables(schema), [true, true, true, true])
        XCTAssertEqual(schema.rows, 3)
        XCTAssertNil(schema.error)
    }

    func testColumnWithNoEmptiesIsNotNullable() {
        let schema = infer("a,b\n1,\n2,x\n")
        XCTAssertEqual(nullables(schema), [false, true])
        XCTAssertEqual(types(schema), ["integer", "string"])
    }

    // MARK: 3. Header only, empty file, trailing blank lines

    func testHeaderOnlyFile() {
        for text in ["a,b,c\n", "a,b,c", "a,b,c\r\n", "a,b,c\n\n\n"] {
            let schema = infer(text)
            XCTAssertEqual(names(schema), ["a", "b", "c"], text.debugDescription)
            XCTAssertEqual(types(schema), ["null", "null", "null"], text.debugDescription)
            XCTAssertEqual(nullables(schema), [false, false, false], "no row had an empty value")
            XCTAssertEqual(schema.rows, 0, text.debugDescription)
            XCTAssertNil(schema.error)
        }
    }

    func testEmptyFile() {
        for text in ["", "\u{FEFF}", "\n", "\r\n\r\n"] {
            let schema = infer(text)
            XCTAssertEqual(schema.columns, [], text.debugDescription)
            XCTAssertEqual(schema.rows, 0)
            XCTAssertNil(schema.error)
        }
    }

    func testTrailingNewlineAndBlankLinesAtEndAreNotRows() {
        XCTAssertEqual(infer("a\n1\n2").rows, 2)
        XCTAssertEqual(infer("a\n1\n2\n").rows, 2)
        XCTAssertEqual(infer("a\n1\n2\n\n\r\n").rows, 2)
        let schema = infer("a,b\n1,2\r\n\r\n")
        XCTAssertEqual(schema.rows, 1)
        XCTAssertNil(schema.error)
    }

    func testBlankLineInsideSingleColumnFileIsANullRow() {
        let schema = infer("a\n1\n\n2\n\n")
        XCTAssertEqual(schema.rows, 3)
        XCTAssertEqual(types(schema), ["integer"])
        XCTAssertEqual(nullables(schema), [true])
        XCTAssertNil(schema.error)
    }

    func testDuplicateAndEmptyHeaderNamesAreKept() {
        let schema = infer("a,,a\n1,2,x\n")
        XCTAssertEqual(names(schema), ["a", "", "a"])
        XCTAssertEqual(types(schema), ["integer", "integer", "string"])
    }

    // MARK: 4. Wrong field count

    func testMalformedRowIsReportedAndCounted() {
        let text = "a,b,c\n1,x,2024-01-01\n2,y\n3,z,2024-01-02,extra\n4.5,w,2024-01-03\n"
        let schema = infer(text)
        XCTAssertEqual(schema.error, "row 2: expected 3 fields, found 2", "only the first problem is kept")
        XCTAssertEqual(schema.rows, 4)
        XCTAssertEqual(names(schema), ["a", "b", "c"])
        XCTAssertEqual(types(schema), ["float", "string", "date"], "the extra field must not pollute anything")
        XCTAssertEqual(nullables(schema), [false, false, true], "the missing field counts as empty")
    }

    func testTooManyFieldsReported() {
        let schema = infer("a,b\n1,2\n3,4\n5,6,7\n")
        XCTAssertEqual(schema.error, "row 3: expected 2 fields, found 3")
        XCTAssertEqual(schema.rows, 3)
        XCTAssertEqual(types(schema), ["integer", "integer"])
    }

    func testBlankLineInMultiColumnFileIsAShortRow() {
        let schema = infer("a,b\n1,2\n\n3,4\n")
        XCTAssertEqual(schema.error, "row 2: expected 2 fields, found 1")
        XCTAssertEqual(schema.rows, 3)
    }

    // MARK: 5. Unterminated quote

    func testUnterminatedQuote() {
        let schema = infer("a,b\n1,2\n3,\"open\n4,5\n")
        XCTAssertEqual(schema.error, "row 2: unterminated quoted field")
        XCTAssertEqual(schema.rows, 2)
        XCTAssertEqual(names(schema), ["a", "b"])
        XCTAssertEqual(types(schema), ["integer", "string"])
    }

    func testUnterminatedQuoteInHeader() {
        let schema = infer("a,\"b\n1,2\n")
        XCTAssertEqual(schema.error, "header: unterminated quoted field")
        XCTAssertEqual(schema.rows, 0)
        XCTAssertEqual(names(schema), ["a", "b\n1,2\n"])
    }

    func testInvalidUTF8IsAStringAndDoesNotCrash() {
        var bytes = Array("na\u{e9}me,n\n".utf8)
        bytes += [0x61, 0xFF, 0xFE, 0x62, UInt8(ascii: ","), UInt8(ascii: "1"), 0x0A]
        bytes += [0xC3, UInt8(ascii: ","), UInt8(ascii: "2"), 0x0A]   // truncated 2-byte sequence
        let schema = SchemaInference.infer(bytes: bytes, format: "csv", chunkSize: 1)
        XCTAssertNil(schema.error)
        XCTAssertEqual(names(schema), ["na\u{e9}me", "n"])
        XCTAssertEqual(types(schema), ["string", "integer"])
        XCTAssertEqual(schema.rows, 2)
    }

    func testInvalidUTF8InHeaderIsDecodedLossily() {
        let bytes: [UInt8] = [0xFF, UInt8(ascii: ","), UInt8(ascii: "b"), 0x0A, UInt8(ascii: "1"), UInt8(ascii: ","), UInt8(ascii: "2")]
        let schema = SchemaInference.infer(bytes: bytes, format: "csv")
        XCTAssertEqual(names(schema), ["\u{FFFD}", "b"])
        XCTAssertEqual(schema.rows, 1)
    }

    // MARK: 6. JSON Lines

    func testJSONLinesUnionOfKeysAndTypes() {
        let text = """
        {"id": 1, "flag": true, "score": 2, "name": "ann", "when": "2024-01-01", "meta": {"k": [1, 2]}, "tags": ["x"], "n": null}
        {"id": 2, "flag": false, "score": 2.5, "name": "42", "when": "2024-01-02T03:04:05Z", "meta": {}, "tags": [], "n": null, "late": 1}

        {"flag": true, "id": 3, "score": -1e3, "name": "bob", "when": "2024-01-03", "meta": {"a": "}"}, "tags": [[]], "n": null}
        """
        let schema = infer(text, "jsonl")
        XCTAssertNil(schema.error)
        XCTAssertEqual(schema.format, "jsonl")
        XCTAssertEqual(schema.rows, 3, "the blank line is not a row")
        XCTAssertEqual(names(schema), ["id", "flag", "score", "name", "when", "meta", "tags", "n", "late"], "first-seen order")
        XCTAssertEqual(types(schema), ["integer", "boolean", "float", "string", "datetime", "object", "array", "null", "integer"])
        XCTAssertEqual(nullables(schema), [false, false, false, false, false, false, false, true, true])
    }

    func testJSONBooleanIsNotAnIntegerAndViceVersa() {
        XCTAssertEqual(types(infer("{\"a\": 1}\n", "jsonl")), ["integer"])
        XCTAssertEqual(types(infer("{\"a\": true}\n", "jsonl")), ["boolean"])
        XCTAssertEqual(types(infer("{\"a\": 0}\n{\"a\": 1}\n", "jsonl")), ["integer"])
        XCTAssertEqual(types(infer("{\"a\": false}\n{\"a\": true}\n", "jsonl")), ["boolean"])
        XCTAssertEqual(types(infer("{\"a\": 1.0}\n", "jsonl")), ["float"])
        XCTAssertEqual(types(infer("{\"a\": 1}\n{\"a\": true}\n", "jsonl")), ["mixed"])
        XCTAssertEqual(types(infer("{\"a\": \"42\"}\n", "jsonl")), ["string"], "a JSON string stays a string")
        XCTAssertEqual(types(infer("{\"a\": \"true\"}\n", "jsonl")), ["string"])
    }

    func testJSONMixedAndWidening() {
        let text = """
        {"num": 1, "mix": 1, "obj": {}, "txt": "2024-01-01", "d": "2024-01-01"}
        {"num": 2.5, "mix": "one", "obj": [], "txt": "hello", "d": "2024-01-01T00:00:00"}
        """
        let schema = infer(text, "jsonl")
        XCTAssertEqual(types(schema), ["float", "mixed", "mixed", "string", "datetime"])
        XCTAssertNil(schema.error)
    }

    func testJSONMissingKeyMakesColumnNullable() {
        let schema = infer("{\"a\": 1, \"b\": \"x\"}\n{\"a\": 2}\n{\"b\": \"y\", \"a\": 3}\n", "jsonl")
        XCTAssertEqual(names(schema), ["a", "b"])
        XCTAssertEqual(types(schema), ["integer", "string"])
        XCTAssertEqual(nullables(schema), [false, true])
        XCTAssertEqual(schema.rows, 3)
    }

    func testJSONInvalidAndNonObjectLinesAreReportedNotCounted() {
        let text = "{\"a\": 1}\n\n[1, 2]\n{\"a\": 2}\nnot json\n42\n{\"a\": 3,}\n{\"a\": \"x\"\n{\"a\": 2.5}\n"
        let schema = infer(text, "jsonl")
        XCTAssertEqual(schema.error, "line 3: not a JSON object", "physical line numbers, blank lines included")
        XCTAssertEqual(schema.rows, 3)
        XCTAssertEqual(names(schema), ["a"])
        XCTAssertEqual(types(schema), ["float"])

        let later = infer("{\"a\": 1}\n{\"a\": 2}\n\"just a string\"\n", "jsonl")
        XCTAssertEqual(later.error, "line 3: not a JSON object")
        XCTAssertEqual(later.rows, 2)
    }

    func testJSONCRLFEscapedKeysAndBOM() {
        let text = "\u{FEFF}{\"caf\\u00e9\": 1, \"q\\\"k\": \"a\\nb\"}\r\n{\"café\": 2, \"q\\\"k\": \"2024-01-01\"}\r\n"
        let schema = infer(text, "jsonl")
        XCTAssertNil(schema.error)
        XCTAssertEqual(names(schema), ["café", "q\"k"])
        XCTAssertEqual(types(schema), ["integer", "string"])
        XCTAssertEqual(schema.rows, 2)
    }

    func testJSONEmptyAndBlankOnlyInput() {
        for text in ["", "\n", " \r\n\t\n"] {
            let schema = infer(text, "jsonl")
            XCTAssertEqual(schema.columns, [])
            XCTAssertEqual(schema.rows, 0)
            XCTAssertNil(schema.error)
        }
    }

    // MARK: 7. TSV

    func testTSV() {
        let text = "name\tcount\tnote\r\nx\t1\t\"has\ttab\"\r\ny\t\tcomma, fine\r\n"
        let schema = infer(text, "tsv")
        XCTAssertEqual(schema.format, "tsv")
        XCTAssertEqual(names(schema), ["name", "count", "note"])
        XCTAssertEqual(types(schema), ["string", "integer", "string"])
        XCTAssertEqual(nullables(schema), [false, true, false])
        XCTAssertEqual(schema.rows, 2)
        XCTAssertNil(schema.error)
        XCTAssertEqual(infer("a,b\n1,2\n", "tsv").columns.map(\.name), ["a,b"], "commas are data in TSV")
    }

    // MARK: 8. Chunk boundaries

    func testChunkSizesGiveIdenticalResults() {
        let csv = "\u{FEFF}id,\"na,me\",when,v\r\n"
            + "1,\"a \"\"q\"\" b\",2024-01-01,\r\n"
            + "2,\"multi\r\nline\",2024-01-01T00:00:00Z,1.5\r\n"
            + "3,\"\",,7\r\n"
            + "4,short\r\n"
            + "\r\n"
        let jsonl = "\u{FEFF}{\"a\": 1, \"b\": {\"c\": \"}\"}}\r\n\r\nbad\r\n{\"a\": 2.5, \"d\": [1]}\r\n{\"a\": null}"
        for (text, format) in [(csv, "csv"), (csv.replacingOccurrences(of: ",", with: "\t"), "tsv"), (jsonl, "jsonl")] {
            let reference = infer(text, format, chunkSize: 1 << 20)
            for size in [1, 2, 3, 7] {
                XCTAssertEqual(infer(text, format, chunkSize: size), reference, "\(format) chunk size \(size)")
            }
        }
        let reference = infer(csv)
        XCTAssertEqual(names(reference), ["id", "na,me", "when", "v"])
        XCTAssertEqual(types(reference), ["integer", "string", "datetime", "float"])
        XCTAssertEqual(nullables(reference), [false, true, true, true])
        XCTAssertEqual(reference.rows, 4)
        XCTAssertEqual(reference.error, "row 4: expected 4 fields, found 2")

        let json = infer(jsonl, "jsonl")
        XCTAssertEqual(names(json), ["a", "b", "d"])
        XCTAssertEqual(types(json), ["float", "object", "array"])
        XCTAssertEqual(nullables(json), [true, true, true])
        XCTAssertEqual(json.rows, 3)
        XCTAssertEqual(json.error, "line 3: not a JSON object")
    }

    func testBOMSplitAcrossChunksAndShortFiles() {
        // A lone partial BOM prefix is data, not swallowed.
        let schema = SchemaInference.infer(bytes: [0xEF, 0xBB], format: "csv", chunkSize: 1)
        XCTAssertEqual(schema.columns.map(\.name), [String(decoding: [0xEF, 0xBB] as [UInt8], as: UTF8.self)])
        XCTAssertEqual(infer("a", chunkSize: 1).columns.map(\.name), ["a"])
        XCTAssertEqual(infer("\u{FEFF}a\n1\n", chunkSize: 2).columns.map(\.name), ["a"])
    }

    // MARK: 9. Files and names

    func testInferFromFileAndMissingPath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("data.CSV")
        let text = "a,b\r\n1,\"x\r\ny\"\r\n2,3.5\r\n"
        try Data(text.utf8).write(to: file)

        let schema = try XCTUnwrap(SchemaInference.infer(path: file.path, name: "data.CSV"))
        XCTAssertEqual(schema, FileSchema(format: "csv", columns: [
            .init(name: "a", type: "integer", nullable: false),
            .init(name: "b", type: "string", nullable: false),
        ], rows: 2))
        XCTAssertEqual(SchemaInference.infer(path: file.path, name: "data.csv", chunkSize: 3), schema)

        let missing = try XCTUnwrap(SchemaInference.infer(path: dir.appendingPathComponent("nope.csv").path, name: "nope.csv"))
        XCTAssertEqual(missing.format, "csv")
        XCTAssertEqual(missing.columns, [])
        XCTAssertEqual(missing.rows, 0)
        let message = try XCTUnwrap(missing.error)
        XCTAssertTrue(message.hasPrefix("cannot open file"), message)

        let directory = try XCTUnwrap(SchemaInference.infer(path: dir.path, name: "dir.jsonl"))
        XCTAssertNotNil(directory.error, "a directory cannot be read as a file")

        XCTAssertNil(SchemaInference.infer(path: file.path, name: "data.bin"), "not tabular: no schema at all")
        // CSV bytes under a Parquet name: a Parquet schema that says what is wrong.
        let misnamed = try XCTUnwrap(SchemaInference.infer(path: file.path, name: "data.parquet"))
        XCTAssertEqual(misnamed.format, "parquet")
        XCTAssertEqual(misnamed.columns, [])
        XCTAssertTrue(misnamed.error?.contains("not a Parquet file") ?? false, "\(misnamed)")
    }

    func testFormatForName() {
        XCTAssertEqual(SchemaInference.format(forName: "a.csv"), "csv")
        XCTAssertEqual(SchemaInference.format(forName: "dir/A.CSV"), "csv")
        XCTAssertEqual(SchemaInference.format(forName: "x.tsv"), "tsv")
        XCTAssertEqual(SchemaInference.format(forName: "x.Tab"), "tsv")
        XCTAssertEqual(SchemaInference.format(forName: "x.jsonl"), "jsonl")
        XCTAssertEqual(SchemaInference.format(forName: "x.NDJSON"), "jsonl")
        XCTAssertNil(SchemaInference.format(forName: "x.json"))
        XCTAssertNil(SchemaInference.format(forName: "x.csv.gz"))
        XCTAssertNil(SchemaInference.format(forName: "csv"))
        XCTAssertNil(SchemaInference.format(forName: "model.bin"))
        XCTAssertEqual(SchemaInference.format(forName: "part-0.PARQUET"), "parquet")
    }

    func testUnsupportedFormatFromBytes() {
        let schema = SchemaInference.infer(bytes: [1, 2, 3], format: "xlsx")
        XCTAssertEqual(schema.rows, 0)
        XCTAssertEqual(schema.error, "unsupported format \"xlsx\"")
    }

    // MARK: 10. Column changes

    func testColumnChanges() {
        let old = FileSchema(format: "csv", columns: [
            .init(name: "id", type: "integer", nullable: false),
            .init(name: "score", type: "integer", nullable: false),
            .init(name: "gone", type: "string", nullable: true),
            .init(name: "same", type: "date", nullable: false),
        ], rows: 10)
        let new = FileSchema(format: "csv", columns: [
            .init(name: "id", type: "integer", nullable: true),   // nullability alone is not a change
            .init(name: "added", type: "boolean", nullable: false),
            .init(name: "score", type: "float", nullable: false),
            .init(name: "same", type: "date", nullable: false),
        ], rows: 12)
        XCTAssertEqual(SchemaInference.columnChanges(from: old, to: new), [
            ColumnChange(kind: .added, column: "added", from: nil, to: "boolean"),
            ColumnChange(kind: .typeChanged, column: "score", from: "integer", to: "float"),
            ColumnChange(kind: .removed, column: "gone", from: "string", to: nil),
        ])
        XCTAssertEqual(SchemaInference.columnChanges(from: old, to: old), [])
        XCTAssertEqual(SchemaInference.columnChanges(from: nil, to: new).map(\.kind), [.added, .added, .added, .added])
        XCTAssertEqual(SchemaInference.columnChanges(from: nil, to: new).map(\.column), ["id", "added", "score", "same"])
        XCTAssertEqual(SchemaInference.columnChanges(from: old, to: nil).map(\.kind), [.removed, .removed, .removed, .removed])
        XCTAssertEqual(SchemaInference.columnChanges(from: nil, to: nil), [])
    }

    func testColumnChangesWithDuplicateNames() {
        let old = FileSchema(format: "csv", columns: [
            .init(name: "x", type: "integer", nullable: false),
            .init(name: "x", type: "string", nullable: false),
        ], rows: 1)
        let new = FileSchema(format: "csv", columns: [
            .init(name: "x", type: "integer", nullable: false),
        ], rows: 1)
        XCTAssertEqual(SchemaInference.columnChanges(from: old, to: new),
                       [ColumnChange(kind: .removed, column: "x", from: "string")])
    }

    func testCodableSpelling() throws {
        let change = ColumnChange(kind: .typeChanged, column: "a", from: "integer", to: "float")
        let json = String(decoding: try JSONEncoder().encode(change), as: UTF8.self)
        XCTAssertTrue(json.contains("\"type_changed\""), json)
        XCTAssertEqual(try JSONDecoder().decode(ColumnChange.self, from: Data(json.utf8)), change)
        let schema = infer("a\n1\n")
        XCTAssertEqual(try JSONDecoder().decode(FileSchema.self, from: try JSONEncoder().encode(schema)), schema)
    }
}

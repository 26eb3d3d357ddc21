import ArtifactCore
import XCTest

final class NameRulesTests: XCTestCase {
    func testInvalidNames() {
        let invalid = [
            "", ".", "..", ".hidden", "@main", "@",
            "a/b", "/", "trailing/",
            "nul\u{0}inside", "\u{0}",
            "tab\there", "new\nline", "cr\rhere", "bell\u{7}", "esc\u{1B}[0m",
            "del\u{7F}", "c1\u{85}control", "c1\u{9F}",
        ]
        for name in invalid {
            XCTAssertArtifactError(.invalidName, try NameRules.validate(name, kind: "project"),
                                   "name \(name.debugDescription)")
        }
    }

    func testNamesOver255BytesAreTooLong() {
        XCTAssertArtifactError(.nameTooLong, try NameRules.validate(String(repeating: "a", count: 256), kind: "project"))
        // 128 two-byte characters: 128 characters but 256 bytes.
        XCTAssertArtifactError(.nameTooLong, try NameRules.validate(String(repeating: "é", count: 128), kind: "dataset"))
        XCTAssertArtifactError(.nameTooLong, try NameRules.validate(String(repeating: "x", count: 4096), kind: "tag"))
    }

    func testNamesUpTo255BytesAndOrdinaryNamesPass() {
        let ok = [
            String(repeating: "a", count: 255),
            String(repeating: "é", count: 127) + "a",       // 255 bytes of UTF-8
            String(repeating: "日", count: 85),              // 255 bytes of 3-byte characters
            "alpha", "my-project_2", "Data Set 2026", "données", "a.b", "x@y", "v1.0", "名前", "🦊",
        ]
        for name in ok {
            XCTAssertLessThanOrEqual(name.utf8.count, 255)
            XCTAssertNoThrow(try NameRules.validate(name, kind: "project"), "name \(name.debugDescription)")
        }
    }

    func testTheErrorSaysWhichRuleFailed() {
        do {
            try NameRules.validate("@x", kind: "branch")
            XCTFail("expected an error")
        } catch let e as ArtifactError {
            XCTAssertTrue(e.message.contains("branch"), e.message)
            XCTAssertTrue(e.message.contains("@"), e.message)
        } catch {
            XCTFail("unexpected \(error)")
        }
    }
}

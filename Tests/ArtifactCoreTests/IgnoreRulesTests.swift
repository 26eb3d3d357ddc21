import ArtifactCore
import XCTest

final class IgnoreRulesTests: XCTestCase {
    private func rules(_ text: String) -> IgnoreRules { IgnoreRules(file: Array(text.utf8)) }

    private func file(_ r: IgnoreRules, _ path: String) -> Bool { r.ignores(Array(path.utf8), isDirectory: false) }
    private func folder(_ r: IgnoreRules, _ path: String) -> Bool { r.ignores(Array(path.utf8), isDirectory: true) }

    // MARK: lines

    func testBlankLinesAndCommentsMakeNoRules() {
        let r = rules("\n# a comment\n\n   \n#*.txt\n")
        XCTAssertTrue(r.isEmpty)
        XCTAssertFalse(file(r, "a.txt"))
        XCTAssertTrue(IgnoreRules(file: []).isEmpty)
        XCTAssertFalse(rules("*.txt").isEmpty)
    }

    func testCRLFLineEnds() {
        let r = rules("*.tmp\r\n# comment\r\nbuild/\r\n\r\n")
        XCTAssertTrue(file(r, "a.tmp"))
        XCTAssertTrue(folder(r, "build"))
        XCTAssertFalse(file(r, "a.tmp\r"))
    }

    func testLeadingByteOrderMarkIsSkipped() {
        let r = IgnoreRules(file: [0xEF, 0xBB, 0xBF] + Array("*.tmp\n".utf8))
        XCTAssertTrue(file(r, "x.tmp"))
    }

    func testTrailingSpacesAreTrimmedUnlessEscaped() {
        let r = rules("a.txt   \nb\\ \nc\\  \n")
        XCTAssertTrue(file(r, "a.txt"))
        XCTAssertFalse(file(r, "a.txt "))
        XCTAssertTrue(file(r, "b "))
        XCTAssertFalse(file(r, "b"))
        XCTAssertTrue(file(r, "c "))
        XCTAssertFalse(file(r, "c  "))
    }

    func testEscapes() {
        let r = rules("\\#notes\n\\!important\nstar\\*\nq\\?\n")
        XCTAssertTrue(file(r, "#notes"))
        XCTAssertTrue(file(r, "!important"))
        XCTAssertFalse(file(r, "important"))
        XCTAssertTrue(file(r, "star*"))
        XCTAssertFalse(file(r, "starry"))
        XCTAssertTrue(file(r, "q?"))
        XCTAssertFalse(file(r, "qx"))
    }

    func testMalformedRulesMatchNothing() {
        let r = rules("[abc\ntrailing\\\n[[:nope:]]\n!\n/\n")
        XCTAssertTrue(r.isEmpty)
        XCTAssertFalse(file(r, "[abc"))
        XCTAssertFalse(file(r, "a"))
        XCTAssertFalse(file(r, "trailing"))
    }

    // MARK: everyday rules

    func testSQLiteSidecars() {
        let r = rules("*.sqlite-wal\n*.sqlite-shm\n")
        XCTAssertTrue(file(r, "db.sqlite-wal"))
        XCTAssertTrue(file(r, "runs/7/cache.sqlite-shm"))
        XCTAssertFalse(file(r, "db.sqlite"))
        XCTAssertFalse(file(r, "db.sqlite-wal.bak"))
    }

    func testTrailingSlashMatchesFoldersOnly() {
        let r = rules("__pycache__/\n")
        XCTAssertTrue(folder(r, "__pycache__"))
        XCTAssertTrue(folder(r, "src/pkg/__pycache__"))
        XCTAssertTrue(file(r, "src/__pycache__/mod.cpython-312.pyc"))
        XCTAssertFalse(file(r, "__pycache__"))
        XCTAssertFalse(file(r, "src/__pycache__"))
    }

    func testEditorSwapFiles() {
        let r = rules(".*.swp\n")
        XCTAssertTrue(file(r, ".notes.txt.swp"))
        XCTAssertTrue(file(r, "a/b/.x.swp"))
        XCTAssertFalse(file(r, "notes.swp"))
        XCTAssertFalse(file(r, ".swp"))
    }

    func testLeadingSlashAnchorsToTheTop() {
        let r = rules("/build\n")
        XCTAssertTrue(folder(r, "build"))
        XCTAssertTrue(file(r, "build"))
        XCTAssertTrue(file(r, "build/out.bin"))
        XCTAssertFalse(folder(r, "src/build"))
        XCTAssertFalse(file(r, "src/build/out.bin"))
    }

    func testBareNameMatchesAtAnyDepth() {
        let r = rules("build\n")
        XCTAssertTrue(folder(r, "build"))
        XCTAssertTrue(folder(r, "src/build"))
        XCTAssertTrue(file(r, "src/build/out.bin"))
        XCTAssertFalse(file(r, "builds"))
        XCTAssertFalse(file(r, "rebuild"))
    }

    func testMiddleSlashAnchorsAndStarStaysInOneFolder() {
        let r = rules("docs/*.md\n")
        XCTAssertTrue(file(r, "docs/a.md"))
        XCTAssertFalse(file(r, "docs/a/b.md"))
        XCTAssertFalse(file(r, "x/docs/a.md"))
        XCTAssertFalse(file(r, "docs.md"))
    }

    func testQuestionMark() {
        let r = rules("run-?.log\n")
        XCTAssertTrue(file(r, "run-1.log"))
        XCTAssertFalse(file(r, "run-.log"))
        XCTAssertFalse(file(r, "run-12.log"))
        XCTAssertFalse(rules("a?b").ignores(Array("a/b".utf8), isDirectory: false))
    }

    func testCharacterClasses() {
        let r = rules("f[0-9].txt\ng[!a-c]\nh[^a]\ni[]x]\nj[a-]\nk[[:digit:][:upper:]]\nl[\\]]\n")
        XCTAssertTrue(file(r, "f7.txt"))
        XCTAssertFalse(file(r, "fa.txt"))
        XCTAssertTrue(file(r, "gd"))
        XCTAssertFalse(file(r, "gb"))
        XCTAssertTrue(file(r, "hb"))
        XCTAssertFalse(file(r, "ha"))
        XCTAssertTrue(file(r, "i]"))
        XCTAssertTrue(file(r, "ix"))
        XCTAssertTrue(file(r, "j-"))
        XCTAssertTrue(file(r, "ja"))
        XCTAssertFalse(file(r, "jb"))
        XCTAssertTrue(file(r, "k5"))
        XCTAssertTrue(file(r, "kQ"))
        XCTAssertFalse(file(r, "kq"))
        XCTAssertTrue(file(r, "l]"))
    }

    func testMatchingIsCaseSensitive() {
        let r = rules("*.TMP\n")
        XCTAssertTrue(file(r, "a.TMP"))
        XCTAssertFalse(file(r, "a.tmp"))
    }

    // MARK: **

    func testLeadingDoubleStar() {
        let r = rules("**/logs\n")
        XCTAssertTrue(folder(r, "logs"))
        XCTAssertTrue(folder(r, "a/b/logs"))
        XCTAssertTrue(file(r, "a/logs/today.txt"))
        XCTAssertFalse(folder(r, "a/mylogs"))
    }

    func testTrailingDoubleStarMatchesInsideNotTheFolder() {
        let r = rules("logs/**\n")
        XCTAssertFalse(folder(r, "logs"))
        XCTAssertTrue(file(r, "logs/a.txt"))
        XCTAssertTrue(file(r, "logs/x/y/z.txt"))
        XCTAssertFalse(file(r, "a/logs/b.txt"))
        // logs itself is not excluded, so a file in it can be re-included.
        let keep = rules("logs/**\n!logs/keep.txt\n")
        XCTAssertFalse(file(keep, "logs/keep.txt"))
        XCTAssertTrue(file(keep, "logs/other.txt"))
    }

    func testMiddleDoubleStarMatchesZeroOrMoreFolders() {
        let r = rules("a/**/b\n")
        XCTAssertTrue(file(r, "a/b"))
        XCTAssertTrue(file(r, "a/x/b"))
        XCTAssertTrue(file(r, "a/x/y/b"))
        XCTAssertFalse(file(r, "x/a/b"))
        XCTAssertFalse(file(r, "a/xb"))
    }

    func testOtherDoubleStarsAreSingleStars() {
        let r = rules("a**z\n")
        XCTAssertTrue(file(r, "abcz"))
        XCTAssertFalse(file(r, "a/z"))
        XCTAssertTrue(file(rules("**"), "any/thing"))
    }

    // MARK: negation

    func testNegationLastMatchingRuleWins() {
        let r = rules("*.log\n!keep.log\n")
        XCTAssertTrue(file(r, "debug.log"))
        XCTAssertFalse(file(r, "keep.log"))
        XCTAssertFalse(file(r, "sub/keep.log"))
        let reversed = rules("!keep.log\n*.log\n")
        XCTAssertTrue(file(reversed, "keep.log"))
    }

    func testFileInsideAnIgnoredFolderCannotBeReincluded() {
        let r = rules("tmp/\n!tmp/keep.txt\n!keep.txt\n")
        XCTAssertTrue(folder(r, "tmp"))
        XCTAssertTrue(file(r, "tmp/keep.txt"))
        XCTAssertTrue(file(r, "a/tmp/b/keep.txt"))
        XCTAssertFalse(file(r, "keep.txt"))
    }

    func testNegatedFolderReincludesItsContents() {
        let r = rules("cache*/\n!cache-keep/\n")
        XCTAssertTrue(file(r, "cache-a/x"))
        XCTAssertFalse(folder(r, "cache-keep"))
        XCTAssertFalse(file(r, "cache-keep/x"))
    }

    // MARK: bytes

    func testNamesThatAreNotUTF8() {
        let r = rules("*.txt\n")
        XCTAssertTrue(r.ignores([0xE9, 0x2E, 0x74, 0x78, 0x74], isDirectory: false))
        XCTAssertTrue(r.ignores([0xFF, 0x2F, 0xE9, 0x2E, 0x74, 0x78, 0x74], isDirectory: false))
        let raw = IgnoreRules(file: [0xE9, 0x2A, 0x0A])  // "\xE9*": a pattern that is not UTF-8 either
        XCTAssertTrue(raw.ignores([0xE9, 0x61], isDirectory: false))
        XCTAssertFalse(raw.ignores([0xC3, 0xA9, 0x61], isDirectory: false))
    }

    func testNFCAndNFDNamesAreDistinct() {
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        XCTAssertEqual(nfc, nfd)  // equal as Swift Strings, different bytes
        let r = rules(nfc + "\n")
        XCTAssertTrue(file(r, nfc))
        XCTAssertFalse(file(r, nfd))
        XCTAssertFalse(file(rules(nfd + "\n"), nfc))
    }

    func testClassesAndQuestionMarkMatchOneByte() {
        // é is two bytes in UTF-8 (C3 A9): "?" or a class matches just one of them.
        XCTAssertFalse(file(rules("caf?"), "caf\u{E9}"))
        XCTAssertTrue(file(rules("caf??"), "caf\u{E9}"))
        XCTAssertFalse(file(rules("caf[\u{E9}]"), "caf\u{E9}"))
        XCTAssertTrue(file(rules("caf[\u{E9}][\u{E9}]"), "caf\u{E9}"))
    }

    // MARK: paths

    func testOddPaths() {
        let r = rules("*\n")
        XCTAssertFalse(r.ignores([], isDirectory: true))
        XCTAssertFalse(r.ignores(Array("/".utf8), isDirectory: true))
        XCTAssertTrue(file(rules("a/b"), "a//b"))
        XCTAssertTrue(folder(rules("/a/"), "a/"))
    }

    func testPathologicalPatternsFinishQuickly() {
        let many = String(repeating: "a*", count: 40) + "b"
        let longName = String(repeating: "a", count: 4_000)
        XCTAssertFalse(file(rules(many), longName))
        XCTAssertTrue(file(rules(many), longName + "b"))
        let deep = Array(repeating: "a", count: 300).joined(separator: "/")
        let manyStars = "/" + Array(repeating: "**/a", count: 30).joined(separator: "/") + "/b"
        XCTAssertFalse(file(rules(manyStars), deep))
        XCTAssertTrue(file(rules(manyStars), deep + "/b"))
    }
}

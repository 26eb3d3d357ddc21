import Foundation

/// Durations as users type them for `--grace`, `--keep-within` and retention policies:
/// one or more `<number><unit>` with units `s`, `m` (minutes), `h`, `d`, `w` and `y`
/// (365 days), e.g. `90m`, `1h`, `30d`, `1y6w`; a bare `0` is no time at all.
/// (restic's `--keep-within` reads `m` as months; here it is minutes, as in `sleep`.)
public enum DurationText {
    /// Seconds, or nil when `text` is not a duration.
    public static func seconds(_ text: String) -> Double? {
        if text == "0" { return 0 }
        var total = 0.0
        var number = ""
        var sawUnit = false
        for c in text {
            if c.isASCII, c.isNumber { number.append(c); continue }
            guard let n = Double(number), let unit = unitSeconds[c] else { return nil }
            total += n * unit
            number = ""
            sawUnit = true
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// `seconds` as the largest whole units it holds, e.g. 5400 → `1h30m`.
    public static func text(_ seconds: Double) -> String {
        var rest = Int(seconds.rounded())
        if rest == 0 { return "0" }
        var out = ""
        for (unit, size) in [("y", 31_536_000), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] where rest >= size {
            out += "\(rest / size)\(unit)"
            rest %= size
        }
        return out
    }

    private static let unitSeconds: [Character: Double] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800, "y": 31_536_000]
}

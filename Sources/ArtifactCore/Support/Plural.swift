/// A count and its noun for people to read: "1 run", "2 runs", "1 branch", "3 branches",
/// "0 rows". English plurals of the nouns the CLI counts (not a general inflector).
public func plural<N: BinaryInteger>(_ n: N, _ noun: String) -> String {
    if n == 1 { return "1 \(noun)" }
    let suffix = noun.hasSuffix("ch") || noun.hasSuffix("sh") || noun.hasSuffix("s") || noun.hasSuffix("x") ? "es" : "s"
    return "\(n) \(noun)\(suffix)"
}

import Foundation

/// Which runs of a project `forget` keeps, as `restic forget` decides which snapshots to keep:
/// the union of every rule given. A run matched by no rule is forgotten; with no rule at all,
/// nothing is (an empty policy is refused where a user gives one).
///
/// - `last`: the newest N runs.
/// - `within`: every run at most this many seconds older than the newest run.
/// - `hourly`/`daily`/`weekly`/`monthly`/`yearly`: the newest run of each of the last N
///   hours/days/ISO weeks/months/years that have a run (UTC), as restic's `--keep-daily`.
///
/// Stored per project as JSON (`Catalog.setRetention`) and applied by `gc`.
public struct KeepPolicy: Codable, Sendable, Equatable {
    public var last: Int?
    public var within: Double?
    public var hourly: Int?
    public var daily: Int?
    public var weekly: Int?
    public var monthly: Int?
    public var yearly: Int?

    public init(last: Int? = nil, within: Double? = nil, hourly: Int? = nil, daily: Int? = nil, weekly: Int? = nil,
                monthly: Int? = nil, yearly: Int? = nil) {
        self.last = last; self.within = within; self.hourly = hourly; self.daily = daily
        self.weekly = weekly; self.monthly = monthly; self.yearly = yearly
    }

    /// No rule given.
    public var isEmpty: Bool { self == KeepPolicy() }

    /// How the policy reads as options, e.g. `--keep-last 3 --keep-daily 7`.
    public var description: String {
        var parts: [String] = []
        if let last { parts.append("--keep-last \(last)") }
        if let within { parts.append("--keep-within \(DurationText.text(within))") }
        for (name, n) in [("hourly", hourly), ("daily", daily), ("weekly", weekly), ("monthly", monthly), ("yearly", yearly)] {
            if let n { parts.append("--keep-\(name) \(n)") }
        }
        return parts.joined(separator: " ")
    }

    /// For each run (any order), the reasons it is kept; runs with none are to be forgotten.
    /// `timestamp` is a run's time in seconds since 1970.
    public func reasons<R>(for runs: [R], timestamp: (R) -> Int64) -> [[String]] {
        let order = runs.indices.sorted { timestamp(runs[$0]) > timestamp(runs[$1]) || (timestamp(runs[$0]) == timestamp(runs[$1]) && $0 > $1) }
        var reasons = Array(repeating: [String](), count: runs.count)
        if let last { for i in order.prefix(max(0, last)) { reasons[i].append("last \(last)") } }
        if let within, let newest = order.first {
            let limit = Double(timestamp(runs[newest])) - within
            for i in order where Double(timestamp(runs[i])) >= limit { reasons[i].append("within \(DurationText.text(within))") }
        }
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let buckets: [(String, Int?, (Date) -> String)] = [
            ("hourly", hourly, { let c = calendar.dateComponents([.year, .month, .day, .hour], from: $0); return "\(c.year!)-\(c.month!)-\(c.day!)T\(c.hour!)" }),
            ("daily", daily, { let c = calendar.dateComponents([.year, .month, .day], from: $0); return "\(c.year!)-\(c.month!)-\(c.day!)" }),
            ("weekly", weekly, { let c = calendar.dateComponents([.yearForWeekOfYear, .weekOfYear], from: $0); return "\(c.yearForWeekOfYear!)-W\(c.weekOfYear!)" }),
            ("monthly", monthly, { let c = calendar.dateComponents([.year, .month], from: $0); return "\(c.year!)-\(c.month!)" }),
            ("yearly", yearly, { "\(calendar.component(.year, from: $0))" }),
        ]
        for (name, count, bucket) in buckets {
            guard let count, count > 0 else { continue }
            var seen = Set<String>()
            for i in order {
                let key = bucket(Date(timeIntervalSince1970: Double(timestamp(runs[i]))))
                guard !seen.contains(key) else { continue }
                seen.insert(key)
                reasons[i].append("\(name) \(key)")
                if seen.count == count { break }
            }
        }
        return reasons
    }
}

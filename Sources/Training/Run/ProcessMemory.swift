// What the operating system says this process holds, to check the memory
// report against: RssAnon, the resident anonymous pages (heap and anonymous
// mappings; not the memory-mapped stream file, nor shared libraries), and
// the peak resident set.
import Foundation
import Model

public enum ProcessMemory {
    /// RssAnon of this process in bytes, from /proc/self/status; nil where there is none (not Linux).
    public static func rssAnonBytes() -> Int? { status("RssAnon:") }

    /// The peak resident set (VmHWM) of this process in bytes, file-backed pages included.
    public static func peakRSSBytes() -> Int? { status("VmHWM:") }

    /// How many CPUs this process may run on (Cpus_allowed_list of /proc/self/status);
    /// nil where there is none (not Linux).
    public static func allowedCPUs() -> Int? { field("Cpus_allowed_list:").flatMap { cpuCount(list: String($0)) } }

    /// The CPUs a Linux CPU list names ("0-3,8" is 5); nil if it is not one.
    public static func cpuCount(list: String) -> Int? {
        var count = 0
        for part in list.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(bounds.count), let first = bounds.first!, let last = bounds.last!, last >= first else {
                return nil
            }
            count += last - first + 1
        }
        return count > 0 ? count : nil
    }

    /// A "Name:   N kB" field of /proc/self/status in bytes.
    static func status(_ name: String) -> Int? {
        guard let value = field(name) else { return nil }
        let parts = value.split { $0 == " " || $0 == "\t" }
        guard parts.count == 2, let kilobytes = Int(parts[0]), parts[1] == "kB" else { return nil }
        return kilobytes * 1024
    }

    /// What follows `name` (e.g. "VmHWM:") on its line of /proc/self/status; nil where there is none.
    static func field(_ name: String) -> Substring? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        return status.split(separator: "\n").first { $0.hasPrefix(name) }?.dropFirst(name.count)
    }
}

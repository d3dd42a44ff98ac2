// What the operating system says this process holds, to check the memory
// report against: RssAnon, the resident anonymous pages (heap and anonymous
// mappings; not the memory-mapped stream file, nor shared libraries), and
// the peak resident set.
import Foundation

public enum ProcessMemory {
    /// RssAnon of this process in bytes, from /proc/self/status; nil where there is none (not Linux).
    public static func rssAnonBytes() -> Int? { status("RssAnon:") }

    /// The peak resident set (VmHWM) of this process in bytes, file-backed pages included.
    public static func peakRSSBytes() -> Int? { status("VmHWM:") }

    /// How many CPUs this process may run on (Cpus_allowed_list of /proc/self/status);
    /// nil where there is none (not Linux).
    public static func allowedCPUs() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }),
              let list = line.split(separator: ":").last else { return nil }
        return cpuCount(list: String(list))
    }

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
    static func status(_ field: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, let kilobytes = Int(fields[1]), fields[2] == "kB" else { return nil }
            return kilobytes * 1024
        }
        return nil
    }
}

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

// Read-only memory mapping of a whole file: the readers parse it in place and
// training reads the stream columns from it without copying.
#if canImport(Glibc)
import Glibc
#endif

public final class MappedFile {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let err = errno
            if err == ENOENT { throw DataError.missingFile(path: path) }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(err)))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw DataError.unreadable(path: path, reason: "it is a directory")
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DataError.unreadable(path: path, reason: "mmap: " + String(cString: strerror(errno)))
        }
        madvise(p, size, MADV_SEQUENTIAL)
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        mapped = true
    }

    deinit {
        if mapped { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress!), bytes.count) }
    }
}

/// Writes `body` to `path` through a temporary file in the same directory,
/// renamed into place only once everything is written and flushed: a failure
/// leaves nothing behind and never a half-written file under `path`.
public func writeAtomically(path: String, _ fill: (_ write: (UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
    let tmp = path + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { throw DataError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
    var ok = false
    defer {
        if !ok { unlink(tmp) }
    }
    do {
        try fill { chunk in
            var done = 0
            while done < chunk.count {
                let n = write(fd, chunk.baseAddress! + done, min(chunk.count - done, 1 << 26))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DataError.writeFailed(path: path, reason: String(cString: strerror(errno)))
                }
                done += n
            }
        }
    } catch {
        close(fd)
        throw error
    }
    if fsync(fd) != 0 || close(fd) != 0 {
        throw DataError.writeFailed(path: path, reason: String(cString: strerror(errno)))
    }
    if rename(tmp, path) != 0 {
        throw DataError.writeFailed(path: path, reason: String(cString: strerror(errno)))
    }
    ok = true
}

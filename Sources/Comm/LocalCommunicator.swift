#if canImport(Glibc)
import Glibc
#endif

/// One process: every collective is the identity or a copy.
public final class LocalCommunicator: Communicator {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allReduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}

    public func allToAll(send: UnsafeBufferPointer<Int>, receive: UnsafeMutableBufferPointer<Int>) {
        precondition(send.count == 1 && receive.count == 1, "allToAll on one rank takes one count each way")
        receive[0] = send[0]
    }

    public func allToAllV(send: UnsafeRawBufferPointer,
                          sendCounts: UnsafeBufferPointer<Int>, sendOffsets: UnsafeBufferPointer<Int>,
                          receive: UnsafeMutableRawBufferPointer,
                          receiveCounts: UnsafeBufferPointer<Int>, receiveOffsets: UnsafeBufferPointer<Int>) {
        precondition(sendCounts[0] == receiveCounts[0],
                     "allToAllV on one rank: sending \(sendCounts[0]) bytes but receiving \(receiveCounts[0])")
        let n = sendCounts[0]
        guard n > 0 else { return }
        (receive.baseAddress! + receiveOffsets[0]).copyMemory(from: send.baseAddress! + sendOffsets[0], byteCount: n)
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        precondition(root == 0, "broadcast root \(root) does not exist on one rank")
    }

    public func allGather(_ send: UnsafeRawBufferPointer, into receive: UnsafeMutableRawBufferPointer) {
        precondition(receive.count == send.count, "allGather on one rank: receive must hold \(send.count) bytes")
        if send.count > 0 { receive.baseAddress!.copyMemory(from: send.baseAddress!, byteCount: send.count) }
    }

    public func barrier() {}

    public func abort(_ message: String, code: Int32) -> Never {
        writeToStandardError("esapn: \(message)\n")
        exit(code)
    }
}

/// Writes to file descriptor 2 (C's `stderr` is not concurrency-safe in Swift 6).
public func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = write(2, bytes.baseAddress! + done, bytes.count - done)
            if n <= 0 { return }
            done += n
        }
    }
}

// The safetensors format (a JSON header and raw little-endian arrays), which
// checkpoints use so that `safetensors` or numpy in Python opens a shard
// without esapn's code:
//   8 bytes   the header's length N, unsigned little-endian
//   N bytes   JSON: {"__metadata__": {string: string}, NAME: {"dtype": "F32",
//             "shape": [..], "data_offsets": [begin, end]}, …}, padded with
//             spaces to a multiple of 8
//   the data  every tensor's bytes, at its offsets from the end of the header
// Writing streams the tensors through `writeAtomically` (temporary name,
// fsync, rename) and hashes them on the way; reading maps the file and checks
// every offset against its size.
import Data
import Foundation

public enum SafeTensorsType: String, Sendable {
    case f32 = "F32", f64 = "F64", i32 = "I32", i64 = "I64", i8 = "I8", u8 = "U8"
    public var bytes: Int {
        switch self {
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        case .i8, .u8: return 1
        }
    }
}

/// One tensor to write: its name, type, shape and bytes (borrowed until the write returns).
public struct SafeTensor {
    public let name: String
    public let type: SafeTensorsType
    public let shape: [Int]
    public let data: UnsafeRawBufferPointer

    public init(_ name: String, _ type: SafeTensorsType, shape: [Int], data: UnsafeRawBufferPointer) {
        precondition(shape.reduce(1, *) * type.bytes == data.count,
                     "tensor \(name): shape \(shape) of \(type.rawValue) needs \(shape.reduce(1, *) * type.bytes) bytes, got \(data.count)")
        self.name = name; self.type = type; self.shape = shape; self.data = data
    }
}

public enum SafeTensors {
    /// Writes `tensors` (in order) and `metadata` to `path` atomically; returns
    /// the file's size and SHA-256.
    public static func write(_ tensors: [SafeTensor], metadata: [String: String], to path: String) throws -> (bytes: Int, sha256: String) {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for t in tensors {
            header[t.name] = ["dtype": t.type.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.data.count]] as [String: Any]
            offset += t.data.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var hasher = SHA256()
        var total = 0
        try writeAtomically(path: path) { write in
            func emit(_ bytes: UnsafeRawBufferPointer) throws {
                hasher.update(bytes)
                total += bytes.count
                try write(bytes)
            }
            var n = UInt64(json.count).littleEndian
            try withUnsafeBytes(of: &n) { try emit($0) }
            try json.withUnsafeBytes { try emit($0) }
            for t in tensors where t.data.count > 0 { try emit(t.data) }
        }
        return (total, hasher.finalizeHex())
    }

    /// A safetensors file, mapped: its metadata and each tensor's type, shape and bytes.
    public final class File {
        public let path: String
        public let metadata: [String: String]
        public let tensors: [String: (type: SafeTensorsType, shape: [Int], data: UnsafeRawBufferPointer)]
        private let mapped: MappedFile

        public init(path: String) throws {
            self.path = path
            mapped = try MappedFile(path: path)
            let bytes = mapped.bytes
            func corrupt(_ why: String) -> DataError {
                .unreadable(path: path, reason: "corrupt safetensors file: \(why)")
            }
            guard bytes.count >= 8 else { throw corrupt("shorter than its 8-byte header length") }
            let length = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
            guard length > 0, length <= UInt64(bytes.count - 8) else {
                throw corrupt("header length \(length) beyond the file's \(bytes.count) bytes")
            }
            let n = Int(length)
            let json = Data(bytes[8..<(8 + n)])
            guard let header = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
                throw corrupt("the header is not a JSON object")
            }
            let dataStart = 8 + n, dataBytes = bytes.count - dataStart
            var meta: [String: String] = [:]
            var found: [String: (type: SafeTensorsType, shape: [Int], data: UnsafeRawBufferPointer)] = [:]
            for (name, value) in header {
                if name == "__metadata__" {
                    guard let m = value as? [String: String] else { throw corrupt("__metadata__ is not a map of strings") }
                    meta = m
                    continue
                }
                guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                      let type = SafeTensorsType(rawValue: dtype), let shape = entry["shape"] as? [Int],
                      let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                    throw corrupt("tensor '\(name)' has no valid dtype, shape and data_offsets")
                }
                let (begin, end) = (offsets[0], offsets[1])
                // The element count, refusing shapes whose product overflows.
                var elements: Int? = type.bytes
                for d in shape {
                    guard let e = elements, d >= 0 else { elements = nil; break }
                    let (product, overflow) = e.multipliedReportingOverflow(by: d)
                    elements = overflow ? nil : product
                }
                guard begin >= 0, begin <= end, end <= dataBytes, let size = elements, size == end - begin else {
                    throw corrupt("tensor '\(name)': offsets \(begin)…\(end) do not fit shape \(shape) and the file")
                }
                found[name] = (type, shape, UnsafeRawBufferPointer(rebasing: bytes[(dataStart + begin)..<(dataStart + end)]))
            }
            metadata = meta
            tensors = found
        }

        /// The tensor `name`, which must exist with this type and element count.
        public func tensor(_ name: String, _ type: SafeTensorsType, count: Int? = nil) throws -> UnsafeRawBufferPointer {
            guard let t = tensors[name] else {
                throw DataError.unreadable(path: path, reason: "corrupt checkpoint shard: no tensor '\(name)'")
            }
            guard t.type == type, count.map({ $0 * type.bytes == t.data.count }) ?? true else {
                throw DataError.unreadable(path: path, reason: "corrupt checkpoint shard: tensor '\(name)' is \(t.type.rawValue) \(t.shape), expected \(type.rawValue) of \(count.map(String.init) ?? "any") elements")
            }
            return t.data
        }
    }
}

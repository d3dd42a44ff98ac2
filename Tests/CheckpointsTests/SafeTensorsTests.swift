// SHA-256 against FIPS 180-4's vectors and Python's hashlib; safetensors
// written here open in Python (numpy, from the format alone), and a damaged
// file is refused with "corrupt".
import Checkpoints
import Data
import Foundation
import TestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    func sha(_ text: String) -> String {
        var h = SHA256()
        h.update(Array(text.utf8))
        return h.finalizeHex()
    }

    func testSHA256Vectors() {
        XCTAssertEqual(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A million 'a's, fed in uneven pieces.
        var h = SHA256()
        var left = 1_000_000, piece = 1
        while left > 0 {
            let n = min(piece, left)
            h.update([UInt8](repeating: 0x61, count: n))
            left -= n
            piece = piece * 3 % 1000 + 1
        }
        XCTAssertEqual(h.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testWrittenTensorsOpenInPythonAndMatchItsHash() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let path = dir.appendingPathComponent("t.safetensors").path
        let floats: [Float] = (0..<12).map { Float($0) * 0.5 - 1 }
        let ints: [Int32] = [7, -3, 1 << 30]
        let written = try floats.withUnsafeBytes { f in
            try ints.withUnsafeBytes { i in
                try SafeTensors.write([SafeTensor("a.values", .f32, shape: [3, 4], data: f),
                                       SafeTensor("a.ids", .i32, shape: [3], data: i),
                                       SafeTensor("empty", .f32, shape: [0, 4], data: UnsafeRawBufferPointer(start: nil, count: 0))],
                                      metadata: ["step": "5"], to: path)
            }
        }
        XCTAssertEqual(written.sha256, try SHA256.file(path))
        let script = """
        import hashlib, json, struct, sys
        import numpy as np
        raw = open(sys.argv[1], 'rb').read()
        n = struct.unpack('<Q', raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        def tensor(name, dtype):
            t = header[name]; b, e = t['data_offsets']
            return np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dtype).reshape(t['shape'])
        print(json.dumps({'sha256': hashlib.sha256(raw).hexdigest(), 'meta': header['__metadata__'],
                          'values': tensor('a.values', np.float32).tolist(), 'ids': tensor('a.ids', np.int32).tolist(),
                          'empty': list(tensor('empty', np.float32).shape)}))
        """
        let result = try runProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, path])
        XCTAssertEqual(result.status, 0, result.report)
        let out = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(out["sha256"] as? String, written.sha256)
        XCTAssertEqual(out["meta"] as? [String: String], ["step": "5"])
        XCTAssertEqual((out["values"] as? [[Double]])?.flatMap { $0 }.map(Float.init), floats)
        XCTAssertEqual(out["ids"] as? [Int], ints.map(Int.init))
        XCTAssertEqual(out["empty"] as? [Int], [0, 4])

        let file = try SafeTensors.File(path: path)
        XCTAssertEqual(file.metadata["step"], "5")
        XCTAssertEqual(Array(try file.tensor("a.ids", .i32, count: 3).bindMemory(to: Int32.self)), ints)
        XCTAssertThrowsError(try file.tensor("a.ids", .f32)) { XCTAssert("\($0)".contains("corrupt"), "\($0)") }
    }

    func testDamagedFilesAreRefusedAsCorrupt() throws {
        let dir = try TestPaths.temporaryDirectory(self)
        let path = dir.appendingPathComponent("t.safetensors").path
        let floats = [Float](repeating: 1, count: 64)
        _ = try floats.withUnsafeBytes { try SafeTensors.write([SafeTensor("x", .f32, shape: [64], data: $0)], metadata: [:], to: path) }
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var cases: [(String, Data)] = [("truncated", good.prefix(good.count - 10)), ("too short", good.prefix(5))]
        var badLength = good
        badLength[0] = 0xFF; badLength[1] = 0xFF
        cases.append(("header length past the end", badLength))
        var badJSON = good
        badJSON[9] = 0x5B   // '[': the header is no longer an object
        cases.append(("header not an object", badJSON))
        for (what, bytes) in cases {
            try bytes.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SafeTensors.File(path: path), what) { error in
                XCTAssert("\(error)".contains("corrupt") && "\(error)".contains(path), "\(what): \(error)")
            }
        }
    }
}

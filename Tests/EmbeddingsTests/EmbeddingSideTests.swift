// A fresh row depends only on (seed, ID, side, width), and a wider fresh row
// extends a narrower one; the side's names are the ones result files use.
import Embeddings
import XCTest

final class EmbeddingSideTests: XCTestCase {
    func row(id: Int, width: Int, side: EmbeddingSide, seed: UInt64 = 5) -> [Float] {
        var values = [Float](repeating: .nan, count: width)
        values.withUnsafeMutableBufferPointer { initRow(values: $0.baseAddress!, width: width, seed: seed, id: id, side: side) }
        return values
    }

    func testInitRowIsKeyedByIDAndSide() {
        let width = 8, rows = 2000
        let table = (0..<rows).flatMap { row(id: $0, width: width, side: .user) }
        let again = row(id: 17, width: width, side: .user)
        XCTAssertEqual(again, Array(table[17 * width..<18 * width]))
        XCTAssertNotEqual(row(id: 17, width: width, side: .item), again, "the side is part of the key")
        XCTAssertNotEqual(row(id: 17, width: width, side: .user, seed: 6), again, "the seed is part of the key")
        XCTAssertEqual(Array(row(id: 17, width: 128, side: .user).prefix(width)), again, "a wider row extends a narrower one")
        // N(0, 1): 16,000 samples; mean within 4σ = 0.032, variance within 5%.
        let all = table.map(Double.init)
        let mean = all.reduce(0, +) / Double(all.count)
        let variance = all.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(all.count)
        XCTAssertLessThan(abs(mean), 0.032)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testNamesAndIndices() {
        XCTAssertEqual(EmbeddingSide.allCases.map(\.index), [0, 1])
        XCTAssertEqual(EmbeddingSide.allCases.map(\.plural), ["users", "items"])
        XCTAssertEqual(EmbeddingSide.allCases.map(\.singular), ["user", "item"])
    }
}

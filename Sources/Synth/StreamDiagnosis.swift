// Statistics of a stream's ratings that no model of ours chooses: the
// yardstick a synthetic stand-in is tuned on before ESAPN is asked what it
// makes of it (`esapn inspect --diagnose`; docs/stand-in.md).
//
// - How much of the rating variance a global mean, user and item biases, and
//   a rank-8 interaction explain: each fitted on a fixed 80% of the records
//   (by a hash of the record's index) and scored on the other 20%. Biases are
//   ridge means fitted by alternating sweeps; the interaction is ALS on the
//   biases' residuals, with a ridge penalty that grows with an ID's count.
// - The same models' held-out accuracy on the binary label (rating > 3.5).
// - How users differ: the spread of their mean ratings and of their share of
//   positive labels, the share of users whose labels are ≥ 90% one way, and
//   the spread of their residual noise (users with ≥ 20 ratings); how their
//   ratings move in time (lag-1 autocorrelation around their mean, and the
//   change of their mean from their first to their last fifth of ratings).
// - How users rate in sittings: in how many batches of 500 records an ID
//   appears, and how many records it has in each (ESAPN decides once per ID
//   and batch, so this bounds how far a row can grow).
// - When users and items arrive: the share of each side's IDs first seen in
//   each fifth of the stream, and how many records of the last fifth (the
//   "test" part) come from a user or an item then seen at most 10 times.
import Data
import Foundation
import Random

public struct StreamDiagnosis: Codable, Sendable, Equatable {
    public var records: Int
    public var users: Int
    public var items: Int
    /// Held-out variance of the ratings (around the training mean).
    public var heldOutVariance: Double
    /// Held-out R² of μ + b_u + b_i, and what a rank-8 interaction adds to it.
    public var explainedByBiases: Double
    public var addedByInteraction: Double
    /// Of the biases' share, what user biases alone and item biases alone explain.
    public var explainedByUserBiases: Double
    public var explainedByItemBiases: Double
    /// Held-out accuracy on the binary label of: the majority label, the bias model, bias + interaction.
    public var accuracyMajority: Double
    public var accuracyBiases: Double
    public var accuracyInteraction: Double
    /// Users with at least `minimumUserRatings` ratings.
    public var usersMeasured: Int
    /// Standard deviation over users of their mean rating and of their share of positive labels.
    public var userMeanRatingSpread: Double
    public var userPositiveShareSpread: Double
    /// Share of users whose labels are at least 90% positive, or at least 90% negative.
    public var usersMostlyPositive: Double
    public var usersMostlyNegative: Double
    /// Coefficient of variation over users of the standard deviation of their residuals after the bias model.
    public var userNoiseSpread: Double
    /// How a user's ratings move in time: the mean over users of the lag-1
    /// autocorrelation of their ratings around their own mean, and the spread
    /// over users of (mean of their last fifth of ratings − mean of their first fifth).
    public var userRatingAutocorrelation: Double
    public var userDriftSpread: Double
    /// Over users (items): in how many batches of 500 records an ID appears,
    /// median and 90th percentile, and its mean records per batch it appears in.
    public var userBatchesMedian: Int
    public var userBatchesP90: Int
    public var userRecordsPerBatch: Double
    public var itemBatchesMedian: Int
    public var itemBatchesP90: Int
    public var itemRecordsPerBatch: Double
    /// Share of all users (items) first seen in each fifth of the stream.
    public var userArrivalsByFifth: [Double]
    public var itemArrivalsByFifth: [Double]
    /// Share of the last fifth's records whose user (item) frequency is at most 10.
    public var lastFifthNewUserRecords: Double
    public var lastFifthNewItemRecords: Double

    public static let minimumUserRatings = 20
    /// The trainer's default global batch.
    static let batch = 500
    static let rank = 8
    static let biasPenalty = 5.0
    static let factorPenalty = 0.1
    static let sweeps = 10

    /// Computes every statistic over `columns` (IDs dense from 0, ratings, frequencies, in stream order).
    public init(users userIDs: UnsafeBufferPointer<UInt32>, items itemIDs: UnsafeBufferPointer<UInt32>,
                ratings: UnsafeBufferPointer<Float>, userFrequencies: UnsafeBufferPointer<UInt32>,
                itemFrequencies: UnsafeBufferPointer<UInt32>, userCount: Int, itemCount: Int) {
        let n = ratings.count
        records = n
        users = userCount
        items = itemCount
        // The held-out fifth: a hash of the record index, the same for any stream.
        let heldOut = (0..<n).map { splitMix64(UInt64($0) ^ 0x5EED_D1A6) % 5 == 0 }
        let u = userIDs.map(Int.init), i = itemIDs.map(Int.init), r = ratings.map(Double.init)

        // Global mean and the held-out variance around it.
        var sum = 0.0, count = 0
        for k in 0..<n where !heldOut[k] { sum += r[k]; count += 1 }
        let mu = count > 0 ? sum / Double(count) : 0
        func heldOutMSE(_ predict: (Int) -> Double) -> Double {
            var s = 0.0, c = 0
            for k in 0..<n where heldOut[k] { let e = r[k] - predict(k); s += e * e; c += 1 }
            return c > 0 ? s / Double(c) : 0
        }
        func heldOutAccuracy(_ predict: (Int) -> Double) -> Double {
            var hit = 0, c = 0
            for k in 0..<n where heldOut[k] { if (predict(k) > 3.5) == (r[k] > 3.5) { hit += 1 }; c += 1 }
            return c > 0 ? Double(hit) / Double(c) : 0
        }
        let variance = heldOutMSE { _ in mu }
        heldOutVariance = variance
        func share(_ mse: Double) -> Double { variance > 0 ? 1 - mse / variance : 0 }

        // Biases: alternating ridge means, each side alone and together.
        func fitBiases(users fitUsers: Bool, items fitItems: Bool) -> ([Double], [Double]) {
            var bu = [Double](repeating: 0, count: userCount), bi = [Double](repeating: 0, count: itemCount)
            for _ in 0..<Self.sweeps {
                if fitUsers {
                    var s = [Double](repeating: 0, count: userCount), c = [Double](repeating: 0, count: userCount)
                    for k in 0..<n where !heldOut[k] { s[u[k]] += r[k] - mu - bi[i[k]]; c[u[k]] += 1 }
                    for x in 0..<userCount { bu[x] = s[x] / (c[x] + Self.biasPenalty) }
                }
                if fitItems {
                    var s = [Double](repeating: 0, count: itemCount), c = [Double](repeating: 0, count: itemCount)
                    for k in 0..<n where !heldOut[k] { s[i[k]] += r[k] - mu - bu[u[k]]; c[i[k]] += 1 }
                    for x in 0..<itemCount { bi[x] = s[x] / (c[x] + Self.biasPenalty) }
                }
            }
            return (bu, bi)
        }
        let (onlyUsers, _) = fitBiases(users: true, items: false)
        let (_, onlyItems) = fitBiases(users: false, items: true)
        explainedByUserBiases = share(heldOutMSE { mu + onlyUsers[u[$0]] })
        explainedByItemBiases = share(heldOutMSE { mu + onlyItems[i[$0]] })
        let (bu, bi) = fitBiases(users: true, items: true)
        let biasPrediction = { (k: Int) in mu + bu[u[k]] + bi[i[k]] }
        explainedByBiases = share(heldOutMSE(biasPrediction))

        // Interaction: ALS on the residuals.
        let residual = (0..<n).map { r[$0] - biasPrediction($0) }
        let (p, q) = Self.alternatingLeastSquares(u: u, i: i, residual: residual, training: heldOut.map { !$0 },
                                                  userCount: userCount, itemCount: itemCount)
        let d = Self.rank
        func dot(_ k: Int) -> Double {
            var s = 0.0
            for j in 0..<d { s += p[u[k] * d + j] * q[i[k] * d + j] }
            return s
        }
        addedByInteraction = share(heldOutMSE { biasPrediction($0) + dot($0) }) - explainedByBiases

        var positives = 0, total = 0
        for k in 0..<n where !heldOut[k] { positives += r[k] > 3.5 ? 1 : 0; total += 1 }
        let majority = 2 * positives >= total ? 5.0 : 1.0
        accuracyMajority = heldOutAccuracy { _ in majority }
        accuracyBiases = heldOutAccuracy(biasPrediction)
        accuracyInteraction = heldOutAccuracy { biasPrediction($0) + dot($0) }

        // Users: mean rating, positive share, residual noise (all records).
        var ratingSum = [Double](repeating: 0, count: userCount), positive = [Double](repeating: 0, count: userCount)
        var seen = [Double](repeating: 0, count: userCount), squared = [Double](repeating: 0, count: userCount)
        for k in 0..<n {
            ratingSum[u[k]] += r[k]
            positive[u[k]] += r[k] > 3.5 ? 1 : 0
            seen[u[k]] += 1
            squared[u[k]] += residual[k] * residual[k]
        }
        let measured = (0..<userCount).filter { seen[$0] >= Double(Self.minimumUserRatings) }
        usersMeasured = measured.count
        func spread(_ values: [Double]) -> Double {
            guard values.count > 1 else { return 0 }
            let m = values.reduce(0, +) / Double(values.count)
            return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot()
        }
        userMeanRatingSpread = spread(measured.map { ratingSum[$0] / seen[$0] })
        let shares = measured.map { positive[$0] / seen[$0] }
        userPositiveShareSpread = spread(shares)
        let m = Double(max(1, measured.count))
        usersMostlyPositive = Double(shares.filter { $0 >= 0.9 }.count) / m
        usersMostlyNegative = Double(shares.filter { $0 <= 0.1 }.count) / m
        let noise = measured.map { (squared[$0] / seen[$0]).squareRoot() }
        let meanNoise = noise.reduce(0, +) / m
        userNoiseSpread = meanNoise > 0 ? spread(noise) / meanNoise : 0

        // Time within a user's history.
        var history = [[Double]](repeating: [], count: userCount)
        for k in 0..<n { history[u[k]].append(r[k]) }
        var correlations: [Double] = [], drifts: [Double] = []
        for x in measured {
            let h = history[x], mean = h.reduce(0, +) / Double(h.count)
            var lagged = 0.0, squares = 0.0
            for j in h.indices {
                squares += (h[j] - mean) * (h[j] - mean)
                if j > 0 { lagged += (h[j] - mean) * (h[j - 1] - mean) }
            }
            if squares > 0 { correlations.append(lagged / squares) }
            let fifth = h.count / 5
            drifts.append(h.suffix(fifth).reduce(0, +) / Double(fifth) - h.prefix(fifth).reduce(0, +) / Double(fifth))
        }
        userRatingAutocorrelation = correlations.isEmpty ? 0 : correlations.reduce(0, +) / Double(correlations.count)
        userDriftSpread = spread(drifts)

        // Sittings: batches an ID appears in.
        func batches(_ ids: [Int], _ idCount: Int) -> (median: Int, p90: Int, perBatch: Double) {
            var lastBatch = [Int](repeating: -1, count: idCount), appearances = [Int](repeating: 0, count: idCount)
            var recordCount = [Int](repeating: 0, count: idCount)
            for k in 0..<n {
                let b = k / Self.batch
                if lastBatch[ids[k]] != b { lastBatch[ids[k]] = b; appearances[ids[k]] += 1 }
                recordCount[ids[k]] += 1
            }
            let present = (0..<idCount).filter { appearances[$0] > 0 }
            let sorted = present.map { appearances[$0] }.sorted()
            guard !sorted.isEmpty else { return (0, 0, 0) }
            let perBatch = present.reduce(0.0) { $0 + Double(recordCount[$1]) / Double(appearances[$1]) } / Double(present.count)
            return (sorted[(sorted.count - 1) / 2], sorted[Int(0.9 * Double(sorted.count - 1))], perBatch)
        }
        (userBatchesMedian, userBatchesP90, userRecordsPerBatch) = batches(u, userCount)
        (itemBatchesMedian, itemBatchesP90, itemRecordsPerBatch) = batches(i, itemCount)

        // Arrivals.
        func arrivals(_ frequencies: UnsafeBufferPointer<UInt32>, _ ids: Int) -> [Double] {
            var fifths = [Double](repeating: 0, count: 5)
            for k in 0..<n where frequencies[k] == 1 { fifths[min(4, 5 * k / max(1, n))] += 1 }
            return fifths.map { $0 / Double(max(1, ids)) }
        }
        userArrivalsByFifth = arrivals(userFrequencies, userCount)
        itemArrivalsByFifth = arrivals(itemFrequencies, itemCount)
        let lastFifth = (4 * n / 5)..<n
        let lastCount = Double(max(1, lastFifth.count))
        lastFifthNewUserRecords = Double(lastFifth.filter { userFrequencies[$0] <= 10 }.count) / lastCount
        lastFifthNewItemRecords = Double(lastFifth.filter { itemFrequencies[$0] <= 10 }.count) / lastCount
    }

    /// Rank-`rank` factors P (users × rank) and Q (items × rank) of the
    /// training residuals, by alternating ridge regressions; the penalty of an
    /// ID's row is factorPenalty × its training count (ALS-WR). Factors start
    /// from a keyed N(0, 0.1).
    static func alternatingLeastSquares(u: [Int], i: [Int], residual: [Double], training: [Bool],
                                        userCount: Int, itemCount: Int) -> ([Double], [Double]) {
        let d = rank
        var random = RandomStream(seed: 0, purpose: .diagnosis)
        var p = (0..<(userCount * d)).map { _ in 0.1 * random.normal() }
        var q = (0..<(itemCount * d)).map { _ in 0.1 * random.normal() }
        // Records grouped by user and by item (training only).
        func grouped(_ key: [Int], _ groups: Int) -> (start: [Int], order: [Int]) {
            var start = [Int](repeating: 0, count: groups + 1)
            for k in key.indices where training[k] { start[key[k] + 1] += 1 }
            for g in 0..<groups { start[g + 1] += start[g] }
            var next = start
            var order = [Int](repeating: 0, count: start[groups])
            for k in key.indices where training[k] { order[next[key[k]]] = k; next[key[k]] += 1 }
            return (start, order)
        }
        let byUser = grouped(u, userCount), byItem = grouped(i, itemCount)
        var a = [Double](repeating: 0, count: d * d), b = [Double](repeating: 0, count: d)
        /// Solves each row of `target` against the fixed `other` factors.
        func sweep(_ target: inout [Double], _ other: [Double], _ groups: (start: [Int], order: [Int]),
                   _ otherIndex: [Int], _ count: Int) {
            for g in 0..<count {
                let lo = groups.start[g], hi = groups.start[g + 1]
                for x in 0..<(d * d) { a[x] = 0 }
                for x in 0..<d { b[x] = 0 }
                for o in lo..<hi {
                    let k = groups.order[o], row = otherIndex[k] * d
                    for x in 0..<d {
                        b[x] += residual[k] * other[row + x]
                        for y in 0...x { a[x * d + y] += other[row + x] * other[row + y] }
                    }
                }
                let penalty = factorPenalty * Double(max(1, hi - lo))
                for x in 0..<d {
                    a[x * d + x] += penalty
                    for y in 0..<x { a[y * d + x] = a[x * d + y] }
                }
                solveSymmetric(&a, &b, d)
                for x in 0..<d { target[g * d + x] = hi > lo ? b[x] : 0 }
            }
        }
        for _ in 0..<sweeps {
            sweep(&p, q, byUser, i, userCount)
            sweep(&q, p, byItem, u, itemCount)
        }
        return (p, q)
    }

    /// Solves A x = b in place (b ← x) for a symmetric positive definite d × d A (Cholesky).
    static func solveSymmetric(_ a: inout [Double], _ b: inout [Double], _ d: Int) {
        for j in 0..<d {
            var s = a[j * d + j]
            for k in 0..<j { s -= a[j * d + k] * a[j * d + k] }
            let diagonal = s.squareRoot()
            a[j * d + j] = diagonal
            for x in (j + 1)..<max(j + 1, d) {
                var t = a[x * d + j]
                for k in 0..<j { t -= a[x * d + k] * a[j * d + k] }
                a[x * d + j] = t / diagonal
            }
        }
        for x in 0..<d {
            var t = b[x]
            for k in 0..<x { t -= a[x * d + k] * b[k] }
            b[x] = t / a[x * d + x]
        }
        for x in stride(from: d - 1, through: 0, by: -1) {
            var t = b[x]
            for k in (x + 1)..<max(x + 1, d) { t -= a[k * d + x] * b[k] }
            b[x] = t / a[x * d + x]
        }
    }
}

extension StreamDiagnosis {
    /// The diagnosis of a whole stream file.
    public init(_ file: StreamFile) {
        self.init(users: file.users, items: file.items, ratings: file.ratings, userFrequencies: file.userFrequencies,
                  itemFrequencies: file.itemFrequencies, userCount: file.header.users, itemCount: file.header.items)
    }

    /// Rows of the table `inspect --diagnose` prints: a name, then a formatter over a diagnosis.
    private static func pct(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
    private static func num(_ x: Double) -> String { String(format: "%.3f", x) }
    private static func fifths(_ x: [Double]) -> String { x.map { String(format: "%.0f", 100 * $0) }.joined(separator: "/") }

    public static let rows: [(name: String, value: @Sendable (StreamDiagnosis) -> String)] = {
        return [
            ("records / users / items", { "\($0.records) / \($0.users) / \($0.items)" }),
            ("held-out rating variance", { num($0.heldOutVariance) }),
            ("R² user biases alone", { pct($0.explainedByUserBiases) }),
            ("R² item biases alone", { pct($0.explainedByItemBiases) }),
            ("R² user + item biases", { pct($0.explainedByBiases) }),
            ("R² added by rank-8 interaction", { pct($0.addedByInteraction) }),
            ("accuracy (label) majority", { pct($0.accuracyMajority) }),
            ("accuracy (label) biases", { pct($0.accuracyBiases) }),
            ("accuracy (label) + interaction", { pct($0.accuracyInteraction) }),
            ("users with ≥ 20 ratings", { "\($0.usersMeasured)" }),
            ("spread of user mean rating", { num($0.userMeanRatingSpread) }),
            ("spread of user positive share", { num($0.userPositiveShareSpread) }),
            ("users ≥ 90% positive", { pct($0.usersMostlyPositive) }),
            ("users ≥ 90% negative", { pct($0.usersMostlyNegative) }),
            ("user noise, CV over users", { num($0.userNoiseSpread) }),
            ("user ratings' lag-1 autocorrelation", { num($0.userRatingAutocorrelation) }),
            ("spread of user last − first fifth", { num($0.userDriftSpread) }),
            ("batches a user is in: median / p90", { "\($0.userBatchesMedian) / \($0.userBatchesP90)" }),
            ("records per user per batch it is in", { String(format: "%.1f", $0.userRecordsPerBatch) }),
            ("batches an item is in: median / p90", { "\($0.itemBatchesMedian) / \($0.itemBatchesP90)" }),
            ("records per item per batch it is in", { String(format: "%.1f", $0.itemRecordsPerBatch) }),
            ("users first seen by fifth (%)", { fifths($0.userArrivalsByFifth) }),
            ("items first seen by fifth (%)", { fifths($0.itemArrivalsByFifth) }),
            ("last fifth: user seen ≤ 10 times", { pct($0.lastFifthNewUserRecords) }),
            ("last fifth: item seen ≤ 10 times", { pct($0.lastFifthNewItemRecords) }),
        ]
    }()

    /// A Markdown table of the diagnoses side by side, one column each.
    public static func table(_ columns: [(title: String, diagnosis: StreamDiagnosis)]) -> String {
        var out = "| statistic | " + columns.map(\.title).joined(separator: " | ") + " |\n"
        out += "| --- |" + String(repeating: " --: |", count: columns.count) + "\n"
        for row in rows {
            out += "| \(row.name) | " + columns.map { row.value($0.diagnosis) }.joined(separator: " | ") + " |\n"
        }
        return out
    }
}

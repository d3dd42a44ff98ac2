// A run's configuration: a Codable value validated once, with errors that say how to fix them.
import Embeddings
import Kernels
import Model
import Policies

public enum ModelKind: String, CaseIterable, Codable, Sendable {
    /// Every row 128 wide.
    case fixed
    /// Hard selection of each ID's width by the policy network (the paper's method).
    case esapn
    /// Soft selection with per-ID architecture weights.
    case darts
    /// Soft selection with weights from a controller on the ID's state.
    case autoemb
}

public struct TrainConfig: Codable, Sendable, Equatable {
    public var model: ModelKind = .fixed
    public var task: Task = .binary
    public var seed: UInt64 = 0
    /// Global batch (records), cut into P contiguous slices.
    public var batchSize = 500
    /// The "test" part: the last N records (nil: the last 25%).
    public var testLast: Int?
    /// Adam learning rate of the recommendation model (dense weights and rows).
    public var learningRate = 1e-3
    /// Adam learning rate of the policy (ESAPN) or architecture weights (DARTS, AutoEmb).
    public var policyLearningRate = 1e-4
    /// Candidate embedding widths, ascending (FIXED uses the largest).
    public var sizes = [2, 4, 8, 16, 64, 128]
    /// Width of the hidden layer of the inference MLP.
    public var hidden = 512
    /// How rows are optimised: catch-up Adam (dense-Adam values at lazy cost) or plain lazy Adam.
    public var rowOptimizer: RowOptimizerKind = .catchUpAdam
    /// Train on the first N records only (nil: the whole stream).
    public var limit: Int?
    /// ESAPN's validation batch: the previous batch, or B records sampled from the history.
    public var validation: Validation = .last
    /// T: the reward's baseline is the mean of an ID's last T losses (Eq. 2).
    public var rewardWindow = 5
    /// What the policy network sees of an ID.
    public var policyState = PolicyState()
    /// Width of the policy network's hidden layer.
    public var policyHidden = 512
    /// Bytes each rank may use (nil: the host's available memory shared among its ranks).
    public var memoryLimit: Int?
    /// Resident embedding bytes each shard may hold at the end of any batch (nil: no cap; docs/budget.md).
    public var shardBudget: Int?

    public enum Validation: String, CaseIterable, Codable, Sendable {
        case last
        case random
    }

    public init() {}

    /// The widths rows are stored at: FIXED the largest size, ESAPN each
    /// candidate, soft selection all candidates side by side in one row.
    public var storedWidths: [Int] {
        switch model {
        case .fixed: return [sizes.last!]
        case .esapn: return sizes
        case .darts, .autoemb: return [sizes.reduce(0, +)]
        }
    }

    /// Floats each ID carries beside its row: soft selection's weight logits, one per candidate.
    public var extraWidth: Int { model == .darts || model == .autoemb ? sizes.count : 0 }
    /// The width of FIXED's rows and of every formed embedding (the largest candidate).
    public var topWidth: Int { sizes.last! }
    /// The floats of a soft-selection row: every candidate side by side.
    public var softRowWidth: Int { sizes.reduce(0, +) }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    // MARK: - From the command line's words

    /// `--sizes 2,4,8`: comma-separated integers.
    public static func sizes(_ text: String) throws -> [Int] {
        let parsed = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
            throw Invalid("--sizes takes comma-separated integers like 2,4,8,16,64,128, got '\(text)'")
        }
        return parsed.map { $0! }
    }

    /// `--policy-state frequency+size`: '+'-separated parts, frequency required.
    public static func policyState(_ text: String) throws -> PolicyState {
        let parts = Set(text.split(separator: "+").map { $0.trimmingCharacters(in: .whitespaces) })
        guard parts.contains("frequency"), parts.isSubset(of: ["frequency", "size", "loss"]) else {
            throw Invalid("--policy-state is '+'-separated from frequency (required), size, loss; got '\(text)'")
        }
        return PolicyState(size: parts.contains("size"), lastLoss: parts.contains("loss"))
    }

    /// `--memory-limit GIB` in bytes.
    public static func memoryLimit(gib: Double) throws -> Int {
        guard gib > 0 else { throw Invalid("--memory-limit takes a positive number of GiB, got \(gib)") }
        return Int(gib * Double(1 << 30))
    }

    /// `--shard-budget MIB` in bytes.
    public static func shardBudget(mib: Double) throws -> Int {
        guard mib > 0, mib.isFinite else {
            throw Invalid("--shard-budget takes a positive number of MiB (resident embedding bytes per shard), got \(mib)")
        }
        return Int(mib * 1_048_576)
    }

    /// The options results.json records, as the command line spelt them.
    public func reportedOptions(streamPath: String) -> [String: String] {
        var options = ["lr": "\(learningRate)", "policy_lr": "\(policyLearningRate)",
                       "sizes": sizes.map(String.init).joined(separator: ","), "hidden": "\(hidden)",
                       "row_optimizer": rowOptimizer.rawValue, "stream_path": streamPath]
        if model == .esapn {
            options["validation"] = validation.rawValue
            options["reward_window"] = "\(rewardWindow)"
            options["policy_state"] = "frequency" + (policyState.size ? "+size" : "") + (policyState.lastLoss ? "+loss" : "")
        }
        if let testLast { options["test_last"] = "\(testLast)" }
        if let shardBudget { options["shard_budget_mib"] = String(format: "%.4g", Double(shardBudget) / 1_048_576) }
        if let limit { options["limit"] = "\(limit)" }
        return options
    }

    /// Checks the configuration against a stream of `records` records and `ranks` ranks.
    public func validate(records: Int, ranks: Int, users: Int = .max, items: Int = .max) throws {
        func fail(_ s: String) -> Invalid { Invalid(s) }
        guard batchSize > 0 else { throw fail("--batch-size must be positive, got \(batchSize)") }
        guard batchSize >= ranks else {
            throw fail("--batch-size \(batchSize) is smaller than the \(ranks) ranks: every rank needs a record of every batch; "
                       + "use --batch-size \(ranks) or more, or fewer ranks (mpirun -np)")
        }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }), zip(sizes, sizes.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw fail("--sizes must be positive and strictly increasing, got \(sizes.map(String.init).joined(separator: ","))")
        }
        guard sizes.count <= 16 else { throw fail("--sizes takes at most 16 candidate widths, got \(sizes.count)") }
        guard learningRate > 0, policyLearningRate > 0 else { throw fail("learning rates must be positive") }
        guard hidden > 0, policyHidden > 0 else { throw fail("--hidden and --policy-hidden must be positive") }
        guard rewardWindow > 0 else { throw fail("--reward-window must be positive, got \(rewardWindow)") }
        if model == .esapn || model == .darts || model == .autoemb {
            guard sizes.count >= 2 else { throw fail("\(model.rawValue) needs at least two --sizes to choose from") }
        }
        if let limit, limit <= 0 { throw fail("--limit must be positive, got \(limit)") }
        let n = effectiveRecords(records)
        guard n > 0 else { throw fail("the stream holds no records") }
        guard ranks <= n else {
            throw fail("\(ranks) ranks for \(n) records: run with at most \(n) ranks (mpirun -np)")
        }
        guard ranks <= min(users, items) else {
            throw fail("\(ranks) ranks for \(users) users and \(items) items: every rank must own IDs of both sides; "
                       + "run with at most \(min(users, items)) ranks (mpirun -np)")
        }
        if let testLast, testLast <= 0 || testLast > n {
            throw fail("--test-last must be within 1…\(n) (the records trained on), got \(testLast)")
        }
    }

    public func effectiveRecords(_ records: Int) -> Int { min(records, limit ?? records) }

    /// First global record index of the test part.
    public func testStart(records: Int) -> Int {
        let n = effectiveRecords(records)
        return n - (testLast ?? max(1, n / 4))
    }
}

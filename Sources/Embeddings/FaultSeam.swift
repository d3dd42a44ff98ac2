// The one test seam of the trainer: bugs the contract tests plant on purpose,
// to show that the contract catches them. A fault is planted in a run's
// BatchExchange (`plant`, or the environment variable ESAPN_INJECT_FAULT=NAME,
// read when the exchange is made, for runs the tests start as processes) and
// acts from here only: after an exchange step, on what arrived, as a buggy
// owner or transport would; and on the key of the owners' random draws. Each
// P-dependent one changes nothing at P = 1, as real distribution bugs do, so
// only a P-versus-1 comparison can see it. No production type takes a fault.
#if canImport(Glibc)
import Glibc
#endif

public enum InjectedFault: String, CaseIterable, Sendable {
    case none
    /// ESAPN draws each sampled action from the generator keyed by the ID's
    /// local index at its owner instead of its global ID.
    case actionKeyedByLocalID = "action-keyed-by-local-id"
    /// Owners drop the per-record losses that the last rank sends them, so the
    /// loss histories (ESAPN's rewards) miss that rank's records.
    case ownerDropsLastRanksLosses = "owner-drops-last-ranks-losses"
    /// Owners keep the frequency of the first request for an ID and drop the
    /// larger one a later rank sends (the policy's state).
    case ownerDropsLaterRanksFrequency = "owner-drops-later-ranks-frequency"
    /// The last rank receives its first user row with a NaN in every rows
    /// step after the owners brought the rows to step 5, that is in batch 5
    /// (not P-dependent: for the numerical-fault check).
    case nanAtBatch5 = "nan-at-batch-5"

    /// The variable a test sets to plant a fault in a run it starts as a process.
    public static let environmentVariable = "ESAPN_INJECT_FAULT"

    /// The fault the environment names (`.none` when unset); an unknown name stops the process.
    static func fromEnvironment() -> InjectedFault {
        guard let name = getenv(environmentVariable).map({ String(cString: $0) }), !name.isEmpty else { return .none }
        guard let fault = InjectedFault(rawValue: name) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            fatalError("\(environmentVariable)=\(name) is not a fault; the faults are \(names)")
        }
        return fault
    }
}

extension BatchExchange {
    /// Plants `fault` in this exchange and its tables (tests only).
    public func plant(_ fault: InjectedFault) {
        self.fault = fault
        for t in tables { t.owned.drawsKeyedByLocalID = fault == .actionKeyedByLocalID }
    }

    /// What the planted fault does to a leg's bytes once they have arrived, before its table reads them.
    func tamper(after step: ExchangeStep, _ leg: ExchangeLeg) {
        guard let table = tables.first(where: { $0.side == leg.side }) else { return }
        let P = comm.size
        switch (fault, step) {
        case (.ownerDropsLaterRanksFrequency, .requests):
            // A later request for an ID already requested arrives with frequency 0: the owner keeps the first.
            var seen = Set<Int>()
            for e in 0..<(leg.plan.receivedBytes / WireFormat.requestBytes) {
                let at = leg.receive + e * WireFormat.requestBytes
                let q = WireFormat.readRequest(at)
                if !seen.insert(q.id).inserted { WireFormat.writeRequest(at, id: q.id, frequency: 0) }
            }
        case (.ownerDropsLastRanksLosses, .values) where P > 1:
            // The last rank's entries arrive empty (each a count of 0).
            var at = leg.receive + leg.inOffsets[P - 1]
            for _ in 0..<(table.requestsReceived(from: P - 1)) {
                WireFormat.writeValuesHeader(at, count: 0)
                at += WireFormat.valuesEntryBytes(count: 0)
            }
        case (.nanAtBatch5, .rows) where table.side == .user && comm.rank == P - 1 && table.owned.readStep == 5:
            if leg.plan.receivedBytes > 0 { WireFormat.rowFloats(leg.receive)[0] = .nan }
        default:
            break
        }
    }
}

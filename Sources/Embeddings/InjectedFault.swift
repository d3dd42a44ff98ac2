// Bugs the multi-rank contract tests plant on purpose, to show that the
// contract catches them (`esapn train --inject-fault NAME`, hidden). Each one
// depends on P, as real distribution bugs do: at P = 1 it changes nothing,
// so only a P-versus-1 comparison can see it. Never set outside tests.

public enum InjectedFault: String, CaseIterable, Codable, Sendable {
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
    /// The last rank reads a NaN in its first distinct user's row in batch 5
    /// (not P-dependent: for the numerical-fault check).
    case nanAtBatch5 = "nan-at-batch-5"
}

// What each model kind is made of (ARCHITECTURE §1), one small factory per
// kind: for one side, how its received rows become embeddings (the former)
// and who decides their widths at the owner (the policy). The dense weights
// register in `layout` (the model's) and `policyLayout` (the policy's), one
// side after the other, users first, so every arena holds its tensors in the
// same order on every rank.
import Embeddings
import Kernels
import Model
import Policies

struct SidePieces {
    let former: any EmbeddingFormer
    let policy: any SelectionPolicy
}

enum ModelFactory {
    /// The former and policy of `side` for `config.model`. `store`: the
    /// side's rows at this rank, where the policy registers its per-ID state;
    /// `maxSlice`: the largest slice.
    static func side(_ side: EmbeddingSide, config: TrainConfig, store: RowStore, maxSlice: Int,
                     layout: inout ParameterLayout, policyLayout: inout ParameterLayout) -> SidePieces {
        switch config.model {
        case .fixed: return fixed(side, config, maxSlice, &layout)
        case .esapn: return esapn(side, config, store, maxSlice, &layout, &policyLayout)
        case .darts: return darts(side, config, store, maxSlice, &layout)
        case .autoemb: return autoEmb(side, config, maxSlice, &layout, &policyLayout)
        }
    }

    /// FIXED: one width, no chain, nothing to decide.
    static func fixed(_ side: EmbeddingSide, _ config: TrainConfig, _ maxSlice: Int,
                      _ layout: inout ParameterLayout) -> SidePieces {
        let chain = HardSelectionParameters(side: side, widths: config.storedWidths, layout: &layout)
        return SidePieces(former: HardSelectionEmbedding(parameters: chain, maxSlice: maxSlice), policy: FixedPolicy())
    }

    /// ESAPN: hard selection through the transform chain; the policy network enlarges rows.
    static func esapn(_ side: EmbeddingSide, _ config: TrainConfig, _ store: RowStore, _ maxSlice: Int,
                      _ layout: inout ParameterLayout, _ policyLayout: inout ParameterLayout) -> SidePieces {
        let chain = HardSelectionParameters(side: side, widths: config.storedWidths, layout: &layout)
        let network = ESAPNPolicy.parameters(side: side, sizes: config.storedWidths.count, state: config.policyState,
                                             hidden: config.policyHidden, layout: &policyLayout)
        let policy = ESAPNPolicy(side: side, parameters: network, state: config.policyState, chain: chain,
                                 rewardWindow: config.rewardWindow, store: store, maxBatch: config.batchSize,
                                 seed: config.seed)
        return SidePieces(former: HardSelectionEmbedding(parameters: chain, maxSlice: maxSlice), policy: policy)
    }

    /// DARTS: soft selection; per-ID architecture weights α trained by gradient.
    static func darts(_ side: EmbeddingSide, _ config: TrainConfig, _ store: RowStore, _ maxSlice: Int,
                      _ layout: inout ParameterLayout) -> SidePieces {
        let candidates = SoftSelectionParameters(side: side, widths: config.sizes, layout: &layout)
        let policy = DARTSPolicy(candidates: config.sizes.count, store: store,
                                 learningRate: config.policyLearningRate, optimizer: config.rowOptimizer)
        return SidePieces(former: SoftSelectionEmbedding(parameters: candidates, maxSlice: maxSlice), policy: policy)
    }

    /// AutoEmb: soft selection; a controller on the ID's state gives the weights.
    static func autoEmb(_ side: EmbeddingSide, _ config: TrainConfig, _ maxSlice: Int,
                        _ layout: inout ParameterLayout, _ policyLayout: inout ParameterLayout) -> SidePieces {
        let candidates = SoftSelectionParameters(side: side, widths: config.sizes, layout: &layout)
        let controller = AutoEmbPolicy.parameters(side: side, candidates: config.sizes.count,
                                                  hidden: config.policyHidden, layout: &policyLayout)
        let policy = AutoEmbPolicy(parameters: controller, maxBatch: config.batchSize)
        return SidePieces(former: SoftSelectionEmbedding(parameters: candidates, maxSlice: maxSlice), policy: policy)
    }
}

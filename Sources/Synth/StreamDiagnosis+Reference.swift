// Real MovieLens-100k as `esapn inspect --diagnose` measures it, printed
// beside every stream of the `small` preset. Measured on 2026-12-02 with
//   esapn prepare data/ml-100k/ml-100k.inter --output ml-100k.stream
//   esapn inspect ml-100k.stream --diagnose --json
// (figures rounded to four digits).
import Data
import Foundation

extension StreamDiagnosis {
    public static let ml100k: StreamDiagnosis = {
        let json = """
        {
        "accuracyBiases": 0.7091, "accuracyInteraction": 0.7198, "accuracyMajority": 0.551,
        "addedByInteraction": 0.01856, "explainedByBiases": 0.3121, "explainedByItemBiases": 0.1837,
        "explainedByUserBiases": 0.146, "heldOutVariance": 1.275,
        "itemArrivalsByFifth": [0.7907, 0.05054, 0.05707, 0.06243, 0.03924], "itemBatchesMedian": 25,
        "itemBatchesP90": 119, "itemRecordsPerBatch": 1.152, "items": 1682,
        "lastFifthNewItemRecords": 0.03605, "lastFifthNewUserRecords": 0.09655, "records": 100000,
        "userArrivalsByFifth": [0.228, 0.2163, 0.1813, 0.1707, 0.2036], "userBatchesMedian": 2,
        "userBatchesP90": 6, "userDriftSpread": 0.8207, "userMeanRatingSpread": 0.4452,
        "userNoiseSpread": 0.2187, "userPositiveShareSpread": 0.1739, "userRatingAutocorrelation": 0.1556,
        "userRecordsPerBatch": 52.05, "users": 943, "usersMeasured": 943, "usersMostlyNegative": 0.002121,
        "usersMostlyPositive": 0.02757
        }
        """
        do {
            return try JSONDecoder().decode(StreamDiagnosis.self, from: Data(json.utf8))
        } catch {
            preconditionFailure("StreamDiagnosis.ml100k does not decode: \(error)")
        }
    }()
}

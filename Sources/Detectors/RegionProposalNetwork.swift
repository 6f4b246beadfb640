// torchvision 0.14's RegionProposalNetwork at inference (models/detection/rpn.py; Ren et al. 2015).
import BoxOps
import Layers
import TensorCore

/// The region proposal network of Faster R-CNN: a shared head scores every anchor of every
/// pyramid level, and the best anchors, decoded with their deltas, become the proposals
/// the RoI heads classify.
///
/// Selection per image, as torchvision's `filter_proposals`: the `preNmsTopN` highest
/// objectness logits of each level → decode (coder weights 1, 1, 1, 1) → sigmoid → clip to
/// the image → drop boxes narrower or lower than 1e-3 → keep scores `>= scoreThreshold` →
/// NMS per level (`batched_nms` with the level as label) → the first `postNmsTopN`.
public final class RegionProposalNetwork: Module {
    public let head: Head
    public let anchorGenerator: AnchorGenerator
    /// The RPN's coder: weights (1, 1, 1, 1).
    public let boxCoder: BoxCoder
    /// Anchors kept per level before NMS (`pre_nms_top_n["testing"]`).
    public let preNmsTopN: Int
    /// Proposals kept per image after NMS (`post_nms_top_n["testing"]`).
    public let postNmsTopN: Int
    /// IoU above which NMS drops a proposal (compared in Double, as the C++ kernel).
    public let nmsThreshold: Double
    /// Proposals need sigmoid(objectness) `>=` this (a Float32 comparison, as torch's).
    public let scoreThreshold: Float
    /// torchvision's `self.min_size`: minimum width and height of a proposal.
    public let minimumSize: Double = 1e-3

    /// The raw head outputs and the selected proposals of a batch.
    public struct Output {
        /// Per level, objectness logits `[N, A, H, W]`.
        public var objectness: [Tensor]
        /// Per level, box deltas `[N, 4A, H, W]` (channel `4a + k`).
        public var deltas: [Tensor]
        /// Per image, proposals `[P_i, 4]` xyxy in pixels of the transformed image, by score.
        public var proposals: [Tensor]
        /// Per image, the proposals' sigmoid objectness (P_i values).
        public var scores: [[Float]]
    }

    /// An RPN over `inChannels`-channel levels; every level needs the same anchors per location.
    public init(inChannels: Int, anchorGenerator: AnchorGenerator, convDepth: Int, preNmsTopN: Int,
                postNmsTopN: Int, nmsThreshold: Double, scoreThreshold: Float) {
        let perLocation = anchorGenerator.anchorsPerLocation
        precondition(Set(perLocation).count == 1,
                     "RegionProposalNetwork: anchors per location differ between levels: \(perLocation)")
        head = Head(inChannels: inChannels, anchorsPerLocation: perLocation[0], convDepth: convDepth)
        self.anchorGenerator = anchorGenerator
        boxCoder = BoxCoder(weights: (1, 1, 1, 1))
        self.preNmsTopN = preNmsTopN
        self.postNmsTopN = postNmsTopN
        self.nmsThreshold = nmsThreshold
        self.scoreThreshold = scoreThreshold
    }

    public var children: [(name: String, module: any Module)] { [("head", head)] }

    /// Proposals for pyramid levels `[N, C, H_l, W_l]` (finest first) of a padded batch of
    /// `batchSize`, whose images have `imageSizes` before padding.
    public func callAsFunction(_ features: [Tensor], batchSize: Size2, imageSizes: [Size2]) -> Output {
        precondition(features.count == anchorGenerator.cellAnchors.count,
                     "RegionProposalNetwork: \(features.count) levels for \(anchorGenerator.cellAnchors.count) anchor levels")
        let (objectness, deltas) = head(features)
        let featureSizes = features.map { Size2($0.shape[2], $0.shape[3]) }
        // The level count and extents were checked above and come from the FPN: cannot throw.
        guard let anchors = try? anchorGenerator.anchors(imageSize: batchSize, featureSizes: featureSizes) else {
            preconditionFailure("RegionProposalNetwork: no anchors for feature sizes \(featureSizes)")
        }
        var proposals: [Tensor] = []
        var scores: [[Float]] = []
        for image in imageSizes.indices {
            let candidates = topCandidates(objectness: objectness, deltas: deltas, anchors: anchors, image: image)
            let selected = selectProposals(candidates, imageSize: imageSizes[image])
            proposals.append(selected.boxes)
            scores.append(selected.scores)
        }
        return Output(objectness: objectness, deltas: deltas, proposals: proposals, scores: scores)
    }

    /// The pre-NMS candidates of one image: per level, the `preNmsTopN` anchors with the
    /// highest logit (all when the level has fewer), decoded; levels concatenated in order.
    public struct Candidates {
        /// `[M, 4]` decoded boxes (not clipped yet).
        public var boxes: Tensor
        /// M objectness logits.
        public var logits: [Float]
        /// M level indices.
        public var levels: [Int]

        public init(boxes: Tensor, logits: [Float], levels: [Int]) {
            self.boxes = boxes
            self.logits = logits
            self.levels = levels
        }
    }

    /// torchvision's `_get_top_n_idx` and the gathers after it, for image `image` of the batch.
    /// `anchors` holds every level's anchors, `[sum H_l W_l A, 4]`, in the order of
    /// `concat_box_prediction_layers`: per level, position (y, x) major, then anchor.
    func topCandidates(objectness: [Tensor], deltas: [Tensor], anchors: Tensor, image: Int) -> Candidates {
        var boxes: [Float] = []
        var logits: [Float] = []
        var levels: [Int] = []
        var levelStart = 0
        for (level, (levelObjectness, levelDeltas)) in zip(objectness, deltas).enumerated() {
            let (anchorCount, height, width) = (levelObjectness.shape[1], levelObjectness.shape[2], levelObjectness.shape[3])
            let positions = height * width
            let count = positions * anchorCount
            // (N, A, H, W) -> (N, H*W*A): flattened index (y*W + x)*A + a
            var levelLogits = [Float](repeating: 0, count: count)
            levelObjectness.withUnsafeBufferPointer { source in
                let base = image * count
                for a in 0..<anchorCount {
                    for position in 0..<positions {
                        levelLogits[position * anchorCount + a] = source[base + a * positions + position]
                    }
                }
            }
            let top = topK(levelLogits, k: min(preNmsTopN, count))
            // (N, A*4, H, W) -> (N, H*W*A, 4), gathered for the selected anchors only
            var selectedDeltas = [Float](repeating: 0, count: top.indices.count * 4)
            var selectedAnchors = [Float](repeating: 0, count: top.indices.count * 4)
            levelDeltas.withUnsafeBufferPointer { source in
                anchors.withUnsafeBufferPointer { anchorValues in
                    let base = image * count * 4
                    for (row, index) in top.indices.enumerated() {
                        let (position, a) = index.quotientAndRemainder(dividingBy: anchorCount)
                        for k in 0..<4 {
                            selectedDeltas[row * 4 + k] = source[base + (a * 4 + k) * positions + position]
                            selectedAnchors[row * 4 + k] = anchorValues[(levelStart + index) * 4 + k]
                        }
                    }
                }
            }
            let decoded = boxCoder.decode(relativeCodes: Tensor(shape: [top.indices.count, 4], scalars: selectedDeltas),
                                          boxes: Tensor(shape: [top.indices.count, 4], scalars: selectedAnchors))
            boxes += decoded.scalars
            logits += top.values
            levels += [Int](repeating: level, count: top.indices.count)
            levelStart += count
        }
        precondition(levelStart == anchors.shape[0],
                     "RegionProposalNetwork: \(levelStart) head outputs for \(anchors.shape[0]) anchors")
        return Candidates(boxes: Tensor(shape: [logits.count, 4], scalars: boxes), logits: logits, levels: levels)
    }

    /// torchvision's `filter_proposals` after the top-n gather, for one image of `imageSize`:
    /// sigmoid, clip, remove small, score threshold, NMS per level, keep `postNmsTopN`.
    public func selectProposals(_ candidates: Candidates, imageSize: Size2) -> (boxes: Tensor, scores: [Float]) {
        let probabilities = sigmoid(Tensor(shape: [candidates.logits.count], scalars: candidates.logits)).scalars
        let clipped = clipBoxesToImage(candidates.boxes, imageSize: imageSize)
        // use >= for backwards compatibility, as torchvision
        let kept = removeSmallBoxes(clipped, minSize: minimumSize).filter { probabilities[$0] >= scoreThreshold }
        let boxes = Self.gatheredRows(clipped, kept)
        let scores = kept.map { probabilities[$0] }
        let levels = kept.map { candidates.levels[$0] }
        let survivors = batchedNMS(boxes: boxes, scores: scores, labels: levels, iouThreshold: nmsThreshold)
            .prefix(postNmsTopN)
        return (Self.gatheredRows(boxes, Array(survivors)), survivors.map { scores[$0] })
    }

    /// Rows `indices` of `boxes` `[N, 4]`, in that order: `[indices.count, 4]`.
    static func gatheredRows(_ boxes: Tensor, _ indices: [Int]) -> Tensor {
        boxes.withUnsafeBufferPointer { values in
            Tensor(shape: [indices.count, 4]) { out in
                for (row, index) in indices.enumerated() {
                    for k in 0..<4 { out[row * 4 + k] = values[index * 4 + k] }
                }
            }
        }
    }
}

"""ATSS anchor assignment (Zhang et al., "Bridging the Gap Between Anchor-based and Anchor-free Detection via
Adaptive Training Sample Selection", CVPR 2020) for training torchvision's RetinaNet. Training only: the model,
its keys and its inference are torchvision's; only which anchors count as positives in the loss changes.

Per ground-truth box: on every pyramid level take the k anchors whose centres are closest to the box centre;
the IoU threshold is the mean plus the (unbiased) standard deviation of those candidates' IoUs; positives are
the candidates at or above it whose centre lies inside the box. An anchor claimed by several boxes goes to the
one it overlaps most. Everything else is background (ATSS has no ignore band). Our one addition: a box left
with no positive (a box so small that no anchor centre falls inside it) takes its best-IoU candidate.

Use: `atss.use_atss_matching(model, topk=9)` on a torchvision RetinaNet before training; with
`keep_iou_positives=True` torchvision's IoU matching stays and ATSS only adds positives.
Self-check against the rule written out box by box: `.venv-ref/bin/python detectors/tools/atss.py`.
"""

import types

import torch
from torchvision.ops import box_iou


def _centres(boxes):
    return torch.stack(((boxes[:, 0] + boxes[:, 2]) * 0.5, (boxes[:, 1] + boxes[:, 3]) * 0.5), dim=1)


def atss_match(gt_boxes, anchors, anchors_per_level, topk=9, ious=None):
    """matched index [N] (gt index, or -1 for background) for anchors [N, 4] laid out level after level;
    ious: box_iou(gt_boxes, anchors) when the caller has it already."""
    num_gt, num_anchors = gt_boxes.shape[0], anchors.shape[0]
    if sum(anchors_per_level) != num_anchors:
        raise ValueError(f"anchors per level {anchors_per_level} do not add up to {num_anchors} anchors")
    matched = torch.full((num_anchors,), -1, dtype=torch.int64, device=anchors.device)
    if num_gt == 0:
        return matched
    if ious is None:
        ious = box_iou(gt_boxes, anchors)  # [G, N]
    anchor_centres = _centres(anchors)
    distances = torch.cdist(_centres(gt_boxes), anchor_centres)  # [G, N]
    candidates = []
    start = 0
    for count in anchors_per_level:
        k = min(topk, count)
        _, nearest = distances[:, start:start + count].topk(k, dim=1, largest=False)
        candidates.append(nearest + start)
        start += count
    candidates = torch.cat(candidates, dim=1)  # [G, K]
    candidate_ious = ious.gather(1, candidates)
    threshold = candidate_ious.mean(dim=1) + candidate_ious.std(dim=1)
    positive = candidate_ious >= threshold[:, None]
    centres = anchor_centres[candidates]  # [G, K, 2]
    inside = ((centres[..., 0] > gt_boxes[:, None, 0]) & (centres[..., 0] < gt_boxes[:, None, 2])
              & (centres[..., 1] > gt_boxes[:, None, 1]) & (centres[..., 1] < gt_boxes[:, None, 3]))
    positive &= inside
    lonely = ~positive.any(dim=1)
    if lonely.any():
        best = candidate_ious.argmax(dim=1)
        positive[lonely, best[lonely]] = True
    # the IoU each (gt, anchor) pair claims; -1 where the anchor is not that gt's positive
    claims = torch.full((num_gt, num_anchors), -1.0, dtype=ious.dtype, device=anchors.device)
    rows = torch.arange(num_gt, device=anchors.device)[:, None].expand_as(candidates)
    claims[rows[positive], candidates[positive]] = candidate_ious[positive]
    best_iou, best_gt = claims.max(dim=0)
    matched[best_iou >= 0] = best_gt[best_iou >= 0]
    return matched


# `training_matcher` types of shapes_models' configs served here, with the words the model README uses
MATCHERS = {"atss": "ATSS", "iou+atss": "IoU matching plus ATSS positives"}


def use_training_matcher(model, matcher):
    """Applies a config's `training_matcher` ({"type": one of MATCHERS, "topk": k}) to a torchvision RetinaNet."""
    if matcher["type"] not in MATCHERS:
        raise ValueError(f"unknown training_matcher {matcher!r}; expected a type in {sorted(MATCHERS)} (or iou)")
    return use_atss_matching(model, topk=matcher["topk"], keep_iou_positives=matcher["type"] == "iou+atss")


def use_atss_matching(model, topk=9, keep_iou_positives=False):
    """Replaces `model.compute_loss`'s IoU matcher by ATSS. The level sizes come from the backbone's outputs,
    recorded by a forward hook (shapes only). keep_iou_positives: torchvision's IoU matching stays and ATSS only
    adds positives (an anchor that is background or ignored there and an ATSS positive takes the ATSS box)."""
    anchors_per_location = model.anchor_generator.num_anchors_per_location()
    if len(set(anchors_per_location)) != 1:
        raise ValueError(f"ATSS here expects the same anchor count on every level, got {anchors_per_location}")
    per_location = anchors_per_location[0]
    model._atss_level_sizes = None

    def record(_module, _inputs, outputs):
        model._atss_level_sizes = [f.shape[-2] * f.shape[-1] * per_location for f in outputs.values()]

    model.backbone.register_forward_hook(record)

    def compute_loss(self, targets, head_outputs, anchors):
        matched_idxs = []
        for a, t in zip(anchors, targets):
            ious = box_iou(t["boxes"], a)
            matched = atss_match(t["boxes"], a, self._atss_level_sizes, topk, ious)
            if keep_iou_positives and t["boxes"].numel() > 0:
                by_iou = self.proposal_matcher(ious)
                added = (by_iou < 0) & (matched >= 0)
                matched = torch.where(added, matched, by_iou)
            matched_idxs.append(matched)
        return self.head.compute_loss(targets, head_outputs, anchors, matched_idxs)

    model.compute_loss = types.MethodType(compute_loss, model)
    return model


def _reference_match(gt_boxes, anchors, anchors_per_level, topk):
    """The rule above written out box by box and anchor by anchor, for the self-check."""
    ious = box_iou(gt_boxes, anchors)
    anchor_centres, gt_centres = _centres(anchors), _centres(gt_boxes)
    owner = {}
    for g in range(len(gt_boxes)):
        candidates, start = [], 0
        for count in anchors_per_level:
            distance = [float(((anchor_centres[start + i] - gt_centres[g]) ** 2).sum().sqrt()) for i in range(count)]
            candidates += [start + i for i in sorted(range(count), key=lambda i: (distance[i], i))[:min(topk, count)]]
            start += count
        values = torch.tensor([float(ious[g, c]) for c in candidates])
        threshold = values.mean() + values.std()
        x1, y1, x2, y2 = (float(v) for v in gt_boxes[g])
        chosen = [c for c, v in zip(candidates, values)
                  if v >= threshold and x1 < anchor_centres[c, 0] < x2 and y1 < anchor_centres[c, 1] < y2]
        if not chosen:
            chosen = [candidates[int(values.argmax())]]
        for c in chosen:
            if c not in owner or ious[g, c] > ious[owner[c], c]:
                owner[c] = g
    matched = torch.full((len(anchors),), -1, dtype=torch.int64)
    for c, g in owner.items():
        matched[c] = g
    return matched


def self_check(trials=20):
    """atss_match against the box-by-box rule on random boxes over a 3-level, 2-anchor grid."""
    generator = torch.Generator().manual_seed(0)
    anchors, levels = [], []
    for cells, stride in ((8, 8), (4, 16), (2, 32)):
        for y in range(cells):
            for x in range(cells):
                for size in (2 * stride, 3 * stride):
                    # the two anchors of a location are offset a little so that no two candidates tie on distance
                    cx, cy = x * stride + size / 40, y * stride
                    anchors.append([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])
        levels.append(cells * cells * 2)
    anchors = torch.tensor(anchors)
    for trial in range(trials):
        corner = torch.rand(6, 2, generator=generator) * 56
        gt = torch.cat([corner, corner + 1 + torch.rand(6, 2, generator=generator) * 40], dim=1)
        fast, slow = atss_match(gt, anchors, levels, 9), _reference_match(gt, anchors, levels, 9)
        if not torch.equal(fast, slow):
            raise SystemExit(f"trial {trial}: atss_match differs from the reference at anchors "
                             f"{(fast != slow).nonzero().flatten().tolist()}")
    print(f"atss_match agrees with the box-by-box rule on {trials} random images")


if __name__ == "__main__":
    self_check()

"""Compares `detq detect` with torchvision 0.14 for the Faster R-CNN models on real photos (dev time; needs torch).

For each model: builds the FULL-SIZE torchvision model (builder, weights=None, weights_backbone=None,
91 classes) with seeded random weights, then
  - calibrates every batch norm's running statistics on two photos (train-mode forward with
    cumulative averages) and randomizes them and the affine parameters around that
    (mean + N(0, 0.05·std), var · U(0.8, 1.25), weight U(0.8, 1.2), bias N(0, 0.1)), so that
    activations stay in range through ResNet-50 and every BN parameter matters;
  - recentres and rescales the RPN objectness layer (logits: mean 0, std 2) and the RoI class
    layer (per-class mean 0, std `--class-logit-std`, default 2) on the calibration images, so
    that scores spread without saturating;
saves the state dict with torch.save, runs torchvision on the images (PIL decode, to_tensor),
runs `detq detect --model NAME --weights W.pth --config C --json OUT` on the same images, and
prints per model: torchvision detections with score > 0.3, how many detq matched (same label,
IoU > 0.99, score within 1e-3), the worst box and score differences over matched pairs, and the
per-image latency of both (2 threads each; detq's from the difference of a run on all images
and a run on one image, so weight loading is not counted).

The shipped fasterrcnn_resnet50_fpn config has batch_norm_eps 0 (the legacy COCO checkpoint);
the random-weight model here uses nn.BatchNorm2d (eps 1e-5), so the script passes a config copy
with batch_norm_eps 1e-5 (written next to a copy of coco-classes.txt).

Run (release build first: swift build -c release --product detq):
  nice .venv-ref/bin/python eval/parity_rcnn.py [--models a,b] [--limit N] [--report eval/reports/parity-rcnn.md]
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.transforms.functional import to_tensor

torch.set_num_threads(2)
root = Path(__file__).resolve().parents[1]
shared = root.parent / "shared" / "data"

MODELS = ["fasterrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn"]


def images(limit):
    photos = sorted((shared / "photos").iterdir())
    coco = sorted((shared / "coco-val2017-sample" / "images").iterdir())
    files = [p for p in photos + coco if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return files[:limit] if limit else files


def load(path):
    return to_tensor(Image.open(path).convert("RGB"))


@torch.no_grad()
def build(name, seed, calibration, class_logit_std):
    torch.manual_seed(seed)
    builder = getattr(torchvision.models.detection, name)
    model = builder(weights=None, weights_backbone=None, num_classes=91)
    model.eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # 1. calibrate: batch statistics, cumulative average over the calibration images
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    for image in calibration:
        model([image])
    generator = torch.Generator().manual_seed(seed + 1000)
    for norm in norms:
        norm.eval()
        count = norm.num_features
        std = norm.running_var.sqrt()
        norm.running_mean += torch.randn(count, generator=generator) * 0.05 * std
        norm.running_var *= torch.empty(count).uniform_(0.8, 1.25, generator=generator)
        norm.weight.copy_(torch.empty(count).uniform_(0.8, 1.2, generator=generator))
        norm.bias.copy_(torch.randn(count, generator=generator) * 0.1)
    # 2. rescale the score layers from the logits they give on the calibration images
    captured = {}
    hooks = [
        model.rpn.head.cls_logits.register_forward_hook(
            lambda m, i, o: captured.setdefault("rpn", []).append(o.flatten())),
        model.roi_heads.box_predictor.cls_score.register_forward_hook(
            lambda m, i, o: captured.setdefault("cls", []).append(o)),
    ]
    for image in calibration:
        model([image])
    # logits' = s · (W f + b − mean): new weight s · W, new bias s · (b − mean)
    rpn_logits = torch.cat(captured["rpn"])
    scale = 2.0 / float(rpn_logits.std())
    layer = model.rpn.head.cls_logits
    layer.weight.mul_(scale)
    layer.bias.copy_((layer.bias - rpn_logits.mean()) * scale)
    captured.clear()
    for image in calibration:
        model([image])
    class_logits = torch.cat(captured["cls"])
    mean = class_logits.mean(0)
    scale = class_logit_std / float((class_logits - mean).std())
    layer = model.roi_heads.box_predictor.cls_score
    layer.weight.mul_(scale)
    layer.bias.copy_((layer.bias - mean) * scale)
    for hook in hooks:
        hook.remove()
    return model


def iou(a, b):
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compare(reference, ours, threshold=0.3):
    """Greedy matching of each torchvision detection above `threshold` to an unused detq one."""
    total = matched = 0
    worst_box = worst_score = 0.0
    misses = []
    for ref_image, our_image in zip(reference, ours):
        used = set()
        for ref in ref_image:
            if ref["score"] <= threshold:
                continue
            total += 1
            best, best_iou = None, 0.0
            for index, det in enumerate(our_image["detections"]):
                if index in used or det["label"] != ref["label"] or abs(det["score"] - ref["score"]) > 1e-3:
                    continue
                overlap = iou(ref["box"], det["box"])
                if overlap > best_iou:
                    best, best_iou = index, overlap
            if best is not None and best_iou > 0.99:
                used.add(best)
                matched += 1
                det = our_image["detections"][best]
                worst_box = max(worst_box, max(abs(x - y) for x, y in zip(det["box"], ref["box"])))
                worst_score = max(worst_score, abs(det["score"] - ref["score"]))
            else:
                misses.append((our_image["file"], ref))
    return total, matched, worst_box, worst_score, misses


def run_detq(detq, name, weights, config, files, out):
    command = [detq, "detect", "--model", name, "--weights", str(weights), "--config", str(config),
               "--threads", "2", "--quiet", "--json", str(out)] + [str(f) for f in files]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=root)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detq", default=str(root / ".build/release/detq"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--limit", type=int, default=0, help="first N images only")
    parser.add_argument("--work", default="/tmp/detq-parity-rcnn")
    parser.add_argument("--class-logit-std", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", help="append the table rows to this markdown file")
    args = parser.parse_args()

    files = images(args.limit)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "detectors" / "coco-classes.txt", work / "coco-classes.txt")
    calibration = [load(shared / "photos" / "horses.jpg"), load(shared / "photos" / "person.jpg")]
    rows = []
    failed = False
    for name in args.models.split(","):
        model = build(name, args.seed, calibration, args.class_logit_std)
        weights = work / f"{name}.pth"
        torch.save(model.state_dict(), weights)
        config = json.loads((root / "detectors" / name / "config.json").read_text())
        config["backbone"]["batch_norm_eps"] = 1e-5
        config_path = work / f"{name}.json"
        config_path.write_text(json.dumps(config, indent=2))

        reference = []
        torch_times = []
        with torch.no_grad():
            model([calibration[0]])  # warm-up
            for path in files:
                image = load(path)
                start = time.perf_counter()
                result = model([image])[0]
                torch_times.append(time.perf_counter() - start)
                reference.append([{"box": b.tolist(), "score": float(s), "label": int(l)}
                                  for b, s, l in zip(result["boxes"], result["scores"], result["labels"])])
        out = work / f"{name}.detq.json"
        detq_all = run_detq(args.detq, name, weights, config_path, files, out)
        detq_one = run_detq(args.detq, name, weights, config_path, files[:1], work / f"{name}.one.json")
        ours = json.loads(out.read_text())["images"]
        total, matched, worst_box, worst_score, misses = compare(reference, ours)
        torch_latency = sum(torch_times) / len(torch_times)
        detq_latency = (detq_all - detq_one) / max(len(files) - 1, 1)
        share = matched / total if total else 1.0
        failed |= share < 0.97
        rows.append(f"| {name} | {len(files)} | {total} | {matched} ({100 * share:.1f} %) | {worst_box:.4f} | "
                    f"{worst_score:.2e} | {torch_latency:.2f} | {detq_latency:.2f} |")
        print(rows[-1], flush=True)
        for file, ref in misses[:10]:
            print(f"  unmatched in {Path(file).name}: label {ref['label']} score {ref['score']:.4f} "
                  f"box {[round(v, 2) for v in ref['box']]}", flush=True)
    header = ("| model | images | torchvision dets > 0.3 | detq matched | worst box diff (px) | worst score diff | "
              "torch s/image | detq s/image |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(header)
    print("\n".join(rows))
    if args.report:
        with open(args.report, "a") as report:
            report.write("\n".join(rows) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

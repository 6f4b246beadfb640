#!/usr/bin/env python3
"""Full-size parity of `detq detect` with torchvision 0.14 on real photos (dev time; needs torch).

For each model asked for, from the MODELS table (builder name → how to build and randomize it):
  1. builds the FULL-SIZE torchvision model with seeded random weights: He-normal convs/linears,
     random norm affine parameters, BatchNorm running statistics set near each layer's input
     statistics on four of the photos with random offsets, and the final classification /
     regression layers rescaled on them so that scores spread over the thresholds without
     saturating;
  2. `torch.save`s its state dict (the zip format `detq --weights` reads) and writes the model's
     config.json with the table's overrides (e.g. BatchNorm eps of a `weights=None` model);
  3. runs torchvision on the photos (/work/shared/data/photos and coco-val2017-sample/images,
     PIL → to_tensor, as torchvision's own reference scripts);
  4. runs `detq detect --model NAME --weights W --config C --json out.json` (release build);
  5. prints torchvision's detections with score > 0.3, how many detq matched (same label,
     IoU > 0.99 or, for boxes clipped to zero area, every coordinate within 0.01 px, and score
     within 1e-3), the worst box and score difference of the matched ones, and detq's detections
     > 0.3 that match none of torchvision's;
  6. with --latency, times torchvision (2 threads) and `detq bench` (2 threads) on one
     800×1066 image (the models' default input: shorter side 800, padded to 800×1088).
With --report FILE it appends a markdown table to FILE (eval/reports/parity-<family>.md).

Other families add their models to MODELS: a builder (weights=None), the modules whose outputs
get rescaled with their target (mean, std), and config overrides.

Run (slow: full-size models on 2 cores; use nice and start with a few photos):
    nice .venv-ref/bin/python eval/parity.py --models retinanet_resnet50_fpn --limit 3
    nice .venv-ref/bin/python eval/parity.py --models all --latency --report eval/reports/parity-dense.md
"""
import argparse
import copy
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Tuple

import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.models import detection
from torchvision.ops import box_iou
from torchvision.ops.misc import FrozenBatchNorm2d
from torchvision.transforms.functional import to_tensor

torch.set_num_threads(2)
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SCORE_CUT = 0.3
IOU_MATCH = 0.99
SCORE_MATCH = 1e-3
BOX_MATCH = 1e-2
LATENCY_SIZE = (800, 1066)


@dataclass
class Entry:
    """How to make one model: the builder (random weights), the outputs to rescale, config overrides."""
    build: Callable[[], nn.Module]
    rescale: Callable[[nn.Module], Dict[nn.Module, Tuple[float, float]]]
    config_overrides: dict = field(default_factory=dict)
    seed: int = 0


# Targets keep the logits far from sigmoid's float32 saturation (≈ 16.6) on every photo: scores of
# exactly 1.0 tie, and among ties torch's order (and so its top-k and NMS) is an artefact.
def _retinanet_rescale(model):
    return {model.head.classification_head.cls_logits: (-5.5, 1.2), model.head.regression_head.bbox_reg: (0.0, 0.3)}


def _fcos_rescale(model):
    return {model.head.classification_head.cls_logits: (-5.0, 1.2),
            model.head.regression_head.bbox_ctrness: (0.0, 1.5),
            model.head.regression_head.bbox_reg: (1.0, 0.8)}


def _ssd_rescale(model):
    """Each level's last classification and regression conv (SSD: the 3×3 predictor itself;
    SSDlite: the 1×1 after the depthwise block); softmax ignores the logits' common offset."""
    def last_conv(level):
        return [m for m in level.modules() if isinstance(m, nn.Conv2d)][-1]
    targets = {last_conv(level): (0.0, 1.5) for level in model.head.classification_head.module_list}
    targets.update({last_conv(level): (0.0, 1.0) for level in model.head.regression_head.module_list})
    return targets


def _fasterrcnn_rescale(model):
    """The RPN's objectness and deltas, the RoI heads' class logits and per-class deltas."""
    return {model.rpn.head.cls_logits: (0.0, 1.5), model.rpn.head.bbox_pred: (0.0, 0.3),
            model.roi_heads.box_predictor.cls_score: (0.0, 2.0),
            model.roi_heads.box_predictor.bbox_pred: (0.0, 1.0)}


MODELS: Dict[str, Entry] = OrderedDict(
    retinanet_resnet50_fpn=Entry(
        build=lambda: detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None),
        rescale=_retinanet_rescale,
        # weights=None builds nn.BatchNorm2d (eps 1e-5); the shipped config has the COCO checkpoint's 0.0
        config_overrides={"backbone": {"batch_norm_eps": 1e-5}}, seed=1),
    retinanet_resnet50_fpn_v2=Entry(
        build=lambda: detection.retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None),
        rescale=_retinanet_rescale, seed=2),
    fcos_resnet50_fpn=Entry(
        build=lambda: detection.fcos_resnet50_fpn(weights=None, weights_backbone=None),
        rescale=_fcos_rescale, seed=3),
    ssd300_vgg16=Entry(
        build=lambda: detection.ssd300_vgg16(weights=None, weights_backbone=None),
        rescale=_ssd_rescale, seed=11),
    # weights_backbone=None turns on reduced_tail, as loading the COCO checkpoint does
    ssdlite320_mobilenet_v3_large=Entry(
        build=lambda: detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None),
        rescale=_ssd_rescale, seed=12),
    fasterrcnn_resnet50_fpn=Entry(
        build=lambda: detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None),
        rescale=_fasterrcnn_rescale,
        # weights=None builds nn.BatchNorm2d (eps 1e-5); the shipped config has the COCO checkpoint's 0.0
        config_overrides={"backbone": {"batch_norm_eps": 1e-5}}, seed=21),
    fasterrcnn_resnet50_fpn_v2=Entry(
        build=lambda: detection.fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None),
        rescale=_fasterrcnn_rescale, seed=22),
    # weights_backbone=None: the builder passes nn.BatchNorm2d (eps 1e-5), as FrozenBatchNorm2d's for COCO
    fasterrcnn_mobilenet_v3_large_fpn=Entry(
        build=lambda: detection.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None),
        rescale=_fasterrcnn_rescale, seed=23),
)


# ----------------------------------------------------------------------------- random weights

def randomize(model, seed):
    """He-normal conv/linear weights, small random biases, random norm affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=g) * 0.1)
            elif isinstance(module, (nn.BatchNorm2d, FrozenBatchNorm2d, nn.GroupNorm)):
                c = module.weight.shape[0]
                module.weight.copy_(0.5 + torch.rand(c, generator=g))
                module.bias.copy_(torch.randn(c, generator=g) * 0.2)


def calibrate(model, images, rescale, seed):
    """Batch-norm running statistics near their inputs' statistics on `images` (random offsets),
    then the `rescale` modules' outputs to their target mean and std."""
    g = torch.Generator().manual_seed(seed + 1000)

    def set_statistics(module, inputs):
        x = inputs[0].detach()
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        c = mean.shape[0]
        module.running_mean.copy_(mean + 0.2 * var.sqrt() * torch.randn(c, generator=g))
        module.running_var.copy_(var * (0.7 + 0.7 * torch.rand(c, generator=g)) + 1e-3)

    hooks = [m.register_forward_pre_hook(set_statistics) for m in model.modules()
             if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()

    targets = rescale(model)
    captured = {}
    hooks = [m.register_forward_hook(lambda m, i, o: captured.setdefault(m, []).append(o.detach().flatten()))
             for m in targets]
    with torch.no_grad():
        model(images)
        for module, (mean, std) in targets.items():
            values = torch.cat(captured[module])
            scale = std / float(values.std())
            module.weight.mul_(scale)
            module.bias.copy_((module.bias - float(values.mean())) * scale + mean)
    for hook in hooks:
        hook.remove()


# ----------------------------------------------------------------------------- runs

def photos(limit):
    files = sorted((SHARED / "photos").iterdir()) + sorted((SHARED / "coco-val2017-sample" / "images").iterdir())
    files = [f for f in files if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return files[:limit] if limit else files


def calibration_photos(files, count=4):
    """A few photos spread over the list (photos and COCO images), for the statistics of the random model."""
    step = max(1, len(files) // count)
    return files[::step][:count]


def load(path):
    return to_tensor(Image.open(path).convert("RGB"))


def merged(base, overrides):
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def write_config(name, entry, directory):
    """The shipped config with the entry's overrides, next to a copy of its class-name file."""
    config = json.loads((ROOT / "detectors" / name / "config.json").read_text())
    config = merged(config, entry.config_overrides)
    directory = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    if config.get("class_names"):
        shutil.copy(ROOT / "detectors" / config["class_names"], directory / config["class_names"])
    path = directory / "config.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def compare(torch_result, ours):
    """Matches torchvision's detections above SCORE_CUT against detq's (same label, IoU, score)."""
    keep = torch_result["scores"] > SCORE_CUT
    boxes, scores, labels = torch_result["boxes"][keep], torch_result["scores"][keep], torch_result["labels"][keep]
    our_boxes = torch.tensor([d["box"] for d in ours], dtype=torch.float32).reshape(-1, 4)
    our_scores = torch.tensor([d["score"] for d in ours], dtype=torch.float32)
    our_labels = torch.tensor([d["label"] for d in ours], dtype=torch.int64)
    used = torch.zeros(len(ours), dtype=torch.bool)
    matched, worst_box, worst_score = 0, 0.0, 0.0
    iou = box_iou(boxes, our_boxes) if len(ours) and len(boxes) else torch.zeros(len(boxes), len(ours))
    for k in range(len(boxes)):
        # boxes clipped to zero area (outside the image) have no IoU: they match by coordinates
        same_box = (iou[k] > IOU_MATCH) | ((our_boxes - boxes[k]).abs().amax(dim=1) <= BOX_MATCH)
        candidates = (~used) & (our_labels == labels[k]) & same_box & ((our_scores - scores[k]).abs() <= SCORE_MATCH)
        index = torch.nonzero(candidates).flatten()
        if len(index):
            j = int(index[torch.argmin((our_boxes[index] - boxes[k]).abs().amax(dim=1))])
            used[j] = True
            matched += 1
            worst_box = max(worst_box, float((our_boxes[j] - boxes[k]).abs().max()))
            worst_score = max(worst_score, float((our_scores[j] - scores[k]).abs()))
    extra = int(((~used) & (our_scores > SCORE_CUT)).sum())
    return len(boxes), matched, worst_box, worst_score, extra


def torch_latency(model, runs=3):
    image = torch.rand(3, *LATENCY_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model([image])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model([image])
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def detq_latency(detq, name, weights, config, runs=3):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([detq, "bench", "--model", name, "--weights", str(weights), "--config", str(config),
                        "--size", f"{LATENCY_SIZE[0]}x{LATENCY_SIZE[1]}", "--runs", str(runs), "--threads", "2",
                        "--quiet", "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    return result.get("medianMilliseconds", result.get("median_milliseconds"))


def run_model(name, entry, files, args, workdir):
    print(f"== {name}", flush=True)
    torch.manual_seed(entry.seed)
    model = entry.build()
    model.eval()
    weights = workdir / f"{name}.pth"
    cache = workdir / f"{name}_torchvision.pt"
    config = write_config(name, entry, workdir)
    if args.reuse and weights.exists() and cache.exists():
        model.load_state_dict(torch.load(weights))
        reference, torch_seconds = torch.load(cache)
        reference = {k: v for k, v in reference.items() if k in {p.name for p in files}}
    else:
        randomize(model, entry.seed)
        calibrate(model, [load(path) for path in calibration_photos(files)], entry.rescale, entry.seed)
        torch.save(model.state_dict(), weights)
        reference, torch_seconds = {}, []
        with torch.no_grad():
            for path in files:
                image = load(path)
                start = time.perf_counter()
                reference[path.name] = model([image])[0]
                torch_seconds.append(time.perf_counter() - start)
        torch.save((reference, torch_seconds), cache)
    print(f"torchvision: {len(files)} images, {statistics.mean(torch_seconds):.2f} s/image (2 threads)", flush=True)

    out = workdir / f"{name}.json"
    timing = workdir / f"{name}_timing.json"
    if args.reuse and out.exists() and timing.exists():
        detq_seconds = json.loads(timing.read_text())["detect_seconds"]
    else:
        out.unlink(missing_ok=True)  # detq's atomic replace of an existing file fails on Linux Foundation
        start = time.perf_counter()
        subprocess.run([args.detq, "detect", "--model", name, "--weights", str(weights), "--config", str(config),
                        "--threads", "2", "--quiet", "--json", str(out)] + [str(p) for p in files], check=True)
        detq_seconds = time.perf_counter() - start
        timing.write_text(json.dumps({"detect_seconds": detq_seconds}))
    ours = {Path(item["file"]).name: item["detections"] for item in json.loads(out.read_text())["images"]}
    print(f"detq detect: {detq_seconds:.1f} s for {len(files)} images (2 threads, model loading included)")

    totals = [0, 0, 0.0, 0.0, 0]
    print(f"{'image':28} {'tv>0.3':>7} {'matched':>8} {'max |dbox|':>11} {'max |dscore|':>13} {'detq extra':>10}")
    for path in files:
        count, matched, box, score, extra = compare(reference[path.name], ours[path.name])
        totals[0] += count
        totals[1] += matched
        totals[2] = max(totals[2], box)
        totals[3] = max(totals[3], score)
        totals[4] += extra
        print(f"{path.name:28} {count:7d} {matched:8d} {box:11.2e} {score:13.2e} {extra:10d}")
    share = 100.0 * totals[1] / max(totals[0], 1)
    print(f"{name}: {totals[1]}/{totals[0]} matched ({share:.1f} %), worst box {totals[2]:.2e} px, "
          f"worst score {totals[3]:.2e}, detq-only {totals[4]}", flush=True)
    row = OrderedDict(model=name, images=len(files), torchvision=totals[0], matched=totals[1], share=share,
                      worst_box=totals[2], worst_score=totals[3], extra=totals[4],
                      torch_per_image=statistics.mean(torch_seconds), detq_total=detq_seconds)
    if args.latency:
        cached = json.loads(timing.read_text())
        if not (args.reuse and "torch_ms" in cached):
            cached["torch_ms"] = torch_latency(model)
            cached["detq_ms"] = detq_latency(args.detq, name, weights, config)
            timing.write_text(json.dumps(cached))
        row["torch_ms"], row["detq_ms"] = cached["torch_ms"], cached["detq_ms"]
        print(f"latency at {LATENCY_SIZE[0]}x{LATENCY_SIZE[1]}, 2 threads: torchvision {row['torch_ms']:.0f} ms, "
              f"detq {row['detq_ms']:.0f} ms", flush=True)
    return row


def append_report(path, rows, command):
    lines = [f"\n### {time.strftime('%Y-%m-%d')}: `{command}`\n",
             f"torch {torch.__version__}, torchvision {torchvision.__version__}; seeded random weights; "
             f"matched = same label, IoU > {IOU_MATCH} (or every coordinate within {BOX_MATCH} px for boxes "
             f"clipped to zero area), |score diff| <= {SCORE_MATCH}, over torchvision's detections with score > "
             f"{SCORE_CUT}.\n",
             "| model | images | torchvision > 0.3 | matched | % | worst box px | worst score | detq-only > 0.3 "
             "| torchvision ms | detq ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        torch_ms = f"{r['torch_ms']:.0f}" if "torch_ms" in r else "–"
        detq_ms = f"{r['detq_ms']:.0f}" if "detq_ms" in r else "–"
        lines.append(f"| {r['model']} | {r['images']} | {r['torchvision']} | {r['matched']} | {r['share']:.1f} "
                     f"| {r['worst_box']:.1e} | {r['worst_score']:.1e} | {r['extra']} | {torch_ms} | {detq_ms} |")
    if any("torch_ms" in r for r in rows):
        lines.append(f"\nLatency: one {LATENCY_SIZE[0]}×{LATENCY_SIZE[1]} image (padded to 800×1088), 2 threads, "
                     "median of 3 after a warm-up; torchvision's forward (transform, network, postprocess) vs "
                     "`detq bench` (the same, batch norms folded).")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="all", help="comma-separated names from MODELS, or 'all'")
    parser.add_argument("--detq", default=str(ROOT / ".build" / "release" / "detq"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N photos")
    parser.add_argument("--latency", action="store_true", help="also time torchvision and detq bench")
    parser.add_argument("--report", help="append a markdown table to this file")
    parser.add_argument("--keep", help="keep weights, configs and outputs in this folder")
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: reuse the weights, torchvision results, detq outputs and latencies "
                             "a previous run left there")
    args = parser.parse_args()
    names = list(MODELS) if args.models == "all" else args.models.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown models {unknown}; known: {', '.join(MODELS)}")
    files = photos(args.limit)
    if not files:
        sys.exit(f"no photos under {SHARED}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in names:
            rows.append(run_model(name, MODELS[name], files, args, workdir))
    if args.report:
        append_report(args.report, rows, " ".join(["eval/parity.py"] + sys.argv[1:]))
    sys.exit(0 if all(r["share"] >= 97.0 for r in rows) else 1)


if __name__ == "__main__":
    main()

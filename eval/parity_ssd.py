"""Compares `detq detect` with torchvision 0.14 for the full-size SSD models (dev time; needs torch).

For ssd300_vgg16 and ssdlite320_mobilenet_v3_large: builds torchvision's model with seeded
random weights (He-normal convs, randomized batch-norm statistics and affine parameters, each
level's predictors rescaled so that scores spread: see detectors/tools/make_ssd_goldens.py;
batch-norm statistics calibrated on the first four images, then perturbed),
saves its state dict with `torch.save`, runs torchvision on the real photos
(../shared/data/photos, ../shared/data/coco-val2017-sample/images) and `detq detect` on the
same files, then prints per model: torchvision's detections with score > 0.3, how many detq
matched (same label, IoU > 0.99 or, for the zero-area boxes clipping leaves, every coordinate
within 1e-2 px, and score within 1e-3), the worst box and score differences,
and the per-image latency of both on the same photos with `--threads` (default 2) threads
(torch: the model call after
a warm-up; detq: `detq detect` on all images minus on one, divided by the others, so start-up
and weight loading drop out but JPEG/PNG decoding stays in), plus `detq bench`. On a loaded
machine torch's spinning OpenMP threads suffer more than detq's: compare with `--threads 1` too.

Run from the repository root after `swift build -c release --product detq`:
    /work/main/.venv-ref/bin/python eval/parity_ssd.py [--models NAME ...] [--limit N]
        [--report eval/reports/parity-ssd.md]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision.ops import box_iou
from torchvision.transforms.functional import to_tensor

torch.set_num_threads(2)
root = Path(__file__).resolve().parents[1]
shared = root.parent / "shared" / "data"
sys.path.insert(0, str(root / "detectors" / "tools"))
from make_ssd_goldens import randomize, rescale_predictors  # noqa: E402

BUILDERS = {
    "ssd300_vgg16": lambda: torchvision.models.detection.ssd300_vgg16(weights=None, weights_backbone=None),
    "ssdlite320_mobilenet_v3_large": lambda: torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None),
}
SEEDS = {"ssd300_vgg16": 1300, "ssdlite320_mobilenet_v3_large": 1320}


def calibrate_batch_norms(model, batch, generator):
    """Sets every batch norm's running statistics to those of its input on `batch` (as training
    would, so activations stay O(1) as in a trained network), then perturbs them by ±10 %.
    Random statistics alone make the full-depth MobileNetV3 so ill-conditioned that torch's own
    float32 and float64 results differ by 4e-4 in score."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly its statistics
    model.backbone.train()
    model.head.train()
    with torch.no_grad():
        model.head(list(model.backbone(batch).values()))
    model.eval()
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
        m.running_mean.mul_(torch.rand(m.num_features, generator=generator) * 0.2 + 0.9)
        m.running_var.mul_(torch.rand(m.num_features, generator=generator) * 0.2 + 0.9)


def build(name, calibration_images, classification_std):
    model = BUILDERS[name]().eval()
    generator = torch.Generator().manual_seed(SEEDS[name])
    randomize(model, generator)
    if name == "ssd300_vgg16":
        model.backbone.scale_weight.data = torch.rand(512, generator=generator) * 20 + 10
    batch = model.transform(calibration_images)[0].tensors
    calibrate_batch_norms(model, batch, generator)
    rescale_predictors(model, batch, classification_std=classification_std)
    return model


def match(reference, ours, threshold):
    """Per torchvision detection above `threshold`: the best detq detection of the same label."""
    keep = reference["scores"] > threshold
    ref_boxes, ref_scores, ref_labels = reference["boxes"][keep], reference["scores"][keep], reference["labels"][keep]
    our_boxes = torch.tensor([d["box"] for d in ours], dtype=torch.float32).reshape(-1, 4)
    our_scores = torch.tensor([d["score"] for d in ours], dtype=torch.float32)
    our_labels = torch.tensor([d["label"] for d in ours], dtype=torch.int64)
    matched, worst_box, worst_score = 0, 0.0, 0.0
    if len(ref_scores) and len(our_scores):
        iou = box_iou(ref_boxes, our_boxes)
        for i in range(len(ref_scores)):
            # Clipping can leave zero-area boxes, whose IoU is undefined: those match by coordinates.
            same_box = (iou[i] > 0.99) | ((our_boxes - ref_boxes[i]).abs().max(dim=1).values <= 1e-2)
            candidates = (our_labels == ref_labels[i]) & same_box & ((our_scores - ref_scores[i]).abs() <= 1e-3)
            if candidates.any():
                j = int(torch.nonzero(candidates)[torch.argmax(torch.nan_to_num(iou[i][candidates]))])
                matched += 1
                worst_box = max(worst_box, float((our_boxes[j] - ref_boxes[i]).abs().max()))
                worst_score = max(worst_score, float((our_scores[j] - ref_scores[i]).abs()))
    return len(ref_scores), matched, worst_box, worst_score


def bench_detq(detq, name, weights, runs, threads):
    """`detq bench` on the config's input size with the same weights: median ms per image."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.json"  # a fresh folder: nothing to replace
        subprocess.run([detq, "bench", "--model", name, "--weights", str(weights), "--threads", str(threads),
                        "--runs", str(runs), "--quiet", "--json", str(path)], check=True, capture_output=True,
                       cwd=root)
        return json.loads(path.read_text())["medianMilliseconds"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detq", default=str(root / ".build" / "release" / "detq"))
    parser.add_argument("--models", nargs="+", default=list(BUILDERS))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--classification-std", type=float, default=1.5)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per model for latency")
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and detq")
    parser.add_argument("--work", default=None, help="folder for the .pth and JSON files (default: a temp dir)")
    parser.add_argument("--report", default=None, help="append a Markdown table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    images = sorted((shared / "photos").iterdir()) + sorted((shared / "coco-val2017-sample" / "images").iterdir())
    images = images[: args.limit] if args.limit else images
    tensors = {p: to_tensor(Image.open(p).convert("RGB")) for p in images}
    work = Path(args.work or tempfile.mkdtemp(prefix="parity-ssd-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models:
        model = build(name, [tensors[p] for p in images[:4]], args.classification_std)
        weights = work / f"{name}-random.pth"
        torch.save(model.state_dict(), weights)

        reference, torch_seconds = {}, []
        with torch.no_grad():
            model([tensors[images[0]]])  # warm-up
            for path in images:
                start = time.perf_counter()
                reference[path] = model([tensors[path]])[0]
                torch_seconds.append(time.perf_counter() - start)

        def detect(files, out):
            out.unlink(missing_ok=True)  # detq's atomic write cannot replace an existing file on Linux yet
            start = time.perf_counter()
            subprocess.run([args.detq, "detect", "--model", name, "--weights", str(weights), "--threads",
                            str(args.threads), "--json", str(out), "--quiet"] + [str(p) for p in files],
                           check=True, cwd=root)
            return time.perf_counter() - start

        out = work / f"{name}-detq.json"
        detect_seconds = detect(images, out)
        # Per image without start-up and weight loading: the extra time of the other images.
        one_seconds = detect(images[:1], work / f"{name}-detq-one.json")
        detq_ms = 1000 * (detect_seconds - one_seconds) / max(1, len(images) - 1)
        ours = {Path(item["file"]).resolve(): item["detections"] for item in json.loads(out.read_text())["images"]}

        total = matched = 0
        worst_box = worst_score = 0.0
        print(f"\n{name}: {len(images)} images, weights {weights}")
        print(f"  {'image':28} {'tv>' + str(args.threshold):>7} {'matched':>8} {'|dbox| px':>10} {'|dscore|':>9}")
        for path in images:
            n, m, box, score = match(reference[path], ours[path.resolve()], args.threshold)
            total, matched = total + n, matched + m
            worst_box, worst_score = max(worst_box, box), max(worst_score, score)
            print(f"  {path.name:28} {n:7d} {m:8d} {box:10.2e} {score:9.2e}")
        bench_ms = bench_detq(args.detq, name, weights, args.runs, args.threads)
        torch_ms = 1000 * sum(torch_seconds[1:]) / max(1, len(torch_seconds) - 1)
        fraction = matched / total if total else float("nan")
        print(f"  matched {matched}/{total} = {100 * fraction:.1f} %, worst box {worst_box:.2e} px, "
              f"worst score {worst_score:.2e}; per image ({args.threads} threads, same photos, decode and "
              f"postprocess included): "
              f"torch {torch_ms:.0f} ms, detq {detq_ms:.0f} ms; detq bench (random input) {bench_ms:.0f} ms")
        rows.append((name, len(images), total, matched, fraction, worst_box, worst_score, torch_ms, detq_ms,
                     bench_ms))

    if args.report:
        lines = ["", f"Generated by `eval/parity_ssd.py` (torch {torch.__version__}, torchvision "
                     f"{torchvision.__version__}, seeded random weights, {args.threads} threads, "
                     f"{' '.join(sys.argv[1:])}), {time.strftime('%Y-%m-%d')}, load average "
                     f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end.", "",
                 "| model | images | torchvision dets > 0.3 | matched | worst box diff (px) | worst score diff "
                 "| torch ms/image | detq ms/image | detq bench ms |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, n, total, matched, fraction, box, score, torch_ms, detq_ms, bench_ms in rows:
            lines.append(f"| {name} | {n} | {total} | {matched} ({100 * fraction:.1f} %) | {box:.2e} | {score:.2e} "
                         f"| {torch_ms:.0f} | {detq_ms:.0f} | {bench_ms:.0f} |")
        with open(args.report, "a") as f:
            f.write("\n".join(lines) + "\n")
    sys.exit(0 if all(r[4] >= 0.97 for r in rows) else 1)


if __name__ == "__main__":
    main()

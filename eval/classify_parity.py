"""Compares `detq classify` with torchvision 0.14 on real photos (dev time; needs torch).

Runs torchvision's mobilenet_v2 with the real ImageNet checkpoint and its own transforms
(PIL image -> weights.transforms()) on every photo, then `detq classify --json`, and prints
per photo both top-1 classes and the top-1 probability difference; exits non-zero when a
top-1 class differs or a probability differs by more than 0.01.

With --golden FILE it also writes torchvision's top-5 for every photo as a test golden.

Run: .venv-ref/bin/python eval/classify_parity.py --detq .build/release/detq [--golden F]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision.models import MobileNet_V2_Weights

torch.set_num_threads(2)
root = Path(__file__).resolve().parents[1]
shared = root.parent / "shared" / "data"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--detq", default=str(root / ".build/release/detq"))
    parser.add_argument("--golden")
    args = parser.parse_args()

    weights_path = shared / "weights" / "mobilenet_v2-b0353104.pth"
    photos = sorted((shared / "photos").iterdir())
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(weights_path))
    model.eval()
    transform = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()

    reference = {}
    with torch.no_grad():
        for photo in photos:
            image = Image.open(photo).convert("RGB")
            probabilities = torch.softmax(model(transform(image)[None]), dim=1)[0]
            values, indices = probabilities.topk(5)
            reference[photo.name] = [(int(i), float(v)) for v, i in zip(values, indices)]

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "classify.json"
        subprocess.run([args.detq, "classify", "--model", "mobilenet_v2", "--weights", str(weights_path),
                        "--top", "5", "--json", str(out), "--quiet"] + [str(p) for p in photos], check=True)
        ours = {Path(item["file"]).name: item["top"] for item in json.loads(out.read_text())["images"]}

    worst = 0.0
    failures = 0
    print(f"{'photo':24} {'torchvision top-1':28} {'detq top-1':28} {'|dp|':>9}")
    for name, top in reference.items():
        theirs_index, theirs_p = top[0]
        mine = ours[name][0]
        diff = abs(mine["probability"] - theirs_p)
        worst = max(worst, diff)
        same = mine["index"] == theirs_index
        failures += (not same) or diff > 0.01
        print(f"{name:24} {theirs_index:4d} {theirs_p:.5f}{'':13} {mine['index']:4d} {mine['probability']:.5f}{'':13} {diff:9.2e}"
              + ("" if same else "  DIFFERENT CLASS"))
    print(f"photos: {len(reference)}, same top-1: {len(reference) - failures}, worst top-1 probability difference: {worst:.2e}")

    if args.golden:
        golden = {"model": "mobilenet_v2", "weights": "mobilenet_v2-b0353104.pth",
                  "reference": "torchvision 0.14 MobileNet_V2_Weights.IMAGENET1K_V1.transforms() on PIL images",
                  "photos": {name: [{"index": i, "probability": p} for i, p in top] for name, top in reference.items()}}
        Path(args.golden).write_text(json.dumps(golden, indent=1) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

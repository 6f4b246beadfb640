"""Writes the class-name lists torchvision 0.14 attaches to its weights (ImageNet-1k, COCO 91)
as detectors/imagenet-classes.txt and detectors/coco-classes.txt, one name per line, index = line.

Run: .venv-ref/bin/python detectors/tools/export_class_names.py
"""
from pathlib import Path

from torchvision.models._meta import _COCO_CATEGORIES, _IMAGENET_CATEGORIES

root = Path(__file__).resolve().parents[1]
(root / "imagenet-classes.txt").write_text("\n".join(_IMAGENET_CATEGORIES) + "\n")
(root / "coco-classes.txt").write_text("\n".join(_COCO_CATEGORIES) + "\n")
print(len(_IMAGENET_CATEGORIES), len(_COCO_CATEGORIES))

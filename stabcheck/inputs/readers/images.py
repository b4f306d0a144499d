"""Image folders: one sub-folder of images per class, decoded with Pillow (imported when a
folder is read) to float32 in [0, 1], only the rows sampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stabcheck.errors import InputError
from stabcheck.inputs.readers.source import Labelled, Rows, Source

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def load_image_folder(spec: str, path: Path) -> Source:
    class_dirs = sorted(
        (d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    if not class_dirs:
        raise InputError(
            f"data folder '{spec}' has no class sub-folders (expected {spec}/<class>/<image>, "
            f"images {', '.join(IMAGE_SUFFIXES)})"
        )
    files: list[Path] = []
    classes: list[int] = []
    for index, d in enumerate(class_dirs):
        images = sorted(
            (
                f
                for f in d.iterdir()
                if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES
            ),
            key=lambda f: f.name,
        )
        if not images:
            raise InputError(
                f"data folder '{spec}': class folder '{d.name}' has no images "
                f"({', '.join(IMAGE_SUFFIXES)})"
            )
        files.extend(images)
        classes.extend([index] * len(images))
    names = tuple(d.name for d in class_dirs)
    c = np.asarray(classes, dtype=np.int64)
    if len(names) < 2:
        raise InputError(
            f"data folder '{spec}' has 1 class folder ({names[0]}); a classifier needs at least 2"
        )

    image_module = _pil(spec)
    size = _image_size(spec, image_module, files[0])

    def take(idx: np.ndarray) -> np.ndarray:
        return _read_images(spec, image_module, [files[i] for i in idx], size)

    fmt = "binary" if len(names) == 2 else "sparse"
    return Source(Labelled(Rows(len(files), take), c, c), None, names, fmt)


def _pil(spec: str) -> Any:
    """The ``PIL.Image`` module, or an ``InputError`` saying Pillow is needed."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError(
            f"data folder '{spec}' holds images; reading them needs Pillow (pip install pillow)"
        ) from None
    return Image


def _image_size(spec: str, image_module: Any, file: Path) -> tuple[int, int]:
    try:
        with image_module.open(file) as im:
            return im.size
    except (OSError, ValueError) as exc:
        raise InputError(f"data folder '{spec}': cannot read image '{file}' ({exc})") from None


def _read_images(
    spec: str, image_module: Any, files: list[Path], size: tuple[int, int]
) -> np.ndarray:
    """Decode ``files`` to (n, H, W, C) float32 in [0, 1]; C is 1 if all are grayscale."""
    arrays: list[np.ndarray] = []
    for file in files:
        try:
            with image_module.open(file) as im:
                gray = im.mode in _GRAY_MODES
                im = im.convert("L" if gray else "RGB")
                if im.size != size:
                    im = im.resize(size, image_module.Resampling.BILINEAR)
                arr = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as exc:
            raise InputError(f"data folder '{spec}': cannot read image '{file}' ({exc})") from None
        arrays.append(arr[:, :, None] if arr.ndim == 2 else arr)
    width, height = size
    channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    out = np.empty((len(arrays), height, width, channels), dtype=np.float32)
    for i, arr in enumerate(arrays):
        out[i] = arr  # a grayscale image broadcasts to all three channels
    out /= 255.0
    return out


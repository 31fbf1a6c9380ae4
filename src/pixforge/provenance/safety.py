"""The output safety filter: a nudity detector that runs offline, before anything is written or returned.

The detector is NudeNet 3.x (MIT): its 12 MB ONNX model ships inside the ``nudenet`` wheel and runs on ONNX
Runtime, so nothing is downloaded. pixforge loads that model file itself (once, lazily, thread-safe) rather
than calling ``NudeDetector.detect`` for two reasons: nudenet 3.4.2 swaps the colour channels twice for
arrays read by OpenCV and so feeds the network BGR (NudeNet issue #203; the model was trained on RGB), and
its post-processing is a Python loop over all 2,100 candidate boxes. The pre- and post-processing here are
the same steps (square padding, 320² bilinear resize, score ≥ 0.2, non-maximum suppression 0.25/0.45),
vectorised, with RGB input; the tests check them against nudenet's own functions.

The detector is replaceable (``SafetyFilter(detector=...)``): the tests exercise the blocking path by
injecting a detector result, never with explicit images.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
"""NudeNet 3.x's output classes, in the model's order."""

UNSAFE_CLASSES = frozenset({
    "FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
})
"""Classes that block an output: explicit nudity. Faces, feet, bellies and covered bodies do not."""

DEFAULT_THRESHOLD = 0.45
"""Detection score from which an unsafe class blocks. On the 500 facades photos and pixforge's facades
outputs no unsafe class scores above 0.07, so ordinary images keep a wide margin."""

_INPUT_SIZE = 320
_CANDIDATE_SCORE = 0.2  # nudenet's own cut before non-maximum suppression
_NMS_SCORE, _NMS_IOU = 0.25, 0.45


@dataclass(frozen=True)
class Finding:
    """One detected region: class name, score in [0, 1], box (x, y, w, h) in pixels."""

    label: str
    score: float
    box: tuple[int, int, int, int]


Detector = Callable[[np.ndarray], Sequence[Finding]]
"""Anything that maps an HxWx3 uint8 RGB image to findings."""


class UnsafeImageError(ValueError):
    """The safety filter flagged an output; the message names its source and the reason. Nothing was written."""

    def __init__(self, source: str | Path, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = str(source)
        self.reason = reason

    def __reduce__(self) -> tuple[type[UnsafeImageError], tuple[str, str]]:
        return type(self), (self.source, self.reason)


class SafetyFilter:
    """Refuses outputs with explicit nudity. ``detector`` defaults to NudeNet, loaded on first use."""

    def __init__(self, detector: Detector | None = None, threshold: float = DEFAULT_THRESHOLD,
                 classes: frozenset[str] = UNSAFE_CLASSES) -> None:
        self.detector: Detector = detector if detector is not None else NudeNetDetector()
        self.threshold = threshold
        self.classes = classes

    def findings(self, image: np.ndarray) -> list[Finding]:
        """The unsafe findings at or above the threshold (empty: the image may be written)."""
        found = self.detector(as_rgb8(image))
        return [f for f in found if f.label in self.classes and f.score >= self.threshold]

    def check(self, image: np.ndarray, source: str | Path) -> None:
        """Raise :class:`UnsafeImageError` naming ``source`` if the image is flagged."""
        flagged = self.findings(image)
        if flagged:
            worst = max(flagged, key=lambda f: f.score)
            # Worded for every caller: translate says "blocked FILE: ...", the server "withheld: ...".
            raise UnsafeImageError(source, f"the safety filter flagged explicit content ({worst.label.lower()}, "
                                           f"score {worst.score:.2f})")


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """HxW / HxWx1 / HxWx3 uint8 or uint16 -> HxWx3 uint8 (16-bit rounded down to 8 bits, grey replicated)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint16:
        arr = ((arr.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ValueError(f"image: expected uint8 or uint16 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"image: expected HxW, HxWx1 or HxWx3, got shape {arr.shape}")
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


class NudeNetDetector:
    """NudeNet's ONNX detector from the installed ``nudenet`` wheel; the session is created once, on first use."""

    def __init__(self, model_path: str | Path | None = None, threads: int | None = 1) -> None:
        self.model_path = Path(model_path) if model_path else None
        # One thread per check: writers run checks side by side on a pool beside the generator, and one image
        # costs 12.3 ms of CPU on one thread against 16.1 ms spread over two (10.3 ms wall; 320² input, this CPU).
        # None: ONNX Runtime's default, a thread per core.
        self.threads = threads
        self._session = None
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray) -> list[Finding]:
        session = self._session or self._load()
        blob = preprocess(rgb)
        (output,) = session.run(None, {session.get_inputs()[0].name: blob})
        return postprocess(output, rgb.shape[0], rgb.shape[1])

    def _load(self) -> Any:  # an onnxruntime.InferenceSession (imported lazily)
        with self._lock:
            if self._session is None:
                import onnxruntime as ort

                path = self.model_path or _bundled_model()
                options = ort.SessionOptions()
                if self.threads is not None:
                    options.intra_op_num_threads = self.threads
                # Idle threads would spin and steal the cores that the generator and the encoders need.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._session


def _bundled_model() -> Path:
    try:
        import nudenet
    except ImportError as err:  # a broken install: the filter is on by default, so say how to fix it
        raise RuntimeError("safety filter: the 'nudenet' package is missing; reinstall pixforge "
                           "(pip install pixforge) to get it") from err
    path = Path(nudenet.__file__).with_name("320n.onnx")
    if not path.is_file():
        raise RuntimeError(f"safety filter: {path} not found; the installed nudenet wheel has no model")
    return path


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 -> the network's 1x3x320x320 float input: pad bottom/right to a square, resize, /255."""
    import cv2

    h, w = rgb.shape[:2]
    side = max(h, w)
    square = np.zeros((side, side, 3), np.uint8)
    square[:h, :w] = rgb
    return cv2.dnn.blobFromImage(square, 1 / 255.0, (_INPUT_SIZE, _INPUT_SIZE), (0, 0, 0), swapRB=False, crop=False)


def postprocess(output: np.ndarray, height: int, width: int) -> list[Finding]:
    """Boxes from the network's (1, 4 + classes, candidates) output, as nudenet computes them."""
    import cv2

    rows = np.asarray(output)[0].T  # (candidates, 4 + classes)
    scores = rows[:, 4:]
    best = scores.max(axis=1)
    keep = best >= _CANDIDATE_SCORE
    if not keep.any():
        return []
    rows, best, labels = rows[keep], best[keep], scores[keep].argmax(axis=1)
    side = max(height, width)  # the padded square the network saw
    cx, cy, bw, bh = (rows[:, i] * side / _INPUT_SIZE for i in range(4))
    x = np.clip(cx - bw / 2, 0, width)
    y = np.clip(cy - bh / 2, 0, height)
    bw = np.minimum(bw, width - x)
    bh = np.minimum(bh, height - y)
    boxes = np.stack([x, y, bw, bh], axis=1)
    kept = cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), _NMS_SCORE, _NMS_IOU)
    return [Finding(LABELS[int(labels[i])], float(best[i]), tuple(int(v) for v in boxes[i]))
            for i in np.asarray(kept).reshape(-1)]


DEFAULT_SAFETY_FILTER = SafetyFilter()
"""The filter every writer uses unless told otherwise; NudeNet loads on its first check."""

"""Check an image for pixforge's marks: the watermark, the XMP metadata and a C2PA manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pixforge.data.image_io import ImageError, read_image
from pixforge.provenance import payload
from pixforge.provenance.c2pa_manifest import c2pa_status
from pixforge.provenance.metadata import PNG_XMP_KEYWORD, Metadata, parse_xmp
from pixforge.provenance.watermark import Detection, detect

_PILLOW_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_file` found in one image."""

    path: Path
    watermark: Detection
    metadata: Metadata | None
    """The XMP provenance properties, or None when the file has no XMP packet."""
    c2pa: str
    """'absent', 'valid (signer not in a trust list)', 'trusted', 'invalid: ...', or why it was not checked."""

    @property
    def metadata_says_generated(self) -> bool:
        return self.metadata is not None and self.metadata.says_generated

    @property
    def marked(self) -> bool:
        """The image says it is synthetic: the watermark is found, or the metadata declares it.

        (Metadata is easy to strip, so its absence proves nothing; the watermark is what survives
        re-encoding, resizing and cropping.)"""
        return self.watermark.found or self.metadata_says_generated

    def line(self) -> str:
        """One human-readable line: verdict | watermark | metadata | C2PA."""
        wm = self.watermark
        if wm.found:
            word = int("".join(map(str, wm.bits)), 2)
            mark = (f"watermark found (model {wm.model_hash_prefix}, payload {word:0{payload.INFO_BITS // 4}x}, "
                    f"bit accuracy {wm.bit_accuracy:.0%}, score {wm.score:.1f}, scale {wm.scale:.2f}x)")
        else:
            mark = f"watermark not found (score {wm.score:.1f})"
        if self.metadata is None:
            meta = "metadata: none"
        elif self.metadata.says_generated:
            details = ", ".join(x for x in (self.metadata.software, self.metadata.model_hash and
                                            f"model {self.metadata.model_hash[:12]}", self.metadata.created) if x)
            meta = "metadata: trainedAlgorithmicMedia" + (f" ({details})" if details else "")
        else:
            meta = "metadata: XMP without a generated-media declaration"
        verdict = "marked" if self.marked else "NOT marked"
        return f"{self.path}: {verdict} | {mark} | {meta} | C2PA: {self.c2pa}"


def made_by(report: VerifyReport, generators: dict[str, str]) -> list[str]:
    """Which of ``generators`` (name -> weights SHA-256) the image's marks name: the metadata's full hash, else
    the watermark's 6-digit prefix (which survives stripped metadata; two generators may share a prefix)."""
    full = report.metadata.model_hash if report.metadata is not None else None
    if full:
        return [name for name, sha in generators.items() if sha == full]
    prefix = report.watermark.model_hash_prefix
    return [name for name, sha in generators.items() if prefix and sha.startswith(prefix)]


def verify_file(path: str | Path) -> VerifyReport:
    """Look for every mark in an image file; an unreadable file raises :class:`ImageError` naming it."""
    path = Path(path)
    pixels = read_image(path, channels=3)  # validates: missing, corrupt, bomb -> ImageError naming the file
    try:
        data = path.read_bytes()
        with Image.open(path) as im:
            fmt = _PILLOW_FORMATS.get(im.format or "", (im.format or "").lower())
            packet = im.info.get("xmp") or im.info.get(PNG_XMP_KEYWORD)
    except OSError as err:
        raise ImageError(path, f"cannot be read ({' '.join(str(err).split())})") from None
    metadata = parse_xmp(packet) if packet else None
    return VerifyReport(path=path, watermark=detect(pixels), metadata=metadata, c2pa=c2pa_status(data, fmt))

"""Optional C2PA manifests: signed with a certificate the user supplies, checked when reading.

Needs the ``c2pa`` extra (``pip install 'pixforge[c2pa]'``: c2pa-python, the Content Authenticity
Initiative's library). Signing is fully offline: no timestamp authority is contacted unless the user gives
one. The manifest records one ``c2pa.created`` action with the IPTC digital source type
``trainedAlgorithmicMedia`` and pixforge as the software agent; the automatic thumbnail is off (it would add
about 0.5 MB to every image).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixforge.provenance.metadata import DIGITAL_SOURCE_TYPE

MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:
        raise RuntimeError("C2PA signing needs the optional extra: pip install 'pixforge[c2pa]'") from None
    return c2pa


@dataclass(frozen=True)
class C2paSigner:
    """A certificate chain (leaf first, PEM) and its private key (PEM) that sign C2PA manifests.

    The C2PA library refuses a lone self-signed certificate: use a leaf certificate issued by a CA (your
    organisation's, or a local one for testing), with key usage digitalSignature and an extended key usage
    such as emailProtection, and pass the chain leaf first.
    """

    certificate_chain: bytes
    private_key: bytes
    algorithm: str = "es256"
    timestamp_url: str | None = None
    """A timestamp authority to contact while signing; None (the default) signs offline."""

    def __post_init__(self) -> None:
        if self.algorithm.lower() not in _ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {', '.join(_ALGORITHMS)}, got {self.algorithm!r}")

    @classmethod
    def from_files(cls, certificate_chain: str | Path, private_key: str | Path, **kwargs: Any) -> C2paSigner:
        return cls(Path(certificate_chain).read_bytes(), Path(private_key).read_bytes(), **kwargs)

    def sign(self, data: bytes, fmt: str, title: str, software: str, version: str) -> bytes:
        """Return ``data`` (an encoded image of format ``fmt``) with a signed manifest embedded."""
        c2pa = _c2pa()
        manifest = {
            "claim_generator_info": [{"name": software, "version": version}],
            "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": DIGITAL_SOURCE_TYPE,
                "softwareAgent": {"name": software, "version": version},
            }]}}],
        }
        algorithm = getattr(c2pa.C2paSigningAlg, self.algorithm.upper())
        info = c2pa.C2paSignerInfo(algorithm, self.certificate_chain, self.private_key, self.timestamp_url)
        context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        out = io.BytesIO()
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder.from_json(manifest, context) as builder:
            builder.sign(signer, MIME_TYPES[fmt], io.BytesIO(data), out)
        return out.getvalue()


def c2pa_status(data: bytes, fmt: str) -> str:
    """'absent', 'valid (signer not in a trust list)', 'trusted', 'invalid: <first failure>', or why unchecked."""
    try:
        c2pa = _c2pa()
    except RuntimeError:
        return "not checked (pip install 'pixforge[c2pa]')"
    if fmt not in MIME_TYPES:
        return "absent"
    try:
        reader = c2pa.Reader.try_create(MIME_TYPES[fmt], io.BytesIO(data))
    except Exception as err:  # a manifest so broken that the reader refuses it
        return f"invalid: {' '.join(str(err).split())[:120]}"
    if reader is None:
        return "absent"
    with reader:
        state = (reader.get_validation_state() or "").lower()
        if state == "trusted":
            return "trusted"
        if state == "valid":
            return "valid (signer not in a trust list)"
        results = reader.get_validation_results() or {}
        failures = (results.get("activeManifest") or {}).get("failure") or []
        first = failures[0].get("code", "") if failures else json.dumps(results)[:80]
        return f"invalid: {first}"

"""Provenance and safety of generated images: every image pixforge writes is filtered, marked and verifiable.

    from pixforge.provenance import Provenance, save_generated, verify_file

    save_generated(output, "out.png", Provenance(model_hash="9f2c...", model_name="facades"))
    verify_file("out.png").line()   # 'out.png: marked | watermark found (model 9f2c..) | metadata: ...'

* :mod:`~pixforge.provenance.safety` - the output filter (NudeNet, offline) that refuses explicit nudity.
* :mod:`~pixforge.provenance.watermark` - an invisible mark that survives JPEG, resizing and cropping.
* :mod:`~pixforge.provenance.metadata` - XMP with the IPTC digital source type ``trainedAlgorithmicMedia``.
* :mod:`~pixforge.provenance.c2pa_manifest` - optional C2PA manifests signed with your certificate.

See RESPONSIBLE_USE.md for what the marks survive and what they do not.
"""

from pixforge.provenance.c2pa_manifest import C2paSigner
from pixforge.provenance.safety import DEFAULT_SAFETY_FILTER, Finding, SafetyFilter, UnsafeImageError
from pixforge.provenance.save import (
    FORMATS,
    MIN_MARKED_SIDE,
    Provenance,
    encode_generated,
    enlarge,
    enlargement,
    save_generated,
)
from pixforge.provenance.verify import VerifyReport, verify_file
from pixforge.provenance.watermark import Detection

__all__ = [
    "DEFAULT_SAFETY_FILTER",
    "FORMATS",
    "MIN_MARKED_SIDE",
    "C2paSigner",
    "Detection",
    "Finding",
    "Provenance",
    "SafetyFilter",
    "UnsafeImageError",
    "VerifyReport",
    "encode_generated",
    "enlarge",
    "enlargement",
    "save_generated",
    "verify_file",
]

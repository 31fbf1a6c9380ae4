"""XMP: IPTC trainedAlgorithmicMedia, software, model hash and time, in PNG iTXt (and JPEG/WebP via Pillow)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pixforge.provenance.metadata import (
    DIGITAL_SOURCE_TYPE,
    PNG_XMP_KEYWORD,
    parse_xmp,
    png_with_xmp,
    xmp_packet,
)


def test_packet_round_trips_and_escapes_values():
    packet = xmp_packet("pixforge 0.1.0", "2026-11-22T10:00:00Z", "ab" * 32, 'facades "v2" <&>')
    meta = parse_xmp(packet)
    assert meta.says_generated and meta.digital_source_type == DIGITAL_SOURCE_TYPE
    assert (meta.software, meta.created, meta.model_hash, meta.model_name) == (
        "pixforge 0.1.0", "2026-11-22T10:00:00Z", "ab" * 32, 'facades "v2" <&>')
    assert b"<&>" not in packet  # escaped, so the packet stays well-formed XML


def test_element_and_resource_forms_written_by_other_tools_are_read():
    element = ("<rdf:Description><Iptc4xmpExt:DigitalSourceType>" + DIGITAL_SOURCE_TYPE +
               "</Iptc4xmpExt:DigitalSourceType><xmp:CreatorTool>tool</xmp:CreatorTool></rdf:Description>")
    assert parse_xmp(element).says_generated and parse_xmp(element).software == "tool"
    resource = f'<iptcExt:DigitalSourceType rdf:resource="{DIGITAL_SOURCE_TYPE}"/>'
    assert parse_xmp(resource).says_generated
    assert not parse_xmp("<x:xmpmeta/>").says_generated


def test_png_itxt_chunk_sits_before_the_pixels_and_pillow_reads_it():
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 5, 3), 7, np.uint8)).save(buffer, format="PNG")
    data = png_with_xmp(buffer.getvalue(), xmp_packet("pixforge 0.1.0", "t", "cd" * 32))
    assert data.index(b"iTXt") < data.index(b"IDAT")
    with Image.open(io.BytesIO(data)) as im:
        assert parse_xmp(im.info[PNG_XMP_KEYWORD]).model_hash == "cd" * 32
        assert np.asarray(im).tolist() == np.full((4, 5, 3), 7, np.uint8).tolist()  # pixels intact (CRCs valid)


def test_png_with_xmp_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_with_xmp(b"GIF89a....", b"<x/>")

"""XMP metadata that says an image is synthetic: IPTC digital source type, software, model hash, time.

The packet is the standard XMP that photo tools read (exiftool, Adobe, the IPTC's own checkers): the IPTC
Extension property ``Iptc4xmpExt:DigitalSourceType`` set to ``trainedAlgorithmicMedia``, ``xmp:CreatorTool``
and ``xmp:CreateDate``, plus pixforge's own model hash and name. It goes into PNG as an ``iTXt`` chunk with
the keyword ``XML:com.adobe.xmp``, and into JPEG (APP1) and WebP (XMP chunk) through Pillow.

Reading is done with regular expressions over the packet, not an XML parser: the packet comes from files
of unknown origin, and only a handful of simple properties are wanted.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from html import escape, unescape

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PNG_XMP_KEYWORD = "XML:com.adobe.xmp"
NAMESPACE = "urn:pixforge:provenance:1.0/"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Metadata:
    """The provenance properties of an XMP packet (empty strings where a property is absent)."""

    digital_source_type: str = ""
    software: str = ""
    created: str = ""
    model_hash: str = ""
    model_name: str = ""

    @property
    def says_generated(self) -> bool:
        """True when the packet declares the image made by a trained model (whoever wrote it)."""
        return self.digital_source_type == DIGITAL_SOURCE_TYPE


def xmp_packet(software: str, created: str, model_hash: str, model_name: str = "") -> bytes:
    """A complete XMP packet (UTF-8) declaring the image ``trainedAlgorithmicMedia``."""
    props = {
        "Iptc4xmpExt:DigitalSourceType": DIGITAL_SOURCE_TYPE,
        "xmp:CreatorTool": software,
        "xmp:CreateDate": created,
        "pixforge:ModelHash": model_hash,
        "pixforge:ModelName": model_name,
    }
    attributes = "\n".join(f'    {name}="{escape(value, quote=True)}"' for name, value in props.items() if value)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f'    xmlns:pixforge="{NAMESPACE}"\n'
        f"{attributes}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    ).encode()


def parse_xmp(packet: bytes | str) -> Metadata:
    """The provenance properties of an XMP packet, in attribute or element form."""
    text = packet.decode("utf-8", "replace") if isinstance(packet, bytes) else packet

    def prop(name: str) -> str:
        local = re.escape(name.split(":")[1])
        # attribute form: prefix:Name="value"; element form: <prefix:Name>value</prefix:Name> or
        # <prefix:Name rdf:resource="value"/>. Any prefix is accepted: tools may rename them.
        for pattern in (rf'\b\w+:{local}\s*=\s*"([^"]*)"', rf"\b\w+:{local}\s*=\s*'([^']*)'",
                        rf"<\w+:{local}\b[^>]*>([^<]*)</\w+:{local}>",
                        rf'<\w+:{local}\b[^>]*rdf:resource\s*=\s*"([^"]*)"'):
            match = re.search(pattern, text)
            if match:
                return unescape(match.group(1).strip())
        return ""

    return Metadata(digital_source_type=prop("Iptc4xmpExt:DigitalSourceType"), software=prop("xmp:CreatorTool"),
                    created=prop("xmp:CreateDate"), model_hash=prop("pixforge:ModelHash"),
                    model_name=prop("pixforge:ModelName"))


def png_with_xmp(png: bytes, packet: bytes) -> bytes:
    """Insert an uncompressed ``iTXt`` chunk holding ``packet`` right after IHDR (before the pixels, so
    readers that stop early still see it)."""
    if png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream (no signature and IHDR)")
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    # iTXt: keyword NUL, compression flag, compression method, language tag NUL, translated keyword NUL, text
    data = PNG_XMP_KEYWORD.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00" + packet
    chunk = struct.pack(">I", len(data)) + b"iTXt" + data + struct.pack(">I", zlib.crc32(b"iTXt" + data))
    return png[:ihdr_end] + chunk + png[ihdr_end:]

"""Optional C2PA manifests: signed offline with a user-supplied certificate, read back by verify."""

from __future__ import annotations

import datetime as dt
import struct
import zlib

import pytest

from pixforge.provenance import C2paSigner, Provenance, SafetyFilter, save_generated, verify_file

pytest.importorskip("c2pa")
x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

NO_FINDINGS = SafetyFilter(detector=lambda image: [])


def _certificate(subject_key, issuer_key, subject: str, issuer: str, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    usage = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
                 encipher_only=False, decipher_only=False)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage),
                              critical=True))
    if not ca:
        builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False))
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def signer() -> C2paSigner:
    """An EC P-256 leaf certificate issued by a local test CA (the chain is passed leaf first)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_key, ca_key, "pixforge test CA", "pixforge test CA", ca=True)
    leaf = _certificate(key, ca_key, "pixforge test signer", "pixforge test CA", ca=False)
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return C2paSigner(chain, private)


@pytest.mark.parametrize("name", ["signed.png", "signed.jpg"])
def test_signed_output_reads_valid_and_keeps_watermark_and_metadata(name, signer, tmp_path, rendering, model_hash):
    plain = save_generated(rendering, tmp_path / f"plain{name[-4:]}", Provenance(model_hash), safety=NO_FINDINGS)
    signed = save_generated(rendering, tmp_path / name, Provenance(model_hash), safety=NO_FINDINGS, c2pa=signer)
    report = verify_file(signed)
    assert report.c2pa == "valid (signer not in a trust list)"
    assert report.watermark.found and report.metadata is not None and report.metadata.says_generated
    assert signed.stat().st_size - plain.stat().st_size < 60_000  # no thumbnail inside
    assert verify_file(plain).c2pa == "absent"


def test_tampered_signed_file_reads_invalid(signer, tmp_path, rendering, model_hash):
    signed = save_generated(rendering, tmp_path / "s.png", Provenance(model_hash), safety=NO_FINDINGS, c2pa=signer)
    data = bytearray(signed.read_bytes())
    # Change the claimed model hash in the XMP chunk and fix that chunk's CRC: a well-formed PNG whose
    # bytes no longer match what was signed.
    start = data.index(b"iTXt") - 4
    length = struct.unpack(">I", data[start:start + 4])[0]
    body = bytes(data[start + 4:start + 8 + length]).replace(model_hash.encode(), b"0" * len(model_hash))
    data[start + 4:start + 8 + length] = body
    data[start + 8 + length:start + 12 + length] = struct.pack(">I", zlib.crc32(body))
    tampered = tmp_path / "t.png"
    tampered.write_bytes(bytes(data))
    report = verify_file(tampered)
    assert report.metadata is not None and report.metadata.model_hash == "0" * 64
    assert report.c2pa.startswith("invalid: ")


def test_unknown_signing_algorithm_is_refused():
    with pytest.raises(ValueError, match="algorithm: expected one of"):
        C2paSigner(b"", b"", algorithm="md5")

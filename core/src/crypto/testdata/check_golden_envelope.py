#!/usr/bin/env python3
"""Independent check of golden-envelope.json (version 2) and
golden-envelope-v1.json with Python `cryptography`.

Re-implements the envelope format from its description (crypto/envelope.rs,
crypto/wrap_tree.rs, crypto/fingerprint.rs, crypto/spki.rs) without any Rust
code: recomputes the key ids, the wraps' hash tree (version 2), verifies the
RSA-PSS signature, unwraps Bob's content key with RSA-OAEP and opens the
AES-256-GCM body. Run by hand after a format change:
    python3 core/src/crypto/testdata/check_golden_envelope.py
"""
import base64, hashlib, json, pathlib, struct
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = pathlib.Path(__file__).parent


def lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def identity(n: int):
    raw = base64.b64decode((HERE / f"identity-{n}.b64").read_text().strip())
    assert raw[:5] == b"FGID\x01"
    sign_len = struct.unpack(">I", raw[5:9])[0]
    sign = raw[9 : 9 + sign_len]
    enc = raw[9 + sign_len + 4 :]
    load = lambda d: serialization.load_der_private_key(d, password=None)
    return load(sign), load(enc)


def spki(private_key, pss: bool) -> bytes:
    if not pss:
        return private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    pkcs1 = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    pss_oid = bytes.fromhex("06092a864886f70d01010a")  # 1.2.840.113549.1.1.10
    return der(0x30, der(0x30, pss_oid) + der(0x03, b"\x00" + pkcs1))


def key_id(sign_key, enc_key) -> bytes:
    encoding = lp(b"ferrogram/v1/fingerprint") + lp(spki(sign_key, True)) + lp(spki(enc_key, False))
    return hashlib.sha256(encoding).digest()


def wrap_fields(wrap) -> bytes:
    return struct.pack(">q", wrap["user_id"]) + lp(b(wrap["key_id"])) + lp(b(wrap["wrapped_key"]))


def tree_root(wraps) -> bytes:
    """Version 2: leaves pairwise up, a last node without a neighbour moves up."""
    level = [hashlib.sha256(lp(b"ferrogram/v2/wrap-leaf") + wrap_fields(w)).digest() for w in wraps]
    while len(level) > 1:
        pairs = [level[i : i + 2] for i in range(0, len(level), 2)]
        level = [
            hashlib.sha256(lp(b"ferrogram/v2/wrap-node") + lp(p[0]) + lp(p[1])).digest() if len(p) == 2 else p[0]
            for p in pairs
        ]
    return level[0]


def check(name: str):
    envelope = json.loads((HERE / name).read_text())
    alice_sign, alice_enc = identity(0)
    bob_sign, bob_enc = identity(1)

    assert b(envelope["sender_key"]) == key_id(alice_sign, alice_enc)
    assert b(envelope["wraps"][1]["key_id"]) == key_id(bob_sign, bob_enc)

    h = envelope["header"]
    header = (
        lp(b"ferrogram/v1/envelope-header")
        + struct.pack(">I", envelope["version"])
        + struct.pack(">q", h["chat_id"])
        + struct.pack(">q", h["sender"])
        + lp(h["client_msg_id"].encode())
        + struct.pack(">q", h["sent_at"])
        + lp(b(envelope["sender_key"]))
    )
    signed = (
        lp(b"ferrogram/v1/envelope-signature")
        + lp(header)
        + lp(b(envelope["nonce"]))
        + lp(b(envelope["body"]))
        + struct.pack(">Q", len(envelope["wraps"]))
    )
    if envelope["version"] == 1:
        for wrap in envelope["wraps"]:
            signed += wrap_fields(wrap)
    else:
        assert envelope["version"] == 2
        signed += lp(tree_root(envelope["wraps"]))

    alice_sign.public_key().verify(
        b(envelope["signature"]),
        signed,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )
    content_key = bob_enc.decrypt(
        b(envelope["wraps"][1]["wrapped_key"]),
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=b"ferrogram/v1/content-key"),
    )
    plaintext = AESGCM(content_key).decrypt(b(envelope["nonce"]), b(envelope["body"]), header)
    assert len(plaintext) % 64 == 0
    print(json.loads(plaintext))
    print(f"{name} OK")


b = lambda field: base64.b64decode(field)
check("golden-envelope-v1.json")
check("golden-envelope.json")

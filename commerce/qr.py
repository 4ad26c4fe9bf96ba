"""QR codes of eSIM activation codes, as PNG bytes.

``qrcode`` builds the matrix (best mask, medium error correction); the PNG is written here as a
1-bit greyscale image with zlib, which is all a QR code needs and some twenty times faster than
a pure-Python pixel-by-pixel writer: this runs once per eSIM on the provisioning path.
"""

from __future__ import annotations

import struct
import zlib

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def qr_png(text: str, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of the QR code a phone scans to install the eSIM (``LPA:1$host$matching-id``)."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=1, border=border)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()  # border included; True is a dark module
    size = len(matrix) * scale
    pad = -size % 8
    lines = []
    for row in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in row) + "1" * pad  # 1-bit grey: 1 is white
        line = b"\x00" + int(bits, 2).to_bytes((size + pad) // 8, "big")  # filter byte 0: none
        lines.extend([line] * scale)
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1 bit per pixel, greyscale
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(lines), 9))
            + _chunk(b"IEND", b""))

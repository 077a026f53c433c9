"""QR codes as PNG images (segno: pure Python, no image library needed)."""

from __future__ import annotations

import io

import segno


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=6, border=4)
    return buffer.getvalue()

"""Template helpers for the dashboard."""

from __future__ import annotations

import segno
from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def qr_svg(text: str, scale: int = 5) -> str:
    """The text as a QR code in inline SVG, rendered on the server (no script, no external service)."""
    svg = segno.make(str(text), error="m").svg_inline(scale=int(scale), border=2, dark="#111", light="#fff")
    return mark_safe(svg)  # segno's own markup; the text is only encoded into module paths


@register.filter
def short_id(value: str, length: int = 8) -> str:
    return str(value or "")[: int(length)]

"""A kept drawing's strokes as W3C InkML (https://www.w3.org/TR/InkML/), the standard file for digital ink.

One ``<ink>`` document per drawing: a trace format of X, Y (canvas pixels, y down), T (ms since the first point)
and F (pressure, 0..1); one ``<context>`` per pointer (mouse, touch, pen) and one ``<brush>`` per mode (the
eraser's strokes are ink removed, kept so the drawing can be replayed); one ``<trace>`` per stroke in the order
drawn; the character in ``<annotation type="truth">`` and the drawing's id. ``read_inkml`` reads one back (tests,
and anyone checking an export).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from .record import Drawing
from .strokes import POINTERS, Stroke

NS = "http://www.w3.org/2003/InkML"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
CHANNELS = (("X", "decimal", "px"), ("Y", "decimal", "px"), ("T", "integer", "ms"), ("F", "decimal", ""))


def inkml_text(drawing: Drawing) -> str:
    """The drawing's strokes as an InkML document; ``ValueError`` for a drawing with none (an upload)."""
    if drawing.strokes is None:
        raise ValueError(f"drawing {drawing.id} has no strokes (source {drawing.source or 'unknown'})")
    ET.register_namespace("", NS)
    ink = ET.Element(f"{{{NS}}}ink")
    _annotation(ink, "truth", drawing.character)
    _annotation(ink, "drawingId", drawing.id)
    _annotation(ink, "createdUtc", drawing.created_utc)
    definitions = ET.SubElement(ink, f"{{{NS}}}definitions")
    trace_format = ET.SubElement(definitions, f"{{{NS}}}traceFormat", {XML_ID: "xytf"})
    for name, kind, units in CHANNELS:
        ET.SubElement(trace_format, f"{{{NS}}}channel", {"name": name, "type": kind, **({"units": units} if units
                                                                                        else {})})  # fmt: skip
    for pointer in POINTERS:
        context = ET.SubElement(definitions, f"{{{NS}}}context", {XML_ID: pointer, "traceFormatRef": "#xytf"})
        ET.SubElement(context, f"{{{NS}}}inkSource", {XML_ID: f"{pointer}-source", "description": pointer})
    for mode in ("brush", "eraser"):
        ET.SubElement(definitions, f"{{{NS}}}brush", {XML_ID: mode})
    for stroke in drawing.strokes:
        trace = ET.SubElement(ink, f"{{{NS}}}trace", {"contextRef": f"#{stroke['pointer']}",
                                                      "brushRef": f"#{stroke['mode']}"})  # fmt: skip
        trace.text = ", ".join(" ".join(_number(v) for v in point) for point in stroke["points"])
    ET.indent(ink)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(ink, encoding="unicode") + "\n"


def _annotation(parent: ET.Element, kind: str, text: str) -> None:
    ET.SubElement(parent, f"{{{NS}}}annotation", {"type": kind}).text = text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def read_inkml(text: str) -> dict[str, Any]:
    """An InkML document this module wrote: ``{"truth", "drawingId", "strokes": [...]}`` in the stored form."""
    root = ET.fromstring(text)
    notes = {a.get("type"): a.text or "" for a in root.findall(f"{{{NS}}}annotation")}
    strokes: list[Stroke] = []
    for trace in root.findall(f"{{{NS}}}trace"):
        points = [[float(v) for v in point.split()] for point in (trace.text or "").split(",") if point.strip()]
        strokes.append({"pointer": trace.get("contextRef", "#mouse")[1:], "mode": trace.get("brushRef", "#brush")[1:],
                        "points": [[x, y, int(t), p] for x, y, t, p in points]})  # fmt: skip
    return {**notes, "strokes": strokes}

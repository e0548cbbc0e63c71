"""What a page hands to ui/follow.py's component in an AppTest run: the figure of this run for a chart whose
data change with a slider (``follow_slider(figures=...)``; the chart element itself shows the settings' figure),
and the header of a picture that ui/mix.py draws in the browser."""

from __future__ import annotations

import json
import struct

import numpy as np


def followed_figure(at, chart_key: str) -> dict:
    """The figure (plotly JSON) that the follow component of this run applies to the chart with key ``chart_key``."""
    for element in at.get("bidi_component"):
        if not element.proto.json:  # a mixed picture's bytes
            continue
        data = json.loads(element.proto.json)
        if chart_key in data.get("figures", {}):
            return data["figures"][chart_key]
    raise AssertionError(f"no follow_slider figure for {chart_key}")


def followed_title(at, chart_key: str) -> str:
    return followed_figure(at, chart_key)["layout"]["title"]["text"]


def mixed_header(at, slider: str) -> dict:
    """The JSON header of the ui/mix.py payload that follows ``slider`` (its captions, size, positions), with
    "weights": each picture's weights [positions, bases] as read from the payload's end, and "bases": the
    bases [H, W, C] as the browser reads them (int16 times their scale)."""
    for element in at.get("bidi_component"):
        payload = element.proto.bytes
        if payload[:4] == b"MIX1":
            (n,) = struct.unpack("<I", payload[4:8])
            head = json.loads(payload[8:8 + n])
            if head["slider"] == slider:
                k, p, count = len(head["scales"]), head["positions"], len(head["captions"])
                weights = np.frombuffer(payload[len(payload) - 8 * k * p * count:], "<f8").reshape(count, p, k)
                at_base, size = 8 + n + (-(8 + n) % 8), head["h"] * head["w"] * head["c"]
                bases = [np.frombuffer(payload, "<i2", size, at_base + 2 * size * i).astype(np.float64).reshape(
                    head["h"], head["w"], head["c"]) * scale for i, scale in enumerate(head["scales"])]
                return {**head, "weights": list(weights), "bases": bases}
    raise AssertionError(f"no mixed picture follows {slider}")

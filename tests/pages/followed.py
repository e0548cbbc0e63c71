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


def read_mix(payload: bytes) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    """A ui/mix.py payload read as the browser reads it (ui/assets/mix_picture.js): the JSON header, each base as
    its int16 values (flat), each picture's weights [positions, bases]; the whole payload accounted for."""
    assert payload[:4] == b"MIX1"
    (n,) = struct.unpack("<I", payload[4:8])
    head = json.loads(payload[8:8 + n])
    at = 8 + n + (-(8 + n) % 8)
    size = head["h"] * head["w"] * head["c"]
    bases = []
    for _ in head["scales"]:
        bases.append(np.frombuffer(payload, "<i2", size, at))
        at += 2 * size
    at += -at % 8
    k, p = len(bases), head["positions"]
    weights = [np.frombuffer(payload, "<f8", p * k, at + i * 8 * p * k).reshape(p, k) for i in range(len(head["captions"]))]
    assert at + 8 * p * k * len(weights) == len(payload)
    return head, bases, weights


def mixed_header(at, slider: str) -> dict:
    """The header of the ui/mix.py payload that follows ``slider`` (its captions, size, positions), with
    "weights": each picture's weights [positions, bases], and "bases": the bases [H, W, C] as the browser
    reads them (int16 times their scale)."""
    for element in at.get("bidi_component"):
        payload = element.proto.bytes
        if payload[:4] == b"MIX1":
            head, bases, weights = read_mix(payload)
            if head["slider"] == slider:
                shape = (head["h"], head["w"], head["c"])
                return {**head, "weights": weights,
                        "bases": [q.astype(np.float64).reshape(shape) * s for q, s in zip(bases, head["scales"])]}
    raise AssertionError(f"no mixed picture follows {slider}")

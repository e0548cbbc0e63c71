"""The latent page's pictures and charts, built from what ``runs`` computed: latents drawn as small pictures,
the pipeline strip of one sample, grids of digits, the 2-D cloud with trajectories, the FLOPs chart. Every title
and label comes in translated; no math here beyond mapping numbers to gray levels."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from diffusion_core.data.images import unit_to_uint8

from .. import charts
from ..playground import lab as pg

LATENT_LIMIT = 2.5  # a scaled latent number of -2.5 is drawn black, +2.5 white (the latents have std about 1)
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")  # one per digit 0-9 (plotly's qualitative D3 colours)
LIMIT_2D = 4.5  # the 2-D plots show [-4.5, 4.5]^2: the points have variance about 1 overall, a few reach 4
MAX_SHOWN_STEPS = 10  # steps drawn in the pipeline strip (more are thinned, the last kept)
PAD = 3  # pixels between pictures


def latent_tile(z: np.ndarray, limit: float = LATENT_LIMIT) -> np.ndarray:
    """A latent [C, 7, 7] as one gray picture: its channels side by side in two rows (4 channels -> 14 x 14),
    numbers in [-limit, limit] mapped to 0..255 (clipped)."""
    c, h, w = z.shape
    cols = (c + 1) // 2
    tile = np.zeros((2 * h, cols * w), dtype=np.float32)
    for i in range(c):
        r, k = divmod(i, cols)
        tile[r * h:(r + 1) * h, k * w:(k + 1) * w] = z[i]
    return unit_to_uint8(np.clip(tile / limit, -1, 1))


def _upscale(image: np.ndarray, side: int) -> np.ndarray:
    k = max(1, side // image.shape[0])
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def _row(pictures: list[np.ndarray], side: int = 28, fill: int = 255) -> np.ndarray:
    """Pictures [side, side] uint8 in one row with PAD white pixels between and around them."""
    out = np.full((side + 2 * PAD, len(pictures) * (side + PAD) + PAD), fill, dtype=np.uint8)
    for i, p in enumerate(pictures):
        left = PAD + i * (side + PAD)
        out[PAD:PAD + side, left:left + side] = p
    return out


def shown_steps(n_steps: int, k: int = MAX_SHOWN_STEPS) -> list[int]:
    """Indices of the steps drawn: all when there are at most k, else k evenly spread with the last kept."""
    if n_steps <= k:
        return list(range(n_steps))
    return sorted({round(i * (n_steps - 1) / (k - 1)) for i in range(k)})


def pipeline_strip(latents: np.ndarray, x0_decoded: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The pipeline of one sample as one picture. Top row: z_T, then z_t after each shown step (each latent as
    a 14 x 14 tile, doubled); bottom row, under each step: D(z0_hat), the digit the decoder would make of that
    step's prediction; the last column is z_0 above the decoded digit. latents [steps + 1, C, 7, 7],
    x0_decoded [steps, 28, 28] and digit [28, 28] in [-1, 1]."""
    steps = shown_steps(len(x0_decoded))
    top = [_upscale(latent_tile(latents[0]), 28)] + [_upscale(latent_tile(latents[i + 1]), 28) for i in steps]
    blank = np.full((28, 28), 255, dtype=np.uint8)
    bottom = [blank] + [unit_to_uint8(x0_decoded[i]) for i in steps[:-1]] + [unit_to_uint8(digit)]
    return np.concatenate([_row(top), _row(bottom)[PAD:]], axis=0)


def digit_grid(digits: np.ndarray, ncols: int = 8) -> np.ndarray:
    """Digits [N, 28, 28] in [-1, 1] tiled into rows of ``ncols``."""
    rows = [_row([unit_to_uint8(d) for d in digits[i:i + ncols]]) for i in range(0, len(digits), ncols)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=255) for r in rows]
    return np.concatenate([rows[0]] + [r[PAD:] for r in rows[1:]], axis=0)


def walk_grid(decoded: np.ndarray) -> np.ndarray:
    """What each trajectory decodes to along the way: decoded [states, N, 28, 28] -> N rows, one column per state."""
    return digit_grid(decoded.transpose(1, 0, 2, 3).reshape(-1, 28, 28), ncols=decoded.shape[0])


def _square_layout(title: str, x_title: str, y_title: str, height: int) -> dict:
    axis = dict(range=[-LIMIT_2D, LIMIT_2D], zeroline=False, constrain="domain")  # fixed ranges: see ui/playground
    return dict(title=dict(text=title, x=0.0, font=dict(size=14)), height=height, margin=dict(l=10, r=10, t=40, b=10),
                separators=charts.SEPARATORS,
                legend=dict(orientation="h", yanchor="top", y=-0.15, x=0.0, itemsizing="constant"),
                xaxis=dict(axis, title=dict(text=x_title)),
                yaxis=dict(axis, title=dict(text=y_title), scaleanchor="x", scaleratio=1))


def _cloud_traces(points: np.ndarray, labels: np.ndarray, digit_name: str, size: float, opacity: float) -> list:
    traces = []
    for d in range(10):
        p = points[labels == d].astype(np.float32)
        traces.append(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", name=digit_name.format(digit=d),
                                 marker=dict(size=size, color=DIGIT_COLORS[d], opacity=opacity), hoverinfo="skip"))
    return traces


def cloud_figure(points: np.ndarray, labels: np.ndarray, *, title: str, digit_name: str, x_title: str,
                 y_title: str, height: int = 520) -> go.Figure:
    """Every point [N, 2] coloured by its digit, one legend entry per digit (``digit_name`` has a {digit} field)."""
    return go.Figure(data=_cloud_traces(points, labels, digit_name, 2.5, 0.5),
                     layout=_square_layout(title, x_title, y_title, height))


def walk_figure(points: np.ndarray, labels: np.ndarray, paths: np.ndarray, *, title: str, digit_name: str,
                path_name: str, start_name: str, end_name: str, x_title: str, y_title: str,
                height: int = 520) -> go.Figure:
    """Trajectories [S + 1, N, 2] (x_T first) over a faint cloud of encoded digits, x_T and x_0 marked. Light, for a
    chart that every control of the walk changes (ui/follow.py applies it): each digit's points and the states
    along the paths as filled diamonds, one SVG path per trace, on fixed axes."""
    data = [pg.filled_trace(pg.dots_xy(points[labels == d], 0.05), digit_name.format(digit=d), DIGIT_COLORS[d],
                            opacity=0.3) for d in range(10)]
    xs = np.concatenate([np.append(paths[:, k, 0], np.nan) for k in range(paths.shape[1])]).astype(np.float32)
    ys = np.concatenate([np.append(paths[:, k, 1], np.nan) for k in range(paths.shape[1])]).astype(np.float32)
    data.append(go.Scatter(x=xs, y=ys, mode="lines", name=path_name, hoverinfo="skip", legendgroup="path",
                           line=dict(color="black", width=1.4)))
    data.append(pg.filled_trace(pg.dots_xy(paths.reshape(-1, 2), 0.06), path_name, "black", legendgroup="path",
                                showlegend=False))
    data.append(go.Scatter(x=paths[0, :, 0], y=paths[0, :, 1], mode="markers", name=start_name,
                           marker=dict(size=10, color="black", symbol="x")))
    data.append(go.Scatter(x=paths[-1, :, 0], y=paths[-1, :, 1], mode="markers", name=end_name,
                           marker=dict(size=11, color="white", symbol="circle", line=dict(color="black", width=2))))
    return go.Figure(data=data, layout=_square_layout(title, x_title, y_title, height))


def mflop(flops: float) -> str:
    """FLOPs as MFLOP for a table: whole numbers from 100 on (no thousands separator), one decimal below."""
    v = flops / 1e6
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def flops_figure(sides: list[int], pixel: list[float], latent: list[float], *, names: tuple[str, str],
                 x_title: str, y_title: str, height: int = 320) -> go.Figure:
    """FLOPs per sample against the image side, both pipelines, log-log."""
    data = [dict(type="scatter", x=sides, y=y, mode="lines+markers", name=name, line=dict(color=charts.PALETTE[i]))
            for i, (name, y) in enumerate(zip(names, (pixel, latent)))]
    layout = charts.layout_of(x_title, y_title, None, height, xaxis=dict(type="log", tickvals=sides),
                            yaxis=dict(type="log", exponentformat="power"))
    return go.Figure(data=data, layout=layout)

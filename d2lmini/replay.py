"""Explorers that still move without a kernel: precomputed figures behind a plain HTML range input.

An :class:`~d2lmini.widgets.Explorer` retrains live in the kernel.  On the website, in a notebook viewer,
or in a committed notebook opened before it runs, there is no kernel, so each explorer also computes its
result on a small grid of slider values while the chapter runs and embeds a :class:`Replay`: one
``<input type="range">`` per varied slider and a few lines of inline JavaScript that swap between the
precomputed pictures.  Nothing is loaded from the network, so it works from ``file://`` too.

The pictures are PNGs reduced to a small palette (a few tens of kB each), so a replay of 6-8 frames
keeps the notebook small.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .messages import wrap

__all__ = ["Replay", "figure_png", "format_value"]


def format_value(v: Any) -> str:
    """A slider value as the reader reads it: ``0.1``, ``3e-05``, ``True``, ``'Adam'`` -> ``Adam``."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def figure_png(fig: Any, dpi: int = 80, colors: int = 96) -> bytes:
    """A matplotlib figure as PNG bytes, quantised to ``colors`` palette entries (about 3-5x smaller
    than a full-colour PNG, with no visible difference for line plots and image grids)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


@dataclass
class Replay:
    """Precomputed frames of an explorer, shown as range inputs that swap pictures.

    ``sliders`` maps each varied slider's name to its grid of values (in slider order); ``frames`` maps
    each combination (a tuple with one value per slider, in the same order) to PNG bytes; ``captions``
    (optional) to a line shown above the picture (e.g. "lr=0.1: trained in 1.4 s").  ``initial`` is the
    combination shown first.
    """

    sliders: Mapping[str, Sequence[Any]]
    frames: Mapping[tuple, bytes]
    captions: Mapping[tuple, str] = field(default_factory=dict)
    initial: tuple | None = None
    title: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not self.sliders:
            raise ValueError("Replay needs at least one slider with a grid of values")
        combos = list(itertools.product(*self.sliders.values()))
        missing = [c for c in combos if c not in self.frames]
        if missing:
            raise ValueError(f"Replay is missing frames for {missing[:3]} (needs every combination)")
        if self.initial is None:
            self.initial = combos[0]
        elif self.initial not in self.frames:
            raise ValueError(f"initial {self.initial} is not one of the grid's combinations")

    @property
    def size_bytes(self) -> int:
        """Total size of the embedded PNGs."""
        return sum(len(b) for b in self.frames.values())

    def _key(self, combo: tuple) -> str:
        idx = [list(vals).index(v) for vals, v in zip(self.sliders.values(), combo, strict=True)]
        return "_".join(str(i) for i in idx)

    def _repr_html_(self) -> str:
        names = list(self.sliders)
        data = {self._key(c): base64.b64encode(png).decode("ascii") for c, png in self.frames.items()}
        captions = {self._key(c): text for c, text in self.captions.items()}
        uid = "d2l-replay-" + hashlib.sha1(json.dumps(sorted(data.items())).encode()).hexdigest()[:10]
        start = self._key(self.initial)  # type: ignore[arg-type]
        start_idx = [int(i) for i in start.split("_")]
        rows = []
        for i, name in enumerate(names):
            values = list(self.sliders[name])
            labels = json.dumps([format_value(v) for v in values])
            rows.append(
                f'<label style="display:flex;gap:.6em;align-items:center;margin:.2em 0">'
                f'<span style="min-width:7em;font-family:monospace">{html.escape(name)}</span>'
                f'<input type="range" class="d2l-replay-range" data-index="{i}" min="0" '
                f'max="{len(values) - 1}" step="1" value="{start_idx[i]}" '
                f"data-labels='{html.escape(labels)}' aria-label=\"{html.escape(name)}\" "
                f'style="width:16em">'
                f'<span class="d2l-replay-value" style="font-family:monospace">'
                f"{html.escape(format_value(values[start_idx[i]]))}</span></label>"
            )
        head = html.escape(self.title) if self.title else "Replay"
        note = html.escape(self.note) if self.note else ""
        script = (
            "(function(){var r=document.getElementById('" + uid + "');if(!r)return;"
            "var f=" + json.dumps(data) + ",c=" + json.dumps(captions) + ";"
            "var s=r.querySelectorAll('input.d2l-replay-range'),im=r.querySelector('img.d2l-replay-img'),"
            "cap=r.querySelector('.d2l-replay-caption');"
            "function show(){var k=[];s.forEach(function(e){var l=JSON.parse(e.dataset.labels);"
            "e.nextElementSibling.textContent=l[e.value];k.push(e.value);});k=k.join('_');"
            "if(f[k]){im.src='data:image/png;base64,'+f[k];}cap.textContent=c[k]||'';"
            "r.dataset.frame=k;}"
            "s.forEach(function(e){e.addEventListener('input',show);});show();})();"
        )
        return (
            f'<div class="d2l-replay" id="{uid}" data-frame="{start}" '
            f'style="border:1px solid #ccc;border-radius:6px;padding:.6em;margin:.4em 0">'
            f'<div style="font-weight:bold">{head}</div>'
            f'<div style="font-size:90%;color:#555">{note}</div>'
            + "".join(rows)
            + f'<div class="d2l-replay-caption" style="font-size:90%;margin:.3em 0">'
            f"{html.escape(self.captions.get(self.initial, ''))}</div>"  # type: ignore[arg-type]
            f'<img class="d2l-replay-img" alt="{html.escape(head)}" style="max-width:100%" '
            f'src="data:image/png;base64,{data[start]}">'
            f"<script>{script}</script></div>"
        )

    def __repr__(self) -> str:
        grid = ", ".join(f"{k}: {len(v)} values" for k, v in self.sliders.items())
        return wrap(f"Replay of {len(self.frames)} precomputed results ({grid})")

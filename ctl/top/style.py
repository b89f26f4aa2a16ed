"""How ``ctl top`` draws: glyph sets and colour palettes.

Two glyph sets: box drawing and block elements, or ASCII stand-ins for a terminal that
is not UTF-8. Five colour modes, chosen by the loop from what the terminal reports:
``truecolor`` (24-bit), ``256`` (the xterm cube), ``16`` (three ANSI colours),
``none`` (NO_COLOR or ``--no-color``: attributes such as bold, dim and reverse video,
but no colour, as no-color.org asks) and ``plain`` (not a terminal: no escape sequence).

Load per CPU is graded green (idle) → yellow (every CPU busy, load 1) → red (load
``FULL_SCALE`` and beyond: a task queued behind every CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

#: Load per CPU at which the bar is full: every CPU busy and one task queued per CPU.
FULL_SCALE = 2.0

COLOR_MODES = ("truecolor", "256", "16", "none", "plain")
GLYPH_SETS = ("unicode", "ascii")

RESET = "\x1b[0m"

# Gradient stops for load per CPU 0, 1 and FULL_SCALE (idle, full, overloaded).
_GREEN, _YELLOW, _RED = (46, 170, 90), (235, 195, 30), (225, 60, 50)
_GREY_RGB = (120, 120, 120)
_STEPS = 32  # colours precomputed along the gradient


@dataclass(frozen=True, eq=False)  # two instances, compared and hashed by identity
class Glyphs:
    """The characters of one frame: box drawing and blocks, or their ASCII stand-ins."""

    tee: str
    last: str
    pipe: str
    blank: str
    tee_off: str  # connectors to a node the wave did not reach
    last_off: str
    bar_full: str
    bar_eighths: tuple[str, ...]  # partial cells, index = eighths filled (0 = none)
    bar_empty: str
    bar_over: str  # the last cell when the load is beyond FULL_SCALE
    spark: str  # levels, lowest first
    up: str
    down: str
    flat: str
    from_: str  # "also ← x"
    to: str  # "2.10 → 1.30"
    ellipsis: str
    cursor: str
    dead: str
    stopped: str  # a node the operator stopped (`ctl stop NODE`): not dead
    dot: str


UNICODE = Glyphs(
    tee="├─ ",
    last="└─ ",
    pipe="│  ",
    blank="   ",
    tee_off="├╌ ",
    last_off="└╌ ",
    bar_full="█",
    bar_eighths=("", "▏", "▎", "▍", "▌", "▋", "▊", "▉"),
    bar_empty="·",
    bar_over="▶",
    spark="▁▂▃▄▅▆▇█",
    up="↑",
    down="↓",
    flat="→",
    from_="←",
    to="→",
    ellipsis="…",
    cursor="▶",
    dead="✗",
    stopped="■",
    dot="·",
)
ASCII = Glyphs(
    tee="|- ",
    last="`- ",
    pipe="|  ",
    blank="   ",
    tee_off="|. ",
    last_off="`. ",
    bar_full="#",
    bar_eighths=("", "", "", "", "=", "=", "=", "="),
    bar_empty=".",
    bar_over=">",
    spark="_.-:=+*#",
    up="^",
    down="v",
    flat="=",
    from_="<-",
    to="->",
    ellipsis="~",
    cursor=">",
    dead="x",
    stopped="#",
    dot="-",
)


# -- colours -----------------------------------------------------------------------


def _mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def gradient_rgb(load: float) -> tuple[int, int, int]:
    """Green at 0, yellow at 1 (every CPU busy), red at FULL_SCALE and beyond."""
    if load <= 1.0:
        return _mix(_GREEN, _YELLOW, max(load, 0.0))
    return _mix(_YELLOW, _RED, min((load - 1.0) / (FULL_SCALE - 1.0), 1.0))


_CUBE = (0, 95, 135, 175, 215, 255)  # the xterm 256-colour cube's levels


def _cube(rgb) -> int:
    """Nearest colour of the xterm 6×6×6 cube."""
    r, g, b = (min(range(6), key=lambda i: abs(_CUBE[i] - c)) for c in rgb)
    return 16 + 36 * r + 6 * g + b


class Palette:
    """SGR prefixes for one colour mode.

    ``truecolor``/``256``/``16``: colours and attributes; ``none`` (NO_COLOR, --no-color):
    attributes only (bold, dim, reverse); ``plain`` (not a terminal): nothing at all.
    """

    def __init__(self, mode: str):
        if mode not in COLOR_MODES:
            raise ValueError(f"colour mode {mode!r}: expected one of {', '.join(COLOR_MODES)}")
        self.mode = mode
        attrs = mode != "plain"
        self.reset = RESET if attrs else ""
        self.bold = "\x1b[1m" if attrs else ""
        self.dim = "\x1b[2m" if attrs else ""
        self.reverse = "\x1b[7m" if attrs else ""
        self.grey = self._fg(_GREY_RGB, 244, 90)
        self.alarm = self._fg(_RED, 167, 31)
        self.good = self._fg(_GREEN, 35, 32)
        self.levels = tuple(self._fg(gradient_rgb(FULL_SCALE * k / _STEPS), None, None) for k in range(_STEPS + 1))

    def _fg(self, rgb, xterm256, ansi16) -> str:
        if self.mode == "truecolor":
            return "\x1b[38;2;{};{};{}m".format(*rgb)
        if self.mode == "256":
            return f"\x1b[38;5;{_cube(rgb) if xterm256 is None else xterm256}m"
        if self.mode == "16":
            if ansi16 is None:  # three bands of the gradient
                g = rgb[1] - rgb[0]
                ansi16 = 32 if g > 60 else (33 if g > -60 else 31)
            return f"\x1b[{ansi16}m"
        return ""

    def load(self, value: float) -> str:
        """The colour of a load per CPU."""
        k = round(min(max(value, 0.0), FULL_SCALE) / FULL_SCALE * _STEPS)
        return self.levels[k]


@lru_cache(maxsize=8)
def palette(mode: str) -> Palette:
    """The palette of a colour mode (built once). Raises ValueError on an unknown mode."""
    return Palette(mode)


def glyph_set(name: str) -> Glyphs:
    """UNICODE or ASCII by name. Raises ValueError on an unknown name."""
    if name not in GLYPH_SETS:
        raise ValueError(f"glyph set {name!r}: expected one of {', '.join(GLYPH_SETS)}")
    return UNICODE if name == "unicode" else ASCII

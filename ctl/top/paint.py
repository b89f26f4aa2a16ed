"""Turn the frame on screen into the next one without flicker.

The whole update is one string, written once, between the begin and end marks of
synchronized output (DEC private mode 2026: the terminal shows nothing of the update
until the end mark; terminals that do not know the mode ignore it). Only lines that
changed are rewritten; after a resize, or the first time, the screen is cleared and
every line written.

Each line is addressed absolutely (CUP) and erased before it is written (EL 2), rather
than erased after: a line exactly as wide as the screen leaves the cursor in the
"pending wrap" state on the last column, where an erase-to-end would wipe the last
character. Nothing ever prints a newline, so the screen never scrolls.
"""

from __future__ import annotations

BEGIN_SYNC = "\x1b[?2026h"
END_SYNC = "\x1b[?2026l"
CLEAR = "\x1b[H\x1b[2J"
RESET = "\x1b[0m"


class Painter:
    """Remembers what is on screen; :meth:`paint` returns what to write for a new frame."""

    def __init__(self) -> None:
        self.screen: list[str] | None = None
        self.size: tuple[int, int] | None = None

    def invalidate(self) -> None:
        """Forget the screen (it was disturbed): the next paint redraws everything."""
        self.screen = None

    def paint(self, lines: list[str], width: int, height: int) -> str:
        """The escape string that turns the screen into ``lines`` ("" if nothing changed)."""
        lines = list(lines[:height]) + [""] * (height - len(lines))
        full = self.screen is None or self.size != (width, height)
        old = self.screen or []
        out = []
        for row, line in enumerate(lines):
            if full or old[row] != line:
                out.append(f"\x1b[{row + 1};1H{RESET}\x1b[2K{line}{RESET}")
        self.screen, self.size = lines, (width, height)
        if not out and not full:
            return ""
        return BEGIN_SYNC + (CLEAR if full else "") + "".join(out) + END_SYNC

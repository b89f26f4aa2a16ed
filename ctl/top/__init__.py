"""``ctl top``: the live tree of a cluster in the terminal.

Theory of operation. Every interval the view injects one echo wave (Tel 6.2.3) and draws
the wave's spanning tree with each node's load; keys inject balancing rounds, Finn waves
(Tel 6.2.6) and submissions. The pieces, from pure to impure:

- :mod:`ctl.top.view`: ``ViewState``, everything the view remembers between frames
  (selection, scroll, collapsed subtrees, each node's recent load, since when a node has
  not answered, the last balancing round and Finn wave). Time is passed in.
- :mod:`ctl.top.tree`: the echo wave's spanning tree as rows in screen order, with the
  edges the tree does not show (DAG and cycle edges), or the nodes as a flat list that
  keeps still from wave to wave (by topology order, name, load or queue: ``s``); either
  filtered by name (``/``). Pure.
- :mod:`ctl.top.style`: glyph sets (box drawing or ASCII) and colour palettes
  (24-bit, 256, 16, attributes only, nothing).
- :mod:`ctl.top.render`: ``render(snapshot, width, height, view=..., color=...)`` →
  the frame's lines, escape sequences included. Pure, so it is tested by feeding its
  lines to a terminal emulator (pyte) and reading the screen back.
- :mod:`ctl.top.keys`: a key → a change of the view state and, maybe, a ``Command``
  for the cluster. Pure.
- :mod:`ctl.top.paint`: the bytes that turn the previous frame into the next one (only
  changed lines, inside one synchronized update) so the screen never flickers.
- :mod:`ctl.top.worker`: the thread that owns the ``Operator``, so a wave that takes
  seconds to time out never blocks a key.
- :mod:`ctl.top.loop`: the thin blessed loop that ties them together.

The view is honest about what an echo wave is: each node's numbers are sampled as the
wave passes it, not at one instant; the hand-off's Lai–Yang tags still make the frame a
consistent cut for tasks (every task counted once: queued, running, done or in flight;
ARCHITECTURE.md, "Moving a task exactly once"). A node that stops answering stays on
screen, dimmed, with the time it went silent.
"""

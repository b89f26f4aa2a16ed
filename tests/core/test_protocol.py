"""PROTOCOL.md is what daemon/protocol.py renders from the schema, and the error codes
the nodes use are the ones it lists (daemon/core/messages.py ``ERROR_CODES``)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from daemon import protocol
from daemon.core import messages as m

ROOT = Path(__file__).resolve().parents[2]
# how the nodes say an error code: Refused(counter, code, ...), m.Error(code, ...),
# reply_error(role, ident, code, ...), wire.encode("error", ..., code=...)
CODE_PATTERNS = (r'Refused\(\s*"[a-z_]+",\s*"([a-z-]+)"', r'm\.Error\(\s*"([a-z-]+)"',
                 r'reply_error\([^,]+,[^,]+,\s*"([a-z-]+)"', r'code="([a-z-]+)"')


def test_protocol_md_is_what_the_schema_renders():
    want = protocol.render()
    have = (ROOT / "PROTOCOL.md").read_text()
    if have != want:
        diff = "".join(list(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "PROTOCOL.md",
                                                 "rendered from the schema"))[:60])
        raise AssertionError(f"PROTOCOL.md differs from the schema: run python -m daemon.protocol\n{diff}")


def codes_used() -> dict[str, str]:
    used = {}
    for path in sorted((ROOT / "daemon").rglob("*.py")):
        text = path.read_text()
        for pattern in CODE_PATTERNS:
            for code in re.findall(pattern, text):
                used.setdefault(code, str(path.relative_to(ROOT)))
    return used


def test_every_error_code_the_nodes_use_is_in_the_table_and_every_listed_one_is_used():
    used = codes_used()
    assert len(used) >= 20, used  # the patterns still find the codes
    unlisted = {code: where for code, where in used.items() if code not in m.ERROR_CODES}
    assert not unlisted, f"error codes used but not in daemon/core/messages.py ERROR_CODES: {unlisted}"
    assert set(m.ERROR_CODES) <= set(used), f"listed but never used: {sorted(set(m.ERROR_CODES) - set(used))}"


def test_every_field_of_the_schema_has_a_note_and_nothing_else_has_one():
    fields = {(kind, f) for kind, spec in m.SCHEMA.items() for f in spec}
    assert fields == set(protocol.FIELD_NOTES)


def test_the_document_names_every_message_type_and_every_builtin_kinds_messages():
    text = protocol.render()
    for kind in m.SCHEMA:
        assert f"### `{kind}`" in text
    for cls in protocol.builtin_kinds().values():
        for mt in cls.messages:
            assert f"Message `{mt.name}`" in text
    assert f"# The echofinn protocol, version {protocol.wire.VERSION}" in text

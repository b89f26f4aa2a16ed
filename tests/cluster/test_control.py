"""The operator's request channel (daemon/cluster/control.py): a request file in the run
directory and SIGUSR1. The round trip is real — a request written, this process
signalled, its handler answering as the supervisor's loop does — and so are the files
it refuses (a link, another kind of file, one over the limit) and the requests it
refuses (not JSON, an unknown action, no nodes)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from daemon.cluster import control


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    return folder


@pytest.fixture
def answering(run_dir):
    """This process answers SIGUSR1 as the supervisor does: every pending request gets
    a reply echoing what it asked (or why it was refused)."""
    seen = []

    def handler(signum, frame):
        for reply, data, refused in control.pending(run_dir):
            if refused is not None:
                control.send_reply(reply, {"ok": False, "error": refused})
                continue
            try:
                action, nodes = control.parse_request(data)
            except control.BadRequest as exc:
                control.send_reply(reply, {"ok": False, "error": str(exc)})
                continue
            seen.append((action, nodes))
            control.send_reply(reply, {"ok": True, "nodes": {n: {"was": "RUNNING"} for n in nodes}})

    old = signal.signal(signal.SIGUSR1, handler)
    yield seen
    signal.signal(signal.SIGUSR1, old)


def test_a_request_is_answered_and_leaves_no_file_behind(run_dir, answering):
    reply = control.ask(run_dir, os.getpid(), "restart", ["a", "b", "a"])
    assert reply == {"ok": True, "nodes": {"a": {"was": "RUNNING"}, "b": {"was": "RUNNING"}}}
    assert answering == [("restart", ["a", "b"])]  # a node named twice is acted on once
    assert os.listdir(run_dir / control.CONTROL_DIR) == []
    assert os.stat(run_dir / control.CONTROL_DIR).st_mode & 0o777 == 0o700


def test_no_answer_is_a_timeout_and_the_request_is_taken_back(run_dir):
    old = signal.signal(signal.SIGUSR1, lambda *_: None)  # a supervisor that does not answer
    try:
        with pytest.raises(TimeoutError, match=f"pid {os.getpid()}"):
            control.ask(run_dir, os.getpid(), "stop", ["a"], wait=0.2)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert os.listdir(run_dir / control.CONTROL_DIR) == []


@pytest.mark.parametrize("data, error", [
    (b"{not json", "the request is not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"action": "kill", "nodes": ["a"]}', "unknown action 'kill': one of stop, start, restart"),
    (b'{"action": "stop", "nodes": []}', "nodes must be a non-empty list of node names"),
    (b'{"action": "stop", "nodes": ["a", 3]}', "nodes must be a non-empty list"),
    (b'{"action": "stop", "nodes": "a"}', "nodes must be a non-empty list"),
    (b'{"action": "stop"}', "nodes must be a non-empty list"),
])
def test_a_malformed_request_is_refused_saying_what_is_wrong(data, error):
    with pytest.raises(control.BadRequest, match=error.replace("(", r"\(").replace("[", r"\[")):
        control.parse_request(data)


def test_a_link_an_oversized_file_and_a_folder_are_refused_and_removed(run_dir, tmp_path):
    folder = control.control_dir(run_dir, create=True)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"action": "stop", "nodes": ["a"]}))
    (folder / "link.request").symlink_to(target)
    (folder / "big.request").write_bytes(b" " * (control.REQUEST_LIMIT + 1))
    (folder / "dir.request").mkdir()
    (folder / ".half.request.tmp").write_text("{}")  # being written: not a request yet
    (folder / "ok.request").write_text(json.dumps({"action": "start", "nodes": ["a"]}))
    found = {reply.name: (data, refused) for reply, data, refused in control.pending(run_dir)}
    assert found["ok.reply"] == (b'{"action": "start", "nodes": ["a"]}', None)
    assert "cannot read the request" in found["link.reply"][1]
    assert f"over the limit of {control.REQUEST_LIMIT}: refused" in found["big.reply"][1]
    assert found["dir.reply"][0] is None and found["dir.reply"][1]
    assert target.exists()  # a link is never followed, nor its target touched
    assert sorted(os.listdir(folder)) == [".half.request.tmp", "dir.request"]  # a folder cannot be unlinked


def test_a_control_folder_others_may_write_in_is_not_read(run_dir):
    folder = control.control_dir(run_dir, create=True)
    (folder / "x.request").write_text(json.dumps({"action": "stop", "nodes": ["a"]}))
    folder.chmod(0o777)
    assert control.pending(run_dir) == []
    assert (folder / "x.request").exists()

"""``ctl list [--json]``: every cluster of yours on this host.

One row per run directory that holds a cluster: its name, state (running, stopped,
failed, dead: its supervisor is gone without a stop, damaged: its record cannot be
read), nodes alive of those recorded, the supervisor's pid while it runs, and the run
directory. The cluster a bare command of this shell acts on (``-t``, else
``ECHOFINN_CLUSTER``, else the one running, else the most recently started) is marked
``*``; with several running and no choice made, none is, and the line under the table
says how to choose. Exit 0, also when there is none.

``--json``: ``{"base", "clusters": [{"name", "state", "running", "nodes", "nodes_alive",
"supervisor", "run_dir", "topology", "problem", "selected"}], "selected", "selected_by",
"choose"}``.
"""

ORDER = 11
HELP = "every cluster of yours on this host: name, state, nodes, run directory"
DESCRIPTION = __doc__


def add_arguments(p):
    from ctl.common import add_json_option

    add_json_option(p)


def run(args) -> int:
    import argparse

    from ctl.clusters import clusters
    from ctl.common import chosen
    from ctl.output import print_json
    from daemon import rundir
    from daemon.errors import UserError

    found = clusters()
    selected, why, choose = None, None, None
    try:
        choice = chosen(argparse.Namespace(topology=None))
        selected, why = choice.name, choice.why
    except UserError as exc:
        choose = str(exc)
    rows = []
    for c in found:
        supervisor = rundir.folder_supervisor_pid(c.folder) if c.running else None
        rows.append(
            {
                "name": c.name,
                "state": c.state,
                "running": c.running,
                "nodes": len(c.nodes),
                "nodes_alive": len(c.alive_nodes()),
                "supervisor": supervisor,
                "run_dir": str(c.folder),
                "topology": c.record.topology if c.record is not None else None,
                "problem": c.problem,
                "selected": c.name == selected and ".rank-" not in c.folder.name,
            }
        )
    if args.json:
        print_json(
            {
                "base": str(rundir.base_dir()),
                "clusters": rows,
                "selected": selected,
                "selected_by": why,
                "choose": choose,
            }
        )
        return 0
    if not rows:
        print(f"no cluster of yours on this host (none under {rundir.base_dir()}); start one with `ctl start seed`")
        return 0
    table = [(" ", "NAME", "STATE", "NODES", "SUPERVISOR", "RUN DIRECTORY")]
    for r in rows:
        table.append(
            (
                "*" if r["selected"] else " ",
                r["name"],
                r["state"],
                f"{r['nodes_alive']}/{r['nodes']}",
                str(r["supervisor"] or "-"),
                r["run_dir"],
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    for r in rows:
        if r["problem"]:
            print(f"{r['name']}: {r['problem']}")
    if selected is not None:
        print(f"* bare commands in this shell act on {selected} ({why})")
    elif choose:
        print(choose)
    return 0

"""``ctl``: the operator's command line for an echofinn cluster."""

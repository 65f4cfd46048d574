"""The installable command line: `daemonviz` and the kubectl plugin `kubectl-daemonviz`.

Only the engine (dashboard.coverage) and the kube layer (dashboard.kube) are imported: no
Django, no settings, no database, so `pip install daemonviz` without the `[server]` extra
is enough (tests/unit/test_layering.py keeps it that way).
"""

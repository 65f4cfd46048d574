"""The coverage engine: pure domain code (no Django, no kubernetes client).

Records decode raw Kubernetes JSON; eligibility decides where a DaemonSet should run;
cells classify each (node, DaemonSet) pair; the matrix applies watch events and reports
exactly the cells that changed.
"""

"""The only code that talks to Kubernetes API servers (imports `kubernetes`; no Django)."""

"""Signing in: local passwords (with a break-glass admin), OpenID Connect through
mozilla-django-oidc, and the opt-in auth-proxy header. Roles come from the identity
provider's groups (roles.py); settings are read in daemonviz/auth_settings.py."""

"""tenantdb: a Kubernetes operator for per-user and per-workspace Neon databases.

The package imports as ``tenantdb`` (its folder is ``operator/tenantdb``) so that nothing
shadows Python's standard ``operator`` module.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

"""kopf registrations only: decode the object, call a reconciler, translate its outcome.

kopf is imported here and nowhere else in the operator (an import-linter contract).
"""

"""Switching a platform that provisioned its own databases over to the operator (``tenantdb adopt``).

``survey`` says, without writing anything, what switching on would do to each user and workspace
(adopt, create, leave alone, blocked) and what is inconsistent; ``report`` renders it (text or
JSON with stable keys); ``switch_on`` creates the resources the Sim sync would create, paced and
resumable, with progress; ``command`` is the CLI's entry, settings from the environment.
"""

from tenantdb.reconcile.adoption.command import adopt_from_environment
from tenantdb.reconcile.adoption.survey import Action, Inconsistency, Problem, Survey, TenantPlan, survey
from tenantdb.reconcile.adoption.switch_on import Progress, switch_on

__all__ = [
    "Action",
    "Inconsistency",
    "Problem",
    "Progress",
    "Survey",
    "TenantPlan",
    "adopt_from_environment",
    "survey",
    "switch_on",
]

"""The pool of Neon organisations tenants are placed in (NeonOrganization objects)."""

from tenantdb.reconcile.organizations.placement import Candidate, choose
from tenantdb.reconcile.organizations.pool import Member, OrganizationPool, OrganizationSource

__all__ = ["Candidate", "Member", "OrganizationPool", "OrganizationSource", "choose"]

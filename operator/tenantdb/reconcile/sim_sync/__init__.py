"""The Sim sync: custom resources kept in line with Sim Studio's own tables (zero-code Sim).

``desired`` turns a snapshot of Sim's tables into the resources that should exist, ``plan``
compares them with the cluster and says what to create, patch, delete or leave alone, ``loop``
runs it: a cheap fingerprint query every poll interval, a snapshot and a plan when it changed,
a full comparison with a fresh listing of the cluster at start and every full-sync interval.
"""

from tenantdb.reconcile.sim_sync.loop import SimSync

__all__ = ["SimSync"]

"""Budgets: what the operator knows (``registry``), what it does (``loop``), and the one place a
budget's status is built and written (``status``); ``ports`` are what they need from outside.
``reconcile.budget_sync.BudgetSync`` is the registry with its loop, as the handlers hold it."""

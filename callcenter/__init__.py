"""Shared contracts of the call center: imported by agent, dialing, post-call and the browser.

Only data shapes and naming rules live here (no I/O, no framework imports), so the
agent image and the Dagster code location can both depend on it.
"""

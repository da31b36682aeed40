"""Payments health, reconciliation and the kill switch.

Private to the oncall.runbooks collection: imported by its own modules and plugins only. Names
here may change in any release without a deprecation; other collections must not import them.
"""

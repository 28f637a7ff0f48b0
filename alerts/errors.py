"""Errors of the alerts package: every one a user can fix derives from AlertsError (a UserError)."""

from __future__ import annotations

from sentimon.core.errors import UserError


class AlertsError(UserError):
    """Base of every user-fixable alerts error; the message names the thing and the fix."""


class RuleError(AlertsError):
    """A rule file that does not parse or validate; the message names the file, the rule and the field."""


class HistoryError(AlertsError):
    """The alert history database cannot be reached or migrated."""

"""Stock and public-opinion alerts over the Redis windows.

Start reading at ``evaluate`` (rule + window reader + entity + event time -> Observation) and ``step`` (the
anti-flap state machine); ``AlertEngine`` runs both for the rule sets that select an entity; ``stream_hook``
wires it to the stream with shared Redis states, the SQL history and the sinks.
"""

from sentimon.alerts.engine import AlertEngine
from sentimon.alerts.errors import AlertsError, HistoryError, RuleError
from sentimon.alerts.evaluate import Observation, WindowCatalog, WindowReader, evaluate
from sentimon.alerts.history import History
from sentimon.alerts.schema import RuleSet, load_ruleset, load_rulesets, parse_ruleset
from sentimon.alerts.service import AlertService, stream_hook
from sentimon.alerts.state import AlertState, Notification, step
from sentimon.alerts.store import MemoryStates, RedisStates

__all__ = [
    "AlertEngine",
    "AlertService",
    "AlertState",
    "AlertsError",
    "History",
    "HistoryError",
    "MemoryStates",
    "Notification",
    "Observation",
    "RedisStates",
    "RuleError",
    "RuleSet",
    "WindowCatalog",
    "WindowReader",
    "evaluate",
    "load_ruleset",
    "load_rulesets",
    "parse_ruleset",
    "step",
    "stream_hook",
]

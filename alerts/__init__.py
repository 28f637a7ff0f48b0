"""Stock and public-opinion alerts over the Redis windows.

Start reading at ``evaluate`` (rule + window reader + entity + event time -> Observation) and ``step`` (the
anti-flap state machine); ``AlertEngine`` runs both for the rule sets that select an entity; ``stream_hook``
wires it to the stream with shared Redis states, the SQL history and the sinks.
"""

from alerts.engine import AlertEngine
from alerts.errors import AlertsError, HistoryError, RuleError
from alerts.evaluate import Observation, WindowReader, evaluate
from alerts.history import History
from alerts.schema import RuleSet, load_ruleset, load_rulesets, parse_ruleset
from alerts.service import AlertService, stream_hook
from alerts.state import AlertState, Notification, step
from alerts.store import MemoryStates, RedisStates

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
    "WindowReader",
    "evaluate",
    "load_ruleset",
    "load_rulesets",
    "parse_ruleset",
    "step",
    "stream_hook",
]

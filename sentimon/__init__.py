"""sentimon: streaming sentiment monitoring.

Where to start reading: ``sentimon.core.settings`` (the one settings object), ``sentimon.cli`` (the commands),
then the packages they wire: ``infra`` (local stack), ``inference`` (scoring), ``streams`` (Faust worker),
``alerts`` (rules), ``replay`` (replays and the demo), ``compression`` (model builds), ``bench`` (benchmarks).
Each is ``sentimon.<part>``; README "Packages" shows which imports which.
"""

from sentimon.core.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
__version__ = "0.1.0"

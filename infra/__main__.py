"""`python -m sentimon.infra fetch`: download the Kafka broker jars into the cache (used by infra/bootstrap.sh)."""

import sys

from sentimon.core.settings import load_settings
from sentimon.infra.kafka_service import KafkaService


def main(argv: list[str]) -> int:
    if argv != ["fetch"]:
        print("usage: python -m sentimon.infra fetch", file=sys.stderr)
        return 2
    settings = load_settings()
    print(f"kafka {settings.stack.kafka_version} jars: {KafkaService(settings).fetch_jars()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

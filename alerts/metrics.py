"""Prometheus metrics of the alerts engine, built from a registry argument (tests pass a fresh one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class AlertMetrics:
    notifications: Counter
    evaluations: Counter
    errors: Counter
    deliveries: Counter
    delivered: Counter
    redeliveries: Counter
    evaluation_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = REGISTRY) -> AlertMetrics:
        return cls(
            notifications=Counter("sentimon_alert_notifications_total", "Alert notifications by kind and severity.",
                                  ["kind", "severity"], registry=registry),
            evaluations=Counter("sentimon_alert_evaluations_total", "Rule evaluations by rule kind.", ["rule_kind"],
                                registry=registry),
            errors=Counter("sentimon_alert_errors_total", "Alert failures by stage.", ["stage"], registry=registry),
            deliveries=Counter("sentimon_alert_deliveries_total", "Sink deliveries by sink and outcome.",
                               ["sink", "outcome"], registry=registry),
            delivered=Counter("sentimon_alert_notifications_delivered_total",
                              "Notifications every sink confirmed.", registry=registry),
            redeliveries=Counter("sentimon_alert_redeliveries_total",
                                 "Notifications submitted again: a sink or the history failed, or a worker died.",
                                 registry=registry),
            evaluation_seconds=Histogram("sentimon_alert_evaluation_seconds", "Time to evaluate one batch's entities.",
                                         buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5), registry=registry),
        )  # fmt: skip

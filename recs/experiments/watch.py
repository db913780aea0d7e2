"""What the workers do with a fresh rollup: keep the sample ratio verdict on the experiment, and
pause a challenger that a guardrail says is hurting shoppers. Reads the same report as the
dashboard, so the admin shows exactly why."""

import logging

from merch.selectors.experiments import ExperimentConfig
from merch.services.experiments import pause_challenger, record_sample_ratio_check
from recs.experiments.report import ExperimentReport, experiment_report

logger = logging.getLogger(__name__)


def watch_experiment(experiment: ExperimentConfig) -> ExperimentReport:
    """Record the sample ratio check and pause the challengers whose guardrails tripped (only
    while the experiment runs); returns the report it decided from."""
    report = experiment_report(experiment)
    check = report.sample_ratio
    if check is not None:
        record_sample_ratio_check(experiment.id, check.result.overall.p_value, check.flagged)
    if experiment.status != "running":
        return report
    for breach in report.guardrail_breaches:
        if pause_challenger(experiment.id, breach.variant, breach.reason):
            logger.warning(
                "Experiment %s: paused '%s'. %s", experiment.id, breach.variant, breach.reason
            )
    return report

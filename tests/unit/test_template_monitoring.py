"""template.yaml's alarms and dashboard: every failure case of docs/operations.md is watched.

Each alarm is checked for what makes it work on AWS: the right namespace, metric and dimension (a
typo there is an alarm that never fires), a statistic, a threshold, and the optional topic wired to
both ALARM and OK. The framework's own alarms must use the namespace and service the functions
really emit under (the Globals' POWERTOOLS_* variables).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
from check_asl import load_template  # noqa: E402

from sfn_workers import _metrics  # noqa: E402

T = load_template(ROOT / "template.yaml")
R: dict[str, Any] = T["Resources"]
ENV = T["Globals"]["Function"]["Environment"]["Variables"]
ALARMS = {name: r["Properties"] for name, r in R.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
FUNCTIONS = [name for name, r in R.items() if r["Type"] == "AWS::Serverless::Function"]


def alarms_on(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [p for p in ALARMS.values() if p["Namespace"] == namespace and p["MetricName"] == metric]


def dimension(props: dict[str, Any]) -> tuple[str, Any]:
    [only] = props["Dimensions"]
    return only["Name"], only["Value"]


def test_every_alarm_notifies_the_optional_topic_on_alarm_and_ok() -> None:
    assert T["Conditions"]["HasAlarmTopic"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}
    assert T["Parameters"]["AlarmTopicArn"]["Default"] == ""
    wired = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert len(ALARMS) == 4 + 3 * len(FUNCTIONS) + 2 + 4  # state machine, functions, DLQ + table, framework
    for name, props in ALARMS.items():
        assert props["AlarmActions"] == wired and props["OKActions"] == wired, name
        assert props["TreatMissingData"] == "notBreaching", name  # no traffic is not an incident
        assert props["EvaluationPeriods"] >= 1 and props["Period"] >= 60, name


@pytest.mark.parametrize(
    "metric", ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted", "ExecutionThrottled"]
)
def test_the_state_machine_alarms_on(metric: str) -> None:
    [props] = alarms_on("AWS/States", metric)
    assert dimension(props) == ("StateMachineArn", {"Ref": "OrderStateMachine"})
    assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == (
        "Sum",
        1,
        "GreaterThanOrEqualToThreshold",
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_has_errors_throttles_and_a_duration_alarm_near_its_timeout(function: str) -> None:
    def on(metric: str) -> dict[str, Any]:
        [props] = [p for p in alarms_on("AWS/Lambda", metric) if dimension(p) == ("FunctionName", {"Ref": function})]
        return props

    assert on("Errors")["Threshold"] == 1 and on("Throttles")["Threshold"] == 1
    timeout_s = R[function]["Properties"].get("Timeout", T["Globals"]["Function"]["Timeout"])
    duration = on("Duration")
    assert duration["ExtendedStatistic"] == "p99"
    assert duration["Threshold"] == pytest.approx(0.8 * timeout_s * 1000)
    assert duration["ComparisonOperator"] == "GreaterThanThreshold"


def test_the_dead_letter_queue_alarms_on_any_visible_message() -> None:
    [props] = alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert dimension(props) == ("QueueName", {"Fn::GetAtt": ["InvoiceDeadLetterQueue", "QueueName"]})
    assert props["Threshold"] == 1


@pytest.mark.parametrize(
    "metric", ["CallbackUndeliverable", "WatchdogFired", "RetryBudgetExhausted", "PayloadPointerError"]
)
def test_the_framework_metrics_that_put_a_token_or_payload_at_risk_have_alarms(metric: str) -> None:
    # GIVEN the namespace and service the functions emit under
    [props] = alarms_on(ENV["POWERTOOLS_METRICS_NAMESPACE"], metric)
    # THEN the alarm watches that metric, with the one dimension the framework writes
    assert dimension(props) == ("service", ENV["POWERTOOLS_SERVICE_NAME"])
    assert metric in _metrics.METRICS  # a name the framework really emits
    assert props["Threshold"] == 1


def _dashboard_metrics() -> list[list[Any]]:
    body = R["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # Fill the ${...} substitutions with strings (the parameter a number), as CloudFormation would.
    text = re.sub(r"\$\{AccountConcurrencyLimit\}", "1000", body)
    text = re.sub(r"\$\{[A-Za-z0-9:.]+\}", "x", text)
    widgets = json.loads(text)["widgets"]
    return [m for w in widgets for m in w["properties"]["metrics"]]


def test_the_dashboard_shows_the_funnel_latency_concurrency_retries_and_offloading() -> None:
    names = {(m[0], m[1]) for m in _dashboard_metrics()}
    funnel = {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert {("AWS/States", n) for n in funnel} <= names
    assert {("AWS/Lambda", "Duration"), ("AWS/Lambda", "ConcurrentExecutions")} <= names
    ns = ENV["POWERTOOLS_METRICS_NAMESPACE"]
    assert {(ns, "Retries"), (ns, "RetryBudgetExhausted"), (ns, "OffloadedBytes"), (ns, "ResolvedBytes")} <= names
    body = R["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "${AccountConcurrencyLimit}" in body  # the account limit drawn against concurrency


def test_every_function_appears_in_the_dashboards_latency_widget() -> None:
    body = R["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    for function in FUNCTIONS:
        assert f'"FunctionName", "${{{function}}}"' in body, function


def test_the_framework_metrics_on_the_dashboard_are_ones_it_emits() -> None:
    ns = ENV["POWERTOOLS_METRICS_NAMESPACE"]
    for metric in _dashboard_metrics():
        if metric[0] == ns:
            assert metric[1] in _metrics.METRICS, metric[1]
            assert metric[2:4] == ["service", ENV["POWERTOOLS_SERVICE_NAME"]]


def test_the_operations_page_documents_every_metric_and_names_the_alarms_of_its_runbook() -> None:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`") for line in page.splitlines() if line.startswith("| `")}
    assert set(_metrics.METRICS) <= rows
    for alarm in ["SfnWorkersCallbackUndeliverableAlarm", "SfnWorkersRetryBudgetExhaustedAlarm"]:
        assert alarm in ALARMS and alarm in page
    mentioned = set(re.findall(r"`([A-Za-z]+Alarm)`", page))
    assert mentioned <= set(ALARMS), mentioned - set(ALARMS)

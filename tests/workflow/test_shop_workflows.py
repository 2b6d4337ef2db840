"""Workflows in the shapes users build, on the local runner (fixtures/shop): event-driven with
EventBridge, an HTTP API call with retries, nested orchestration, a saga with compensation, a
polling loop, a fan-out that tolerates failures, callbacks over SQS, aws-sdk calls. Each asserts
what AWS documents for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import LocalRunner, run_execution
from sfn_workers.local.asl import ExecutionResult

SHOP = Path(__file__).parent / "fixtures" / "shop" / "template.yaml"


def events_of(result: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in result.history if e["type"] == kind]


def output(result: ExecutionResult) -> Any:
    """The execution's output (any JSON value)."""
    return result.output


def name_of(runner: LocalRunner, logical_id: str) -> str:
    """The local physical name of a template resource."""
    assert runner.template is not None
    return runner.template.resources[logical_id].name


# -- event-driven with EventBridge ------------------------------------------------------------------


def test_put_events_reaches_the_rules_targets_and_links_the_execution() -> None:
    # GIVEN a rule on the shop bus matching OrderPlaced, targeting an SQS queue and a function
    with LocalRunner(SHOP, state_machine="AnnounceMachine") as runner:
        # WHEN the state machine puts an OrderPlaced and an OrderViewed event
        result = runner.run({"orderId": "o-7"}, name="announce-1")
        sqs, dynamodb = runner.emulator.client("sqs"), runner.emulator.client("dynamodb")
        queue = sqs.get_queue_url(QueueName=name_of(runner, "AuditQueue"))["QueueUrl"]
        audited = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        table = name_of(runner, "ReceivedTable")
        recorded = dynamodb.scan(TableName=table)["Items"]
        viewed = dynamodb.scan(TableName=name_of(runner, "ViewsTable"))["Items"]

    # THEN the Task returns PutEvents' answer with no failed entry
    assert result.status == "SUCCEEDED", result.cause
    assert output(result)["FailedEntryCount"] == 0
    assert [bool(e.get("EventId")) for e in output(result)["Entries"]] == [True, True]
    # AND only the matching event reached both targets (moto delivered to SQS, the runner to the function)
    assert len(audited) == 1 and len(recorded) == 1
    for event in (json.loads(audited[0]["Body"]), json.loads(recorded[0]["event"]["S"])):
        assert event["detail-type"] == "OrderPlaced"
        assert event["detail"] == {"orderId": "o-7"}
        # AND, as AWS's optimised integration does, the execution and state machine ARNs are in Resources
        assert runner.arn.replace(":stateMachine:", ":execution:") + ":announce-1" in event["resources"]
        assert runner.arn in event["resources"]
    # AND a function's own EventBridgeRule event (SAM's shorthand for a rule) got the other event
    assert [json.loads(v["event"]["S"])["detail-type"] for v in viewed] == ["OrderViewed"]


# -- an HTTP API call with retries ------------------------------------------------------------------


class Api(BaseHTTPRequestHandler):
    """A small API: /flaky answers 503 twice, then 200; /missing 404; anything else echoes."""

    calls: list[dict[str, Any]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.calls.append(
                {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            )
            flaky_calls = sum(1 for c in self.calls if c["path"].startswith("/flaky"))
        if self.path.startswith("/missing") or (self.path.startswith("/flaky") and flaky_calls <= 2):
            status = 404 if self.path.startswith("/missing") else 503
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"message": "not now"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"received": json.loads(body), "path": self.path}).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def api() -> Iterator[str]:
    Api.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_http_invoke_retries_a_503_and_returns_awss_response_shape(api: str) -> None:
    # WHEN the API answers 503 twice before 200 (Retry: 503, 3 attempts, 2 s then 4 s)
    result = run_execution(SHOP, {"url": f"{api}/flaky", "orderId": "o-1"}, state_machine="HttpMachine")

    # THEN the state succeeded on the third request, with the parsed JSON body and the status as text
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"status": "200", "body": {"received": {"orderId": "o-1"}, "path": "/flaky?page=1"}}
    failures = [e["taskFailedEventDetails"]["error"] for e in events_of(result, "TaskFailed")]
    assert failures == ["States.Http.StatusCode.503"] * 2
    # AND the request carried the JSON body, the headers and query parameters as written
    last = Api.calls[-1]
    assert last["headers"]["content-type"] == "application/json"
    assert last["headers"]["x-shop"] == "local"
    # AND the retries waited on the virtual clock, 2 s then 4 s
    failed = events_of(result, "TaskFailed")
    scheduled = events_of(result, "TaskScheduled")
    gaps = [(s["timestamp"] - f["timestamp"]).total_seconds() for f, s in zip(failed, scheduled[1:], strict=True)]
    assert [round(g) for g in gaps] == [2, 4]


def test_http_invoke_404_is_catchable_by_its_status_code(api: str) -> None:
    result = run_execution(SHOP, {"url": f"{api}/missing", "orderId": "o-2"}, state_machine="HttpMachine")

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"notFound": True, "error": "States.Http.StatusCode.404"}


def test_http_invoke_with_nothing_listening_fails_with_states_http_socket() -> None:
    result = run_execution(SHOP, {"url": "http://127.0.0.1:9/x", "orderId": "o-3"}, state_machine="HttpMachine")

    assert result.status == "FAILED"
    assert result.error == "States.Http.Socket"


# -- nested orchestration ---------------------------------------------------------------------------


def test_nested_executions_sync_sync2_fire_and_forget_and_callback() -> None:
    with LocalRunner(SHOP, state_machine="ParentMachine") as runner:
        result = runner.run({"name": "ada"}, name="parent-1")
        background = runner.services.nested.children if runner.services.nested else []
        for thread in background:
            thread.join(5)

    assert result.status == "SUCCEEDED", result.cause
    parent_arn = runner.arn.replace(":stateMachine:", ":execution:") + ":parent-1"
    got: Any = result.output
    # .sync: DescribeExecution's answer, Output as JSON text
    assert got["sync"]["Status"] == "SUCCEEDED"
    assert got["sync"]["Name"] == "sync-child"
    assert json.loads(got["sync"]["Output"]) == {
        "greeting": "hello ada",
        "startedBy": parent_arn,
        "executionName": "sync-child",
    }
    assert isinstance(got["sync"]["Input"], str)
    # .sync:2: the same with Output as JSON
    assert got["syncJson"] == {"greeting": "hello ada", "startedBy": parent_arn, "status": "SUCCEEDED"}
    # request-response: the child's ARN, the Task did not wait for it
    assert ":execution:GreetChildMachine:" in got["started"]["arn"]
    # .waitForTaskToken: the child's function answered the parent's token
    assert got["callback"] == {"doubled": 42}
    # a failed child fails the .sync Task with States.TaskFailed and its DescribeExecution as the cause
    failure = got["childFailure"]
    assert failure["Error"] == "States.TaskFailed"
    assert json.loads(failure["Cause"])["Status"] == "FAILED"
    assert json.loads(failure["Cause"])["Error"] == "Child.Refused"


def test_starting_an_unknown_state_machine_names_the_ones_the_runner_knows() -> None:
    definition = {
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution",
                "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Nope"},
                "End": True,
            }
        },
    }

    result = run_execution(definition, {})

    assert result.status == "FAILED"
    assert result.error == "StepFunctions.StateMachineDoesNotExistException"
    assert "stateMachine:StateMachine" in str(result.cause)


# -- a saga with compensation -----------------------------------------------------------------------


def test_saga_compensates_a_declined_payment_and_fails_with_the_cause() -> None:
    with LocalRunner(SHOP, state_machine="SagaMachine") as runner:
        declined = runner.run({"orderId": "o-big", "amount": 500})
        paid = runner.run({"orderId": "o-small", "amount": 20})
        twice = runner.run({"orderId": "o-small", "amount": 20})
        table = name_of(runner, "ReservationsTable")
        kept = {i["id"]["S"] for i in runner.emulator.client("dynamodb").scan(TableName=table)["Items"]}

    # THEN the declined order was released again and the execution failed with the handler's cause
    assert declined.status == "FAILED"
    assert declined.error == "OrderFailed"
    assert "card refused for 500" in str(declined.cause)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events_of(declined, "TaskStateEntered")]
    assert entered == ["Reserve", "Charge", "Release"]
    # AND the paid order keeps its reservation; reserving it again trips the condition
    assert paid.status == "SUCCEEDED", paid.cause
    assert kept == {"o-small"}
    assert twice.status == "FAILED"
    assert twice.error == "AlreadyReserved"


# -- a polling loop ---------------------------------------------------------------------------------


def test_polling_loop_waits_on_the_virtual_clock_until_the_job_is_done() -> None:
    result = run_execution(SHOP, {"jobId": "j-1", "readyAfter": 4}, state_machine="PollingMachine")

    assert result.status == "SUCCEEDED", result.cause
    assert output(result)["checks"] == 4
    waits = events_of(result, "WaitStateEntered")
    assert len(waits) == 3
    took = (result.stop - result.start).total_seconds()
    assert 90 <= took < 100  # three 30-second waits, in simulated time


# -- a fan-out that tolerates failures --------------------------------------------------------------


def test_fan_out_tolerates_failures_up_to_the_percentage() -> None:
    few_bad = [{"sku": f"s{i}", "bad": i == 0} for i in range(8)]  # 12.5 % fail
    many_bad = [{"sku": f"s{i}", "bad": i < 3} for i in range(8)]  # 37.5 % fail

    tolerated = run_execution(SHOP, {"items": few_bad}, state_machine="FanOutMachine")
    exceeded = run_execution(SHOP, {"items": many_bad}, state_machine="FanOutMachine")

    assert tolerated.status == "SUCCEEDED", tolerated.cause
    assert exceeded.status == "FAILED"
    assert exceeded.error == "States.ExceedToleratedFailureThreshold"


# -- callbacks over SQS -----------------------------------------------------------------------------


def test_callbacks_over_sqs_each_parcel_answered_by_the_queue_worker() -> None:
    parcels = [f"p{i}" for i in range(7)]

    result = run_execution(SHOP, {"parcels": parcels}, state_machine="PackingMachine")

    assert result.status == "SUCCEEDED", result.cause
    assert result.output == [{"packed": p} for p in parcels]


# -- aws-sdk calls ----------------------------------------------------------------------------------


def test_aws_sdk_calls_take_null_members_and_their_errors_are_catchable_by_awss_names() -> None:
    result = run_execution(SHOP, {"sku": "b-1", "title": "Dune"}, state_machine="CatalogMachine")

    assert result.status == "SUCCEEDED", result.cause
    assert output(result)["title"] == "Dune"
    assert output(result)["missing"]["Error"] == "DynamoDb.ResourceNotFoundException"


# -- ETL with a Distributed Map over S3 -------------------------------------------------------------


def test_etl_distributed_map_reads_every_file_under_a_prefix_and_writes_results_to_s3() -> None:
    with LocalRunner(SHOP, state_machine="EtlMachine") as runner:
        s3 = runner.emulator.client("s3")
        bucket = name_of(runner, "DataBucket")
        for n in range(5):
            body = json.dumps({"orderId": f"o-{n}", "amount": 10 * n, "shipping": 5})
            s3.put_object(Bucket=bucket, Key=f"incoming/{n}.json", Body=body)
        s3.put_object(Bucket=bucket, Key="elsewhere/ignored.json", Body="{}")

        result = runner.run({})
        manifest_key = output(result)["ResultWriterDetails"]["Key"] if result.status == "SUCCEEDED" else ""
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
        written = [
            json.loads(s3.get_object(Bucket=bucket, Key=f["Key"])["Body"].read())
            for f in manifest["ResultFiles"].get("SUCCEEDED", [])
        ]

    assert result.status == "SUCCEEDED", result.cause
    assert manifest_key.startswith("results/")
    totals = sorted(json.loads(item["Output"])["total"] for rows in written for item in rows)
    assert totals == [5, 15, 25, 35, 45]


def test_a_callback_over_eventbridge_is_answered_by_the_rules_function() -> None:
    # GIVEN putEvents.waitForTaskToken whose event a function on the default bus answers
    result = run_execution(SHOP, {"orderId": "o-9"}, state_machine="EventCallbackMachine")

    # THEN the Task's result is what the function sent with SendTaskSuccess
    assert result.status == "SUCCEEDED", result.cause
    assert output(result)["approval"] == {"approvedBy": "event-listener", "orderId": "o-9"}
    kinds = [e["type"] for e in result.history]
    assert kinds.index("TaskSubmitted") < kinds.index("TaskSucceeded")

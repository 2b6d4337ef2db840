"""The template's state machines exist as soon as ``serve`` has started, with their type."""

from __future__ import annotations

import json
from pathlib import Path

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Quick:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: quick
      Type: EXPRESS
      Definition:
        StartAt: Hi
        States:
          Hi:
            Type: Pass
            Parameters:
              "hello.$": "$.name"
            End: true
"""


def test_template_state_machines_are_created_at_start_with_their_type(tmp_path: Path) -> None:
    from sfn_workers.local.api.server import start_server

    (tmp_path / "template.yaml").write_text(TEMPLATE)
    srv = start_server(tmp_path / "template.yaml", port=0)
    try:
        listed = srv.service.list_state_machines({})["stateMachines"]
        assert [(m["name"], m["type"]) for m in listed] == [("quick", "EXPRESS")]
        answer = srv.service.start_sync_execution(
            {"stateMachineArn": listed[0]["stateMachineArn"], "input": json.dumps({"name": "Ada"})}
        )
        assert (answer["status"], json.loads(answer["output"])) == ("SUCCEEDED", {"hello": "Ada"})
    finally:
        srv.close()

"""Hostile templates: a billion-laughs file, YAML alias cycles, condition and !Ref cycles fail fast and say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sfn_workers.local.sam import TemplateError, load_template

from .local.bounded_child import run_bounded


def _billion_laughs() -> str:
    lines = ["Parameters:", '  L0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  L{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines += ["Resources:", "  Q:", "    Type: AWS::SQS::Queue", "    Properties:", "      Tags: *l9"]
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_template_fails_fast_naming_the_file(tmp_path: Path) -> None:
    # GIVEN a template.yaml under 1 KB whose aliases expand to 9**10 strings
    template = tmp_path / "template.yaml"
    template.write_text(_billion_laughs(), encoding="utf-8")
    assert template.stat().st_size < 1024
    # WHEN it is loaded in a child with 512 MB of address space, killed after 30 s
    code = (
        "import json\nfrom pathlib import Path\nfrom sfn_workers.local.sam import TemplateError, load_template\n"
        f"try:\n    load_template(Path({json.dumps(str(template))}))\n    print(json.dumps('loaded'))\n"
        "except TemplateError as exc:\n    print(json.dumps(str(exc)))\n"
    )
    message = run_bounded(code, seconds=30, memory_mb=512)
    # THEN it is a TemplateError naming the file and what is wrong
    assert message.startswith(str(template))
    assert "aliases expand to more than" in message


def test_a_yaml_alias_inside_itself_is_a_cycle_error(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text("Resources:\n  A: &x\n    Type: AWS::SQS::Queue\n    Properties:\n      Self: *x\n")
    with pytest.raises(TemplateError, match=r"template\.yaml: Resources\.A \(line 2\): .*cycle"):
        load_template(template)


def test_conditions_referring_to_each_other_name_the_file_and_the_chain(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Conditions:\n"
        "  IsProd: !And [!Condition IsLive, !Equals [a, a]]\n"
        "  IsLive: !Not [!Condition IsProd]\n"
        "Resources:\n"
        "  Queue:\n    Type: AWS::SQS::Queue\n    Condition: IsProd\n"
    )
    with pytest.raises(TemplateError) as caught:
        load_template(template)
    assert str(caught.value).startswith(str(template))
    assert "IsProd -> IsLive -> IsProd" in str(caught.value)


def test_resources_naming_each_other_name_the_file_and_the_resources(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !GetAtt Topic.TopicName\n"
        "  Topic:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Sub '${Queue}-topic'\n"
    )
    with pytest.raises(TemplateError) as caught:
        load_template(template)
    assert str(caught.value).startswith(str(template))
    assert "names itself in a cycle (Topic -> Queue -> Topic)" in str(caught.value)


def test_a_deeply_nested_template_is_a_template_error(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      Deep: " + "[" * 300 + "]" * 300
    )
    with pytest.raises(TemplateError, match="nested deeper than"):
        load_template(template)

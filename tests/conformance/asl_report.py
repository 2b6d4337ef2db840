"""Print the conformance pass rate per family as a Markdown table (for docs/asl-support.md).

Run: ``.venv/bin/python -m tests.conformance.asl_report``
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from .test_asl_conformance import CASES, CASES_FILE, run_case


def _family(case: dict[str, object]) -> str:
    uses_jsonata = '"JSONata"' in json.dumps(case["definition"])
    return f"{case['family']} (JSONata)" if uses_jsonata else str(case["family"])


def main() -> int:
    if not CASES:
        print(f"{CASES_FILE} is absent", file=sys.stderr)
        return 1
    total: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    failing: list[tuple[str, str]] = []
    for case in CASES:
        fam = _family(case)
        total[fam] += 1
        try:
            problems = run_case(case)
        except Exception as exc:  # report, do not stop the table
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            failing.append((str(case["id"]), "; ".join(problems)))
        else:
            passed[fam] += 1
    print("| family | passed | cases | rate |")
    print("| --- | ---: | ---: | ---: |")
    for fam in sorted(total):
        print(f"| {fam} | {passed[fam]} | {total[fam]} | {100.0 * passed[fam] / total[fam]:.1f}% |")
    jp = [f for f in total if not f.endswith("(JSONata)")]
    jp_pass, jp_total = sum(passed[f] for f in jp), sum(total[f] for f in jp)
    all_pass, all_total = sum(passed.values()), sum(total.values())
    print(f"| **JSONPath cases** | {jp_pass} | {jp_total} | {100.0 * jp_pass / jp_total:.1f}% |")
    print(f"| **all cases** | {all_pass} | {all_total} | {100.0 * all_pass / all_total:.1f}% |")
    for case_id, why in failing:
        print(f"\nFAILING {case_id}: {why}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

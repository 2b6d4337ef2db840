"""The --graph pictures as a browser draws them: no two labels overlap, no edge crosses a state.

Each page is opened in headless Chromium (Debian's ``chromium``; the tests skip without it) with a
small script added that reads the drawn geometry (getBoundingClientRect of every shape and text,
points along every edge path) into the DOM, which ``--dump-dom`` prints. Both layouts are checked:
the built-in layered one always, Graphviz's dot when it is installed.

The screenshots in docs/ come from the same pages::

    chromium --headless --screenshot=docs/graph-happy.png --window-size=1100,1000 graph.html
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sfn_workers.local import LocalRunner, run_execution
from sfn_workers.local.graph import write_graph
from tests.workflow.test_local_graph import DEFINITION, handlers

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ENGINES = ["layered"] + (["dot"] if shutil.which("dot") else [])

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium)"
)

GEOMETRY = """
<script>
const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
const shape = (g) => g.querySelector('rect, path, polygon, ellipse, circle');
const title = (g) => (g.querySelector('title') || {textContent: ''}).textContent.trim();
const out = {nodes: [], clusters: [], edges: [], texts: []};
try {
for (const g of document.querySelectorAll('svg g.node')) {
  if (shape(g)) out.nodes.push({name: title(g), box: box(shape(g))});  // dot's invisible anchors have none
}
for (const g of document.querySelectorAll('svg g.cluster')) {
  if (shape(g)) out.clusters.push({name: title(g), box: box(shape(g))});  // and its invisible branch boxes
}
for (const g of document.querySelectorAll('svg g.edge')) {
  const path = g.querySelector('path');
  const m = path.getScreenCTM();
  const points = [];
  const length = path.getTotalLength();
  for (let l = 0; l <= length; l += 2) {
    const p = path.getPointAtLength(l);
    points.push([m.a * p.x + m.c * p.y + m.e, m.b * p.x + m.d * p.y + m.f]);
  }
  const labels = [...g.querySelectorAll('text')].map(box);
  out.edges.push({name: title(g), points, labels});
}
let owners = 0;
for (const g of document.querySelectorAll('svg g.node, svg g.edge, svg g.cluster')) g.dataset.owner = owners++;
for (const t of document.querySelectorAll('svg text')) {
  const owner = t.closest('g.node, g.edge, g.cluster');
  const text = t.textContent.trim();
  if (text) out.texts.push({text, box: box(t), owner: owner ? owner.dataset.owner : -1});
}
} catch (e) { out.error = String(e) + ' ' + e.stack; }
const pre = document.createElement('pre');
pre.id = 'geometry';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>
"""


def geometry(page: Path) -> dict[str, Any]:
    """The drawn geometry of ``page``, measured by Chromium."""
    probe = page.with_name("probe-" + page.name)
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", GEOMETRY + "</body>"), encoding="utf-8")
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1600,1200",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = re.search(r'<pre id="geometry">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, done.stderr[-2000:]
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    result: dict[str, Any] = json.loads(text)
    assert "error" not in result, result["error"]
    return result


def _overlap(a: list[float], b: list[float], slack: float = 0.5) -> bool:
    return a[0] + slack < b[2] and b[0] + slack < a[2] and a[1] + slack < b[3] and b[1] + slack < a[3]


def _inside(point: list[float], box: list[float], margin: float = 2.0) -> bool:
    return box[0] + margin < point[0] < box[2] - margin and box[1] + margin < point[1] < box[3] - margin


def problems(drawn: dict[str, Any]) -> list[str]:
    """Overlapping labels, and edges passing through a state (or a Parallel/Map box) they do not touch."""
    found: list[str] = []
    texts = drawn["texts"]
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:  # the lines of one label (same state or edge) may touch
            if a.get("owner") != b.get("owner") and _overlap(a["box"], b["box"]):
                found.append(f"labels overlap: {a['text']!r} and {b['text']!r}")
    nodes = {n["name"]: n["box"] for n in drawn["nodes"]}
    for edge in drawn["edges"]:
        ends = set(edge["name"].split("->"))
        end_boxes = [nodes[e] for e in ends if e in nodes]
        for name, node in nodes.items():
            if name not in ends and any(_inside(p, node) for p in edge["points"]):
                found.append(f"edge {edge['name']} crosses state {name}")
            for label in edge["labels"]:
                if _overlap(label, node, slack=1.0):
                    found.append(f"the label of edge {edge['name']} covers state {name}")
        for cluster in drawn["clusters"]:
            box = cluster["box"]
            holds_an_end = cluster["name"] in ends or any(
                box[0] <= b[0] and box[1] <= b[1] and b[2] <= box[2] and b[3] <= box[3] for b in end_boxes
            )
            if not holds_an_end and any(_inside(p, box) for p in edge["points"]):
                found.append(f"edge {edge['name']} crosses the box of {cluster['name']}")
    return found


def sample_page(tmp_path: Path, event: str, engine: str) -> Path:
    with LocalRunner(ROOT / "template.yaml") as runner:
        result = runner.run(json.loads((ROOT / "events" / event).read_text()))
        return write_graph(
            tmp_path / f"{engine}-{event}.html", runner.document, result, machine=runner.name, engine=engine
        )[0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("event", ["execution-happy.json", "execution-out-of-stock.json"])
def test_the_sample_pictures_have_no_overlapping_labels_and_no_edge_through_a_state(
    tmp_path: Path, event: str, engine: str
) -> None:
    drawn = geometry(sample_page(tmp_path, event, engine))

    assert len(drawn["nodes"]) >= 15 and len(drawn["edges"]) >= 20  # the whole sample was drawn
    assert problems(drawn) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_picture_with_retries_a_map_and_a_failed_branch_is_clean_and_says_what_happened(
    tmp_path: Path, engine: str
) -> None:
    result = run_execution(DEFINITION, {}, handlers=handlers())
    page = write_graph(tmp_path / "run.html", DEFINITION, result, machine="Demo", engine=engine)[0]

    drawn = geometry(page)
    texts = [t["text"] for t in drawn["texts"]]
    assert problems(drawn) == []
    assert "Fetch (Task) ↻2" in texts and "Each (Pass) x3" in texts
    assert "✗ ValueError" in texts  # the failing state says its error
    assert f"Demo — execution {result.name}" in page.read_text()


def test_the_checker_sees_overlaps_and_edges_through_states() -> None:
    drawn = {
        "texts": [{"text": "A", "box": [0, 0, 50, 12], "owner": 1}, {"text": "B", "box": [40, 5, 90, 17], "owner": 2}],
        "nodes": [
            {"name": "A", "box": [0, 0, 100, 30]},
            {"name": "B", "box": [0, 100, 100, 130]},
            {"name": "C", "box": [0, 50, 100, 80]},
        ],
        "edges": [{"name": "A->B", "points": [[50, 30], [50, 65], [50, 100]], "labels": []}],
        "clusters": [],
    }
    assert problems(drawn) == ["labels overlap: 'A' and 'B'", "edge A->B crosses state C"]

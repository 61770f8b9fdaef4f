"""The Prefect UI in a real browser.

A real ``prefect server start`` on loopback, the workspace's deployments served by
``python -m deployments.serve``, and Debian's headless Chromium driven by Playwright: the
operator's path Deployments → rollback → Run → Custom run shows the rollback flow's parameter
form (screenshot kept); filling task_id=T01 and to_version=1.2.0 and pressing Submit makes the
UI's own ``POST /api/deployments/{id}/create_flow_run``; the served runner completes that run,
T01 runs 1.2.0 again, and the run's ``rollback-t01`` markdown artifact reads 1.3.0 -> 1.2.0
through the REST API and on its page in the UI.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tasks_lib.runtime import process
from tests.prefect_cli import Api, deployments_served, running_server, wait_for
from tests.ui import (
    CHROMIUM,
    REPO,
    TERMINAL,
    chromium,
    form_field,
    form_labels,
    open_run_menu_item,
    submit_form,
)

pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}")]

ROLLBACK_PARAMETERS = {"workspace", "task_id", "to_version", "from_version", "reason", "grace_s"}
ARROW = re.compile(r"1\.3\.0\s*(->|→)\s*1\.2\.0")
SHOTS = REPO / "bench" / "out"                              # git-ignored


def keep(shot: Path) -> Path:
    """Copy a screenshot to bench/out (git-ignored) for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(shot, SHOTS / shot.name))


def test_the_ui_custom_run_of_the_rollback_deployment_rolls_back_and_reports(
        story, tmp_path: Path) -> None:
    ws, old_pid = story
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = time.monotonic() - started - sum(phases.values())

    with running_server(tmp_path / "prefect") as url, \
            deployments_served(ws.root, url, tmp_path, 3600) as serve_log:
        phase("server")
        api, ui = Api(url), url.removesuffix("/api")
        dep = wait_for("the served rollback deployment",
                       lambda: api.deployment_id("rollback/rollback"), 120)
        schema = httpx.get(f"{url}/deployments/{dep}", timeout=10).json()[
            "parameter_openapi_schema"]
        props = schema["properties"]
        assert ROLLBACK_PARAMETERS <= set(props), props
        by_position = sorted(props, key=lambda name: props[name].get("position", 0))
        titles = [props[name].get("title", name) for name in by_position]
        required = {props[name].get("title", name) for name in schema.get("required", [])}
        phase("served")

        with chromium(tmp_path / "chromium-profile") as page:
            # Deployments → rollback: the list links the deployment by its id
            page.goto(f"{ui}/deployments")
            link = page.locator(f'a[href="/deployments/deployment/{dep}"]').first
            link.wait_for()
            assert link.inner_text().strip() == "rollback"
            link.click()
            page.wait_for_url(re.compile(rf"/deployments/deployment/{dep}(\?.*)?$"))

            # Run → Custom run: the parameter form of the rollback flow
            open_run_menu_item(page, "Custom run")
            page.wait_for_url(re.compile(rf"/deployments/deployment/{dep}/run(\?.*)?$"))
            labels = page.locator(".schema-form-property__label")
            wait_for("the parameter form", lambda: labels.count() == len(props), 60, every=0.2)
            assert form_labels(page) == titles                    # in the flow's order
            shown_optional = ["(Optional)" in t for t in labels.all_inner_texts()]
            assert shown_optional == [t not in required for t in titles]
            assert form_field(page, "workspace").input_value() == str(ws.root)  # the default

            form_field(page, props["task_id"].get("title", "task_id")).fill("T01")
            form_field(page, props["to_version"].get("title", "to_version")).fill("1.2.0")
            form = tmp_path / "prefect-ui-rollback-form.png"
            page.screenshot(path=str(form), full_page=True)
            kept = keep(form)
            phase("form")

            # Submit: the UI's own create_flow_run
            response = submit_form(page)
            assert response.status == 201, response.text()
            sent = response.request.post_data_json
            assert sent["parameters"]["task_id"] == "T01"
            assert sent["parameters"]["to_version"] == "1.2.0"
            assert sent["parameters"]["workspace"] == str(ws.root)
            assert sent["state"]["type"] == "SCHEDULED"
            run_id = response.json()["id"]
            phase("submit")
            print(f"\nUI custom run: POST {response.url.removeprefix(ui)} "
                  f"{ {k: sent[k] for k in ('name', 'parameters', 'state')} }")

            # the served runner executes it
            def finished() -> dict | None:
                run = httpx.get(f"{url}/flow_runs/{run_id}", timeout=10).json()
                return run if run["state_type"] in TERMINAL else None

            run = wait_for("the custom run to finish", finished, 120, every=1)
            assert run["state_type"] == "COMPLETED", (run["state"], serve_log())
            assert run["deployment_id"] == dep
            phase("run")

            task = ws.task("T01")
            assert task.version == "1.2.0"
            state = process.run_state(ws, task)
            assert state.running and state.pid != old_pid

            # the report artifact, through the REST API ...
            found = httpx.post(f"{url}/artifacts/filter", timeout=10, json={"artifacts": {
                "key": {"any_": ["rollback-t01"]}, "flow_run_id": {"any_": [run_id]}}})
            found.raise_for_status()
            (artifact,) = found.json()
            assert artifact["type"] == "markdown"
            assert ARROW.search(artifact["data"]), artifact["data"]
            assert "Rollback T01" in artifact["data"]

            # ... and in the UI: the run's Artifacts tab links it; its page renders the markdown
            page.goto(f"{ui}/runs/flow-run/{run_id}")
            page.locator("li.p-tab", has_text="Artifacts").click()
            card = page.locator(f'a[href="/artifacts/artifact/{artifact["id"]}"]')
            card.wait_for()
            assert "rollback-t01" in card.inner_text()
            card.click()
            page.wait_for_url(re.compile(rf"/artifacts/artifact/{artifact['id']}$"))
            heading = page.get_by_role("heading", name=re.compile(r"^Rollback T01 "))
            heading.first.wait_for()
            assert ARROW.search(heading.first.inner_text())
            shot = tmp_path / "prefect-ui-rollback-artifact.png"
            page.screenshot(path=str(shot), full_page=True)
            keep(shot)
            phase("artifact")
    phase("stop")
    print(f"form screenshot: {form} (kept as {kept}); browser test took "
          f"{time.monotonic() - started:.1f} s: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))

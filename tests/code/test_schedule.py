"""The schedules we ship call commands that exist, with options the CLI accepts."""

import shlex

import yaml

from wastesort.cli import _parser
from wastesort.config import REPO_ROOT


def parses(command: str) -> None:
    words = shlex.split(command)
    start = next(i for i, w in enumerate(words) if w.endswith("bin/wastesort")) + 1
    args = _parser().parse_args(words[start:])
    assert args.run.__name__ == "_retrain"


def test_the_github_workflow_runs_retrain_on_a_schedule_and_by_hand():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "retrain.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"].count(" ") == 4 and "workflow_dispatch" in triggers
    steps = workflow["jobs"]["retrain"]["steps"]
    run = next(s["run"] for s in steps if "wastesort retrain" in s.get("run", ""))
    parses(run.replace("${{ inputs.min_new || '50' }}", "50")
              .replace("${{ inputs.on_pass || 'challenger' }}", "challenger"))


def test_the_systemd_unit_and_the_readme_cron_line_parse():
    unit = (REPO_ROOT / "deploy" / "systemd" / "wastesort-retrain.service").read_text()
    parses(next(l for l in unit.splitlines() if l.startswith("ExecStart=")).partition("=")[2])
    timer = (REPO_ROOT / "deploy" / "systemd" / "wastesort-retrain.timer").read_text()
    assert "OnCalendar=" in timer and "Persistent=true" in timer
    readme = (REPO_ROOT / "README.md").read_text()
    cron = next(l for l in readme.splitlines() if "bin/wastesort retrain" in l and l[:1].isdigit())
    parses(cron.split(">>")[0])

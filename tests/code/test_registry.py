"""The registry: versions appear whole, aliases change atomically, and history is kept."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wastesort.registry import Registry, RegistryError


def add_version(registry: Registry, version: str) -> str:
    with registry.new_version(version) as folder:
        (folder / "card.json").write_text(json.dumps({"version": version}))
    return version


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(tmp_path / "exports")
    for v in ("v1", "v2", "v3"):
        add_version(registry, v)
    return registry


def test_promote_and_rollback_follow_the_history(registry):
    registry.promote("v1")
    registry.promote("v2", reason="better")
    registry.promote("v3", alias="challenger")
    assert registry.aliases() == {"champion": "v2", "challenger": "v3"}
    assert registry.resolve("champion") == "v2"
    assert registry.rollback() == "v1"
    assert registry.aliases()["champion"] == "v1"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback()
    actions = [(e["action"], e["alias"], e["from"], e["to"]) for e in registry.log()]
    assert actions == [("promote", "champion", None, "v1"), ("promote", "champion", "v1", "v2"),
                       ("promote", "challenger", None, "v3"), ("rollback", "champion", "v2", "v1")]
    assert registry.log()[1]["reason"] == "better"


def test_unknown_names_are_clear_errors(registry):
    with pytest.raises(RegistryError, match="No model version or alias 'nope'"):
        registry.promote("nope")
    with pytest.raises(RegistryError, match="Unknown alias"):
        registry.promote("v1", alias="favourite")
    with pytest.raises(RegistryError, match="already exists"):
        add_version(registry, "v1")


def test_a_failed_export_leaves_no_version(registry):
    with pytest.raises(RuntimeError):
        with registry.new_version("v4") as folder:
            (folder / "model.onnx").write_bytes(b"half")
            raise RuntimeError("export crashed")
    with pytest.raises(RegistryError, match="card.json"):
        with registry.new_version("v5") as folder:
            (folder / "model.onnx").write_bytes(b"no card")
    assert registry.versions() == ["v1", "v2", "v3"]
    assert not any(p.name.startswith(".staging") for p in registry.root.iterdir())


CRASH_IN_REPLACE = """
import os, sys
from wastesort import registry as r
reg = r.Registry(sys.argv[1])
r.os.replace = lambda *a: os._exit(9)   # the process dies after writing the temp file
reg.promote("v2")
"""


def test_a_crash_mid_promote_keeps_the_old_champion(registry):
    registry.promote("v1")
    proc = subprocess.run([sys.executable, "-c", CRASH_IN_REPLACE, str(registry.root)])
    assert proc.returncode == 9
    assert registry.aliases() == {"champion": "v1"}
    assert registry.card("champion") == {"version": "v1"}
    registry.promote("v3")  # and the registry still works afterwards
    assert registry.resolve("champion") == "v3"


FLIP_FOREVER = """
import sys
from wastesort.registry import Registry
reg = Registry(sys.argv[1])
print("ready", flush=True)
while True:
    reg.promote("v1"); reg.promote("v2")
"""


def test_killing_a_busy_writer_never_breaks_the_aliases(registry):
    for attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", FLIP_FOREVER, str(registry.root)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.2 + attempt * 0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stacks = json.loads((registry.root / "aliases.json").read_text())
        assert registry.resolve("champion") in ("v1", "v2")
        assert stacks["champion"]
        for line in (registry.root / "registry.log").read_text().splitlines()[:-1]:
            json.loads(line)  # every complete log line parses

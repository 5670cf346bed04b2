"""The command line, run as users run it: in a subprocess, reading its output."""

import json
import subprocess
import sys

from tests.conftest import EXAMPLES, make_dataset


def wastesort(*args: str, exports=None) -> subprocess.CompletedProcess:
    prefix = ["--exports", str(exports)] if exports else []
    return subprocess.run([sys.executable, "-m", "wastesort", *prefix, *args],
                          capture_output=True, text=True, timeout=300)


def test_data_check_prints_a_report_and_json(tmp_path):
    data = make_dataset(tmp_path / "data", per_class=3)
    (data / "glass" / "broken.jpg").write_bytes(b"garbage")
    text = wastesort("data", "check", str(data))
    assert text.returncode == 0
    assert "usable images 18 in 6 classes" in text.stdout and "unreadable           1" in text.stdout
    report = json.loads(wastesort("data", "check", str(data), "--json").stdout)
    assert report["class_counts"]["glass"] == 3 and report["unreadable"][0]["path"] == "glass/broken.jpg"


def test_missing_folder_is_a_one_line_error(tmp_path):
    result = wastesort("data", "check", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and "Traceback" not in result.stderr


def test_models_promote_list_rollback(champion_exports):
    champion = json.loads((champion_exports / "aliases.json").read_text())["champion"][-1]
    listed = wastesort("models", "list", exports=champion_exports)
    assert champion in listed.stdout and "champion" in listed.stdout
    shown = json.loads(wastesort("models", "show", exports=champion_exports).stdout)
    assert shown["version"] == champion
    assert wastesort("models", "promote", champion, "--alias", "challenger",
                     exports=champion_exports).returncode == 0
    assert "challenger" in wastesort("models", "list", exports=champion_exports).stdout
    failed = wastesort("models", "rollback", exports=champion_exports)
    assert failed.returncode == 1 and "no earlier version" in failed.stderr
    missing = wastesort("models", "promote", "v-does-not-exist", exports=champion_exports)
    assert missing.returncode == 1 and "No model version or alias" in missing.stderr


def test_evaluate_json_has_the_promised_fields(champion_exports):
    result = wastesort("evaluate", str(EXAMPLES), "--json", exports=champion_exports)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for key in ("accuracy", "macro_recall", "per_class", "n_images", "model_version", "seconds"):
        assert key in out
    assert out["n_images"] == len(list(EXAMPLES.glob("*/*.jpg")))
    assert set(out["per_class"]["glass"]) == {"precision", "recall", "support"}
    assert out["per_class"]["glass"]["support"] == 2

"""A person's round trip in a real browser: upload, read the answer, correct it, send."""

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import EXAMPLES
from wastesort.config import REPO_ROOT
from wastesort.feedback import FeedbackStore

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def page():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        yield page
        browser.close()


def test_upload_predict_correct_and_send(app, page):
    photo = sorted(EXAMPLES.glob("metal/*.jpg"))[0]
    page.goto(app.url)
    page.locator("#input-image input[type=file]").set_input_files(str(photo))
    top = page.locator("#pred-label [data-testid=label-output-value]")
    top.wait_for(timeout=30_000)
    predicted = top.inner_text().strip()
    assert predicted in {"cardboard", "glass", "metal", "paper", "plastic", "trash"}
    assert "Model" in page.locator("#model-version").inner_text()

    correction = "paper" if predicted != "paper" else "glass"
    page.locator("#correct-class input").click()
    page.get_by_role("option", name=correction, exact=True).click()
    page.locator("#comment textarea").fill("seen in a browser")
    page.locator("#flag-btn").click()
    page.get_by_text("Saved, thank you").wait_for(timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-flagged.png"), full_page=True)

    flag = [f for f in FeedbackStore(app.feedback, []).flags() if f.comment == "seen in a browser"]
    assert len(flag) == 1
    assert flag[0].corrected_label == correction and flag[0].predicted_label == predicted
    assert (app.feedback / flag[0].image_path).read_bytes() == photo.read_bytes()


def test_a_broken_upload_shows_the_reason(app, page, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    page.goto(app.url)
    page.locator("#input-image input[type=file]").set_input_files(str(broken))
    page.locator("#status").get_by_text("not an image").wait_for(timeout=30_000)

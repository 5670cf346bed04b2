"""Human review in Label Studio: corrections go out as tasks, reviewed labels come back.

Users' corrections are suggestions. :func:`sync` sends each flagged image that Label Studio
does not have yet as one task (image uploaded to the server, the model's answer as a
pre-annotation, the user's suggestion and comment in the task data); :func:`pull` brings
back what reviewers confirmed as a folder-per-class dataset with a manifest.

Idempotence rests on the image's SHA-256 in the task data, looked up before creating, and
a lock so two syncs on one machine take turns. Sync state lives in the feedback store
(``sync.jsonl``, append-only), so a Label Studio that is down or refuses the token leaves
every flag queued for the next sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from filelock import FileLock

from .config import Settings
from .feedback import FeedbackStore, Flag
from .images import sha256_bytes
from .jsonl import append_jsonl, read_jsonl
from .registry import now_utc

TIMEOUT_S = 10

# One data key only: Label Studio's direct file upload refuses configs with more. The user's
# suggestion and comment travel in the task data (Data Manager columns) and the suggestion
# also as a second prediction, so the reviewer sees both guesses beside the photo.
LABEL_CONFIG = """<View>
  <Image name="image" value="$image" maxWidth="600px"/>
  <Choices name="label" toName="image" choice="single" showInline="true" required="true">
{choices}
  </Choices>
</View>"""


class ReviewError(ConnectionError):
    """Label Studio could not be used; the message says why in plain words."""


def label_config(labels: list[str]) -> str:
    return LABEL_CONFIG.format(choices="\n".join(f'    <Choice value="{l}"/>' for l in labels))


class LabelStudioClient:
    """The Label Studio SDK, set up for our needs: short timeouts and no automatic retries.

    The SDK retries every call twice by default, POSTs included, which can create a task
    twice; here each call is made once and its failure becomes a :class:`ReviewError`.
    Two calls the SDK does not cover (uploading a file without creating a task, fetching an
    image) use plain HTTP with the same token. The token is sent, never printed.
    """

    def __init__(self, url: str, token: str, timeout_s: float = TIMEOUT_S):
        from label_studio_sdk.client import LabelStudio

        if not token:
            raise ReviewError("No Label Studio token: set WASTESORT_LABELSTUDIO_TOKEN.")
        self.url = url.rstrip("/")
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=timeout_s)
        self.http = httpx.Client(base_url=self.url, timeout=timeout_s,
                                 headers={"Authorization": f"Token {token}"})

    def sdk_call(self, method, *args, **kwargs):
        """One SDK call, made once, with its failure explained."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            return method(*args, **kwargs, request_options={"max_retries": 0})
        except httpx.TransportError as err:
            raise self._unreachable(err) from err
        except ApiError as err:
            raise self._refused(err.status_code, str(err.body)[:200]) from err

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """A plain HTTP call, for what the SDK does not cover."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise self._unreachable(err) from err
        if response.status_code >= 400:
            raise self._refused(response.status_code, response.text[:200])
        return response

    def _unreachable(self, err: Exception) -> ReviewError:
        return ReviewError(f"Label Studio at {self.url} is not reachable ({type(err).__name__}); "
                           "flags stay queued and the next sync sends them.")

    def _refused(self, status: int | None, detail: str) -> ReviewError:
        if status in (401, 403):
            return ReviewError(f"Label Studio at {self.url} refused the token ({status}); "
                               "check WASTESORT_LABELSTUDIO_TOKEN.")
        return ReviewError(f"Label Studio answered {status}: {detail}")

    def find_project(self, title: str) -> dict | None:
        projects = self.sdk_call(self.sdk.projects.list, title=title, page_size=1000)
        return next(({"id": p.id, "title": p.title} for p in projects if p.title == title), None)

    def create_project(self, title: str, config: str) -> dict:
        project = self.sdk_call(self.sdk.projects.create, title=title, label_config=config,
                                description="Corrections sent by wastesort users, to confirm or fix.")
        return {"id": project.id, "title": project.title}

    def tasks(self, project: int, filters: list[dict]) -> list[dict]:
        query = json.dumps({"filters": {"conjunction": "and", "items": filters}})
        pager = self.sdk_call(self.sdk.tasks.list, project=project, query=query, fields="all",
                              page_size=100)
        try:
            return [task.model_dump(mode="json") for task in pager]
        except httpx.TransportError as err:  # later pages are fetched while iterating
            raise self._unreachable(err) from err

    def import_task(self, project: int, task: dict) -> int:
        created = self.sdk_call(self.sdk.projects.import_tasks, project, request=[task],
                                return_task_ids=True)
        return created.task_ids[0]

    def upload(self, project: int, name: str, data: bytes) -> str:
        """Store a file on the server without creating a task; returns its ``$image`` URL."""
        upload = self.call("POST", f"/api/projects/{project}/import",
                           params={"commit_to_project": "false"}, files={"file": (name, data)}).json()
        stored = self.sdk_call(self.sdk.files.get, upload["file_upload_ids"][0])
        return f"/data/{stored.file}"


def client(settings: Settings) -> LabelStudioClient:
    return LabelStudioClient(settings.labelstudio_url, settings.labelstudio_token)


def init_project(ls: LabelStudioClient, title: str, labels: list[str]) -> dict:
    """The review project, created with our labelling config unless it exists."""
    return ls.find_project(title) or ls.create_project(title, label_config(labels))


def project_id(ls: LabelStudioClient, settings: Settings) -> int:
    project = ls.find_project(settings.labelstudio_project)
    if project is None:
        raise ReviewError(f"No Label Studio project {settings.labelstudio_project!r}; "
                          "run `wastesort labelstudio init` first.")
    return project["id"]


# -- sync out ------------------------------------------------------------------------------

@dataclass
class SyncResult:
    sent: int = 0
    already_there: int = 0
    queued: int = 0
    error: str = ""


def synced_hashes(store: FeedbackStore) -> dict[str, int]:
    """Image hash -> Label Studio task id, for images already sent."""
    return {e["sha256"]: e["task_id"] for e in read_jsonl(store.root / "sync.jsonl")}


def _mark_synced(store: FeedbackStore, sha: str, task_id: int) -> None:
    append_jsonl(store.root / "sync.jsonl", {"sha256": sha, "task_id": task_id, "time": now_utc()})


def pending(store: FeedbackStore) -> dict[str, list[Flag]]:
    """Flags whose image Label Studio does not have yet, grouped by image."""
    done = synced_hashes(store)
    groups: dict[str, list[Flag]] = {}
    for flag in store.flags():
        if flag.image_sha256 not in done:
            groups.setdefault(flag.image_sha256, []).append(flag)
    return groups


def sync(store: FeedbackStore, ls: LabelStudioClient, project: int) -> SyncResult:
    """Send every pending image as one task; safe to re-run and to run twice at once."""
    result = SyncResult()
    store.root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(store.root / ".sync.lock"), timeout=120):
        todo = pending(store)
        result.queued = len(todo)
        for sha, flags in todo.items():
            try:
                existing = ls.tasks(project, [{"filter": "filter:tasks:data.sha256",
                                               "operator": "equal", "type": "String", "value": sha}])
                if existing:
                    task_id = existing[0]["id"]
                    result.already_there += 1
                else:
                    task_id = _create_task(store, ls, project, flags)
                    result.sent += 1
            except ReviewError as err:
                result.error = str(err)
                break
            _mark_synced(store, sha, task_id)
            result.queued -= 1
    return result


def _create_task(store: FeedbackStore, ls: LabelStudioClient, project: int,
                 flags: list[Flag]) -> int:
    latest = flags[-1]
    image = (store.root / latest.image_path).read_bytes()
    data = {"image": ls.upload(project, Path(latest.image_path).name, image), "sha256": latest.image_sha256,
            "suggested_label": latest.corrected_label, "comment": latest.comment or "-",
            "flag_ids": [f.id for f in flags], "predicted_label": latest.predicted_label,
            "model_version": latest.model_version, "flagged_at": latest.time}
    task: dict = {"data": data, "predictions": [_choice(latest.corrected_label, "user-suggestion", 1.0)]}
    if latest.predicted_label:
        task["predictions"].insert(0, _choice(latest.predicted_label, latest.model_version,
                                              max(latest.probabilities.values())))
    return ls.import_task(project, task)


def _choice(label: str, model_version: str | None, score: float) -> dict:
    return {"model_version": model_version or "unknown", "score": score,
            "result": [{"from_name": "label", "to_name": "image", "type": "choices",
                        "value": {"choices": [label]}}]}


# -- status ----------------------------------------------------------------------------------

def status(store: FeedbackStore, ls: LabelStudioClient | None, project: int | None) -> dict:
    flags = store.flags()
    images = {f.image_sha256 for f in flags}
    sent = set(synced_hashes(store)) & images
    counts = {"flags": len(flags), "images": len(images), "sent": len(sent),
              "queued": len(images - sent), "reviewed": None}
    if ls is not None and project is not None:
        counts["reviewed"] = len(ls.tasks(project, [_ANNOTATED]))
    return counts


# -- pull back -------------------------------------------------------------------------------

_ANNOTATED = {"filter": "filter:tasks:total_annotations", "operator": "greater",
              "type": "Number", "value": 0}


@dataclass
class PullResult:
    written: int = 0
    unchanged: int = 0
    relabelled: int = 0
    rejected: list[str] = field(default_factory=list)


def read_manifest(dest: Path) -> dict[str, dict]:
    """Image hash -> its latest manifest entry."""
    return {e["sha256"]: e for e in read_jsonl(Path(dest) / "manifest.jsonl")}


def reviewed_label(task: dict) -> tuple[str, int] | None:
    """(label, annotation id) of the latest annotation that was not cancelled."""
    annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
    if not annotations:
        return None
    latest = max(annotations, key=lambda a: (a.get("updated_at") or "", a["id"]))
    for item in latest.get("result", []):
        if item.get("from_name") == "label" and item.get("value", {}).get("choices"):
            return item["value"]["choices"][0], latest["id"]
    return None


def pull(ls: LabelStudioClient, project: int, labels: list[str], dest: Path) -> PullResult:
    """Reviewed tasks -> ``dest/<label>/<sha256>.<ext>`` plus ``dest/manifest.jsonl``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    known = read_manifest(dest)
    result = PullResult()
    for task in ls.tasks(project, [_ANNOTATED]):
        reviewed = reviewed_label(task)
        data = task["data"]
        sha = data.get("sha256", "")
        if reviewed is None:
            continue
        label, annotation_id = reviewed
        if label not in labels:
            result.rejected.append(f"task {task['id']}: {label!r} is not one of {labels}")
            continue
        previous = known.get(sha)
        if previous and previous["annotation_id"] == annotation_id:
            result.unchanged += 1
            continue
        suffix = Path(data["image"]).suffix or ".jpg"
        target = dest / label / f"{sha}{suffix}"
        target.parent.mkdir(exist_ok=True)
        if previous:  # reviewed again: move the file we have, no new download
            (dest / previous["path"]).replace(target)
            result.relabelled += 1
        else:
            image = ls.call("GET", data["image"]).content
            if sha and sha256_bytes(image) != sha:
                result.rejected.append(f"task {task['id']}: image bytes do not match their hash")
                continue
            tmp = target.with_suffix(".partial")
            tmp.write_bytes(image)
            tmp.replace(target)
            result.written += 1
        entry = {"sha256": sha, "label": label, "path": str(target.relative_to(dest)),
                 "annotation_id": annotation_id, "task_id": task["id"],
                 "predicted_label": data.get("predicted_label"),
                 "model_version": data.get("model_version"),
                 "suggested_label": data.get("suggested_label"), "pulled_at": now_utc()}
        append_jsonl(dest / "manifest.jsonl", entry)
        known[sha] = entry
    return result


# -- the model service as Label Studio's ML backend ---------------------------------------

def connect_backend(ls: LabelStudioClient, project: int, model_url: str) -> dict:
    """Register ``wastesort serve`` as the project's ML backend (once per URL)."""
    for backend in ls.sdk_call(ls.sdk.ml.list, project=project):
        if backend.url.rstrip("/") == model_url.rstrip("/"):
            return {"id": backend.id, "url": backend.url}
    backend = ls.sdk_call(ls.sdk.ml.create, project=project, url=model_url,
                          title="wastesort champion", is_interactive=False)
    return {"id": backend.id, "url": backend.url}

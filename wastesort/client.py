"""The app's side of "model as a service": a Predictor that calls ``wastesort serve``.

Same interface as the embedded predictors, so the UI does not know which one it has.
Timeouts are short and only a connection that never opened is retried (once): a request
that reached the service is not sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx

from .config import DEFAULT_LABELS
from .images import ImageError, ImageSource
from .predict import Prediction


class ServiceUnavailable(RuntimeError):
    """The model service could not be reached or failed; the message is for the user."""


class ServicePredictor:
    def __init__(self, url: str, timeout_s: float = 10.0, client_id: str = ""):
        self.url = url.rstrip("/")
        headers = {"X-Client-Id": client_id} if client_id else {}
        self.http = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=2.0), headers=headers)
        self.version = "unknown (service not reached yet)"
        self.labels = list(DEFAULT_LABELS)
        try:
            info = self._send("GET", "/v1/models").json()
            self.labels = info["labels"] or self.labels
            self.version = info["aliases"].get("champion", self.version)
        except ServiceUnavailable:
            pass  # the app still starts; predictions say the service is down

    def predict(self, images: Sequence[ImageSource]) -> list[Prediction]:
        files = [("files", (Path(i).name, Path(i).read_bytes()) if isinstance(i, (str, Path))
                  else (f"image{n}", i)) for n, i in enumerate(images)]
        response = self._send("POST", "/v1/predict", files=files)
        if 400 <= response.status_code < 500:
            raise ImageError(response.json().get("error", response.text))
        if response.status_code != 200:
            raise ServiceUnavailable(f"The model service answered {response.status_code}; "
                                     "try again in a moment.")
        predictions = [Prediction(**p) for p in response.json()["predictions"]]
        self.version = predictions[0].model_version if predictions else self.version
        return predictions

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in (1, 2):
            try:
                return self.http.request(method, self.url + path, **kwargs)
            except httpx.ConnectError:
                if attempt == 2:
                    break
            except httpx.TransportError as err:
                raise ServiceUnavailable(f"The model service did not answer in time ({err}).") from err
        raise ServiceUnavailable(f"The model service at {self.url} is not reachable right now; "
                                 "try again in a minute.")

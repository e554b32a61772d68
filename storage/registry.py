"""Model registry: trained Keras networks, their cards, and a champion pointer per model and series.

Layout under the storage root::

    models/<model>/<unique_id>/<version>/model.keras   the network (Keras 3 native format, no pickle)
    models/<model>/<unique_id>/<version>/card.json     what was trained, on what, how well, promoted?
    models/<model>/<unique_id>/champion.json           {"version": ..., "reason": ..., "set_at": ...}
    models/<model>/<unique_id>/failures/<cutoff>.json  a retrain that failed: nothing was saved, and why

``unique_id`` sits under ``model`` because a champion is per architecture *and* series (the rail
and bus networks of ``mulvar_rnn`` are different models with different champions).

Every file goes through :meth:`Root.write_bytes_atomic`, so local paths and ``s3://`` roots share
one code path. Order makes a version visible only when complete: ``model.keras`` first, then
``card.json`` (a version is listed only once its card exists), and the champion pointer last.
Keras reads and writes ``.keras`` files only on a local disk, hence the temporary directory.
"""

from __future__ import annotations

import json
import re
from datetime import date
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from schemas.errors import InvalidInput
from storage.fs import Root

if TYPE_CHECKING:  # keras is imported lazily: listing versions or reading cards needs no TensorFlow
    import keras

MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
CHAMPION_FILE = "champion.json"
FAILURES_DIR = "failures"
FAILURE_KEYS = frozenset({"cutoff", "failed_at", "model", "reason", "unique_id"})
"""The keys of a failure record as the retrain task writes it (``record_failure``)."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CARD_KEYS = frozenset(
    {
        "architecture", "config", "cutoff", "data_fingerprint", "inputs", "libraries", "model", "promotion", "scaler",
        "schema", "seed", "split", "trained_at", "training", "unique_id", "validation", "validation_mae",
        "validation_mape", "version", "windows",
    }
)  # fmt: skip
"""The top-level keys of a card as training writes it (``tasks/core/models/rnn/forecaster.py``)."""


class TamperedCard(InvalidInput):
    """A model card (or failure record) that training did not write: refused rather than trusted."""


@dataclass(frozen=True)
class StoredModel:
    """A network loaded from the registry with its card (wrap with ``RnnFitted.from_saved``)."""

    network: "keras.Model"
    card: dict[str, Any]
    version: str


def _checked(name: str, what: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: letters, digits, '_', '-', '.' only")
    return name


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, indent=2, sort_keys=True).encode()


class ModelRegistry:
    """Stores and loads versions and the champion pointer; decides nothing (see ``should_promote``)."""

    def __init__(self, root: Root) -> None:
        self.root = root

    def _series_dir(self, model: str, unique_id: str) -> str:
        return self.root.join("models", _checked(model, "model"), _checked(unique_id, "unique_id"))

    def _version_dir(self, model: str, unique_id: str, version: str) -> str:
        return f"{self._series_dir(model, unique_id)}/{_checked(version, 'version')}"

    # -- versions -------------------------------------------------------------------------------

    def save(self, model: str, unique_id: str, network: "keras.Model", card: Mapping[str, Any]) -> str:
        """Store a network and its card under ``card["version"]``; returns the version.

        Saving the same version again replaces it (a rerun of the same training is idempotent).
        """
        version = str(card["version"])
        directory = self._version_dir(model, unique_id, version)
        with tempfile.TemporaryDirectory(prefix="registry-save-") as scratch:
            local = Path(scratch) / MODEL_FILE
            with warnings.catch_warnings():
                # Keras 3.15's own weight export trips numpy 2's copy-keyword deprecation; not ours.
                warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword")
                network.save(local)  # Keras 3 writes .keras archives to local paths only
            self.root.write_bytes_atomic(f"{directory}/{MODEL_FILE}", local.read_bytes())
        self.root.write_bytes_atomic(f"{directory}/{CARD_FILE}", _json_bytes(card))
        return version

    def versions(self, model: str, unique_id: str) -> list[str]:
        """Complete versions (those with a card), oldest first (version ids start with the cutoff)."""
        directory = self._series_dir(model, unique_id)
        return [
            name
            for name in self.root.listdir(directory)
            if name not in (CHAMPION_FILE, FAILURES_DIR) and self.root.exists(f"{directory}/{name}/{CARD_FILE}")
        ]

    def read_card(self, model: str, unique_id: str, version: str) -> dict[str, Any]:
        """A version's card; a card that is not a JSON object, or whose top-level keys are not the
        ones training writes, is refused (``TamperedCard``): cards steer loading and promotion."""
        path = f"{self._version_dir(model, unique_id, version)}/{CARD_FILE}"
        card = self._read_json(path)
        if not isinstance(card, dict):
            raise TamperedCard(f"{self.root.url(path)}: not a JSON object")
        unexpected = sorted(set(card) - CARD_KEYS)
        if unexpected:
            raise TamperedCard(f"{self.root.url(path)}: unexpected key(s) {', '.join(unexpected)}")
        if str(card.get("version")) != version:
            raise TamperedCard(f"{self.root.url(path)}: names version {card.get('version')!r}, stored as {version!r}")
        return card

    def update_card(self, model: str, unique_id: str, card: Mapping[str, Any]) -> None:
        """Rewrite a stored version's card (e.g. to record its promotion decision)."""
        directory = self._version_dir(model, unique_id, str(card["version"]))
        if not self.root.exists(f"{directory}/{MODEL_FILE}"):
            raise FileNotFoundError(f"no stored network for {model}/{unique_id}/{card['version']}")
        self.root.write_bytes_atomic(f"{directory}/{CARD_FILE}", _json_bytes(card))

    def load(self, model: str, unique_id: str, version: str) -> StoredModel:
        """Load a version in Keras safe mode (no arbitrary code: custom layers must be registered)."""
        import keras

        import tasks.core.models.rnn.layers  # noqa: F401  registers the LayerNorm cell before deserialising

        directory = self._version_dir(model, unique_id, version)
        payload = self.root.read_bytes(f"{directory}/{MODEL_FILE}")
        with tempfile.TemporaryDirectory(prefix="registry-load-") as scratch:
            local = Path(scratch) / MODEL_FILE
            local.write_bytes(payload)
            network = keras.models.load_model(local, safe_mode=True)
        return StoredModel(network, self.read_card(model, unique_id, version), version)

    # -- failed retrains -------------------------------------------------------------------------

    def record_failure(self, model: str, unique_id: str, cutoff: str, reason: str) -> None:
        """Record that the retrain at ``cutoff`` failed (one atomic write; a rerun replaces it).
        Forecasts read it to mark the stale champion's rows; ``due_retrains`` to not retry it."""
        path = self._failure_path(model, unique_id, cutoff)
        record = {
            "model": model, "unique_id": unique_id, "cutoff": cutoff, "reason": reason,
            "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }  # fmt: skip
        self.root.write_bytes_atomic(path, _json_bytes(record))

    def failures(self, model: str, unique_id: str) -> list[dict[str, Any]]:
        """The failed retrains' records, oldest cutoff first. A record that is not what
        ``record_failure`` writes is refused (``TamperedCard``): records steer forecasts too."""
        directory = f"{self._series_dir(model, unique_id)}/{FAILURES_DIR}"
        records = []
        for name in self.root.listdir(directory):
            path = f"{directory}/{name}"
            record = self._read_json(path)
            if not isinstance(record, dict) or set(record) != FAILURE_KEYS:
                raise TamperedCard(f"{self.root.url(path)}: not a failure record (keys: {', '.join(sorted(FAILURE_KEYS))})")
            if name != f"{record['cutoff']}.json" or not isinstance(record["reason"], str):
                raise TamperedCard(f"{self.root.url(path)}: names cutoff {record['cutoff']!r}, stored as {name!r}")
            records.append(record)
        return records

    def _read_json(self, path: str) -> Any:
        try:
            return json.loads(self.root.read_bytes(path))
        except ValueError as error:
            raise TamperedCard(f"{self.root.url(path)}: not JSON ({error})") from None

    def _failure_path(self, model: str, unique_id: str, cutoff: str) -> str:
        date.fromisoformat(cutoff)  # a date and nothing else: it becomes a file name
        return f"{self._series_dir(model, unique_id)}/{FAILURES_DIR}/{cutoff}.json"

    # -- champion -------------------------------------------------------------------------------

    def champion_version(self, model: str, unique_id: str) -> str | None:
        pointer = f"{self._series_dir(model, unique_id)}/{CHAMPION_FILE}"
        if not self.root.exists(pointer):
            return None
        return str(json.loads(self.root.read_bytes(pointer))["version"])

    def set_champion(self, model: str, unique_id: str, version: str, reason: str) -> None:
        """Point the champion at a stored version (one atomic write: readers see old or new)."""
        if version not in self.versions(model, unique_id):
            raise FileNotFoundError(f"cannot promote {model}/{unique_id}/{version}: not stored")
        pointer = {
            "version": version,
            "reason": reason,
            "set_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.root.write_bytes_atomic(f"{self._series_dir(model, unique_id)}/{CHAMPION_FILE}", _json_bytes(pointer))

    def load_champion(self, model: str, unique_id: str) -> StoredModel | None:
        version = self.champion_version(model, unique_id)
        return None if version is None else self.load(model, unique_id, version)

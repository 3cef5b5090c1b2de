"""Model artefacts: a scikit-learn estimator serialised with skops, plus JSON state and metadata, sealed by a hash.

An artefact is two parts:

- ``blob``: ``skops.io.dumps(estimator)`` — no pickle; loading instantiates only scikit-learn/numpy types;
- ``manifest``: JSON with ``kind``, ``version``, ``state`` (what the model needs besides the estimator, e.g.
  vocabularies), ``metadata`` (data window, metrics, code version, created_at) and ``sha256``.

``sha256`` covers the blob *and* the canonical JSON of everything else in the manifest, so changing either
part is detected. The warehouse (``model_artifact.sha256``) keeps the hash apart from the bytes; on disk the
expected hash can also be passed explicitly. :func:`load` refuses an artefact whose hash does not match.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import skops.io as sio

FORMAT = 1
# Types skops may instantiate when loading (checked after the hash): our models are scikit-learn estimators.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "collections.")
# HistGradientBoosting keeps a ``functools.partial`` of a scikit-learn function; skops checks what it wraps
# separately (a partial of anything outside the prefixes above is still refused).
TRUSTED_NAMES = frozenset({"functools.partial"})


class ArtifactError(ValueError):
    """The artefact cannot be used: tampered with, corrupt, or of the wrong kind."""


class TamperedArtifact(ArtifactError):
    pass


@dataclass
class Artifact:
    kind: str
    blob: bytes
    state: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    def manifest(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.kind, "state": self.state, "metadata": self.metadata,
                "sha256": self.sha256}  # fmt: skip


def code_version() -> str:
    """The git commit of the code that trained the model (``+dirty`` when the tree had changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "models"], cwd=root, capture_output=True,
                               text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest(kind: str, blob: bytes, state: dict[str, Any], metadata: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(_canonical({"format": FORMAT, "kind": kind, "state": state, "metadata": metadata}))
    h.update(b"\0")
    h.update(blob)
    return h.hexdigest()


def build(kind: str, estimator: Any, state: dict[str, Any], metadata: dict[str, Any]) -> Artifact:
    meta = {"created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "code_version": code_version(),
            **metadata}  # fmt: skip
    # JSON round trip: what is hashed is exactly what a reader will see.
    state, meta = json.loads(_canonical(state)), json.loads(_canonical(meta))
    blob = sio.dumps(estimator)
    return Artifact(kind, blob, state, meta, digest(kind, blob, state, meta))


def verify(artifact: Artifact, expected_sha256: str | None = None) -> None:
    actual = digest(artifact.kind, artifact.blob, artifact.state, artifact.metadata)
    for label, expected in (("manifest", artifact.sha256), ("expected", expected_sha256)):
        if expected is not None and actual != expected:
            raise TamperedArtifact(
                f"model artefact hash mismatch ({label} {expected[:12]}…, content {actual[:12]}…): "
                "refusing to load a modified artefact"
            )


def load_estimator(artifact: Artifact, expected_sha256: str | None = None, *, kind: str | None = None) -> Any:
    """Verify the hash, then instantiate the estimator with skops (only scikit-learn/numpy types)."""
    if kind is not None and artifact.kind != kind:
        raise ArtifactError(f"expected a {kind!r} artefact, got {artifact.kind!r}")
    verify(artifact, expected_sha256)
    try:
        untrusted = sio.get_untrusted_types(data=artifact.blob)
    except Exception as exc:  # noqa: BLE001 - skops raises several types on a corrupt file
        raise ArtifactError(f"corrupt model artefact: {exc}") from None
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES) and t not in TRUSTED_NAMES]
    if foreign:
        raise ArtifactError(f"model artefact contains types outside scikit-learn/numpy: {foreign}")
    return sio.loads(artifact.blob, trusted=untrusted)


# --- on disk: DIR/manifest.json + DIR/model.skops ----------------------------------------------------------
def save_dir(artifact: Artifact, directory: str | Path) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.skops").write_bytes(artifact.blob)
    (path / "manifest.json").write_text(json.dumps(artifact.manifest(), indent=1, sort_keys=True))
    return path


def read_dir(directory: str | Path) -> Artifact:
    path = Path(directory)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        blob = (path / "model.skops").read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not a model artefact ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: unknown artefact format {manifest.get('format')!r}")
    return Artifact(manifest["kind"], blob, manifest["state"], manifest["metadata"], manifest["sha256"])

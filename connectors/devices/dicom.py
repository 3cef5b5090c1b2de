"""DICOM (imaging) files → :class:`DicomStudy`: who, what, when, and a PNG preview for the dashboard.

Reading is pydicom's; the preview is numpy → Pillow. Veterinary DICOM (Supplement 93) puts the animal in the
patient module: PatientSpeciesDescription / PatientBreedDescription (or their code sequences), the owner in
ResponsiblePerson, and often ``OwnerFamilyName^AnimalName`` in PatientName - so both the raw name and the
responsible person are returned and matching is left to the loader.

A file without pixel data (a structured report, a presentation state, a header-only export) still yields its
metadata: ``preview_png`` is None and ``preview_error`` says why.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut

from connectors.devices.values import parse_date

__all__ = ["DicomError", "DicomStudy", "read_dicom", "render_preview"]

log = logging.getLogger(__name__)
PREVIEW_MAX_SIDE = 512
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DicomError(ValueError):
    """The bytes are not a DICOM dataset pydicom can read."""


@dataclass(frozen=True, slots=True)
class DicomStudy:
    """Metadata of one DICOM instance plus an optional 8-bit PNG preview."""

    patient_id: str | None
    patient_name: str | None
    species: str | None
    breed: str | None
    responsible_person: str | None
    sex: str | None
    birth_date: date | None
    modality: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None
    sop_class_uid: str | None
    accession_number: str | None
    study_date: date | None
    study_description: str | None
    series_description: str | None
    body_part: str | None
    manufacturer: str | None
    rows: int | None
    columns: int | None
    photometric_interpretation: str | None
    preview_png: bytes | None
    preview_error: str | None

    @property
    def has_pixels(self) -> bool:
        return self.preview_png is not None


def read_dicom(source: bytes | str | Path, *, preview: bool = True) -> DicomStudy:
    """Read a DICOM file (bytes or path). Raises :class:`DicomError` if it is not DICOM."""
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    ds = _dataset(data)
    png: bytes | None = None
    error: str | None = None
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        error = "no pixel data in this DICOM file (metadata only)"
    elif preview:
        try:
            png = render_preview(ds)
        except Exception as exc:  # codec missing, truncated pixel data, odd photometric: keep the metadata
            error = f"pixel data could not be rendered: {type(exc).__name__}: {exc}"
    return DicomStudy(
        patient_id=_text(ds, "PatientID"),
        patient_name=_person(ds, "PatientName"),
        species=_text(ds, "PatientSpeciesDescription") or _code_meaning(ds, "PatientSpeciesCodeSequence"),
        breed=_text(ds, "PatientBreedDescription") or _code_meaning(ds, "PatientBreedCodeSequence"),
        responsible_person=_person(ds, "ResponsiblePerson"),
        sex=_text(ds, "PatientSex"),
        birth_date=_date(ds, "PatientBirthDate"),
        modality=_text(ds, "Modality"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        accession_number=_text(ds, "AccessionNumber"),
        study_date=_date(ds, "StudyDate"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        body_part=_text(ds, "BodyPartExamined"),
        manufacturer=_text(ds, "Manufacturer"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        photometric_interpretation=_text(ds, "PhotometricInterpretation"),
        preview_png=png,
        preview_error=error,
    )


def _dataset(data: bytes) -> Dataset:
    if len(data) < 8:
        raise DicomError(f"not a DICOM file: only {len(data)} bytes")
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        pass
    except Exception as exc:  # truncated or corrupt file with a valid preamble
        raise DicomError(f"DICOM file could not be read: {type(exc).__name__}: {exc}") from exc
    # No "DICM" at offset 128: old or raw-dataset exports. Accept only if it really parses as a dataset.
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if any(k in ds for k in ("SOPClassUID", "StudyInstanceUID", "Modality", "PatientID")):
            return ds
    except Exception as exc:
        log.debug("forced DICOM read failed: %s", exc)
    raise DicomError("not a DICOM file: no DICM marker at offset 128 and no readable dataset")


def render_preview(ds: Dataset, max_side: int = PREVIEW_MAX_SIDE) -> bytes:
    """Render the (first) frame as an 8-bit PNG.

    Grey images: modality LUT (rescale slope/intercept), then the file's own window (first WindowCenter /
    WindowWidth, which the modality chose for viewing), else the 0.5-99.5 percentile range so one hot pixel
    does not wash the image out. MONOCHROME1 stores "high = dark", so it is inverted to display like film.
    """
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        arr = arr[0]
    if samples == 3:
        # pydicom already converts YBR to RGB by default; only the range needs fitting to 8 bits.
        img = _to_uint8(arr.astype(np.float64), None, None)
        image = Image.fromarray(img, mode="RGB")
    else:
        values = apply_modality_lut(arr, ds).astype(np.float64)
        center, width = _window(ds)
        img = _to_uint8(values, center, width)
        if str(getattr(ds, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            img = 255 - img
        image = Image.fromarray(img, mode="L")
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _window(ds: Dataset) -> tuple[float | None, float | None]:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None, None
    # Multi-valued windows list several presets; the first is the default one.
    center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
    width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
    try:
        c, w = float(center), float(width)
    except (TypeError, ValueError):
        return None, None
    return (c, w) if w > 0 else (None, None)


def _to_uint8(values: np.ndarray, center: float | None, width: float | None) -> np.ndarray:
    if center is not None and width is not None:
        low, high = center - width / 2, center + width / 2
    else:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return np.zeros(values.shape, dtype=np.uint8)
        low, high = (float(x) for x in np.percentile(finite, [0.5, 99.5]))
    if high <= low:
        high = low + 1.0
    scaled = (np.clip(values, low, high) - low) / (high - low) * 255.0
    return np.nan_to_num(scaled).round().astype(np.uint8)


def _text(ds: Dataset, keyword: str) -> str | None:
    value: Any = ds.get(keyword)
    if value is None:
        return None
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _person(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    # PN is Family^Given^Middle^Prefix^Suffix; keep the components readable but unreordered, because for
    # animals Family is the owner and Given the animal (Supplement 93).
    parts = [p.strip() for p in str(value).split("^")]
    text = "^".join(parts).rstrip("^")
    return text or None


def _code_meaning(ds: Dataset, keyword: str) -> str | None:
    seq = ds.get(keyword)
    if not seq:
        return None
    item = seq[0]
    return _text(item, "CodeMeaning") or _text(item, "CodeValue")


def _date(ds: Dataset, keyword: str) -> date | None:
    text = _text(ds, keyword)
    if not text:
        return None
    try:
        return parse_date(text.replace("-", "").replace(".", ""))
    except ValueError:
        return None


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None

"""DICOM reader: veterinary fields, preview rendering (window, MONOCHROME1), pixel-less and non-DICOM files."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from connectors.devices.dicom import DicomError, read_dicom
from connectors.devices.outcome import InboxReasonCode, process_bytes
from tests.connectors.devices.devices_support import SAMPLES

SAMPLE = SAMPLES / "dicom" / "CR_tiny_16x16_pydicom_6154.dcm"


def sample() -> pydicom.Dataset:
    return pydicom.dcmread(SAMPLE)


def to_bytes(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def pixels(png: bytes | None) -> np.ndarray:
    assert png is not None
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return np.asarray(Image.open(io.BytesIO(png)))


def test_monochrome1_is_inverted_relative_to_monochrome2() -> None:
    ds = sample()
    mono1 = pixels(read_dicom(to_bytes(ds)).preview_png)
    ds.PhotometricInterpretation = "MONOCHROME2"
    mono2 = pixels(read_dicom(to_bytes(ds)).preview_png)
    assert mono1.shape == (16, 16)
    assert np.array_equal(mono1.astype(int), 255 - mono2.astype(int))
    assert mono2.std() > 0  # the window shows structure, not a flat grey


def test_window_from_the_file_is_used_and_percentiles_when_absent() -> None:
    ds = sample()
    ds.PhotometricInterpretation = "MONOCHROME2"
    windowed = pixels(read_dicom(to_bytes(ds)).preview_png)
    del ds.WindowCenter
    del ds.WindowWidth
    stretched = pixels(read_dicom(to_bytes(ds)).preview_png)
    assert stretched.min() == 0
    assert stretched.max() == 255
    assert windowed.max() - windowed.min() < stretched.max() - stretched.min()


def test_veterinary_patient_module() -> None:
    ds = sample()
    ds.PatientName = "de Vries^Bello"
    ds.PatientSpeciesDescription = "Canine"
    ds.PatientBreedDescription = "Labrador Retriever"
    ds.ResponsiblePerson = "de Vries^Anna"
    study = read_dicom(to_bytes(ds))
    assert (study.patient_name, study.responsible_person) == ("de Vries^Bello", "de Vries^Anna")
    assert (study.species, study.breed) == ("Canine", "Labrador Retriever")


def test_large_image_preview_is_bounded() -> None:
    ds = sample()
    arr = (np.add.outer(np.arange(600), np.arange(1024)) % 4096).astype(np.uint16)
    ds.Rows, ds.Columns = arr.shape
    ds.PixelData = arr.tobytes()
    image = Image.open(io.BytesIO(read_dicom(to_bytes(ds)).preview_png or b""))
    assert image.size == (512, 300)


def test_pixel_less_file_keeps_metadata() -> None:
    ds = sample()
    del ds.PixelData
    study = read_dicom(to_bytes(ds))
    assert study.preview_png is None
    assert study.preview_error == "no pixel data in this DICOM file (metadata only)"
    assert study.patient_id == "77654033"
    assert study.modality == "CR"
    assert process_bytes(to_bytes(ds), "pacs").ok


def test_broken_pixel_data_keeps_metadata_with_a_reason() -> None:
    ds = sample()
    ds.PixelData = b"\x00\x01" * 10  # 20 bytes where 512 are needed
    study = read_dicom(to_bytes(ds))
    assert study.preview_png is None
    assert study.preview_error is not None
    assert study.preview_error.startswith("pixel data could not be rendered")
    assert study.study_instance_uid is not None


def test_not_dicom() -> None:
    with pytest.raises(DicomError, match="not a DICOM file"):
        read_dicom(b"this is a text file, not an image")
    outcome = process_bytes(b"this is a text file, not an image", "upload", "xray.dcm")
    assert outcome.detected_format == "dicom"
    assert outcome.inbox is not None
    assert outcome.inbox.code is InboxReasonCode.DICOM_INVALID


def test_truncated_dicom_never_raises_from_process_bytes() -> None:
    raw = SAMPLE.read_bytes()
    for size in (132, 200, 400, 1000, len(raw) - 100):
        outcome = process_bytes(raw[:size], "upload", "cut.dcm")
        assert outcome.detected_format == "dicom"
        assert outcome.inbox is None or outcome.inbox.code is InboxReasonCode.DICOM_INVALID

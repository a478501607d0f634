"""Fixtures for the GCS and Azure backends' emulators, shared by the contract suite and the e2e tests.

Import the fixtures into a test module to use them (one emulator per module). When an emulator cannot
run here (no node/npm for Azurite, the PyPI emulator missing), its tests skip with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from dataclasses import replace

import pytest

from azurite import Azurite, start_azurite
from gcs_emulator import GCSEmulator, start_gcs_emulator
from rs3gw.blobs.azure import AzureBackendConfig, AzureBlobStore
from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.gcs import GCSBackendConfig, GCSBlobStore

GCS_BUCKET = "rs3gw-contract"
AZURE_CONTAINER = "rs3gw-contract"


@pytest.fixture(scope="module")
def gcs_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSEmulator]:
    try:
        emu = start_gcs_emulator(tmp_path_factory.mktemp("gcs"), (GCS_BUCKET,))
    except RuntimeError as e:
        pytest.skip(f"GCS emulator cannot run here: {e}")
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        az = start_azurite(tmp_path_factory.mktemp("azurite"))
    except (RuntimeError, OSError) as e:
        pytest.skip(f"Azurite cannot run here: {e}")
    az.service().create_container(AZURE_CONTAINER)
    yield az
    az.stop()


def gcs_config(emu: GCSEmulator, prefix: str, part_size: int) -> GCSBackendConfig:
    # No write-time cache: every read goes to the emulator, as a sibling gateway's would.
    cfg = GCSBackendConfig(GCS_BUCKET, prefix, "test", emu.endpoint, part_size=part_size, retry_seconds=5)
    return replace(cfg, head_cache=0)


def azure_config(az: Azurite, prefix: str, part_size: int) -> AzureBackendConfig:
    cfg = AzureBackendConfig(AZURE_CONTAINER, prefix, az.connection_string, part_size=part_size, attempts=2)
    return replace(cfg, head_cache=0)


def gcs_store(
    request: pytest.FixtureRequest, prefix: str, part_size: int
) -> AbstractContextManager[BlobStore]:
    """A GCS blob store on the module's emulator, closed when the with-block ends."""
    return closing(GCSBlobStore(gcs_config(request.getfixturevalue("gcs_emu"), prefix, part_size)))


def azure_store(
    request: pytest.FixtureRequest, prefix: str, part_size: int
) -> AbstractContextManager[BlobStore]:
    """An Azure blob store on the module's Azurite, closed when the with-block ends."""
    return closing(AzureBlobStore(azure_config(request.getfixturevalue("azurite"), prefix, part_size)))

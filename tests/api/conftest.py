"""Fixtures for RyzeAPI tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ryze.api.settings import ApiSettings

from .harness import Api, make_settings, start_api


@pytest.fixture
def settings(tmp_path: Path) -> ApiSettings:
    return make_settings(tmp_path)


@pytest.fixture
async def api(settings: ApiSettings) -> AsyncIterator[Api]:
    async for value in start_api(settings):
        yield value


@pytest.fixture
async def account_token(api: Api) -> str:
    return await api.account()

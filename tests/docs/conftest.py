"""One :class:`docs_run.PageRun` per page module: its blocks share a namespace and a
directory (``PAGE`` names the page; see ``tests/docs_run.py`` for the conventions)."""

import re

import pytest
from docs_run import PageRun


@pytest.fixture(scope="module")
def page_run(request, tmp_path_factory):
    page = request.module.PAGE
    return PageRun(page, tmp_path_factory.mktemp(re.sub(r"\W", "_", page)))

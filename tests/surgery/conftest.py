"""Every test here runs on one torch thread (see ``support.one_thread``)."""

from support import one_thread  # noqa: F401

"""Which backend answers which model name."""

from __future__ import annotations

from assistd.backends.base import ChatBackend
from assistd.backends.scripted import ScriptedBackend

SCRIPTED_PREFIX = "scripted"


class BackendRegistry:
    """Model names starting with ``scripted`` go to the scripted model; every other name goes to the
    configured default model. The run still reports the name the client asked for."""

    def __init__(self, default_model: str) -> None:
        self._scripted = ScriptedBackend()
        self.default_model = default_model

    def backend_for(self, model: str) -> ChatBackend:
        if model.startswith(SCRIPTED_PREFIX) or self.default_model.startswith(SCRIPTED_PREFIX):
            return self._scripted
        # Only the scripted model exists so far; real backends plug in here.
        raise LookupError(f"no backend serves the default model {self.default_model!r}")

"""Why a kuma-cp configuration was refused."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kuma.errors import KumaError

__all__ = ["ConfigError", "ConfigProblem"]


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    key: str
    """Dotted camelCase key of the setting (`store.postgres.connectionTimeout`); empty when the
    problem is the file as a whole."""
    message: str
    source: str = ""
    """Where the bad value came from: `config.yaml line 4`, `env KUMA_STORE_TYPE`; empty when
    the problem is the combination of values."""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}" if self.key else self.message
        return f"{text} ({self.source})" if self.source else text


class ConfigError(KumaError):
    """The configuration cannot be loaded or is invalid; `problems` says what and where."""

    def __init__(self, summary: str, problems: Iterable[ConfigProblem] = ()) -> None:
        self.summary = summary
        self.problems = tuple(problems)
        super().__init__(self._text())

    def _text(self) -> str:
        if not self.problems:
            return self.summary
        if len(self.problems) == 1:
            return f"{self.summary}: {self.problems[0]}"
        return f"{self.summary}:\n" + "\n".join(f"  {p}" for p in self.problems)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys named by the problems, in order."""
        return tuple(p.key for p in self.problems)

"""Versioned prompt templates from prompts/ (Jinja2, zh and en)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from service.settings import PROJECT_ROOT

PROMPTS_DIR = PROJECT_ROOT / "prompts"


@dataclass
class PromptTemplate:
    id: str
    version: str
    _env: Environment
    _templates: dict[str, dict[str, str]]

    def messages(self, language: str, **context: Any) -> list[dict[str, str]]:
        names = self._templates.get(language) or self._templates["en"]
        return [{"role": "system", "content": self._env.get_template(names["system"]).render(**context).strip()},
                {"role": "user", "content": self._env.get_template(names["user"]).render(**context).strip()}]


def load_prompt(name: str, root: Path = PROMPTS_DIR) -> PromptTemplate:
    folder = root / name
    spec = yaml.safe_load((folder / "prompt.yaml").read_text(encoding="utf-8"))
    env = Environment(loader=FileSystemLoader(str(folder)), undefined=StrictUndefined, autoescape=False,
                      keep_trailing_newline=False, trim_blocks=False)
    return PromptTemplate(spec["id"], spec["version"], env, spec["templates"])

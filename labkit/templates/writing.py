"""Writing a template file: :func:`template_yaml` (the text a generated template is saved as; the loader reads it
back)."""

from __future__ import annotations

from typing import Any

import yaml

from labkit.templates.template import OPTIONAL_KEYS, REQUIRED_KEYS


def template_yaml(data: dict[str, Any]) -> str:
    """A template file's text for a mapping of its keys (the ``template`` text as a literal block), e.g. to save a
    generated template; :func:`load_template` reads it back."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    _Dumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]  # the loader refuses aliases
    order = [k for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in data and k != "template"] + ["template"]
    body = {k: data[k] for k in order if k in data}
    return yaml.dump(body, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)

"""Secrets from files: ``<NAME>_FILE`` names a file whose content is the
setting ``<NAME>`` (Docker and Kubernetes secrets, files readable by the
service only), so a secret need not be in the environment, where ``ps`` and
crash reports may show it."""

import os
from pathlib import Path
from typing import Any, Dict, Tuple

from pydantic.fields import FieldInfo
from pydantic_settings import PydanticBaseSettingsSource, SettingsError


class SecretFiles(PydanticBaseSettingsSource):
    """A settings source for the fields in ``fields``: ``<NAME>_FILE``."""

    fields: Tuple[str, ...] = ()

    def get_field_value(
        self, field: FieldInfo, field_name: str
    ) -> Tuple[Any, str, bool]:
        # Only __call__ is used; pydantic-settings requires the method.
        raise NotImplementedError  # pragma: no cover

    def __call__(self) -> Dict[str, Any]:
        values: Dict[str, Any] = {}
        for name in self.fields:
            variable = f"{name.upper()}_FILE"
            path = os.environ.get(variable)
            if path is None:
                continue
            if name.upper() in os.environ:
                raise SettingsError(
                    f"{name.upper()} and {variable} are both set; set one of them"
                )
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or type(e).__name__
                raise SettingsError(
                    f"{variable}: cannot read {path}: {reason}"
                ) from None
            # A file written with a final newline (echo, most editors) holds
            # the secret without it.
            values[name] = text[:-1] if text.endswith("\n") else text
        return values


def secret_files(*fields: str) -> type:
    """A :class:`SecretFiles` source class for ``fields``."""
    return type("SecretFilesFor", (SecretFiles,), {"fields": fields})

"""What the push step may be told; validated once before anything is written."""

import dataclasses
import re

from components.common.errors import UsageError


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """Push settings.

    model_name: the model's folder under the serving directory (TF Serving's model name).
    keep_versions: how many of the newest versions stay; older ones are retired after a push.
    """

    model_name: str = "classifier"
    keep_versions: int = 5

    def validate(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.model_name or ""):
            raise UsageError(
                f"push.model_name: {self.model_name!r} must be letters, digits, '_', '.', '-' "
                "(it becomes a folder name and TF Serving's model name)"
            )
        if self.keep_versions < 1:
            raise UsageError(f"push.keep_versions: {self.keep_versions} must be >= 1")

"""Push: a blessed export becomes the next TF Serving version, atomically (`run` is the entry)."""

from components.common.lazy import lazy_attributes
from components.push.config import PushConfig

__all__ = ["PushConfig", "PushResult", "ReloadError", "run"]
__getattr__ = lazy_attributes(__name__, {name: "pusher" for name in ("PushResult", "ReloadError", "run")})

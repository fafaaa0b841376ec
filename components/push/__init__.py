"""Push: a blessed export becomes the next TF Serving version, atomically (`run` is the entry)."""
from components.push.config import PushConfig
from components.push.pusher import PushResult, ReloadError, run

__all__ = ["PushConfig", "PushResult", "ReloadError", "run"]

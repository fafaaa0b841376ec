"""The audit component: label issues (confident learning) and train/test leakage, from backbone embeddings.

from components.audit import AuditConfig, run
result = run(AuditConfig(), train_config, ingest_dir, "root/audit/run1")
"""

from components.audit.config import AuditConfig
from components.common.lazy import lazy_attributes

__all__ = ["AuditConfig", "AuditResult", "run"]
__getattr__ = lazy_attributes(__name__, {"AuditResult": "audit", "run": "audit"})

"""The data-validation component: anomalies of an ingest (counts, rejects, drift vs the previous one).

from components.validate import ValidateConfig, run
result = run(ValidateConfig(), ingest_dir, previous_ingest_dir, "root/validate/run1")
"""

from components.common.lazy import lazy_attributes
from components.validate.checks import Anomaly
from components.validate.config import ValidateConfig

__all__ = ["Anomaly", "ValidateConfig", "ValidateResult", "run"]
__getattr__ = lazy_attributes(__name__, {"ValidateResult": "validate", "run": "validate"})

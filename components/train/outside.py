"""What a training run reads besides its artifacts, by content: the `train.exclude` list and the
distillation teacher. `pipeline.run` puts these digests in the trainer's (and the tuner's) input
fingerprint, so editing either file in place (same path) retrains."""

from schemas.artifacts import file_sha256


def digests(config) -> dict:
    """{"exclude": sha256, "teacher": sha256} for what `config` (a TrainConfig) names; {} for neither."""
    from components.train import exclude

    out = {}
    if config.exclude:
        out["exclude"] = exclude.digest(config.exclude)
    if config.distill.enabled:  # imported here: distill loads Keras, which a fully cached run must not
        from components.train import distill

        out["teacher"] = file_sha256(distill.teacher_path(config.distill.teacher))
    return out

"""`curves.png`: accuracy and loss per epoch, training and validation, stage boundaries marked.

Drawn with matplotlib's non-interactive Agg backend (no display needed) from the epoch records
the trainer keeps (`callbacks.EpochRecorder`), so the curves of a resumed run are complete.
"""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import tensorflow as tf  # noqa: E402


def stage_spans(epochs: list) -> list:
    """[(stage, first_epoch, last_epoch)] in order, from the epoch records."""
    spans = []
    for record in epochs:
        if spans and spans[-1][0] == record["stage"]:
            spans[-1] = (record["stage"], spans[-1][1], record["epoch"])
        else:
            spans.append((record["stage"], record["epoch"], record["epoch"]))
    return spans


def plot_curves(epochs: list, path: str) -> None:
    """Write the two-panel figure to `path` (through tf.io.gfile, so any filesystem works)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = [r["epoch"] + 1 for r in epochs]
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for key, label, style in ((metric, "train", "-o"), (f"val_{metric}", "validation", "-s")):
            points = [(xi, r[key]) for xi, r in zip(x, epochs) if key in r]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=label)
        for i, (stage, first, last) in enumerate(stage_spans(epochs)):
            if i:
                ax.axvline(first + 0.5, color="grey", linestyle="--", linewidth=1)
            ax.text(
                (first + last) / 2 + 1,
                1.0,
                stage,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=9,
                color="dimgrey",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())

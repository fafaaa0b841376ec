"""The report's pictures, each returned as PNG bytes to embed (no files beside report.html).

Rendering only: thumbnails of files, a heatmap of a confusion matrix that evaluate computed, a
grid of test images with the labels the exported model gave them. The numbers come from the
components' artifacts; nothing here trains, evaluates or decides.
"""

import io

import numpy as np
from PIL import Image, ImageDraw


def _pyplot():
    """matplotlib, headless (no display on servers, in cron or in CI); loaded for charts only (a second)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def thumbnail(data: bytes | None, caption: str, size: int = 96) -> bytes:
    """A PNG thumbnail of an image file's bytes; a grey tile saying why when it does not decode."""
    try:
        if not data:
            raise ValueError("empty")
        image = Image.open(io.BytesIO(data))
        image.load()
        image = image.convert("RGB")
        image.thumbnail((size, size))
    except Exception:  # broken files are exactly what this shows: any decoder failure means "no picture"
        image = Image.new("RGB", (size, size), (200, 200, 200))
        draw = ImageDraw.Draw(image)
        draw.text((4, size // 2 - 12), "cannot\ndisplay", fill=(60, 60, 60))
    canvas = Image.new("RGB", (size, size + 14), (255, 255, 255))
    canvas.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    ImageDraw.Draw(canvas).text((2, size + 1), caption[:18], fill=(120, 0, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def confusion_heatmap(matrix: list, labels: list) -> bytes:
    """Rows: true class; columns: predicted class; cells annotated with counts."""
    m = np.asarray(matrix, dtype=float)
    n = len(labels)
    fig, ax = _pyplot().subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = m.max() if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}",
                ha="center",
                va="center",
                color="white" if top and m[i, j] > top / 2 else "black",
                fontsize=8,
            )
    return _png(fig)


def image_grid(images: list, titles: list, columns: int = 6) -> bytes:
    """Encoded images in a grid with a title under each (true vs predicted, score)."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = _pyplot().subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, data, title in zip(axes.flat, images, titles):
        try:
            ax.imshow(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        except Exception:  # a record that does not decode still gets its title
            pass
        ax.set_title(title, fontsize=7)
    return _png(fig)


def reliability_diagram(panels: dict) -> bytes:
    """Accuracy against confidence per bin, one panel per {title: bins} (e.g. before/after calibration);
    the diagonal is perfect calibration, the bar width is the bin, the grey line the bin's mean confidence."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, bins) in zip(axes[0], panels.items()):
        filled = [b for b in bins if b["count"]]
        ax.bar(
            [b["low"] for b in filled],
            [b["accuracy"] for b in filled],
            width=[b["high"] - b["low"] for b in filled],
            align="edge",
            color="#4477aa",
            edgecolor="white",
            label="accuracy",
        )
        ax.plot(
            [b["confidence"] for b in filled],
            [b["confidence"] for b in filled],
            "_",
            color="#555555",
            markersize=10,
            label="mean confidence",
        )
        ax.plot([0, 1], [0, 1], "--", color="#aa3377", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("top-1 confidence")
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("accuracy")
    return _png(fig)


def coverage_curve(curve: list, chosen: dict | None) -> bytes:
    """Accuracy of the answered images against the share answered; the abstention threshold's point marked."""
    fig, ax = _pyplot().subplots(figsize=(4, 3))
    ax.plot([p["coverage"] for p in curve], [p["accuracy"] for p in curve], color="#4477aa")
    if chosen and chosen.get("accuracy") is not None:
        ax.plot([chosen["coverage"]], [chosen["accuracy"]], "o", color="#aa3377", label="abstention threshold")
        ax.legend(fontsize=7, loc="lower left")
    ax.set_xlabel("coverage (share answered)")
    ax.set_ylabel("accuracy of the answers")
    ax.set_xlim(0, 1.02)
    return _png(fig)


def tuning_trials(trials: list, chosen: int | None) -> bytes:
    """Each trial's validation accuracy against the search's elapsed time when it ended; the default recipe
    (trial 0) and the chosen trial marked; pruned and budget-stopped trials hollow (the best they reached)."""
    fig, ax = _pyplot().subplots(figsize=(5, 3))
    elapsed = np.cumsum([float(t["seconds"] or 0) for t in trials])
    for t, x in zip(trials, elapsed):
        if t["val_accuracy"] in ("", None):
            continue
        y, complete = float(t["val_accuracy"]), t["status"] == "complete"
        ax.plot([x], [y], "o", color="#4477aa", fillstyle="full" if complete else "none")
        if t["recipe"] == "default":
            ax.annotate("default", (x, y), fontsize=7, xytext=(4, -10), textcoords="offset points")
        if chosen is not None and int(t["trial"]) == chosen:
            ax.plot([x], [y], "*", color="#aa3377", markersize=12, label=f"chosen (trial {chosen})")
            ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("search time when the trial ended (s)")
    ax.set_ylabel("val accuracy")
    return _png(fig)

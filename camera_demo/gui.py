"""``cifar-edge gui``: a Tk window to open a picture, classify it and see the top-3 as a bar chart.

The logic lives in methods the buttons call (:meth:`ClassifierApp.open_image`,
:meth:`ClassifierApp.classify`), so tests drive the real window without
clicking. A file that cannot be read shows an error in the window's status
line; nothing a user opens can crash the app.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from cifar_edge.cli.atomic import atomic_path
from edge_sdk.classifier import ClassificationResult, Classifier
from edge_sdk.errors import BackendUnavailableError, EdgeSDKError
from cifar_edge.cli.errors import OutputError
from edge_sdk.images import open_rgb
from cifar_edge.cli.terminal import safe_text

if TYPE_CHECKING:
    import tkinter as tk

log = logging.getLogger(__name__)

TOP_K = 3
PREVIEW = 320  # the picture is scaled to fit a PREVIEW x PREVIEW square
BAR_W, ROW_H = 220, 30
FILE_TYPES = [("Images", "*.jpg *.jpeg *.png *.bmp *.webp *.gif *.tif *.tiff"), ("All files", "*")]
ERROR_FG, OK_FG = "#b00020", "#1b5e20"


def load_tk() -> Any:
    """The ``tkinter`` module, or a clear error naming the system package to install."""
    try:
        import tkinter
    except ImportError as exc:
        raise BackendUnavailableError(
            "the image GUI needs Tk, which this Python lacks; install your system's Tk package "
            "(e.g. apt-get install python3-tk, or the python.org installer)"
        ) from exc
    return tkinter


def new_root(title: str = "cifar-edge") -> tk.Tk:
    """A Tk root window; :class:`OutputError` when there is no display to open it on."""
    tkinter = load_tk()
    try:
        root = tkinter.Tk()
    except tkinter.TclError as exc:
        raise OutputError(f"cannot open a window ({exc}); the GUI needs a display (set DISPLAY)") from exc
    root.title(title)
    return root


class ClassifierApp:
    """The GUI: toolbar (Open image…, Classify, model), the picture, top-3 bars, latency and a status line."""

    def __init__(self, root: tk.Tk, classifier: Classifier) -> None:
        tkinter = load_tk()
        from tkinter import filedialog

        self._tk, self._filedialog = tkinter, filedialog
        self.root = root
        self.clf = classifier
        self.image: Image.Image | None = None  # the RGB picture as decoded (what gets classified)
        self.image_path: str | None = None
        self.result: ClassificationResult | None = None
        self._photo: Any = None  # keep a reference: Tk shows nothing if the PhotoImage is collected

        bar = tkinter.Frame(root, padx=8, pady=6)
        bar.pack(side="top", fill="x")
        self.open_button = tkinter.Button(bar, text="Open image…", command=self.open_dialog)
        self.open_button.pack(side="left")
        self.classify_button = tkinter.Button(bar, text="Classify", command=self.classify, state="disabled")
        self.classify_button.pack(side="left", padx=(6, 0))
        self.model_label = tkinter.Label(
            bar, text=f"model {classifier.model_name} | {classifier.backend_name}", fg="#555555")
        self.model_label.pack(side="right")

        # An image (even a blank one) makes the label's size count in pixels, not characters.
        self._blank = tkinter.PhotoImage(master=root, width=PREVIEW, height=PREVIEW)
        self.picture = tkinter.Label(root, image=self._blank, compound="center", bg="#202020",
                                     text="Open an image to start", fg="#dddddd")
        self.picture.pack(side="top", padx=8, pady=4)

        self.bars = tkinter.Canvas(root, width=BAR_W + 200, height=ROW_H * TOP_K + 6, highlightthickness=0)
        self.bars.pack(side="top", padx=8, pady=(6, 0))
        self.latency = tkinter.Label(root, text="", anchor="w")
        self.latency.pack(side="top", fill="x", padx=8)
        self.status = tkinter.Label(root, text="", anchor="w", justify="left", wraplength=PREVIEW + 100)
        self.status.pack(side="top", fill="x", padx=8, pady=(0, 8))

    # ------------------------------------------------------------------ actions (what the buttons call)
    def open_dialog(self) -> bool:
        """The "Open image…" button: ask for a file, then :meth:`open_image` it."""
        path = self._filedialog.askopenfilename(parent=self.root, title="Open image", filetypes=FILE_TYPES)
        return self.open_image(path) if path else False

    def open_image(self, path: str | os.PathLike[str]) -> bool:
        """Load and show a picture; on failure show the error and return False (the previous picture is cleared)."""
        self._clear_result()
        try:
            image = open_rgb(path)
        except (EdgeSDKError, OSError, ValueError) as exc:
            self.image, self.image_path = None, None
            self._photo = None
            self.picture.configure(image=self._blank, text="(no picture)")
            self.classify_button.configure(state="disabled")
            self.show_error(str(exc))
            return False
        self.image, self.image_path = image, str(path)
        self._show_picture(image)
        self.classify_button.configure(state="normal")
        self.show_status(f"{Path(path).name}: {image.width}x{image.height}; press Classify")
        return True

    def classify(self) -> ClassificationResult | None:
        """The "Classify" button: top-3 bars and latency for the open picture (None, with a message, if it fails)."""
        if self.image is None:
            self.show_error("open an image first")
            return None
        try:
            result = self.clf.classify(self.image)
        except EdgeSDKError as exc:
            self._clear_result()
            self.show_error(f"cannot classify {self.image_path}: {exc}")
            return None
        self.show_result(result)
        return result

    # ------------------------------------------------------------------ display
    def show_result(self, result: ClassificationResult) -> None:
        """Draw the top-3 labels with probability bars and the latency."""
        self._clear_result()
        self.result = result
        font = ("TkDefaultFont", 11)
        if not result.categories:
            self.bars.create_text(4, ROW_H // 2, text="no class above the score threshold", anchor="w", font=font)
        for i, cat in enumerate(result.categories[:TOP_K]):
            y = 3 + i * ROW_H
            self.bars.create_text(4, y + ROW_H // 2, text=cat.label, anchor="w", tags=("label", f"label{i}"),
                                  font=("TkDefaultFont", 11, "bold" if i == 0 else "normal"))
            x0 = 110
            self.bars.create_rectangle(x0, y + 5, x0 + BAR_W, y + ROW_H - 5, outline="#999999")
            filled = round(BAR_W * max(0.0, min(1.0, cat.score)))
            if filled:
                self.bars.create_rectangle(x0, y + 5, x0 + filled, y + ROW_H - 5, fill="#43a047" if i == 0 else
                                           "#90caf9", outline="", tags=("bar", f"bar{i}"))
            self.bars.create_text(x0 + BAR_W + 8, y + ROW_H // 2, text=f"{100 * cat.score:.1f}%", anchor="w",
                                  font=font, tags=("score", f"score{i}"))
        t = result.timing
        self.latency.configure(
            text=f"latency {t.total_ms:.2f} ms (preprocess {t.preprocess_ms:.2f}, inference {t.inference_ms:.2f}, "
                 f"postprocess {t.postprocess_ms:.2f})")
        top = result.top
        verdict = "unknown (no known object)" if result.unknown else (top.label if top else "no class")
        self.show_status(f"{Path(self.image_path or '').name}: {verdict}", ok=True)

    def shown_labels(self) -> list[str]:
        """The labels the bar chart shows, top first (read back from the canvas)."""
        items = sorted(self.bars.find_withtag("label"),
                       key=lambda item: self.bars.coords(item)[1])
        return [self.bars.itemcget(item, "text") for item in items]

    def show_error(self, message: str) -> None:
        """Show ``message`` in the status line, in red."""
        log.debug("gui error: %s", message)
        self.status.configure(text=message, fg=ERROR_FG)

    def show_status(self, message: str, ok: bool = False) -> None:
        self.status.configure(text=message, fg=OK_FG if ok else "#333333")

    def _show_picture(self, image: Image.Image) -> None:
        from PIL import ImageTk

        scale = min(PREVIEW / image.width, PREVIEW / image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        # Tiny CIFAR pictures are enlarged with visible pixels rather than blurred.
        method = Image.Resampling.NEAREST if scale >= 4 else Image.Resampling.LANCZOS
        self._photo = ImageTk.PhotoImage(image.resize(size, method), master=self.root)
        self.picture.configure(image=self._photo, text="")

    def _clear_result(self) -> None:
        self.result = None
        self.bars.delete("all")
        self.latency.configure(text="")

    # ------------------------------------------------------------------ screenshots
    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save the window as a PNG (atomically) and return its path."""
        from PIL import ImageGrab

        self.root.update()
        x, y = self.root.winfo_rootx(), self.root.winfo_rooty()
        w, h = self.root.winfo_width(), self.root.winfo_height()
        kwargs: dict[str, Any] = {"bbox": (x, y, x + w, y + h)}
        if sys.platform.startswith("linux"):
            kwargs["xdisplay"] = os.environ.get("DISPLAY")
        try:
            shot = ImageGrab.grab(**kwargs)
        except OSError as exc:
            raise OutputError(f"cannot capture the window: {exc}") from exc
        with atomic_path(path, suffix=".png") as tmp:
            shot.save(tmp, format="PNG")
        return Path(path)


def run_gui(classifier: Classifier, image: str | None = None, screenshot: str | None = None) -> int:
    """Open the window (with ``image`` loaded and classified); with ``screenshot``, save one and close.

    Returns 0, or 2 when ``image`` could not be read.
    """
    root = new_root("cifar-edge: classify an image")
    try:
        app = ClassifierApp(root, classifier)
        ok = True
        if image is not None:
            ok = app.open_image(image)
            if ok:
                app.classify()
        if screenshot is not None:
            path = app.screenshot(screenshot)
            print(f"screenshot saved: {safe_text(str(path))}")
            return 0 if ok else 2
        root.mainloop()
        return 0
    finally:
        with contextlib.suppress(Exception):  # already closed by the user
            root.destroy()

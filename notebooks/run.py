"""Execute the notebooks in a fresh kernel (nbclient), check their outputs, and optionally save them.

    python notebooks/run.py                      # execute every notebook, fail on an error, save nothing
    python notebooks/run.py --save 02_frameworks.ipynb   # execute and write the outputs back (what is committed)

The notebooks write their runs under ``runs/`` and their figures under ``images/``, relative to their working
directory: a fresh temporary folder, so that executing them changes nothing in the tree, or with ``--save`` the
notebooks folder itself (``notebooks/runs/`` is ignored by git; ``notebooks/images/`` holds the committed
figures). Checks on the outputs: no error, no warning text, no local path (``/tmp``, ``/work``, ``/home``,
``/root``), and the time limit per notebook. Notebooks run one per CPU core at a time (``--jobs``), each kernel
with one torch thread. The test suite
(``tests/test_notebooks.py``) runs the same functions.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

FOLDER = Path(__file__).resolve().parent
#: seconds a notebook may take on 2 CPU cores, with another notebook on the other core (the issue's bound is 5 minutes)
TIME_LIMIT = 300
#: what must not appear in a committed output
FORBIDDEN = (r"Warning\b", r"/tmp/", r"/work/", r"/home/", r"/root/", r"Traceback")


def notebooks() -> list[Path]:
    return sorted(FOLDER.glob("[0-9][0-9]_*.ipynb"))


def output_texts(nb) -> list[str]:
    """Every text an executed notebook shows: streams, plain-text results and error tracebacks."""
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out.get("text", ""))
            elif out.get("output_type") == "error":
                texts.append("\n".join(out.get("traceback", [])))
            else:
                texts.append(out.get("data", {}).get("text/plain", ""))
    return texts


def unrendered_figures(nb) -> int:
    """Results that show a figure only as ``<Figure size ...>`` text (no ``%matplotlib inline``)."""
    return sum(1 for cell in nb.cells for out in cell.get("outputs", [])
               if str(out.get("data", {}).get("text/plain", "")).startswith("<Figure") and "image/png" not in
               out.get("data", {}))


def problems(nb) -> list[str]:
    """What in an executed notebook's outputs would not belong in the committed file."""
    n = unrendered_figures(nb)
    found = [f"{n} figure(s) shown as text: start the notebook with %matplotlib inline"] if n else []
    for text in output_texts(nb):
        for pattern in FORBIDDEN:
            match = re.search(pattern, text)
            if match:
                line = next(ln for ln in text.splitlines() if match.group(0) in ln)
                found.append(f"{pattern!r} in output: {line.strip()[:160]}")
    return found


def execute(path: Path, save: bool = False, timeout: int = TIME_LIMIT) -> tuple[object, float]:
    """Run ``path`` top to bottom in a fresh kernel; returns (notebook, seconds). The kernel starts in a temporary
    folder, or with ``save`` in the notebooks folder, whose figures and outputs it then rewrites.

    Raises ``nbclient.exceptions.CellExecutionError`` on an error, ``TimeoutError`` past ``timeout`` seconds in
    total, ``ValueError`` when an output shows a warning, a traceback or a local path.
    """
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    # one torch thread unless told otherwise: the notebooks' models are small, and on a machine whose cores other
    # jobs also use, two spinning OpenMP threads made a notebook several times slower than one
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("ART_HE_NOTEBOOK_THREADS", "1")}
    with tempfile.TemporaryDirectory(prefix="art_he_notebook_") as scratch:
        folder = FOLDER if save else Path(scratch)
        (folder / "images").mkdir(exist_ok=True)
        start = time.perf_counter()
        # the kernel talks over local sockets in the scratch folder, not TCP (ipykernel warns about unencrypted TCP)
        ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(scratch) / "kernel")}})
        NotebookClient(nb, timeout=timeout, kernel_name="python3", config=ipc,
                       resources={"metadata": {"path": str(folder)}}).execute(env=env)
        elapsed = time.perf_counter() - start
    if elapsed > timeout:
        raise TimeoutError(f"{path.name} took {elapsed:.0f} s, over the limit of {timeout} s")
    found = problems(nb)
    if found:
        raise ValueError(f"{path.name}: " + "; ".join(found))
    if save:
        for cell in nb.cells:  # execution counts from 1, no per-run metadata
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
    return nb, elapsed


def default_jobs() -> int:
    """How many notebooks run at once: one per CPU core this process may use (each kernel runs one torch thread)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def execute_all(paths: list[Path], jobs: int | None = None, save: bool = False) -> dict[Path, Future]:
    """Start :func:`execute` on every path, ``jobs`` at a time (default :func:`default_jobs`); each future gives
    ``(notebook, seconds)`` or raises what :func:`execute` raised; the time limit holds per notebook."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs or default_jobs(), len(paths))))
    futures = {path: pool.submit(execute, path, save) for path in paths}
    pool.shutdown(wait=False)
    return futures


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="notebook files in notebooks/ (default: all)")
    p.add_argument("--save", action="store_true", help="write the outputs back into the notebooks")
    p.add_argument("--jobs", type=int, default=None, help="notebooks at once (default: one per CPU core)")
    args = p.parse_args()
    paths = [FOLDER / Path(n).name for n in args.names] or notebooks()
    try:
        futures = execute_all(paths, args.jobs, save=args.save)
    except ValueError as error:  # the rule for --jobs lives in execute_all
        p.error(str(error))
    for path, future in futures.items():
        _, elapsed = future.result()
        print(f"{path.name}: ran in {elapsed:.0f} s" + (", saved" if args.save else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

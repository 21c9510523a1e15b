"""Mutation check: does the suite fail when a realistic bug is put into the code?

Each mutation in ``tests/mutations/*.py`` is one textual edit (file, old text, new text) that a
plausible bug would make, plus the tests that should catch it. For each mutation this runner
copies the repository (once per worker), applies the edit, runs those tests, restores the file,
and records whether the tests failed (caught) or passed (survived). Exit status 1 when any
mutation survives or a mutation no longer applies (its ``old`` text must occur exactly once).

    make mutate                                 # every mutation, 2 workers
    .venv/bin/python tests/mutate.py -k store   # the ones whose id or file contains "store"
    .venv/bin/python tests/mutate.py --list

It is not part of ``make test``: a full run is a few hundred test runs.
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

REPO = Path(__file__).resolve().parents[1]
CATALOG = Path(__file__).resolve().parent / "mutations"
SKIP_COPY = {
    ".venv",
    ".git",
    "demo_out",
    "bench_out",
    ".pytest_cache",
    ".ruff_cache",
    "__pycache__",
}


@dataclass(frozen=True)
class Mutation:
    id: str  # short and unique: "sampling-stride-1"
    file: str  # repo-relative path of the file to edit
    old: str  # exact text, found exactly once in the file
    new: str  # what a bug would put there instead
    tests: tuple[str, ...]  # pytest node ids or files that must fail
    why: str = ""  # the real bug this stands for


def load_catalog() -> list[Mutation]:
    mutations: list[Mutation] = []
    for path in sorted(CATALOG.glob("*.py")):
        for entry in runpy.run_path(str(path))["MUTATIONS"]:
            entry = dict(entry)
            entry["tests"] = tuple(entry["tests"])
            mutations.append(Mutation(**entry))
    ids = [m.id for m in mutations]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SystemExit(f"mutation ids used twice: {dupes}")
    return mutations


def check_applies(m: Mutation, root: Path = REPO) -> str | None:
    """None when ``m.old`` occurs exactly once in ``m.file``, else why the mutation is stale."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    count = path.read_text().count(m.old)
    return None if count == 1 else f"its old text occurs {count} times in {m.file}"


def make_copy(dest: Path) -> Path:
    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_COPY or n.endswith(".egg-info")}

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    shared = REPO.parent / "shared"
    if shared.exists() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared)  # tests find the real clips at ../shared
    return dest


def run_one(m: Mutation, root: Path, timeout: int) -> tuple[str, float, str]:
    """Apply ``m`` inside ``root``, run its tests, restore. (outcome, seconds, last output line)."""
    path = root / m.file
    original = path.read_text()
    path.write_text(original.replace(m.old, m.new, 1))
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MERV_FAULT", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        last = lines[-1] if lines else proc.stderr.strip()[-200:]
        # pytest: 0 all passed, 1 some failed, 2-4 errors, 5 no tests collected.
        outcome = {0: "SURVIVED", 1: "caught", 5: "NO TESTS"}.get(proc.returncode, "caught (error)")
    except subprocess.TimeoutExpired:
        outcome, last = "caught (timeout)", f"tests ran past {timeout} s"
    finally:
        path.write_text(original)
    return outcome, time.perf_counter() - start, last


def baseline_passes(todo: list[Mutation], root: Path, timeout: int) -> bool:
    """The selected tests must pass on the unmutated copy, or every "caught" would be a lie."""
    tests = sorted({t for m in todo for t in m.tests})
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MERV_FAULT", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout * 4
    )
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
        print("the mutation tests fail on the unmutated code: fix them first", file=sys.stderr)
    return proc.returncode == 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", "--filter", help="only mutations whose id or file contains this text")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="mutations run at once (default 2)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per mutation's test run")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument(
        "--check", action="store_true", help="only check that every mutation still applies"
    )
    ap.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the first run of the selected tests on the unmutated code",
    )
    args = ap.parse_args(argv)

    mutations = load_catalog()
    if args.filter:
        mutations = [m for m in mutations if args.filter in m.id or args.filter in m.file]
    if args.list:
        for m in mutations:
            print(f"{m.id:32s} {m.file:28s} {m.why}")
        print(f"{len(mutations)} mutations")
        return 0
    stale = {m.id: why for m in mutations if (why := check_applies(m))}
    for mid, why in stale.items():
        print(f"stale mutation {mid}: {why}", file=sys.stderr)
    todo = [m for m in mutations if m.id not in stale]
    if args.check:
        print(f"{len(todo)} of {len(mutations)} mutations apply, {len(stale)} stale")
        return 1 if stale else 0

    start = time.perf_counter()
    results: dict[str, tuple[str, float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="merv-mutate-") as tmp:
        workers: Queue[Path] = Queue()
        for i in range(max(1, args.jobs)):
            workers.put(make_copy(Path(tmp) / f"w{i}" / "repo"))

        def job(m: Mutation) -> None:
            root = workers.get()
            try:
                results[m.id] = run_one(m, root, args.timeout)
            finally:
                workers.put(root)
            outcome, secs, _ = results[m.id]
            print(f"  {outcome:16s} {secs:6.1f}s  {m.id}", flush=True)

        if not args.no_baseline:
            print("baseline: the selected tests on the unmutated code ...", flush=True)
            first = workers.get()
            if not baseline_passes(todo, first, args.timeout):
                return 2
            workers.put(first)
        print(f"{len(todo)} mutations, {args.jobs} at a time", flush=True)
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            list(pool.map(job, todo))

    total = time.perf_counter() - start
    print()
    print(f"{'mutation':32s} {'file':28s} {'result':16s} {'s':>6s}")
    print("-" * 86)
    for m in todo:
        outcome, secs, _ = results[m.id]
        print(f"{m.id:32s} {m.file:28s} {outcome:16s} {secs:6.1f}")
    survived = [m.id for m in todo if not results[m.id][0].startswith("caught")]
    caught = len(todo) - len(survived)
    print("-" * 86)
    print(
        f"{caught} of {len(todo)} mutations caught, {len(survived)} survived, "
        f"{len(stale)} stale; run time {total:.0f} s"
    )
    for mid in survived:
        print(f"SURVIVED: {mid}: {results[mid][2]}")
    return 1 if survived or stale else 0


if __name__ == "__main__":
    sys.exit(main())

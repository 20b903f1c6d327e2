"""Mutation check: plant known bugs (scripts/mutations/) in throw-away copies of the repository and see the
tests that should catch each one fail.

The copies hold the working tree as it is on disk (tracked and untracked, not ignored files), so uncommitted
changes and new tests count. First the listed tests of every chosen mutation must pass on an unmutated copy
(otherwise the mutation reports "broken baseline"); then each mutation gets its own copy with one snippet
replaced, and its tests run there with ``PYTHONPATH=<copy>`` (the copy's gantrain wins over the editable
install, also in ``gantrain`` subprocesses). A snippet that is not found exactly once stops the check
before anything runs: the mutation is stale and must be updated.

    python scripts/mutation_check.py [--only NAME ...] [--list] [--jobs N] [--keep]

Exit status: 0 when every mutation was caught, 1 when one survived or had a broken baseline, 2 when a
mutation is stale or invalid.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import MUTATIONS, Mutation  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
TIMEOUT_S = 900  # one pytest run; pytest-timeout already stops a single stuck test after 300 s


def repository_files() -> list[str]:
    """Tracked and untracked (not ignored) files of the working tree that exist on disk."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (ROOT / f).is_file()})


def make_copy(source: Path, files: list[str], prefix: str) -> Path:
    copy = Path(tempfile.mkdtemp(prefix=prefix))
    for f in files:
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / f, copy / f)
    return copy


def check_snippet(m: Mutation, root: Path) -> tuple[str, int]:
    """The source with the mutation applied and the line of the snippet; raises ValueError if it is stale."""
    path = root / m.file
    if not path.is_file():
        raise ValueError(f"{m.name}: {m.file} does not exist")
    source = path.read_text()
    count = source.count(m.old)
    if count != 1:
        raise ValueError(f"{m.name}: the old snippet occurs {count} times in {m.file} (must be exactly once): {m.old!r}")
    mutated = source.replace(m.old, m.new)
    if m.file.endswith(".py"):
        try:
            compile(mutated, m.file, "exec")
        except SyntaxError as err:
            raise ValueError(f"{m.name}: the mutated {m.file} does not compile ({err})") from None
    return mutated, source[: source.index(m.old)].count("\n") + 1


def pytest(copy: Path, tests: list[str], jobs: int, stop_first: bool = True) -> tuple[int, str, float]:
    """Run pytest on ``tests`` inside ``copy``: exit code, output and seconds."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(copy), os.environ.get("PYTHONPATH")])))
    opts = PYTEST if stop_first else [o for o in PYTEST if o != "-x"]
    cmd = [sys.executable, "-m", "pytest", *opts, *(["-n", str(jobs)] if jobs else []), *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        return -1, out + f"\n(timed out after {TIMEOUT_S} s)", time.perf_counter() - start


def summary(output: str) -> str:
    """pytest's last line of counts, e.g. '1 failed, 3 passed'."""
    for line in reversed(output.strip().splitlines()):
        if re.search(r"\bin [\d.]+s\b", line):
            if "no tests ran" in line:
                return "no tests ran"
            found = re.findall(r"(\d+) (failed|passed|errors?|skipped)\b", line)
            if found:
                return ", ".join(f"{n} {what}" for n, what in found)
    return "no summary"


def assert_copy_is_imported(copy: Path) -> None:
    """Guard against the editable install shadowing the copy: ``gantrain`` must resolve inside it, also from
    another folder (as in the ``gantrain`` subprocesses tests start in their tmp_path)."""
    env = dict(os.environ, PYTHONPATH=str(copy))
    origin = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('gantrain').origin)"],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(origin).resolve().is_relative_to(copy.resolve()):
        sys.exit(f"with PYTHONPATH={copy}, gantrain is imported from {origin}: the copy would not be tested")


def baselines(chosen: list[Mutation], snapshot: Path, jobs: int) -> dict[tuple, str]:
    """Run every chosen mutation's tests on the unmutated snapshot: one pytest run for all of them, and one run
    per test selection only if that fails, to find whose baseline is broken. Maps selections to failures."""
    assert_copy_is_imported(snapshot)
    selections = list(dict.fromkeys(tuple(m.tests) for m in chosen))
    union = list(dict.fromkeys(t for s in selections for t in s))
    rc, output, seconds = pytest(snapshot, union, jobs, stop_first=False)
    print(f"baseline: {len(union)} test selections on the unmutated copy: {summary(output)} ({seconds:.0f} s)", flush=True)
    if rc == 0:
        return {}
    broken = {}
    for s in selections:
        rc, output, _ = pytest(snapshot, list(s), jobs)
        if rc != 0:
            broken[s] = output
    return broken


def table(rows: list[tuple[str, ...]]) -> str:
    header = ("mutation", "where", "tests run", "result", "seconds")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: " | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), "-+-".join("-" * w for w in widths), *map(line, rows)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--jobs", type=int, default=0, metavar="N", help="pytest -n N (pytest-xdist); default: none")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies and print where they are")
    args = parser.parse_args(argv)

    names = [m.name for m in MUTATIONS]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        print(f"duplicate mutation names: {', '.join(duplicates)}", file=sys.stderr)
        return 2
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        print(f"unknown mutations: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]

    files = [] if args.list else repository_files()
    # one snapshot of the working tree, taken once: the baseline runs in it, every mutation copies it
    snapshot = None if args.list else make_copy(ROOT, files, "gantrain-mutation-baseline-")
    try:
        return check(chosen, snapshot or ROOT, files, args)
    finally:
        if snapshot and args.keep:
            print(f"kept the unmutated copy: {snapshot}")
        elif snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)


def check(chosen: list[Mutation], snapshot: Path, files: list[str], args) -> int:
    problems, patched = [], {}
    for m in chosen:
        try:
            patched[m.name] = check_snippet(m, snapshot)
        except ValueError as err:
            problems.append(str(err))
    if args.list:
        for m in chosen:
            where = f"{m.file}:{patched[m.name][1]}" if m.name in patched else f"{m.file} (STALE)"
            print(f"{m.name}  [{where}]\n    {m.description}\n    tests: {' '.join(m.tests)}")
    if problems:
        print("stale or invalid mutations (update their snippets in scripts/mutations/):\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if args.list:
        return 0

    broken = baselines(chosen, snapshot, args.jobs)
    rows, failed = [], False
    for m in chosen:
        mutated, line = patched[m.name]
        where, tests = f"{m.file}:{line}", ", ".join(t.removeprefix("tests/") for t in m.tests)
        if tuple(m.tests) in broken:
            rows.append((m.name, where, tests, "broken baseline", "-"))
            print(
                f"{m.name}: broken baseline, its tests fail unmutated:\n" + "\n".join(broken[tuple(m.tests)].strip().splitlines()[-15:]),
                file=sys.stderr,
            )
            failed = True
            continue
        copy = make_copy(snapshot, files, f"gantrain-mutation-{m.name}-")
        try:
            (copy / m.file).write_text(mutated)
            rc, output, seconds = pytest(copy, m.tests, args.jobs)
        finally:
            if args.keep:
                print(f"kept {m.name}'s copy: {copy}")
            else:
                shutil.rmtree(copy, ignore_errors=True)
        if rc == 0:
            result, failed = f"SURVIVED ({summary(output)})", True
        elif rc == 1 or (rc == 2 and "failed" in summary(output)):  # xdist reports -x's stop as exit 2
            result = f"caught ({summary(output)})"
        elif rc == -1:
            result = "caught (timed out)"
        else:
            result = f"caught (pytest exit {rc}: {summary(output)})"
        rows.append((m.name, where, tests, result, f"{seconds:.1f}"))
        print(f"{m.name}: {result} in {seconds:.1f} s", flush=True)
    print()
    print(table(rows))
    survived = sum(r[3].startswith("SURVIVED") for r in rows)
    broken_count = sum(r[3] == "broken baseline" for r in rows)
    print(f"\n{len(rows) - survived - broken_count} of {len(rows)} caught, {survived} survived, {broken_count} with a broken baseline")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

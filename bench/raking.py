"""Raking 1,000,000 rows to 5 margins: khaosat's `exporters.weighting.rake` against its peers.

    python bench/raking.py [--rows 1000000] [--repeat 5] [--seed 2024] [--no-install] [--write]

Data: synthetic, seeded; 5 categorical columns coded as integers (as select_one answers arrive
from SPSS or the bot) with 2, 5, 10, 20 and 30 levels, correlated with each other so raking needs
several sweeps; population margins that differ from the sample's by up to ~±30%. Every method
starts from weights of 1 (weightipy always does) and rakes to the same margins.

  khaosat (R defaults)  rake(maxit=10, epsilon=1): R's survey::rake defaults and stopping rule;
  khaosat (tight)       rake(maxit=1000, epsilon=1e-10): to the precision the peers reach;
  weightipy             weight_dataframe with a Rim scheme (its defaults; margins as percentages);
  samplics              SampleWeight().rake(tol=1e-10) (archived package; if it installs);
  ipfn                  ipfn.ipfn on the pandas frame (convergence_rate 1e-10; if it installs).

Each is timed as the median of --repeat runs (samplics and ipfn: fewer when one run is slow);
all are compared with the tight khaosat weights, rescaled to the same total (weightipy's weights
have mean 1), as the largest relative difference. --write appends/replaces the "Raking" section
of BENCHMARKS.md. Missing peers are pip-installed unless --no-install.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporters.weighting import rake  # noqa: E402

LEVELS = {"a2": 2, "b5": 5, "c10": 10, "d20": 20, "e30": 30}


def make_data(rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=rows)
    df = {}
    for name, k in LEVELS.items():
        score = 0.8 * latent + rng.normal(size=rows) + np.linspace(0, 1, k)[rng.integers(0, k, rows)]
        edges = np.quantile(score, np.sort(rng.uniform(0.02, 0.98, k - 1)))
        df[name] = np.searchsorted(edges, score).astype(np.int64)
    df = pd.DataFrame(df)
    margins = {}
    total = float(rows) * 1.7
    for name, k in LEVELS.items():
        share = np.bincount(df[name], minlength=k) / rows
        target = share * rng.uniform(0.7, 1.3, k)
        target = target / target.sum() * total
        margins[name] = {str(level): float(t) for level, t in enumerate(target)}
    return df, margins


def timed(fn, repeat: int, slow: float = 20.0):
    times, result = [], None
    for i in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        if times[-1] > slow:
            break
    return statistics.median(times), len(times), result


def ensure(module: str, package: str, install: bool):
    try:
        return importlib.import_module(module)
    except ImportError:
        if not install:
            return None
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", package], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{package} did not install:\n{done.stderr[-800:]}")
            return None
        importlib.invalidate_caches()
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            print(f"{package} installed but does not import: {exc}")
            return None


def version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version as v

    try:
        return v(package)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the Raking section of BENCHMARKS.md")
    args = parser.parse_args()

    df, margins = make_data(args.rows, args.seed)
    ones = np.ones(args.rows)
    total = sum(next(iter(margins.values())).values())
    results = []  # (name, seconds, runs, weights or None, note)

    sec, runs, (w_def, rep_def) = timed(lambda: rake(df, ones, margins), args.repeat)
    results.append(("khaosat rake, R defaults (maxit 10, epsilon 1)", sec, runs, w_def,
                    f"{rep_def.iterations} sweeps, converged={rep_def.converged}, "
                    f"max margin error {rep_def.max_margin_error:.2g}"))
    sec, runs, (w_ref, rep) = timed(lambda: rake(df, ones, margins, maxit=1000, epsilon=1e-10), args.repeat)
    results.append(("khaosat rake, tight (epsilon 1e-10 of the total)", sec, runs, w_ref,
                    f"{rep.iterations} sweeps, converged={rep.converged}, max margin error {rep.max_margin_error:.2g}"))

    install = not args.no_install
    weightipy = ensure("weightipy", "weightipy", install)
    if weightipy is not None:
        pct = {name: {int(k): v / total * 100 for k, v in m.items()} for name, m in margins.items()}

        def run_weightipy():
            scheme = weightipy.scheme_from_dict(pct)
            out = weightipy.weight_dataframe(df.copy(), scheme, weight_column="w")
            return out["w"].to_numpy()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sec, runs, w = timed(run_weightipy, args.repeat)
        results.append((f"weightipy {version('weightipy')} (defaults)", sec, runs, w * total / w.sum(), ""))
    else:
        results.append(("weightipy", None, 0, None, "not installed"))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samplics = ensure("samplics.weighting", "samplics", install)
    if samplics is not None:
        control = {name: {int(k): v for k, v in m.items()} for name, m in margins.items()}
        domains = {name: df[name].to_numpy() for name in margins}

        def run_samplics():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return samplics.SampleWeight().rake(ones.copy(), domains, control=control, tol=1e-10,
                                                    ctrl_tol=1e-10, max_iter=1000)

        sec, runs, w = timed(run_samplics, max(1, min(args.repeat, 3)))
        results.append((f"samplics {version('samplics')} (archived)", sec, runs, np.asarray(w, float), "tol 1e-10"))
    else:
        results.append(("samplics", None, 0, None, "did not install"))

    ipfn_mod = ensure("ipfn.ipfn", "ipfn", install)
    if ipfn_mod is not None:
        aggregates = [pd.Series({int(k): v for k, v in margins[name].items()}).rename_axis(name) for name in margins]
        dims = [[name] for name in margins]

        def run_ipfn():
            frame = df.copy()
            frame["total"] = 1.0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = ipfn_mod.ipfn(frame, aggregates, dims, weight_col="total", convergence_rate=1e-10,
                                    max_iteration=1000).iteration()
            return out["total"].to_numpy()

        sec, runs, w = timed(run_ipfn, max(1, min(args.repeat, 3)))
        results.append((f"ipfn {version('ipfn')}", sec, runs, w, "convergence_rate 1e-10"))
    else:
        results.append(("ipfn", None, 0, None, "did not install"))

    lines = []
    for name, sec, runs, w, note in results:
        if sec is None:
            lines.append(f"| {name} | — | — | — | {note} |")
            continue
        diff = float(np.max(np.abs(w - w_ref) / np.abs(w_ref))) if w is not None else float("nan")
        lines.append(f"| {name} | {sec:.3f} | {runs} | {diff:.1e} | {note} |")
        print(f"{name:55s} {sec:8.3f} s  (median of {runs})  max rel diff vs tight khaosat {diff:.1e}  {note}")

    if args.write:
        write_section(args, lines)


def write_section(args, lines: list[str]) -> None:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    section = "\n".join([
        "## Raking",
        "",
        f"Raking {args.rows:,} synthetic rows (seed {args.seed}) to 5 categorical margins (2, 5, 10, 20 and 30",
        "levels, correlated columns, targets ±30% off the sample) from weights of 1. Seconds are the median",
        f"of up to {args.repeat} runs (runs column); \"max rel diff\" is the largest relative difference of the final",
        "weights from khaosat's tightly converged rake, after rescaling to the same total.",
        "",
        "```sh",
        f"python bench/raking.py --rows {args.rows} --repeat {args.repeat} --seed {args.seed} --write",
        "```",
        "",
        "| method | seconds | runs | max rel diff | notes |",
        "|---|---|---|---|---|",
        *lines,
        "",
        f"Machine: {cpu}; Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}.",
        "khaosat's rake is R's survey::rake (same sweeps and stopping rule: largest change of a cell of",
        "the joint table of the margin variables between sweeps), vectorised: one pass of `np.bincount`",
        "and one gather per margin per sweep on integer codes from `pd.factorize`.",
        "",
    ])
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start = text.find("## Raking")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    print(f"wrote the Raking section of {path}")


if __name__ == "__main__":
    main()

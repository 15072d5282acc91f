"""Engine steps per second on a form without repeats, before and after repeat support, alternating.

The repeat work must not slow forms without repeats. This times `surveys.engine.step` over whole
sessions of the bundled SIPAS and PAR INDEX templates (start, consent, every question answered)
with this checkout's `surveys` package and with another checkout's (the commit before repeats,
by default extracted with `git archive`), each in a fresh process, alternating rounds in one run,
and prints the µs per step and the ratio. It also times a household roster (tests/forms/roster.md),
which only this checkout can run.

    python bench/repeats_engine.py                      # base: the commit before the engine split
    python bench/repeats_engine.py --base-commit HASH --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMS = [ROOT / "surveys" / "templates" / "sipas_citizen.md", ROOT / "surveys" / "templates" / "par_index_officials.md"]
ROSTER = ROOT / "tests" / "forms" / "roster.md"

_WORKER = r"""
import datetime as dt, json, sys, time
from surveys import engine as E
from surveys.xlsform import load_questionnaire

REPLIES = {"select_one": ["1", "2"], "select_multiple": ["1", "1 2"], "integer": ["2", "1", "0", "40"],
           "decimal": ["1.5", "150"], "date": ["01/01/2000"], "text": ["An", "x"], "acknowledge": ["OK"],
           "consent": ["1"]}

def session(form, at):
    state = E.new_session(form)
    steps, spent = 0, 0.0
    event = E.Start(at)
    tried = {}
    while True:
        began = time.perf_counter()
        result = E.step(form, state, event)
        spent += time.perf_counter() - began
        steps += 1
        state = result.state
        if state.status is E.Status.COMPLETED or steps > 2000:
            return steps, spent
        prompt = E.current_prompt(form, state)
        if prompt.question.endswith("/__more__"):
            text = "1" if prompt.question.split("[")[-1].startswith("1]") else "2"
        else:
            options = REPLIES.get(prompt.kind.value, ["OK"])
            attempt = tried.get(prompt.question, 0)
            tried[prompt.question] = attempt + 1
            text = options[attempt % len(options)]
        at += dt.timedelta(seconds=5)
        event = E.Reply(text, at, state.seq)

out = {}
for path in sys.argv[2:]:
    form = load_questionnaire(path)
    at = dt.datetime(2026, 3, 2, 9, 0)
    total_steps, total = 0, 0.0
    for _ in range(int(sys.argv[1])):
        steps, spent = session(form, at)
        total_steps += steps
        total += spent
    out[path] = total / total_steps * 1e6
print(json.dumps(out))
"""


def run(tree: Path, sessions: int, forms: list[Path]) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", _WORKER, str(sessions), *map(str, forms)], cwd=tree,
                            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-commit", default="a60ed06")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=150)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as base:
        archive = subprocess.run(["git", "archive", args.base_commit, "surveys"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        before: dict[str, list[float]] = {str(f): [] for f in FORMS}
        after: dict[str, list[float]] = {str(f): [] for f in FORMS}
        for _ in range(args.rounds):  # alternating, so both see the same machine load
            for key, value in run(Path(base), args.sessions, FORMS).items():
                before[key].append(value)
            for key, value in run(ROOT, args.sessions, FORMS).items():
                after[key].append(value)
        for form in FORMS:  # the fastest round of each: the least disturbed by other work on the machine
            old, new = min(before[str(form)]), min(after[str(form)])
            medians = statistics.median(after[str(form)]) / statistics.median(before[str(form)])
            print(f"{form.name}: {old:.0f} µs/step before, {new:.0f} µs/step after: ratio {new / old:.3f} "
                  f"(of medians {medians:.3f})")
        roster = run(ROOT, args.sessions, [ROSTER])[str(ROSTER)]
        print(f"{ROSTER.name} (repeats, this checkout only): {roster:.0f} µs/step")


if __name__ == "__main__":
    main()

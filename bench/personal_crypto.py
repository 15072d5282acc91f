"""Frame import with and without encryption of names and phones (storage/personal_crypto.py).

    python3 bench/personal_crypto.py [ROWS] [ROUNDS]

Imports the same generated frame (ROWS people, each with a name and a phone) into a fresh SQLite
database, alternately with KHAOSAT_DATA_KEY unset and set, ROUNDS times each, and prints the
median seconds of each and their ratio (encrypted / plaintext). Each round validates the file
and writes the frame as ``khaosat frame import`` does (``surveys.sampling.import_frame_file``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import open_storage  # noqa: E402
from storage.personal_crypto import ENV, generate_key  # noqa: E402
from surveys.project import load_survey, store_survey  # noqa: E402
from surveys.sampling import import_frame_file  # noqa: E402

SURVEY = ROOT / "tests" / "forms" / "survey" / "survey.toml"
T0 = "2026-07-01T08:00:00+07:00"


def write_frame(path: Path, rows: int) -> None:
    units = ["xa-a", "xa-b", "xa-c"]
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,group,unit,name,phone,gender\n")
        for number in range(rows):
            handle.write(f"c{number},citizen,{units[number % 3]},Nguyễn Thị Ánh {number},09{number % 10**8:08d},\n")


async def one_import(frame: Path, folder: Path, key: str | None) -> float:
    if key is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = key
    db = folder / f"k-{time.perf_counter_ns()}.sqlite"
    project = load_survey(SURVEY)
    async with await open_storage(db) as storage:
        await store_survey(storage, project, "", "survey.toml", T0)
        start = time.perf_counter()
        await import_frame_file(storage, project, frame, T0)
        return time.perf_counter() - start


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    key = generate_key()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        frame = folder / "frame.csv"
        write_frame(frame, rows)
        times: dict[str, list[float]] = {"plaintext": [], "encrypted": []}
        for _ in range(rounds):  # alternating, so a change in the machine's load hits both
            times["plaintext"].append(asyncio.run(one_import(frame, folder, None)))
            times["encrypted"].append(asyncio.run(one_import(frame, folder, key)))
    plain, sealed = (statistics.median(times[k]) for k in ("plaintext", "encrypted"))
    print(f"{rows:,} rows, {rounds} rounds each, alternating; load average {os.getloadavg()[0]:.1f}")
    print(f"plaintext: median {plain:.2f} s {[round(t, 2) for t in times['plaintext']]}")
    print(f"encrypted: median {sealed:.2f} s {[round(t, 2) for t in times['encrypted']]}")
    print(f"ratio encrypted / plaintext: {sealed / plain:.2f}")


if __name__ == "__main__":
    main()

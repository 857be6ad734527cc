"""Data-quality analyzer throughput, beside pandas doing a lesser job on the same data in the same run.

  baseline   suggest_baseline end to end (Parquet file -> statistics.json + constraints.json: moments,
             KLL sketches, 10-bucket histograms, type inference, value counts, constraints) on
             N rows x (7 float64 columns with ~1 % NaN + 3 int64 columns + 2 string category columns);
  reference  pd.read_parquet + DataFrame.describe(include="all") + numpy.nanquantile deciles of every
             numeric column: exact, single-threaded, whole table in memory, no files written;
  csv        suggest_baseline on the same rows as a CSV file with a header (text parsed and classified
             per value, as Model Monitor does with CSV);
  check      run_check on Data Capture JSON Lines (one CSV row per record) against the baseline.

Every step runs in a fresh Python process, so its peak RSS is its own. The generated data is cached in
bench/out/data-quality-cache/ (git-ignored) and reused while --rows stays the same.

    python bench/baseline_profile.py [--rows 10000000] [--capture-records 200000] [--skip-csv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"
CACHE = OUT / "data-quality-cache"
CHUNK = 1_000_000
STATES = ["CA", "TX", "NY", "FL", "WA", "IL", "PA", "OH", "GA", "NC", "MI", "NJ", "VA", "AZ", "MA"]
SEGMENTS = ["consumer", "small-business", "enterprise", "public-sector"]


# ---- data ---------------------------------------------------------------------------------------

def chunk_table(rng: np.random.Generator, rows: int):
    import pyarrow as pa

    columns = {}
    for i in range(7):
        values = rng.normal(loc=10 * i, scale=1 + i, size=rows)
        values[rng.random(rows) < 0.01] = np.nan
        columns[f"f{i}"] = values
    for i in range(3):
        columns[f"n{i}"] = rng.integers(0, 10 ** (i + 2), size=rows)
    columns["state"] = pa.array(np.array(STATES)[rng.integers(0, len(STATES), rows)])
    columns["segment"] = pa.array(np.array(SEGMENTS)[rng.choice(len(SEGMENTS), rows, p=[0.6, 0.25, 0.1, 0.05])])
    return pa.table(columns)


def dataset(rows: int) -> dict:
    """Parquet, CSV and capture files for `rows`, generated once."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    parquet, csv = CACHE / f"data-{rows}.parquet", CACHE / f"data-{rows}.csv"
    if not parquet.exists():
        rng = np.random.default_rng(7)
        writer = None
        for start in range(0, rows, CHUNK):
            table = chunk_table(rng, min(CHUNK, rows - start))
            writer = writer or pq.ParquetWriter(f"{parquet}.partial", table.schema)
            writer.write_table(table, row_group_size=CHUNK)
        writer.close()
        os.replace(f"{parquet}.partial", parquet)
    if not csv.exists():
        import pyarrow.compute as pc

        reader = pq.ParquetFile(parquet)
        with pcsv.CSVWriter(f"{csv}.partial", reader.schema_arrow) as writer:
            for batch in reader.iter_batches(batch_size=CHUNK):
                # NaN is written as an empty field, as pandas.to_csv does
                arrays = [pc.if_else(pc.is_nan(col), None, col) if col.type == "double" else col for col in batch.columns]
                writer.write_batch(type(batch).from_arrays(arrays, names=batch.schema.names))
        os.replace(f"{csv}.partial", csv)
    return {"parquet": parquet, "csv": csv}


def capture_dir(records: int) -> Path:
    """Data Capture JSON Lines laid out as AWS does, one CSV row of the 12 features per record."""
    root = CACHE / f"capture-{records}"
    if root.exists():
        return root
    rng = np.random.default_rng(11)
    table = chunk_table(rng, records).to_pylist()
    folder = root / "bench" / "AllTraffic" / "2026" / "11" / "24" / "20"
    folder.mkdir(parents=True)
    per_file = 10_000
    for start in range(0, records, per_file):
        with open(folder / f"{start // per_file:02d}-00-000-bench.jsonl", "w") as stream:
            for i, row in enumerate(table[start:start + per_file], start):
                data = ",".join("" if isinstance(v, float) and v != v else str(v) for v in row.values())
                stream.write(json.dumps({
                    "captureData": {
                        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": data, "encoding": "CSV"},
                        "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT", "data": "0.5", "encoding": "CSV"}},
                    "eventMetadata": {"eventId": f"e-{i}", "inferenceTime": f"2026-11-24T20:{i % 60:02d}:{i % 59:02d}Z"},
                    "eventVersion": "0"}) + "\n")
    return root


# ---- steps (each in its own process) ------------------------------------------------------------

def step_baseline(path: str, fmt: str) -> dict:
    import data_quality

    dataset_format = {"parquet": {}} if fmt == "parquet" else {"csv": {"header": True}}
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = data_quality.suggest_baseline(path, dataset_format, out)
        seconds = time.perf_counter() - started
        if fmt == "parquet":  # the check step compares against this baseline
            for name in ("statistics.json", "constraints.json"):
                (CACHE / f"baseline-{name}").write_text(Path(out, name).read_text())
    return {"seconds": seconds, "rows": result.statistics["dataset"]["item_count"]}


def step_reference(path: str) -> dict:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    frame.describe(include="all")
    numeric = frame.select_dtypes("number")
    for name in numeric:
        np.nanquantile(numeric[name].to_numpy(dtype=float), np.linspace(0, 1, 11))
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def step_check(path: str) -> dict:
    import data_quality

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = data_quality.run_check(
            path, {"sagemakerCaptureJson": {"captureIndexNames": ["endpointInput"]}},
            CACHE / "baseline-statistics.json", CACHE / "baseline-constraints.json", out)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": result.records, "violations": len(result.violations)}


def peak_rss_mb() -> float:
    """This process's high-water mark (VmHWM: unlike ru_maxrss it does not carry the parent's over
    exec) plus twice the largest worker's (the analyzer's two workers run at the same time)."""
    status = Path("/proc/self/status").read_text()
    own = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return (own + 2 * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def run_step(*args: str) -> dict:
    command = [sys.executable, __file__, "--step", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise SystemExit(f"step {args} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--capture-records", type=int, default=200_000)
    parser.add_argument("--skip-csv", action="store_true")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        name, path, *rest = args.step
        figures = {"baseline": lambda: step_baseline(path, rest[0]), "reference": lambda: step_reference(path),
                   "check": lambda: step_check(path)}[name]()
        figures["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(figures))
        return

    started = time.perf_counter()
    files = dataset(args.rows)
    print(f"data: {args.rows:,} rows x 12 columns; Parquet {files['parquet'].stat().st_size / 1e6:.0f} MB, "
          f"CSV {files['csv'].stat().st_size / 1e6:.0f} MB (generated or cached in {time.perf_counter() - started:.1f} s)")
    results = {"rows": args.rows, "cpus": os.cpu_count()}
    results["baseline_parquet"] = run_step("baseline", str(files["parquet"]), "parquet")
    results["reference_pandas"] = run_step("reference", str(files["parquet"]))
    if not args.skip_csv:
        results["baseline_csv"] = run_step("baseline", str(files["csv"]), "csv")
    capture = capture_dir(args.capture_records)
    results["check_capture"] = run_step("check", str(capture))

    print(f"\n{'step':<44}{'seconds':>9}{'rows/s':>14}{'peak RSS':>11}")
    labels = {"baseline_parquet": "suggest_baseline, Parquet (ours)",
              "reference_pandas": "pandas read+describe+deciles (reference)",
              "baseline_csv": "suggest_baseline, CSV with header (ours)",
              "check_capture": "run_check, capture JSONL records (ours)"}
    for key, label in labels.items():
        if key in results:
            figure = results[key]
            figure["rows_per_second"] = figure["rows"] / figure["seconds"]
            print(f"{label:<44}{figure['seconds']:>9.2f}{figure['rows_per_second']:>14,.0f}{figure['peak_rss_mb']:>8.0f} MB")
    ours, reference = results["baseline_parquet"]["seconds"], results["reference_pandas"]["seconds"]
    print(f"\nbaseline vs reference: {reference / ours:.1f}x the reference's speed on {os.cpu_count()} CPUs "
          f"(target: baseline <= 5 s for 10M rows)")
    OUT.mkdir(exist_ok=True)
    (OUT / "baseline_profile.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""`make bench` / `python -m benchmarks [--quick]`: every workload, its median, events/s, peak RSS and same-run ratios.

Machines are shared and noisy, so absolute rates are context; what the tables compare are ratios measured in the
same run (a workload against the Ed25519 floor, a peer against us, one history length against another). Results go
to benchmarks/RESULTS.md (a fresh file per run) and benchmarks/history.png; a quick run writes RESULTS-quick.md and
history-quick.png instead, so it never replaces the full results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

from . import books
from .export import account_map, export

HERE = Path(__file__).resolve().parent
# A workload slower than this is not repeated: its spread is small next to its length, and the full mode must fit.
REPEAT_BELOW_SECONDS = 60.0
# A workload whose median is shorter than this gets Repeats.short runs: a run of 20 ms moves by a tenth between fresh
# processes, and nine runs of it cost a few seconds more than three.
SHORT_SECONDS = 0.1


class Repeats(NamedTuple):
    """How many times a workload runs: `least`, or `short` if its median is under SHORT_SECONDS."""

    least: int
    short: int


ONCE = Repeats(1, 1)


@dataclass
class Measured:
    name: str
    runs: list[dict] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r["seconds"] for r in self.runs)

    @property
    def events(self) -> int:
        return self.runs[0]["events"]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def rss_mb(self) -> float:
        return max(r["rss_mb"] for r in self.runs)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_ticks() -> list[int] | None:
    """The machine's CPU time so far, in clock ticks per kind (/proc/stat: user, nice, system, idle, iowait, irq,
    softirq, steal), or None where there is no /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            return [int(ticks) for ticks in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> str:
    """Of the CPU time the guest wanted between two readings, the share the hypervisor gave to other guests."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return "not known (no steal time in /proc/stat)"
    user, nice, system, _idle, _iowait, irq, softirq, steal = (b - a for a, b in zip(before, after))
    wanted = user + nice + system + irq + softirq + steal
    return f"{steal / wanted:.0%}" if wanted else "0%"


def _command(name: str, **arguments) -> list[str]:
    return [sys.executable, "-m", "benchmarks.workloads", name, json.dumps(arguments)]


def _result(completed: subprocess.CompletedProcess, label: str) -> dict:
    if completed.returncode != 0:
        raise RuntimeError(f"{label} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def wants_another_run(measured: Measured, repeats: Repeats) -> bool:
    count = len(measured.runs)
    return count < repeats.least or (count < repeats.short and measured.seconds < SHORT_SECONDS)


def run(name: str, repeats: Repeats, label: str | None = None, **arguments) -> Measured:
    label = label or f"{name} {arguments}"
    measured = Measured(label)
    while wants_another_run(measured, repeats):
        completed = subprocess.run(_command(name, **arguments), cwd=HERE.parent, capture_output=True, text=True)
        measured.runs.append(_result(completed, label))
        if measured.runs[-1]["seconds"] > REPEAT_BELOW_SECONDS:
            break
    print(f"  {label}: {measured.seconds:.3f} s median of {len(measured.runs)}, {measured.rate:,.0f} events/s, "
          f"{measured.rss_mb:.0f} MB", flush=True)
    return measured


def run_concurrently(name: str, copies: int, **arguments) -> list[dict]:
    """The same workload in `copies` processes at once (one per core): the machine's rate, not one core's × n."""
    processes = [
        subprocess.Popen(_command(name, **arguments), cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate()
        results.append(_result(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), name))
    return results


def run_command(argv: list[str], repeats: Repeats, label: str) -> Measured:
    """An external program, through the `command` workload so that its peak RSS is its own."""
    return run("command", repeats, label=label, argv=argv)


# -- peers -----------------------------------------------------------------------------------------------------------


def _hledger_totals(stdout: str) -> dict[str, Decimal]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(stdout)))[1:]
    return {account: Decimal(balance.replace(" CNY", "").replace(",", "")) for account, balance in rows}


def _ledger_totals(stdout: str) -> dict[str, Decimal]:
    totals = {}
    for line in stdout.splitlines():
        account, _, amount = line.partition("\t")
        totals[account] = Decimal(amount.replace(",", ""))
    return totals


def _same_totals(tool: str, theirs: dict[str, Decimal], ours: dict[str, Decimal], names: dict[str, str]) -> None:
    mapped: dict[str, Decimal] = {}
    for account, amount in theirs.items():
        if account not in names:
            continue  # a parent account of the tool's tree; every posted account is a leaf
        if amount:
            mapped[names[account]] = amount
    if mapped != ours:
        differing = sorted(set(mapped.items()) ^ set(ours.items()))[:5]
        raise AssertionError(f"{tool}: per-account totals differ from ours, e.g. {differing}")


def peers(book: books.Book, repeats: Repeats, ours: Measured) -> list[tuple[str, Measured, str]]:
    """Each installed peer on the same books, with its per-account totals asserted equal to those of our log."""
    out = books.CACHE / "peers" / book.directory.name
    if not (out / "accounts.tsv").is_file():
        shutil.rmtree(out, ignore_errors=True)
        export(book.history, out)
    names = account_map(out / "accounts.tsv")
    totals = run("ours_postings", ONCE, label="our per-account totals from the log", village=book.village, years=book.years)
    expected = {k: Decimal(v) for k, v in totals.runs[0]["totals"].items()}
    results = [("village-ledger: trial balance from the signed log", ours, "equal (it is the reference)")]
    bean_check = shutil.which("bean-check", path=str(Path(sys.executable).parent)) or shutil.which("bean-check")
    if bean_check:
        # Without --no-cache, a load that took over a second leaves a pickle of its result that later runs read
        # instead of the books: whether a run parsed them at all would depend on the machine's speed.
        results.append(("beancount: bean-check", run_command([bean_check, "--no-cache", str(out / "books.beancount")],
                                                            repeats, "bean-check"), "(checks only)"))
        try:
            loaded = run("beancount_load", repeats, label="beancount load + realize", path=str(out / "books.beancount"))
        except RuntimeError as exc:
            print(f"  beancount load failed: {exc}")
        else:
            _same_totals("beancount", {k: Decimal(v) for k, v in loaded.runs[0]["totals"].items()}, expected, names)
            results.append(("beancount: loader.load_file + realize", loaded, "equal (asserted)"))
    if shutil.which("hledger"):
        m = run_command(["hledger", "-f", str(out / "books.ledger"), "balance", "-O", "csv", "--no-total"], repeats,
                        "hledger balance")
        _same_totals("hledger", _hledger_totals(m.runs[0]["stdout"]), expected, names)
        results.append(("hledger balance", m, "equal (asserted)"))
    if shutil.which("ledger"):
        m = run_command(["ledger", "-f", str(out / "books.ledger"), "balance", "--flat", "--no-total",
                         "--balance-format", "%(account)\t%(quantity(display_total))\n"], repeats, "ledger balance")
        _same_totals("ledger", _ledger_totals(m.runs[0]["stdout"]), expected, names)
        results.append(("ledger-cli balance", m, "equal (asserted)"))
    return results


# -- report ----------------------------------------------------------------------------------------------------------


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def _run_counts(repeats: Repeats) -> str:
    if repeats.short == repeats.least:
        return str(repeats.least)
    return f"{repeats.least}, or {repeats.short} for a workload whose median is under {SHORT_SECONDS} s"


def write_results(path: Path, context: dict, sections: list[tuple[str, list[str], list[list[str]], str]]) -> None:
    lines = [
        "# village-ledger benchmarks",
        "",
        f"Run {context['when']} with `{context['command']}` ({context['mode']} mode, {context['elapsed']:.0f} s) on "
        f"{context['machine']}, {context['cores']} cores, Python {platform.python_version()}; load average at the end "
        f"{context['load']} (1/5/15 min: other jobs shared the cores); CPU time taken by other guests of the host "
        f"(steal) during the run: {context['steal']}."
        + (f" Machine gauge: pinned Ed25519 verifies {context['gauge']} per second on one core (section 2), to tell "
           "machines apart when comparing runs." if context["gauge"] else ""),
        f"Books: ledger/demo_data.generate_village, {books.VOUCHERS_PER_YEAR} vouchers per village-year, chart "
        f"{books.CHART}, village 0 (seed {books.seed_of(0)}), cached in benchmarks/.cache.",
        f"Times are medians of n runs, each in a fresh process ({_run_counts(context['repeats'])}); events are signed "
        "log entries; RSS is the peak resident set of the workload's process (and of its worker processes). The "
        "machine is shared: compare the ratios, which are measured in the same run.",
        "",
    ]
    for title, header, rows, note in sections:
        lines += [f"## {title}", ""]
        if note:
            lines += [note, ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def plot(path: Path, series: dict[str, list[tuple[int, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label, points in series.items():
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("history length (years of one village, 1,500 vouchers/year)")
    axis.set_ylabel("seconds (median)")
    axis.set_title("village-ledger: time vs history length")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short histories, fewer runs (under 3 minutes)")
    # Quick runs write beside the full results, never over them.
    parser.add_argument("--results", type=Path, help="default: RESULTS.md (full) or RESULTS-quick.md (quick)")
    parser.add_argument("--plot", type=Path, help="default: history.png (full) or history-quick.png (quick)")
    args = parser.parse_args()
    suffix = "-quick" if args.quick else ""
    args.results = args.results or HERE / f"RESULTS{suffix}.md"
    args.plot = args.plot or HERE / f"history{suffix}.png"
    started = time.perf_counter()
    ticks_at_start = cpu_ticks()
    n_cores = cores()
    histories = [1, 2] if args.quick else [1, 10, 50]
    repeats = Repeats(2, 2) if args.quick else Repeats(3, 9)
    peer_years = 1 if args.quick else 10
    import_years = 1
    print(f"benchmarks ({'quick' if args.quick else 'full'} mode): histories {histories} years, {n_cores} cores", flush=True)
    for years in sorted(set(histories + [peer_years, import_years])):
        books.book(0, years)
    largest = books.book(0, histories[-1])

    sections = []
    series: dict[str, list[tuple[int, float]]] = {}
    gauge = ""  # the one-core Ed25519 rate, once section 2 has measured it

    def save() -> None:
        """Rewritten after every section, so that an interrupted run still leaves what it measured."""
        elapsed = time.perf_counter() - started
        context = {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "command": "make bench QUICK=1" if args.quick else "make bench",
            "mode": "quick" if args.quick else "full",
            "elapsed": elapsed,
            "machine": platform.processor() or platform.machine(),
            "load": "/".join(f"{x:.1f}" for x in os.getloadavg()),
            "cores": n_cores,
            "steal": steal_share(ticks_at_start, cpu_ticks()),
            "gauge": gauge,
            "repeats": repeats,
        }
        write_results(args.results, context, sections)
        plot(args.plot, series)

    # 1. projections
    from ledger.projections.readmodel import PARALLEL_FROM_EVENTS as READ_MODEL_PARALLEL_FROM_EVENTS
    from ledger.projections.readmodel import RANGE_SPAN as READ_MODEL_RANGE_SPAN
    from ledger.projections.readmodel import compiled_rows
    from ledger.reports import PARALLEL_FROM_EVENTS

    print("1. projection rebuild", flush=True)
    rows = []
    for years in histories:
        b = books.book(0, years)
        tb1 = run("trial_balance", repeats, label=f"trial balance from the log, 1 process, {years} y", village=0,
                  years=years)
        tb = run("trial_balance", repeats, label=f"trial balance from the log, jobs={n_cores}, {years} y", village=0,
                 years=years, jobs=n_cores)
        rm1 = run("read_model", repeats, label=f"read-model rebuild, 1 process, {years} y", village=0, years=years)
        rm = run("read_model", repeats, label=f"read-model rebuild, jobs={n_cores}, {years} y", village=0,
                 years=years, jobs=n_cores)
        for what, m in (("trial balance from the log, one process", tb1),
                        (f"trial balance from the log, jobs={n_cores}", tb),
                        ("read models incl. disclosure tables (rebuild), one process", rm1),
                        (f"read models incl. disclosure tables (rebuild), jobs={n_cores}", rm)):
            rows.append([what, str(years), f"{b.events:,}", f"{m.seconds:.2f}", str(len(m.runs)), _fmt_rate(m.rate),
                         f"{m.rate / 200_000:.1%}", f"{m.rss_mb:.0f}"])
        series.setdefault(f"trial balance from the log, jobs={n_cores}", []).append((years, tb.seconds))
        series.setdefault(f"read-model rebuild, jobs={n_cores}", []).append((years, rm.seconds))
    sections.append((
        "1. Projection rebuild from the log (goal ≥ 200k events/s on 2 cores, RSS ≤ 150 MB at any history length)",
        ["projection", "years", "events", "seconds", "n", "events/s", "of goal", "peak RSS MB"], rows,
        f"The trial balance with jobs={n_cores} splits a SQLite log of ≥ {PARALLEL_FROM_EVENTS:,} events into {n_cores} "
        "ranges summed at once (ledger/reports.py trial_balance_report); shorter logs are read by one process. The "
        f"read-model rebuild with jobs={n_cores} cuts a SQLite log of ≥ {READ_MODEL_PARALLEL_FROM_EVENTS:,} events into "
        f"ranges of {READ_MODEL_RANGE_SPAN:,} notifications projected by {n_cores} processes while one writes them in log "
        "order (ledger/projections/readmodel.py update_read_model). It replays the topics it projects (vouchers, "
        "periods, assets, contracts, decisions, disclosures) but its rate is counted over all log events, like the "
        "trial balance's. "
        + ("Posted vouchers went through the rebuild's C loop (ledger/projections/_rows.c)." if compiled_rows is not None else
           "The rebuild's C loop (ledger/projections/_rows.c) is not built here: the Python handlers did all of it, "
           "1.4-2 times slower."),
    ))

    save()

    # 2. verification
    print("2. verification", flush=True)
    single = run("ed25519", repeats, label="Ed25519 floor, one core", village=0, years=histories[0], count=4000)
    together = run_concurrently("ed25519", n_cores, village=0, years=histories[0], count=4000)
    floor_per_core = single.rate
    gauge = _fmt_rate(floor_per_core)
    floor = floor_per_core * n_cores
    floor_measured = sum(r["events"] / r["seconds"] for r in together)
    rows = [["Ed25519 verify, pyca/cryptography, one core", "", f"{single.events:,}", f"{single.seconds:.3f}",
             str(len(single.runs)), _fmt_rate(floor_per_core), "", "", f"{single.rss_mb:.0f}"],
            [f"Ed25519 floor = one-core rate × {n_cores} cores", "", "", "", "", _fmt_rate(floor), "100%", "", ""],
            [f"Ed25519, {n_cores} processes at once (measured)", "", "", "", "", _fmt_rate(floor_measured),
             f"{floor_measured / floor:.0%}", "", ""]]
    for years in histories:
        chain = run("verify_chain", repeats, label=f"chain-only verification, {years} y", village=0, years=years)
        full = run("verify_full", repeats, label=f"full verification, {years} y", village=0,
                   years=years, jobs=n_cores)
        rows.append([f"chain only ({chain.runs[0]['how']})", str(years), f"{chain.events:,}", f"{chain.seconds:.2f}",
                     str(len(chain.runs)), _fmt_rate(chain.rate), "", f"{chain.rate / 150_000:.0%} of 150k goal",
                     f"{chain.rss_mb:.0f}"])
        rows.append([f"full: verify_source(jobs={full.runs[0]['jobs']}), every signature", str(years), f"{full.events:,}",
                     f"{full.seconds:.2f}", str(len(full.runs)), _fmt_rate(full.rate), f"{full.rate / floor:.0%}",
                     "goal ≥ 90% of floor", f"{full.rss_mb:.0f}"])
        series.setdefault("chain-only verification", []).append((years, chain.seconds))
        series.setdefault("full verification", []).append((years, full.seconds))
    sections.append((
        "2. Verification (chain-only goal ≥ 150k events/s; full goal ≥ 90% of the Ed25519 floor)",
        ["what", "years", "events", "seconds", "n", "events/s", "of floor", "goal", "peak RSS MB"], rows,
        f"Floor: pinned pyca/cryptography verifies of real entries ({single.runs[0]['message_bytes']} bytes with the "
        "context prefix), one core, × cores; measured in this run.",
    ))

    save()

    # 3. writing
    print("3. batched import and posting latency", flush=True)
    imp = run("batched_import", repeats, label=f"batched import, {import_years} y", village=0, years=import_years)
    rows = [[f"import_journal, {import_years} village-year into a new SQLite ledger", f"{imp.runs[0]['records']:,} records",
             f"{imp.events:,}", f"{imp.seconds:.2f}", str(len(imp.runs)), _fmt_rate(imp.rate),
             f"{imp.rate / 10_000:.0%}", "", "", f"{imp.rss_mb:.0f}"]]
    for years in histories:
        lat = run("posting_latency", repeats, label=f"single-voucher latency after {years} y", village=0, years=years)
        rows.append([f"app.execute(one voucher) after {years} y of history", f"{lat.events} vouchers", "", "",
                     str(len(lat.runs)), "", "", f"{lat.median('median_ms'):.1f}", f"{lat.median('p95_ms'):.1f}",
                     f"{lat.rss_mb:.0f}"])
        series.setdefault("one voucher (app.execute, median)", []).append((years, lat.median("median_ms") / 1000))
    sections.append((
        "3. Writing (goal ≥ 10k signed events/s batched on SQLite)",
        ["what", "input", "log entries", "seconds", "n", "entries/s", "of goal", "median ms", "p95 ms", "peak RSS MB"],
        rows, "Latency: every record of the month after the history, one `app.execute` (one transaction) each; "
              "vouchers timed.",
    ))

    save()

    # 4. monthly disclosure
    print("4. monthly disclosure", flush=True)
    rows = []
    base = None
    for years in histories:
        m = run("monthly", repeats, label=f"monthly after {years} y", village=0, years=years)
        base = base or m.seconds
        rows.append([str(years), f"{books.book(0, years).events:,}", f"{m.events}", f"{m.median('append_s'):.2f}",
                     f"{m.median('read_model_s'):.2f}", f"{m.median('report_s'):.2f}", f"{m.seconds:.2f}",
                     str(len(m.runs)), f"{m.seconds / base:.2f}", f"{m.rss_mb:.0f}"])
        series.setdefault("append a month + disclose", []).append((years, m.seconds))
    sections.append((
        "4. Monthly disclosure after appending one month (goal: time independent of history length)",
        ["years of history", "history events", "appended events", "append s", "read model s", "disclosure s",
         "total s", "n", "× 1st history", "peak RSS MB"], rows,
        f"Report step: {m.runs[0]['how']}. Append = import_journal of the month (vouchers, depreciation, close).",
    ))

    save()

    # 5. peers
    print("5. peers", flush=True)
    peer_book = books.book(0, peer_years)
    # Measured again here: the peers' ratio must compare runs made under the same machine load.
    ours = run("trial_balance", repeats, label=f"trial balance from the log, {peer_years} y", village=0, years=peer_years)
    rows = []
    for label, m, totals in peers(peer_book, repeats, ours):
        rows.append([label, f"{m.seconds:.2f}", str(len(m.runs)), f"{m.seconds / ours.seconds:.1f}", totals,
                     f"{m.rss_mb:.0f}"])
    sections.append((
        f"5. Peers on the same books ({peer_years} year(s) of village 0, {peer_book.meta['records']:,} records)",
        ["tool", "seconds", "n", "time ÷ ours", "per-account totals", "peak RSS MB"], rows,
        "Peers read the exported text journals (benchmarks/export.py); we read the signed SQLite log. Peer times "
        "include process start-up (bean-check, hledger, ledger); beancount's loader is timed in-process. beancount's "
        "pickle cache is off, so that it parses the books in every run as the others do.",
    ))

    save()
    print(f"wrote {args.results} and {args.plot} in {time.perf_counter() - started:.0f} s (largest book: {largest.events:,} events)")


if __name__ == "__main__":
    main()

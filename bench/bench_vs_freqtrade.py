"""`crot replay` against `freqtrade backtesting` on the same candles: whole-process wall time.

Run (freqtrade is not a CROT dependency; name the interpreter of a venv that has it):

    python bench/bench_vs_freqtrade.py --freqtrade-python /path/to/venv/bin/python [--repeat 3]
    python bench/bench_vs_freqtrade.py --quick            # 3 coins x 5 days, a fast check

Without ``--freqtrade-python`` the ``freqtrade`` found on PATH is used (its interpreter is read
from the script's first line); without either the freqtrade side is skipped with a message.

What it does, in a temporary folder (``--keep`` keeps it and prints where):

1. Converts the recorded candles (default: the bundled demo, engine/demo_data/perp-2024:
   ``<COIN>_USDT_USDT-5m-futures.csv.gz`` and ``...-8h-funding_rate.csv.gz``) into a freqtrade
   ``user_data/data/bybit/futures`` folder with freqtrade's own data handler (feather):
   ``BTC_USDT_USDT-5m-futures.feather``, the funding events as ``...-1h-funding_rate.feather``
   (freqtrade's funding timeframe for Bybit is 1h; the 8-hourly events are kept as they are,
   freqtrade joins them to the mark candles on their dates), and ``...-1h-mark.feather`` (the 5m
   trade candles resampled to 1h: the recorded data has no mark prices). It also writes a
   static markets table for the pairs (linear USDT swaps: contractSize 1, tick sizes from the
   recorded prices, Bybit's taker/maker fees) and one leverage tier per pair.
2. Copies the strategy ``bench/freqtrade/CrotEmaPullback.py`` (EMA48/EMA120 on 1h resampled
   from 5m, EMA24/EMA72 pullback recovery on 5m, long and mirrored short, 2% stop, a ROI table
   for CROT's exit ladder, max_open_trades 10) and writes a config (Bybit, futures, isolated).
3. freqtrade loads the exchange's markets over the network when it starts; the machine may be
   offline, so freqtrade is started through a small launcher (written into the temporary
   folder; freqtrade itself is not changed) that replaces ``Exchange._load_async_markets`` by
   one that sets the static markets on the ccxt object, ``Exchange.load_leverage_tiers`` by the
   static tiers, refuses any outgoing TCP/UDP connection (so "offline" is checked, not hoped),
   and then calls ``freqtrade.main.main(["backtesting", ...])`` with ``--cache none`` (no reuse
   of an earlier identical backtest).
4. Times whole processes (subprocess start to exit, ``time.perf_counter``; and their user+sys
   CPU time from ``getrusage(RUSAGE_CHILDREN)``), ``--repeat`` rounds,
   the tools interleaved in each round so a change of machine load hits all of them:
   freqtrade backtesting (its default outputs: the result zip in user_data/backtest_results),
   ``crot replay --no-record --no-plots`` and ``crot replay --no-plots`` (with the default audit
   record), both with ``--out`` into the temporary folder and run from it (no user .env).
5. Prints the machine (platform, CPU model/count, load average before and after, both Python
   versions), the candles (symbols x replayed candles = symbol-candles; the warm-up candles
   before the range are read by both tools but not counted), each tool's median wall and CPU time and
   symbol-candles per second, the ratios crot/freqtrade, and the trade counts as a sanity check
   (the strategies are comparable in work per candle, not equal: the trades differ).

Figures only -- nothing here is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "engine" / "demo_data" / "perp-2024"
STRATEGY_FILE = ROOT / "bench" / "freqtrade" / "CrotEmaPullback.py"
STRATEGY = "CrotEmaPullback"
EXCHANGE = "bybit"
QUICK_SYMBOLS = "BTC,ETH,SOL"
QUICK_TIMERANGE = "20240804-"
M5 = 300_000

# --------------------------------------------------------------------------------------------
# Run by the freqtrade interpreter: recorded CSV -> freqtrade's futures data folder + markets.
PREP_SCRIPT = r'''
import json, math, sys
from pathlib import Path
import pandas as pd
from freqtrade.data.history import get_datahandler
from freqtrade.enums import CandleType

spec = json.loads(Path(sys.argv[1]).read_text())
datadir = Path(spec["datadir"])
datadir.mkdir(parents=True, exist_ok=True)
handler = get_datahandler(datadir, "feather")
markets, tiers = {}, {}


def tick_of(values):
    """Smallest decimal step seen in the recorded prices (at most 8 decimals)."""
    best = 0
    for v in values[:2000]:
        text = repr(float(v))
        if "e" in text:
            return 10.0 ** -8
        if "." in text:
            best = max(best, len(text.split(".")[1].rstrip("0")))
    return 10.0 ** -min(best, 8)


for base in spec["bases"]:
    pair = f"{base}/USDT:USDT"
    src = Path(spec["data"]) / f"{base}_USDT_USDT-5m-futures.csv.gz"
    raw = pd.read_csv(src)
    df = pd.DataFrame({
        "date": pd.to_datetime(raw["timestamp_ms"], unit="ms", utc=True),
        "open": raw["open"].astype(float), "high": raw["high"].astype(float),
        "low": raw["low"].astype(float), "close": raw["close"].astype(float),
        "volume": raw["volume"].astype(float),
    })
    handler.ohlcv_store(pair, "5m", df, CandleType.FUTURES)
    # No mark prices were recorded: the trade candles resampled to 1h stand in for them.
    mark = (df.set_index("date").resample("1h", label="left", closed="left")
            .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
            .dropna().reset_index())
    handler.ohlcv_store(pair, spec["mark_tf"], mark, CandleType.from_string(spec["mark_type"]))
    fsrc = Path(spec["data"]) / f"{base}_USDT_USDT-8h-funding_rate.csv.gz"
    if fsrc.is_file():
        fr = pd.read_csv(fsrc)
        fdf = pd.DataFrame({"date": pd.to_datetime(fr["timestamp_ms"], unit="ms", utc=True),
                            "funding_rate": fr["funding_rate"].astype(float)})
    else:
        fdf = pd.DataFrame({"date": mark["date"][::8].values, "funding_rate": 0.0})
    handler.ohlcv_store(pair, spec["funding_tf"], fdf, CandleType.FUNDING_RATE)

    price_tick = tick_of(list(raw["close"]))
    px = float(raw["close"].iloc[-1])
    # Amount step: about 5 USDT of notional, rounded down to a power of ten.
    amount_step = 10.0 ** math.floor(math.log10(5.0 / px)) if px > 0 else 1.0
    amount_step = min(max(amount_step, 1e-4), 1.0)
    markets[pair] = {
        "id": f"{base}USDT", "symbol": pair, "base": base, "quote": "USDT", "settle": "USDT",
        "baseId": base, "quoteId": "USDT", "settleId": "USDT", "type": "swap",
        "spot": False, "margin": False, "swap": True, "future": False, "option": False,
        "active": True, "contract": True, "linear": True, "inverse": False,
        "contractSize": 1.0, "expiry": None, "expiryDatetime": None, "strike": None,
        "optionType": None, "taker": 0.00055, "maker": 0.0002, "percentage": True,
        "tierBased": False, "feeSide": "get",
        "precision": {"amount": amount_step, "price": price_tick},
        "limits": {"amount": {"min": amount_step, "max": 1e9}, "price": {"min": price_tick, "max": 1e9},
                   "cost": {"min": 5.0, "max": None}, "leverage": {"min": 1.0, "max": 50.0},
                   "market": {"min": amount_step, "max": 1e9}},
        "created": None, "info": {"symbol": f"{base}USDT", "status": "Trading"},
    }
    tiers[pair] = [{"tier": 1.0, "symbol": pair, "currency": "USDT", "minNotional": 0.0,
                    "maxNotional": 1e9, "maintenanceMarginRate": 0.005, "maxLeverage": 50.0,
                    "info": {}}]

Path(spec["markets"]).write_text(json.dumps({"markets": markets, "tiers": tiers}, indent=1))
print(f"converted {len(spec['bases'])} pairs into {datadir}")
'''

# --------------------------------------------------------------------------------------------
# Run by the freqtrade interpreter: freqtrade's main with static markets and no network.
LAUNCHER = r'''
import json, os, socket, sys
from pathlib import Path

_static = json.loads(Path(os.environ["BENCH_FT_MARKETS"]).read_text())

_real_connect, _real_connect_ex = socket.socket.connect, socket.socket.connect_ex


def _refuse(self, address, *a):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"bench_vs_freqtrade: network access refused (offline run): {address!r}")
    return _real_connect(self, address, *a)


def _refuse_ex(self, address, *a):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(f"bench_vs_freqtrade: network access refused (offline run): {address!r}")
    return _real_connect_ex(self, address, *a)


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse_ex

from freqtrade.exchange.exchange import Exchange  # noqa: E402


def _load_static_markets(self, reload: bool = False) -> None:
    # In place of ccxt's load_markets (a REST call): the same ccxt structure, set locally.
    self._api_async.set_markets(json.loads(json.dumps(_static["markets"])))


def _static_leverage_tiers(self):
    return json.loads(json.dumps(_static["tiers"]))


Exchange._load_async_markets = _load_static_markets
Exchange.load_leverage_tiers = _static_leverage_tiers

from freqtrade.main import main  # noqa: E402

main(sys.argv[1:])
'''


# --------------------------------------------------------------------------------------------
def _day_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp() * 1000)


def parse_timerange(text: str) -> tuple[int | None, int | None]:
    a, _, b = text.strip().partition("-")
    return (_day_ms(a) if a else None), (_day_ms(b) if b else None)


def folder_timerange(data: Path) -> str:
    path = data / "replay.timerange"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return line.strip()
    return ""


def traded_bases(data: Path) -> list[str]:
    return sorted(p.name.split("_USDT_USDT-5m-futures")[0] for p in data.glob("*_USDT_USDT-5m-futures.csv*"))


def count_candles(data: Path, base: str, start: int | None, end: int | None) -> tuple[int, int, int, int]:
    """(candles in [start, end), warm-up candles before start, first and last counted open time)."""
    path = next(iter(sorted(data.glob(f"{base}_USDT_USDT-5m-futures.csv*"))))
    opener = gzip.open if path.suffix == ".gz" else open
    inside = before = 0
    first = last = 0
    with opener(path, "rt", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            t = int(line.split(",", 1)[0])
            if start is not None and t < start:
                before += 1
            elif end is None or t < end:
                inside += 1
                first = first or t
                last = t
    return inside, before, first, last


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def shebang_python(script: str) -> str | None:
    try:
        with open(script, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!"):
        parts = first[2:].split()
        if parts and Path(parts[0]).name == "env" and len(parts) > 1:
            return shutil.which(parts[1])
        return parts[0] if parts else None
    return None


def python_version(python: str) -> str:
    try:
        out = subprocess.run([python, "-c", "import platform,sys;print(platform.python_version())"],
                             capture_output=True, text=True, timeout=60)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def find_freqtrade(arg: str | None) -> tuple[str | None, str]:
    """(python with freqtrade, its version) or (None, why not)."""
    if arg:
        python = arg
    else:
        script = shutil.which("freqtrade")
        if not script:
            return None, ("freqtrade is not installed: no `freqtrade` on PATH; install it in a "
                          "separate venv and pass --freqtrade-python /path/to/venv/bin/python")
        python = shebang_python(script) or ""
        if not python:
            return None, f"freqtrade is not installed: cannot read the interpreter of {script}"
    try:
        out = subprocess.run([python, "-c", "import freqtrade;print(freqtrade.__version__)"],
                             capture_output=True, text=True, timeout=120)
    except OSError as exc:
        return None, f"freqtrade is not installed: {python}: {exc}"
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"freqtrade is not installed: {python} cannot import freqtrade ({tail})"
    return python, out.stdout.strip()


def find_crot(arg: str | None) -> str | None:
    if arg:
        return arg
    beside = Path(sys.executable).with_name("crot")
    if beside.is_file():
        return str(beside)
    return shutil.which("crot")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], cwd: Path, log: Path, env: dict | None = None) -> tuple[float, float, int, str]:
    """(wall s, CPU s user+sys of the process and its waited-for children, exit code, output)."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    return wall, _children_cpu() - cpu0, proc.returncode, log.read_text(encoding="utf-8", errors="replace")


def ft_trades(output: str) -> str:
    m = re.search(r"Total/Daily Avg Trades\s*[│|]\s*(\d+)", output)
    return m.group(1) if m else "?"


def crot_trades(output: str) -> str:
    m = re.search(r"│\s*trades\s*│\s*(\d+)", output)
    return m.group(1) if m else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--freqtrade-python", help="python of a venv with freqtrade (default: the "
                    "interpreter of `freqtrade` on PATH; without one the freqtrade side is skipped)")
    ap.add_argument("--crot", help="the crot executable (default: beside this python, else on PATH)")
    ap.add_argument("--data", default=str(DEMO), help="recorded-data folder (default: the bundled demo)")
    ap.add_argument("--symbols", help="comma-separated coins, e.g. BTC,ETH (default: all traded in --data)")
    ap.add_argument("--timerange", help="YYYYMMDD-[YYYYMMDD] replayed by both (default: the folder's "
                    "replay.timerange); earlier candles are the warm-up")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_SYMBOLS} over {QUICK_TIMERANGE} "
                    "(5 days), unless --symbols/--timerange say otherwise")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each measurement (median; default 3)")
    ap.add_argument("--skip", default="", help="comma list of runs to leave out: freqtrade, crot-norecord, crot-record")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data, results)")
    args = ap.parse_args()

    data = Path(args.data).resolve()
    if not data.is_dir():
        print(f"--data {data}: no such folder", file=sys.stderr)
        return 2
    available = traded_bases(data)
    symbols = args.symbols or (QUICK_SYMBOLS if args.quick else "")
    if symbols:
        bases = [s.strip().upper().split("/")[0] for s in symbols.split(",") if s.strip()]
        missing = [b for b in bases if b not in available]
        if missing:
            print(f"--symbols: {', '.join(missing)} not in {data}; recorded: {', '.join(available)}", file=sys.stderr)
            return 2
    else:
        bases = available
    timerange = args.timerange or (QUICK_TIMERANGE if args.quick else folder_timerange(data))
    start, end = parse_timerange(timerange) if timerange else (None, None)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    counts = {b: count_candles(data, b, start, end) for b in bases}
    per_symbol = sorted({c[0] for c in counts.values()})
    symbol_candles = sum(c[0] for c in counts.values())
    warmup = sum(c[1] for c in counts.values())
    first = min(c[2] for c in counts.values())
    last = max(c[3] for c in counts.values())

    ft_python, ft_info = find_freqtrade(args.freqtrade_python)
    crot = find_crot(args.crot)
    crot_python = shebang_python(crot) if crot else None

    print("== machine")
    print(f"platform   {platform.platform()} {platform.machine()}")
    print(f"CPU        {cpu_model()}, {os.cpu_count()} logical CPUs; load average (1/5/15 min) now {load()}")
    print(f"python     bench {platform.python_version()}; crot {python_version(crot_python) if crot_python else '?'}"
          f" ({crot_python or crot}); freqtrade "
          f"{python_version(ft_python) + ' (' + ft_python + ')' if ft_python else '-'}")
    print(f"freqtrade  {ft_info if ft_python else '-'}")
    print("== candles")
    print(f"data       {data}")
    print(f"symbols    {len(bases)}: {', '.join(bases)}")
    print(f"range      --timerange {timerange or '(all)'}: {utc(first)} .. {utc(last)} UTC (candle open times)")
    print(f"candles    {len(bases)} symbols x {'/'.join(str(n) for n in per_symbol)} 5m candles = "
          f"{symbol_candles:,} symbol-candles (plus {warmup:,} warm-up symbol-candles before the range)")
    sys.stdout.flush()

    if not ft_python:
        print(f"\n{ft_info}\n-> the freqtrade side is skipped; crot is measured alone (no ratios).")
        skip.add("freqtrade")
    if not crot:
        print("\ncrot not found (no `crot` beside this python nor on PATH; pass --crot) -> crot runs skipped.")
        skip |= {"crot-norecord", "crot-record"}

    tmp = Path(tempfile.mkdtemp(prefix="bench_vs_freqtrade-"))
    runs: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    trades: dict[str, str] = {}
    failed: dict[str, str] = {}
    try:
        jobs: list[tuple[str, object]] = []
        if "freqtrade" not in skip:
            ud = tmp / "user_data"
            datadir = ud / "data" / EXCHANGE
            (ud / "strategies").mkdir(parents=True)
            shutil.copy(STRATEGY_FILE, ud / "strategies" / STRATEGY_FILE.name)
            markets = tmp / "markets.json"
            spec = {"data": str(data), "bases": bases, "datadir": str(datadir), "markets": str(markets),
                    "funding_tf": "1h", "mark_tf": "1h", "mark_type": "mark"}
            # Bybit's funding/mark timeframes and mark candle type, as this freqtrade has them.
            probe = subprocess.run([ft_python, "-c", (
                "from freqtrade.exchange.bybit import Bybit; from freqtrade.exchange.exchange import Exchange;"
                "h={**Exchange._ft_has_default, **Bybit._ft_has, **Bybit._ft_has_futures};"
                "print(h.get('funding_fee_timeframe','1h'), h.get('mark_ohlcv_timeframe','1h'), h.get('mark_ohlcv_price','mark'))")],
                capture_output=True, text=True)
            if probe.returncode == 0 and len(probe.stdout.split()) == 3:
                spec["funding_tf"], spec["mark_tf"], spec["mark_type"] = probe.stdout.split()
            (tmp / "prep.json").write_text(json.dumps(spec))
            (tmp / "prep.py").write_text(PREP_SCRIPT)
            (tmp / "launch_freqtrade.py").write_text(LAUNCHER)
            t0 = time.perf_counter()
            prep = subprocess.run([ft_python, str(tmp / "prep.py"), str(tmp / "prep.json")],
                                  capture_output=True, text=True)
            if prep.returncode != 0:
                print(f"\nconverting the candles for freqtrade failed:\n{prep.stderr[-3000:]}")
                skip.add("freqtrade")
            else:
                print(f"\nfreqtrade data: {prep.stdout.strip()} in {time.perf_counter() - t0:.1f} s "
                      f"(funding {spec['funding_tf']}, mark {spec['mark_tf']}; not timed below)")
                config = {
                    "max_open_trades": 10, "stake_currency": "USDT", "stake_amount": 20,
                    "tradable_balance_ratio": 0.99, "fiat_display_currency": "", "dry_run": True,
                    "dry_run_wallet": 1000, "cancel_open_orders_on_exit": False,
                    "trading_mode": "futures", "margin_mode": "isolated", "timeframe": "5m",
                    "unfilledtimeout": {"entry": 10, "exit": 10, "exit_timeout_count": 0, "unit": "minutes"},
                    "entry_pricing": {"price_side": "same", "use_order_book": False, "order_book_top": 1,
                                      "price_last_balance": 0.0, "check_depth_of_market": {"enabled": False}},
                    "exit_pricing": {"price_side": "same", "use_order_book": False, "order_book_top": 1},
                    "exchange": {"name": EXCHANGE, "key": "", "secret": "",
                                 "pair_whitelist": [f"{b}/USDT:USDT" for b in bases], "pair_blacklist": [],
                                 "ccxt_config": {}, "ccxt_async_config": {}},
                    "pairlists": [{"method": "StaticPairList"}],
                    "dataformat_ohlcv": "feather", "bot_name": "bench_vs_crot",
                    "initial_state": "running", "internals": {"process_throttle_secs": 5},
                }
                (tmp / "config.json").write_text(json.dumps(config, indent=1))
                cmd = [ft_python, str(tmp / "launch_freqtrade.py"), "backtesting",
                       "--config", str(tmp / "config.json"), "--userdir", str(ud), "--datadir", str(datadir),
                       "--strategy", STRATEGY, "--cache", "none"]
                if timerange:
                    cmd += ["--timerange", timerange]
                env = {**os.environ, "BENCH_FT_MARKETS": str(markets)}
                jobs.append(("freqtrade", (cmd, env)))
        crot_base = [crot, "replay", "--data", str(data), "--symbols", ",".join(bases), "--quiet", "--no-plots"]
        if timerange:
            crot_base += ["--timerange", timerange]
        if "crot-norecord" not in skip:
            jobs.append(("crot-norecord", (crot_base + ["--no-record"], None)))
        if "crot-record" not in skip:
            jobs.append(("crot-record", (crot_base, None)))

        print("\n== runs (wall seconds, whole process; rounds interleave the tools)")
        for rnd in range(1, args.repeat + 1):
            for name, (cmd, env) in jobs:
                if name in failed:
                    continue
                run_cmd = list(cmd)
                if name.startswith("crot"):
                    run_cmd += ["--out", str(tmp / f"out-{name}-{rnd}")]
                before = load()
                wall, cpu, rc, out = timed(run_cmd, tmp, tmp / f"{name}-{rnd}.log", env)
                if rc != 0:
                    failed[name] = f"exit code {rc}; last lines:\n" + "\n".join(out.strip().splitlines()[-25:])
                    print(f"round {rnd} {name:14s} FAILED ({rc}), see below")
                    continue
                runs.setdefault(name, []).append(wall)
                cpus.setdefault(name, []).append(cpu)
                trades[name] = ft_trades(out) if name == "freqtrade" else crot_trades(out)
                print(f"round {rnd} {name:14s} {wall:8.2f} s wall {cpu:8.2f} s CPU   load before {before}, after {load()}")
                sys.stdout.flush()
                if rnd == 1 and name == "freqtrade":
                    print(f"  command: {' '.join(run_cmd)}")

        print("\n== results")
        print(f"{'run':16s} {'median wall s':>13s} {'min':>7s} {'max':>7s} {'symbol-candles/s':>17s} "
              f"{'median CPU s':>12s} {'per CPU s':>10s} {'trades':>7s}")
        med: dict[str, float] = {}
        mcpu: dict[str, float] = {}
        for name, walls in runs.items():
            med[name] = statistics.median(walls)
            mcpu[name] = statistics.median(cpus[name])
            print(f"{name:16s} {med[name]:13.2f} {min(walls):7.2f} {max(walls):7.2f} "
                  f"{symbol_candles / med[name]:17,.0f} {mcpu[name]:12.2f} "
                  f"{symbol_candles / mcpu[name] if mcpu[name] else 0:10,.0f} {trades.get(name, '?'):>7s}")
        print("(symbol-candles/s: per second of wall time, whole process; per CPU s: per second of "
              "user+sys CPU time, less skewed by other load on a shared machine)")
        if "freqtrade" in med:
            print("\nratios (crot / freqtrade), from the medians:")
            for name in ("crot-norecord", "crot-record"):
                if name in med:
                    print(f"  {name:14s} wall time {med[name] / med['freqtrade']:5.2f}x freqtrade's "
                          f"(throughput {med['freqtrade'] / med[name]:4.2f}x); CPU time "
                          f"{mcpu[name] / mcpu['freqtrade']:5.2f}x freqtrade's "
                          f"(throughput {mcpu['freqtrade'] / mcpu[name]:4.2f}x)")
        print(f"\nload average at the end {load()} on {os.cpu_count()} CPUs (a shared machine skews "
              "all figures; the interleaved rounds keep the ratios fairer than the absolute times)")
        for name, why in failed.items():
            print(f"\n{name} failed: {why}")
    finally:
        if args.keep:
            print(f"\nkept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

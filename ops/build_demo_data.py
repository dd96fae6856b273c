"""Build the bundled demo data (engine/demo_data/perp-2024) from ../shared/data/perp-2024.

The rows are copied as they are (byte for byte, only the rows inside the window), renamed to
the recorded-file naming that ``engine.market.feeds`` reads, and gzip-compressed (mtime 0, so
a rebuild gives identical files). The hand-written files there (CONTENTS.md, replay.env,
replay.timerange) are kept. Usage: python ops/build_demo_data.py [SOURCE_DIR]
"""

from __future__ import annotations

import gzip
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "engine" / "demo_data" / "perp-2024"
SOURCE = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "perp-2024"

#: BTC (relative strength, macro), ETH and SOL, and seven liquid perps with a Gate.io contract
COINS = ["BTC", "ETH", "SOL", "AVAX", "LINK", "DOT", "LTC", "BCH", "NEAR", "FIL"]
BINANCE_REFERENCE = {"BTC", "SOL"}  # the whole window; the others: Gate.io, Aug 1..9 only
START = datetime(2024, 7, 17, tzinfo=timezone.utc)
END = datetime(2024, 8, 9, tzinfo=timezone.utc)  # exclusive: the recordings end 08-08 23:55


def _ms(d: datetime) -> int:
    return int(d.timestamp() * 1000)


def copy_slice(src: Path, dst: Path) -> int:
    """Rows of ``src`` with START <= timestamp < END into gzip ``dst``; the row count."""
    lo, hi = _ms(START), _ms(END)
    lines = src.read_text().splitlines(keepends=True)
    rows = [ln for ln in lines[1:] if ln.strip() and lo <= int(ln.split(",", 1)[0]) < hi]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(dst, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write("".join([lines[0], *rows]).encode())
    return len(rows)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in [*OUT.glob("*.csv.gz"), *OUT.glob("reference/*.csv.gz")]:
        old.unlink()  # the data files only: replay.env, replay.timerange, CONTENTS.md are kept
    made: list[tuple[str, str, int]] = []
    for coin in COINS:
        name = f"{coin}_USDT_USDT"
        made.append((f"{name}-5m-futures.csv.gz", f"bybit_perp_5m/{coin}USDT.csv",
                     copy_slice(SOURCE / "bybit_perp_5m" / f"{coin}USDT.csv", OUT / f"{name}-5m-futures.csv.gz")))
        made.append((f"{name}-8h-funding_rate.csv.gz", f"bybit_funding/{coin}USDT.csv",
                     copy_slice(SOURCE / "bybit_funding" / f"{coin}USDT.csv", OUT / f"{name}-8h-funding_rate.csv.gz")))
        ref = "binance_perp_5m" if coin in BINANCE_REFERENCE else "gateio_perp_5m"
        made.append((f"reference/{name}-5m-futures.csv.gz", f"{ref}/{coin}USDT.csv",
                     copy_slice(SOURCE / ref / f"{coin}USDT.csv", OUT / "reference" / f"{name}-5m-futures.csv.gz")))
    made.append(("PAXG_USDT-5m.csv.gz", "binance_spot_5m/PAXGUSDT.csv",
                 copy_slice(SOURCE / "binance_spot_5m" / "PAXGUSDT.csv", OUT / "PAXG_USDT-5m.csv.gz")))
    shutil.copy(SOURCE / "PROVENANCE.md", OUT / "PROVENANCE.md")
    for f, src, n in made:
        print(f"{f:48s} {n:6d} rows  <- {src}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

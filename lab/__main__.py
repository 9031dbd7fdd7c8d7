"""``python -m lab up | down | status | inject KIND TARGET | campaign ...`` (the Makefile's lab targets)."""

from __future__ import annotations

import argparse
import sys
import time

from lab import inject, stack


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="the live lab (docs/LAB.md)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every part of the lab (those not running yet)")
    off = sub.add_parser("down", help="stop every part of the lab, each by its PID")
    off.add_argument(
        "--purge",
        action="store_true",
        help="also delete PostgreSQL's data when it is kept outside the state folder (/var/tmp)",
    )
    sub.add_parser("status", help="which parts run, with their PIDs")
    again = sub.add_parser("restart", help="restart one part (e.g. opsagent, to run newer code)")
    again.add_argument("part")
    one = sub.add_parser("inject", help="inject one fault, hold it, then clean up")
    one.add_argument("kind", choices=sorted(inject.KINDS))
    one.add_argument("target")
    one.add_argument("--seconds", type=float, default=120.0)
    one.add_argument("--magnitude", type=float, default=None)
    camp = sub.add_parser("campaign", help="inject faults one after another and measure opsagent live")
    camp.add_argument("--seed", type=int, default=1)
    camp.add_argument("--faults", type=int, default=8)
    camp.add_argument("--only", default="", help="an explicit list: kind:target,kind:target,...")
    camp.add_argument(
        "--share",
        default="1/1",
        help="K/N: this lab runs every N-th fault of the plan from the K-th (two labs: 1/2, 2/2)",
    )
    camp.add_argument("--out", default="reports/lab-campaign.json")
    camp.add_argument("--cases", default=".lab/cases", help="where recorded incidents are written")
    camp.add_argument("--cap", type=float, default=240.0, help="longest a fault is held, seconds")
    camp.add_argument(
        "--recovery",
        type=float,
        default=200.0,
        help="seconds from the previous fault's alerts resolving to the next injection (settle + normal period)",
    )
    camp.add_argument(
        "--warmup", type=float, default=600.0, help="history the lab needs before the first fault"
    )
    merge = sub.add_parser("merge", help="one report from campaigns run side by side in several labs")
    merge.add_argument("--out", required=True)
    merge.add_argument("reports", nargs="+")
    table = sub.add_parser("table", help="a campaign report as Markdown tables")
    table.add_argument("report")
    args = parser.parse_args(argv)

    if args.command == "up":
        stack.up()
    elif args.command == "down":
        stack.down()
        if args.purge:
            stack.purge_pg_outside()
    elif args.command == "status":
        for name, pid in stack.status():
            print(f"{name:18} {pid if pid is not None else '-'}")
    elif args.command == "restart":
        stack.restart(args.part)
    elif args.command == "inject":
        fault = inject.Fault.of(args.kind, args.target, args.seconds, args.magnitude)
        inject.start(fault)
        print(
            f"{fault.kind} on {fault.target} for {fault.seconds:.0f}s (magnitude {fault.magnitude:g})",
            flush=True,
        )
        try:
            time.sleep(fault.seconds)
        except KeyboardInterrupt:
            pass
        finally:
            inject.clear_all()
    elif args.command == "table":
        from lab.table import render

        print(render(args.report))
    elif args.command == "merge":
        from lab import campaign

        campaign.merge(args.reports, args.out)
    elif args.command == "campaign":
        from lab import campaign

        return campaign.main(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

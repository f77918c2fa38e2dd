"""Example app: a colour wave across several micrOS lamps, all driven at once.

    python apps/rainbow.py kitchen hall 192.168.1.30      # names from `invoke scan`, or addresses

Each node gets the next colour of the wave at the same moment (one connection a node,
asyncio); a node that is down or refuses a call is reported and the others go on.
Uses the fleet client (microsctl/fleet/api.py): connect by name or address, then
call(module, function, *args).
"""
import argparse
import asyncio
import sys

from microsctl import MicrosError
from microsctl.fleet.api import AsyncNode

WAVE = [(1000, 0, 0), (1000, 500, 0), (0, 1000, 0), (0, 500, 1000), (0, 0, 1000), (600, 0, 1000)]


async def connect(name):
    try:
        return await AsyncNode.connect(name, timeout=3)
    except MicrosError as err:
        print(f"{name}: {err}", file=sys.stderr)
        return None


async def main(names, rounds, pause):
    nodes = [n for n in await asyncio.gather(*(connect(name) for name in names)) if n]
    failed = len(names) - len(nodes)
    try:
        for step in range(rounds):
            calls = [node.call("gpio", "RGB", *WAVE[(step + i) % len(WAVE)]) for i, node in enumerate(nodes)]
            for node, res in zip(nodes, await asyncio.gather(*calls, return_exceptions=True)):
                if isinstance(res, MicrosError):
                    print(f"{node.name}: {res}", file=sys.stderr)
                    failed += 1
                elif step == rounds - 1:
                    print(f"{node.name}: {res}")
            await asyncio.sleep(pause)
    finally:
        await asyncio.gather(*(node.close() for node in nodes))
    return 1 if failed else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nodes", nargs="+", help="node names (device cache) or addresses host[:port]")
    ap.add_argument("--rounds", type=int, default=len(WAVE), help="steps of the wave (default: one turn)")
    ap.add_argument("--pause", type=float, default=0.2, help="seconds between steps")
    args = ap.parse_args()
    sys.exit(asyncio.run(main(args.nodes, args.rounds, args.pause)))

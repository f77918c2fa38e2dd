"""A fleet updated in waves (`invoke ota --all`): one canary, then the rest in parallel waves.

The first node is the canary and is updated alone; if it comes back with what was sent, the
others follow in waves of `wave` nodes, each wave run in parallel on a pool of that size (the
nodes of a wave hold their transfers open at the same time). A wave is always finished, but
once one of its nodes failed no new wave starts: the nodes already updated stay updated and
are named, the ones not reached are left untouched. Every node's version before and after
goes into the table the task prints.

`run` is the scheduler, for any per-node update (files here; a firmware update plugs in the
same way); `ota_all` is `invoke ota --all` with microsctl.node.ota's file push.
"""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from microsctl import MicrosError
from microsctl.node import ota as nodeota
from microsctl.node.client import Shell

DEFAULT_WAVE = 4  # nodes updated at once after the canary: enough to be quick, few enough to watch
COLUMNS = ("node", "address", "wave", "version before", "after", "result")
UPDATED, FAILED, NOT_TRIED = "updated", "failed", "not tried"


@dataclass
class Outcome:
    name: str
    host: str
    port: int
    wave: int  # 0 is the canary
    before: str = "-"
    after: str = "-"
    state: str = NOT_TRIED
    error: str = ""

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def row(self):
        if self.state == UPDATED:
            result = "canary, updated" if self.wave == 0 else UPDATED
        elif self.state == FAILED:
            result = f"failed: {self.error}"
        else:
            result = "not tried: stopped at the first failure"
        return (self.name, self.address, "canary" if self.wave == 0 else str(self.wave), self.before, self.after,
                result)


def plan(targets, wave=DEFAULT_WAVE):
    """[(name, host, port)] -> waves: [[canary], [the next `wave` nodes], ...]."""
    if wave < 1:
        raise MicrosError(f"--wave takes a number of nodes of at least 1, not {wave}")
    targets = list(targets)
    return [targets[:1]] + [targets[i : i + wave] for i in range(1, len(targets), wave)] if targets else []


def version_of(host, port):
    """The node's `version` reply, or '?' when it does not answer (the update then says why)."""
    try:
        with Shell(port, host, timeout=5) as sh:
            return sh.cmd("version")
    except MicrosError:
        return "?"


def run(targets, update, wave=DEFAULT_WAVE, before=version_of, say=None):
    """Update [(name, host, port)] in waves. `update(name, host, port)` returns the node's version
    after the update or raises MicrosError. Returns ([Outcome] in target order, ok)."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    waves = plan(targets, wave)
    out = [Outcome(n, h, int(p), w) for w, group in enumerate(waves) for n, h, p in group]
    start = 0
    for w, group in enumerate(waves):
        mine = out[start : start + len(group)]
        start += len(group)
        names = ", ".join(o.name for o in mine)
        say(f"[ota] canary {names}" if w == 0 else f"[ota] wave {w} of {len(waves) - 1}: {names}")

        def one(o):
            o.before = before(o.host, o.port)
            try:
                o.after = update(o.name, o.host, o.port)
                o.state = UPDATED
            except MicrosError as err:
                o.state, o.error = FAILED, str(err)
            say(f"[ota] {o.name}: {o.state}" + (f" ({o.error})" if o.error else ""))
            return o

        with ThreadPoolExecutor(max_workers=len(group), thread_name_prefix=f"wave{w}") as pool:
            list(pool.map(one, mine))
        if any(o.state == FAILED for o in mine):
            return out, False
    return out, True


def summary(outcomes):
    """The one line for a run that stopped: which node failed, which were updated, which not tried."""
    def names(state):
        return ", ".join(o.name for o in outcomes if o.state == state) or "none"

    return (f"the update stopped at the first failure ({names(FAILED)}): updated {names(UPDATED)}; "
            f"not tried {names(NOT_TRIED)}; see the table, fix the failed node and run again")


def ota_all(targets, files=(), board=None, profile=None, timeout=60, sets=None, wave=DEFAULT_WAVE, on_progress=None):
    """`invoke ota --all`: the same files and settings pushed to every node, in waves.
    `on_progress(name, done, total)` is called as each node's bytes go out (from the pool's threads)."""
    from microsctl.flashing import schema

    settings = nodeota.checked_settings(schema.parse_sets(sets))
    if "devfid" in settings:
        raise MicrosError("--set devfid names one node: use it with --dev, not --all")
    payload = nodeota.collect(files, board, profile, allow_empty=bool(settings))
    plan(targets, wave)  # a bad --wave is refused before anything is sent
    lock = threading.Lock()

    def update(name, host, port):
        also = (lambda done, total: on_progress(name, done, total)) if on_progress else None
        progress = nodeota.byte_progress(f"[ota] {name}: {{done}}/{{total}} bytes", 25, lock, also)
        res = nodeota.push(payload, port, host, timeout, progress, settings)
        return res["version"]

    return run(targets, update, wave)


def firmware_all(targets, firmware=None, board=None, prebuilt=None, index=None, timeout=60, variant=None,
                 wave=DEFAULT_WAVE, on_progress=None):
    """`invoke ota --all --firmware`: one firmware image (picked and checked once, for the canary's
    board when none is named) streamed into every node's idle app slot, in waves. A node that
    rolled back to its old firmware (microsctl/node/fwota.py) counts as a failure."""
    from microsctl.node import fwota

    plan(targets, wave)
    if not targets:
        return [], True
    _, host, port = targets[0]
    image, path = fwota.pick_image(port, host, firmware, board, prebuilt, index, variant)
    print(f"[ota] firmware {path}: {len(image)} B for the nodes' idle app slots", file=sys.stderr, flush=True)

    def update(name, host, port):
        def progress(done, total):
            if on_progress:
                on_progress(name, done, total)

        res = fwota.push(image, port, host, timeout, progress)
        a = res["after"]
        if res["result"] == "rolled back":
            raise MicrosError(f"the new firmware did not pass its first boot: rolled back to {a['running']} "
                              f"(micrOS {a['version']})")
        return a["version"]

    return run(targets, update, wave)

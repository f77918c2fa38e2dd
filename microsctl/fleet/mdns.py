"""mDNS (zeroconf): nodes answer `<devfid>.local` where the board's mDNS responder runs;
anything announcing `_micros._tcp.local.` is browsed for.

Interfaces: all of the machine's, or those listed in $MICROS_MDNS_INTERFACES
(comma-separated addresses, e.g. 127.0.0.1 for a virtual fleet on loopback).
Every wait is short: a network without mDNS costs the timeout and nothing else.
"""
import os
import time

SERVICE = "_micros._tcp.local."


def _zeroconf():
    from zeroconf import InterfaceChoice, IPVersion, Zeroconf

    env = os.environ.get("MICROS_MDNS_INTERFACES")
    ifaces = [a.strip() for a in env.split(",") if a.strip()] if env else InterfaceChoice.All
    return Zeroconf(interfaces=ifaces, ip_version=IPVersion.V4Only)


def resolve_host(name, timeout=1.5):
    """The IPv4 address answering `<name>.local`, or None."""
    from zeroconf import AddressResolverIPv4

    host = name if name.endswith(".local.") else name.rstrip(".") + (".local." if not name.endswith(".local") else ".")
    try:
        zc = _zeroconf()
    except OSError:  # no multicast here
        return None
    try:
        r = AddressResolverIPv4(host)
        if r.request(zc, int(timeout * 1000)):
            addrs = r.parsed_addresses()
            return addrs[0] if addrs else None
        return None
    finally:
        zc.close()


def browse(timeout=1.5):
    """[(host, port, instance name)] of the `_micros._tcp` services heard within timeout."""
    from zeroconf import ServiceBrowser, ServiceStateChange

    try:
        zc = _zeroconf()
    except OSError:
        return []
    names = []

    def changed(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added and name not in names:
            names.append(name)

    try:
        browser = ServiceBrowser(zc, SERVICE, handlers=[changed])
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            time.sleep(0.05)
        browser.cancel()
        found = []
        for name in names:
            info = zc.get_service_info(SERVICE, name, 500)
            if info and info.parsed_addresses():
                found.append((info.parsed_addresses()[0], info.port, name[: -len(SERVICE) - 1]))
        return found
    finally:
        zc.close()

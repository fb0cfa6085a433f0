"""The readable summary of one benchmark run (the --json document as text)."""

from typing import Any, Dict, List


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def summary_lines(result: Dict[str, Any]) -> List[str]:
    """The readable summary of ``result`` (the --json document)."""
    config = result["config"]
    rate = config["rate"]
    lines = [
        f"osism events pipeline: {config['clients']} clients, "
        f"{config['events']:,} events, "
        + (f"{rate:g} events/s" if rate else "as fast as possible")
        + (", stopped client" if config["stopped_client"] else "")
        + (", permessage-deflate" if config["compression"] else ""),
        _code_line(config["code"]),
        "",
    ]
    lines += _client_table(result["clients"])
    lines += [""] + _totals(result)
    if result.get("stopped_client") is not None:
        lines += [""] + _stopped(result["stopped_client"])
    lines += [""] + _targets(result["targets"])
    return lines


def _code_line(code: Dict[str, Any]) -> str:
    line = f"osism code: {code['tree']}, sha256 of osism/*.py {code['osism_sha256']}"
    if "git_head" in code:
        line += f", git {code['git_head']}"
        line += " with osism/ modified" if code["osism_modified"] else " (clean)"
    return line


def _client_table(clients: List[Dict[str, Any]]) -> List[str]:
    header = f"{'client':>6} {'received':>9} {'lost':>6} {'dup':>4} {'ooo':>4}"
    header += f" {'events/s':>9} {'p99 ms':>7} {'closed':>6}"
    rows = [header]
    for n, c in enumerate(clients):
        rows.append(
            f"{n:>6} {c['received']:>9,} {c['lost']:>6,} {c['duplicates']:>4}"
            f" {c['out_of_order']:>4} {c['events_per_s']:>9,.0f}"
            f" {_fmt(c['p99_ms'], 3):>7} {_fmt(c['close_code']):>6}"
        )
    rows.append(
        "events/s = received / (client's last receive - first publish); "
        "ooo = out of order; closed = close code sent by the server"
    )
    return rows


def _totals(result: Dict[str, Any]) -> List[str]:
    server = result["server"]
    lat = result["latency"] or {}
    pub = result["publisher"]
    ws = result["health"]["websocket"]["counters"]
    return [
        "latency (receive - bench_sent_ns), all delivered frames: "
        + ", ".join(f"{k[:-3]} {_fmt(v, 3)} ms" for k, v in lat.items()),
        f"publisher: {pub['events_per_s']:,.0f} events/s published, "
        f"{pub['cpu_s']:.2f} CPU s; receiver CPU {result['receiver']['cpu_s']:.2f} s"
        f" (ended by {result['receiver']['ended_by']})",
        f"server CPU {server['cpu_s']:.2f} s over {server['window_s']:.2f} s "
        f"= {_fmt(server['cpu_us_per_frame'])} us per delivered frame "
        f"({server['delivered_frames']:,} frames)",
        _machine_line(result["machine"], server["window_s"]),
        f"server RSS {server['rss_before_mib']:.1f} MiB before, "
        f"{server['rss_after_mib']:.1f} after, {server['rss_max_mib']:.1f} max "
        f"sampled, VmHWM {server['hwm_mib']:.1f} MiB",
        "server health counters: websocket "
        + _counters(ws)
        + "; bridge "
        + _counters(result["health"]["bridge"]["counters"]),
    ] + (
        [f"messages that came compressed: {result['compressed_messages']:,}"]
        if result["config"]["compression"]
        else []
    )


def _machine_line(machine: Dict[str, Any], window_s: float) -> str:
    ours = ", ".join(f"{k} {v:.2f}" for k, v in machine["benchmark_cpu_s"].items())
    return (
        f"machine CPU s over the window: {machine['busy_cpu_s']:.2f} busy of "
        f"{machine['cpus'] * window_s:.2f} ({ours}; the rest, other processes "
        f"and interrupts: {machine['other_cpu_s']:.2f})"
    )


def _counters(counters: Dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counters.items()) or "(none)"


def _stopped(stopped: Dict[str, Any]) -> List[str]:
    after = stopped["dropped_after_s"]
    lines = [
        "stopped client: its socket stalled "
        f"{_fmt(stopped['stalled_after_s'])} s after the first publish "
        "(send time of the last event that reached it), and it was "
        + (
            f"dropped {after:.2f} s after the first publish "
            f"({_fmt(stopped['drop_after_stall_s'])} s after the stall)"
            if after is not None
            else "NOT dropped during the run (health 'dropped' counter unchanged)"
        ),
        f"  read after the run: {stopped['frames_received']:,} events "
        f"({stopped['bytes_left_in_socket']:,} B; its SO_RCVBUF "
        f"{stopped['rcvbuf']:,} B), then "
        + (
            f"close code {stopped['close_code']}"
            if stopped["close_code"] is not None
            else "no close frame"
        )
        + (
            ", connection ended"
            if stopped["connection_ended"]
            else ", connection still open (nothing more within 1 s)"
        ),
        "  the other clients' latency by send time:",
    ]
    for phase, lat in stopped["others_latency_by_phase"].items():
        figures = ", ".join(f"{k[:-3]} {v:.3f}" for k, v in (lat or {}).items())
        lines.append(f"    {phase:>12}: {figures or 'no events'} (ms)")
    return lines


def _targets(targets: List[Dict[str, Any]]) -> List[str]:
    lines = ["targets:"]
    for t in targets:
        verdict = "ok" if t["met"] else "MISSED"
        lines.append(f"  {verdict:6} {t['what']}: {_fmt(t['value'])}")
    return lines

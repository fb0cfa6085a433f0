"""The readable summary of one benchmark run (the --json document as text)."""

from typing import Any, Dict, List

# Clients listed one per line; with more, the slowest ones.
CLIENT_ROWS = 20


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary_lines(result: Dict[str, Any]) -> List[str]:
    """The readable summary of ``result`` (the --json document)."""
    config, code = result["config"], result["config"]["code"]
    rate = config["rate"]
    title = f"osism events pipeline: {config['clients']} clients, "
    title += f"{config['events']:,} events, "
    title += f"{rate:g} events/s" if rate else "as fast as possible"
    title += ", stopped client" if config["stopped_client"] else ""
    title += ", permessage-deflate" if config["compression"] else ""
    code_line = f"osism code: {code['tree']}, sha256 of osism/*.py "
    code_line += code["osism_sha256"]
    if "git_head" in code:
        code_line += f", git {code['git_head']}"
        code_line += " with osism/ modified" if code["osism_modified"] else " (clean)"
    lines = [title, code_line, ""] + _client_table(result["clients"])
    lines += [""] + _totals(result)
    if result.get("stopped_client") is not None:
        lines += [""] + _stopped(result["stopped_client"])
    lines += ["", "targets:"]
    for t in result["targets"]:
        verdict = "ok" if t["met"] else "MISSED"
        lines.append(f"  {verdict:6} {t['what']}: {_fmt(t['value'])}")
    return lines


def _client_table(clients: List[Dict[str, Any]]) -> List[str]:
    header = f"{'client':>6} {'received':>9} {'lost':>6} {'dup':>4} {'ooo':>4}"
    rows = [header + f" {'events/s':>9} {'p99 ms':>7} {'closed':>6}"]
    numbered = list(enumerate(clients))
    if len(numbered) > CLIENT_ROWS:
        numbered = sorted(numbered, key=lambda nc: nc[1]["events_per_s"])
        numbered = sorted(numbered[:CLIENT_ROWS])
    for n, c in numbered:
        rows.append(
            f"{n:>6} {c['received']:>9,} {c['lost']:>6,} {c['duplicates']:>4}"
            f" {c['out_of_order']:>4} {c['events_per_s']:>9,.0f}"
            f" {_fmt(c['p99_ms'], 3):>7} {_fmt(c['close_code']):>6}"
        )
    if len(clients) > CLIENT_ROWS:
        rows.append(f"(the {CLIENT_ROWS} slowest of {len(clients)} clients)")
    rows.append(
        "events/s = received / (client's last receive - first publish); "
        "ooo = out of order; closed = close code sent by the server"
    )
    return rows


def _totals(result: Dict[str, Any]) -> List[str]:
    server, machine = result["server"], result["machine"]
    pub, receiver = result["publisher"], result["receiver"]
    health = result["health"]
    ours = ", ".join(f"{k} {v:.2f}" for k, v in machine["benchmark_cpu_s"].items())
    lines = [
        "latency (receive - bench_sent_ns), all delivered frames: "
        + ", ".join(f"{k[:-3]} {_fmt(v, 3)} ms" for k, v in result["latency"].items()),
        f"publisher: {pub['events_per_s']:,.0f} events/s published, "
        f"{pub['cpu_s']:.2f} CPU s; receiver CPU {receiver['cpu_s']:.2f} s"
        f" (ended by {receiver['ended_by']})",
        f"server CPU {server['cpu_s']:.2f} s over {server['window_s']:.2f} s "
        f"= {_fmt(server['cpu_us_per_frame'])} us per delivered frame "
        f"({server['delivered_frames']:,} frames), {server['cores']:.2f} of a core",
        f"machine CPU s over the window: {machine['busy_cpu_s']:.2f} busy of "
        f"{machine['cpus'] * server['window_s']:.2f} ({ours}; the rest, other "
        f"processes and interrupts: {machine['other_cpu_s']:.2f})",
        f"server RSS {server['rss_before_mib']:.1f} MiB before, "
        f"{server['rss_after_mib']:.1f} after, {server['rss_max_mib']:.1f} max "
        f"sampled, VmHWM {server['hwm_mib']:.1f} MiB; idle clients took "
        f"{server['kib_per_idle_client']:.1f} KiB each (RSS once all connected"
        " - before they connected, / clients)",
        f"server health counters: websocket {_counters(health['websocket'])}; "
        f"bridge {_counters(health['bridge'])}",
    ]
    if result["config"]["compression"]:
        lines.append(
            f"messages that came compressed: {result['compressed_messages']:,}"
        )
    return lines


def _counters(part: Dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in part["counters"].items()) or "(none)"


def _stopped(stopped: Dict[str, Any]) -> List[str]:
    dropped = "NOT dropped during the run (health 'dropped' counter unchanged)"
    if stopped["dropped_after_s"] is not None:
        dropped = f"dropped {stopped['dropped_after_s']:.2f} s after the first "
        dropped += f"publish ({_fmt(stopped['drop_after_stall_s'])} s after the stall)"
    code, ended = stopped["close_code"], stopped["connection_ended"]
    lines = [
        f"stopped client: its socket stalled {_fmt(stopped['stalled_after_s'])} s "
        "after the first publish (send time of the last event that reached it), "
        f"and it was {dropped}",
        f"  read after the run: {stopped['frames_received']:,} events "
        f"({stopped['bytes_left_in_socket']:,} B; its SO_RCVBUF "
        f"{stopped['rcvbuf']:,} B), then "
        + (f"close code {code}" if code is not None else "no close frame")
        + (", connection ended" if ended else ", connection still open (1 s)"),
        "  the other clients' latency by send time:",
    ]
    for phase, lat in stopped["others_latency_by_phase"].items():
        figures = ", ".join(f"{k[:-3]} {v:.3f}" for k, v in (lat or {}).items())
        lines.append(f"    {phase:>12}: {figures or 'no events'} (ms)")
    return lines

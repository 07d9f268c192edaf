"""``provtrace doctor``: is this machine set up to record and deliver evidence?"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

from provtrace import fetch
from provtrace.config import build_settings
from provtrace.errors import ProvtraceError
from provtrace.export.otlp import displayed, otlp_sink
from provtrace.export.refused import RefusedSegments
from provtrace.integrity import load_private_key
from provtrace.pipeline import PipelineSettings
from provtrace.readers.jaeger import check_jaeger_url


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("doctor", help="check settings, directories, keys and endpoints")
    parser.add_argument("--jaeger", metavar="URL", help="also check this Jaeger query service")
    parser.set_defaults(run=run)


def _reachable(url: str, what: str) -> str | None:
    """None when something answers HTTP at ``url`` (any status) within 5 s, else the reason."""
    try:
        fetch.get(url, what=what, deadline_s=5.0, read_body=False)
    except fetch.FetchError as exc:
        return str(exc)
    return None


def _accepts(settings: PipelineSettings) -> str | None:
    """None when the collector accepts an empty OTLP request with provtrace's TLS settings and
    headers (so reachability, trust and credentials are all checked), else the reason."""
    try:
        sink = otlp_sink(settings.endpoint or "", dict(settings.headers), settings.tls_files)
    except ProvtraceError as exc:
        return str(exc)
    try:
        sink.probe()
    except ProvtraceError as exc:
        return str(exc)
    finally:
        sink.close()
    return None


def _delivery_summary(settings: PipelineSettings) -> str:
    """What was checked, naming the headers but never their values."""
    ca, client_certificate, _ = settings.tls_files
    parts = ["accepts an OTLP request"]
    if (settings.endpoint or "").startswith("https://"):
        parts.append(f"TLS trusting {ca or 'the system CAs'}")
        if client_certificate:
            parts.append(f"client certificate {client_certificate}")
    if settings.headers:
        parts.append("headers " + ", ".join(name for name, _ in settings.headers))
    return "; ".join(parts)


def _writable(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return exc.strerror
    return None if os.access(path, os.W_OK) else "not writable"


def run(args: argparse.Namespace) -> int:
    if args.jaeger:
        check_jaeger_url(args.jaeger)
    problems = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal problems
        problems += not ok
        print(f"{'ok  ' if ok else 'FAIL'}  {what}" + (f": {detail}" if detail else ""))

    try:
        settings, capture = build_settings()
    except ProvtraceError as exc:
        report(False, "settings", str(exc))
        return 1
    report(
        True,
        "settings",
        f"service {settings.service_name}, {settings.completeness}/{settings.profile}, "
        f"capture {capture.mode}",
    )
    for name, path in (
        ("spool", settings.spool_dir),
        ("quarantine", settings.quarantine_dir),
        ("archive", settings.archive_dir),
    ):
        if path is not None:
            problem = _writable(path)
            report(problem is None, f"{name} directory {path}", problem or "")
    pending = (
        sum(p.stat().st_size for p in settings.spool_dir.rglob("journal-*.jsonl"))
        if settings.spool_dir.is_dir()
        else 0
    )
    report(True, "spool", f"{pending} bytes of journal on disk")
    refused = RefusedSegments(settings.spool_dir)
    kept = refused.list()
    report(
        not kept,
        "refused segments",
        f"{len(kept)} segment(s) refused for good by a destination, kept in {refused.directory}"
        if kept
        else "none",
    )
    for refusal in kept[:10]:
        print(
            f"      {refusal.segment.name}: {refusal.spans} span(s), {refusal.bytes} bytes, refused by "
            f"{refusal.sink} at {refusal.refused_at}: {refusal.reason}"
        )
    if len(kept) > 10:
        print(f"      ... and {len(kept) - 10} more")
    key_path = os.environ.get("PROVTRACE_SIGNING_KEY")
    if key_path:
        try:
            load_private_key(key_path)
            mode = stat.S_IMODE(Path(key_path).stat().st_mode)
            report(
                mode & 0o077 == 0,
                f"signing key {key_path}",
                f"mode {mode:o}" + ("" if mode & 0o077 == 0 else ", readable by others"),
            )
        except (ProvtraceError, OSError) as exc:
            report(False, f"signing key {key_path}", str(exc))
    else:
        report(True, "signing key", "none: seals are chained but unsigned")
    if settings.endpoint:
        problem = _accepts(settings)
        where = displayed(settings.endpoint)
        report(problem is None, f"collector {where}", problem or _delivery_summary(settings))
    if args.jaeger:
        problem = _reachable(args.jaeger.rstrip("/") + "/api/services", f"Jaeger at {args.jaeger}")
        report(problem is None, f"Jaeger {args.jaeger}", problem or "reachable")
    return 1 if problems else 0

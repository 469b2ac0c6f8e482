"""Storing validated deployments as immutable, numbered ProcessVersions.

A version's content is its own BPMN file, the forms it names and the versions of the processes
it calls, all fixed at deploy time; its sha256 covers all three. Deploying identical content maps
to the existing version. When a called process gets a new version, every process whose latest
version calls it gets one too (same XML, new dependency), so new cases use the new sub-process
while running ones keep what they started with.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.errors import DeploymentRejected, Problem
from engine.validation import DeploymentValidator
from handlers.registry import OperatorRegistry
from storage.db import Database
from storage.models import ProcessVersion

DEPLOYABLE_SUFFIXES = (".bpmn", ".bpmn20.xml", ".json")


@dataclass(frozen=True)
class DeployedVersion:
    process_id: str
    version: int
    id: int
    sha256: str
    created: bool  # False when identical content mapped to an existing version


def read_paths(paths: Iterable[str | Path]) -> list[tuple[str, bytes]]:
    """Files and folders (recursively) to (name, content); names are relative to a given folder."""
    out: list[tuple[str, bytes]] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.name.lower().endswith(DEPLOYABLE_SUFFIXES):
                    out.append((f.relative_to(path).as_posix(), f.read_bytes()))
        elif path.is_file():
            out.append((path.name, path.read_bytes()))
        else:
            problems.append(Problem(str(path), None, None, "no such file or folder"))
    if problems:
        raise DeploymentRejected(problems)
    return out


def latest_version(session: Session, process_id: str) -> ProcessVersion | None:
    return session.scalars(
        select(ProcessVersion).where(ProcessVersion.process_id == process_id)
        .order_by(ProcessVersion.version.desc()).limit(1)
    ).first()


def deployed_files(session: Session, process_id: str) -> list[tuple[str, bytes]] | None:
    """The XML of a deployed process's latest version and everything it calls."""
    version = latest_version(session, process_id)
    if version is None:
        return None
    return [(f"{pv.process_id}@v{pv.version}/{pv.filename}", pv.bpmn_xml.encode("utf-8"))
            for pv in version_closure(session, version)]


def version_closure(session: Session, version: ProcessVersion) -> list[ProcessVersion]:
    """A version and, recursively, the versions it calls (each once)."""
    seen: dict[int, ProcessVersion] = {version.id: version}
    pending = [version]
    while pending:
        current = pending.pop()
        for dep_id in (current.dependencies or {}).values():
            if dep_id not in seen:
                dep = session.get(ProcessVersion, dep_id)
                if dep is not None:
                    seen[dep_id] = dep
                    pending.append(dep)
    return list(seen.values())


def content_hash(xml: bytes, assets: dict[str, str], dependencies: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(xml)
    h.update(json.dumps(assets, sort_keys=True, ensure_ascii=False).encode())
    h.update(json.dumps(dependencies, sort_keys=True).encode())
    return h.hexdigest()


def deploy(db: Database, registry: OperatorRegistry, files: list[tuple[str, bytes]], *, deployed_by: str,
           now: datetime, comment: str | None = None) -> list[DeployedVersion]:
    """Validate the whole set; store every process in it, or nothing (DeploymentRejected)."""
    with db.read() as session:
        validator = DeploymentValidator(registry, lambda pid: deployed_files(session, pid))
        result = validator.validate(files)
    if result.problems:
        raise DeploymentRejected(result.problems)
    with db.write() as session:
        return _store(session, result.processes, deployed_by=deployed_by, now=now, comment=comment)


def _store(session: Session, processes: dict, *, deployed_by: str, now: datetime,
           comment: str | None) -> list[DeployedVersion]:
    stored: dict[str, ProcessVersion] = {}
    results: dict[str, DeployedVersion] = {}

    def resolve(pid: str, stack: tuple[str, ...] = ()) -> ProcessVersion:
        if pid in stored:
            return stored[pid]
        if pid in stack:
            raise DeploymentRejected([Problem(processes[pid].file.name, None, pid,
                                              "call activities call each other in a cycle: "
                                              + " → ".join((*stack, pid)))])
        checked = processes[pid]
        deps: dict[str, int] = {}
        dep_hashes: dict[str, str] = {}
        for called in checked.called:
            if called in processes:
                dep = resolve(called, (*stack, pid))
            else:
                dep = latest_version(session, called)
                assert dep is not None, f"validated callee {called} vanished"
            deps[called] = dep.id
            dep_hashes[called] = dep.sha256
        sha = content_hash(checked.file.content, checked.assets, dep_hashes)
        latest = latest_version(session, pid)
        if latest is not None and latest.sha256 == sha:
            stored[pid] = latest
            results[pid] = DeployedVersion(pid, latest.version, latest.id, sha, False)
            return latest
        earlier = session.scalars(select(ProcessVersion.version).where(
            ProcessVersion.process_id == pid, ProcessVersion.sha256 == sha)).first()
        pv = ProcessVersion(
            process_id=pid, version=(latest.version + 1) if latest else 1, name=checked.name, sha256=sha,
            filename=checked.file.name, bpmn_xml=checked.file.text, dependencies=deps, assets=checked.assets,
            meta=checked.meta, deployed_by=deployed_by, deployed_at=now, comment=comment,
        )
        if earlier is not None:  # a rollback: new cases must take it, so it is the newest version
            pv.comment = ((comment or "") + f" (same content as v{earlier})").strip()
        session.add(pv)
        session.flush()
        stored[pid] = pv
        results[pid] = DeployedVersion(pid, pv.version, pv.id, pv.sha256, True)
        return pv

    for pid in sorted(processes):
        resolve(pid)
    _reversion_callers(session, {pid for pid, r in results.items() if r.created}, results,
                       deployed_by=deployed_by, now=now)
    return [results[k] for k in sorted(results)]


def _reversion_callers(session: Session, changed: set[str], results: dict[str, DeployedVersion], *,
                       deployed_by: str, now: datetime) -> None:
    """Give callers (outside this deployment) of changed processes a version calling the new one."""
    while changed:
        latest_ids = select(ProcessVersion.process_id, func.max(ProcessVersion.version).label("v")) \
            .group_by(ProcessVersion.process_id).subquery()
        latest = session.scalars(select(ProcessVersion).join(
            latest_ids, (ProcessVersion.process_id == latest_ids.c.process_id)
            & (ProcessVersion.version == latest_ids.c.v))).all()
        next_changed: set[str] = set()
        for pv in latest:
            if pv.process_id in results:
                continue
            deps = dict(pv.dependencies or {})
            touched = [called for called in deps if called in changed]
            if not touched:
                continue
            dep_hashes = {}
            for called in deps:
                if called in changed:
                    deps[called] = results[called].id
                dep_hashes[called] = session.get(ProcessVersion, deps[called]).sha256
            sha = content_hash(pv.bpmn_xml.encode("utf-8"), pv.assets or {}, dep_hashes)
            new = ProcessVersion(
                process_id=pv.process_id, version=pv.version + 1, name=pv.name, sha256=sha, filename=pv.filename,
                bpmn_xml=pv.bpmn_xml, dependencies=deps, assets=pv.assets, meta=pv.meta, deployed_by=deployed_by,
                deployed_at=now, comment=f"calls the new version of {', '.join(sorted(touched))}",
            )
            session.add(new)
            session.flush()
            results[pv.process_id] = DeployedVersion(pv.process_id, new.version, new.id, sha, True)
            next_changed.add(pv.process_id)
        changed = next_changed

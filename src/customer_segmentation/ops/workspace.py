"""Operations on a Databricks workspace with databricks-sdk: upload landing files, run the job.

Authentication is the SDK's own (environment variables such as DATABRICKS_HOST and
DATABRICKS_TOKEN, or a profile in ~/.databrickscfg). A missing or broken configuration is one
clear error, and every call has a timeout, so nothing hangs.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from ..core.console import format_table, say
from ..core.errors import UserError

JOB_NAME = "customer_segmentation"
TERMINAL_STATES = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}


def client(profile: str | None = None):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    try:
        config = Config(profile=profile, http_timeout_seconds=60, retry_timeout_seconds=120)
        workspace = WorkspaceClient(config=config)
        workspace.current_user.me()  # fails fast when the credentials are wrong
        return workspace
    except Exception as error:  # the SDK raises ValueError or its own errors, with long messages
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError("cannot connect to Databricks: " + first_line[:300] + " (configure DATABRICKS_HOST and "
                        "DATABRICKS_TOKEN, or a profile: databricks auth login)") from None


def upload(workspace, volume_path: str, folder: str | Path) -> tuple[int, int]:
    """Copy the files of `folder` into a volume folder, skipping files already there."""
    from databricks.sdk.errors import NotFound

    parts = volume_path.rstrip("/").split("/")
    if not volume_path.startswith("/Volumes/") or len(parts) < 5:
        raise UserError(f"--volume: {volume_path!r} is not a volume path (/Volumes/<catalog>/<schema>/<volume>/...)")
    source = Path(folder)
    if not source.is_dir():
        raise UserError(f"folder {folder} does not exist")
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"folder {folder} contains no files to upload")
    uploaded = skipped = 0
    for file in files:
        target = f"{volume_path.rstrip('/')}/{file.name}"
        try:
            workspace.files.get_metadata(target)
            skipped += 1
            continue
        except NotFound:
            pass
        with open(file, "rb") as handle:
            workspace.files.upload(target, handle, overwrite=False)
        uploaded += 1
    say(f"uploaded {uploaded} file(s) to {volume_path}, skipped {skipped} already there")
    return uploaded, skipped


def find_job(workspace, target: str):
    """The deployed job of a bundle target: prod is named as is, dev is prefixed '[dev <user>] '."""
    me = workspace.current_user.me().user_name
    candidates = []
    for job in workspace.jobs.list():
        name = job.settings.name if job.settings else ""
        if target == "prod" and name == JOB_NAME:
            candidates.append(job)
        elif target != "prod" and name.startswith("[dev ") and name.endswith("] " + JOB_NAME) \
                and job.creator_user_name == me:
            candidates.append(job)
    if not candidates:
        raise UserError(f"no deployed '{JOB_NAME}' job for target {target!r} "
                        f"(deploy it first: databricks bundle deploy -t {target})")
    return max(candidates, key=lambda job: job.created_time or 0)


def trigger(workspace, target: str, poll_seconds: float = 15.0, timeout_minutes: float = 240) -> bool:
    """Run the deployed job, wait for it, print each task's state; True if it succeeded."""
    job = find_job(workspace, target)
    run_id = workspace.jobs.run_now(job_id=job.job_id).run_id
    say(f"started run {run_id} of job {job.settings.name} (id {job.job_id})")
    deadline = time.monotonic() + timeout_minutes * 60
    while True:
        run = workspace.jobs.get_run(run_id)
        state = run.state.life_cycle_state.value if run.state and run.state.life_cycle_state else "PENDING"
        if state in TERMINAL_STATES:
            break
        if time.monotonic() > deadline:
            raise UserError(f"run {run_id} still {state} after {timeout_minutes:.0f} minutes; see {run.run_page_url}")
        time.sleep(poll_seconds)
    rows = []
    for task in run.tasks or []:
        seconds = ((task.end_time or 0) - (task.start_time or 0)) / 1000 if task.start_time else 0
        result = task.state.result_state.value if task.state and task.state.result_state else "-"
        rows.append([task.task_key, result, str(dt.timedelta(seconds=round(seconds)))])
    say(format_table(["task", "result", "duration"], rows))
    result = run.state.result_state.value if run.state.result_state else state
    say(f"run {run_id}: {result} ({run.run_page_url})")
    return result == "SUCCESS"

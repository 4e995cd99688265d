"""The databricks-sdk commands against a small fake workspace on loopback."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from customer_segmentation.core.settings import TASKS
from customer_segmentation.ops.cli import main


class FakeWorkspace:
    """Just the REST endpoints `upload` and `trigger` use."""

    def __init__(self, run_result="SUCCESS"):
        self.files: dict[str, bytes] = {}
        self.run_result = run_result
        self.polls = 0
        self.jobs = [
            {"job_id": 7, "creator_user_name": "me@example.com", "created_time": 2,
             "settings": {"name": "[dev me] customer_segmentation"}},
            {"job_id": 8, "creator_user_name": "other@example.com", "created_time": 3,
             "settings": {"name": "[dev other] customer_segmentation"}},
            {"job_id": 9, "creator_user_name": "sp", "created_time": 1, "settings": {"name": "customer_segmentation"}},
        ]
        self.started: list[int] = []

    def run(self):
        tasks = [{"task_key": key, "start_time": 1_000, "end_time": 61_000 + 1000 * i,
                  "state": {"life_cycle_state": "TERMINATED",
                            "result_state": ("FAILED" if (self.run_result == "FAILED" and key == "train")
                                             else "SUCCESS")}}
                 for i, key in enumerate(TASKS)]
        self.polls += 1
        if self.polls < 2:
            return {"run_id": 101, "state": {"life_cycle_state": "RUNNING"}, "tasks": []}
        return {"run_id": 101, "run_page_url": "http://workspace/run/101", "tasks": tasks,
                "state": {"life_cycle_state": "TERMINATED", "result_state": self.run_result}}


@pytest.fixture
def fake_workspace(monkeypatch):
    fake = FakeWorkspace()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, payload=None):
            data = json.dumps(payload or {}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def handle_any(self):
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Authorization") != "Bearer test-token":
                return self.reply(401, {"error_code": "UNAUTHENTICATED", "message": "bad token"})
            if url.path == "/api/2.0/preview/scim/v2/Me":
                return self.reply(200, {"userName": "me@example.com"})
            if url.path.startswith("/api/2.0/fs/files/"):
                path = url.path[len("/api/2.0/fs/files"):]
                if self.command == "HEAD":
                    return self.reply(200 if path in fake.files else 404)
                if self.command == "PUT":
                    fake.files[path] = body
                    return self.reply(204)
            if url.path == "/api/2.2/jobs/list":
                return self.reply(200, {"jobs": fake.jobs, "has_more": False})
            if url.path == "/api/2.2/jobs/run-now":
                fake.started.append(json.loads(body)["job_id"])
                return self.reply(200, {"run_id": 101})
            if url.path == "/api/2.2/jobs/runs/get":
                assert parse_qs(url.query)["run_id"] == ["101"]
                return self.reply(200, fake.run())
            return self.reply(404, {"error_code": "NOT_FOUND", "message": url.path})

        do_GET = do_POST = do_PUT = do_HEAD = handle_any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("DATABRICKS_TOKEN", "test-token")
    yield fake
    server.shutdown()


def test_upload_copies_new_files_and_skips_existing(fake_workspace, tmp_path, capsys):
    (tmp_path / "2011-12-01.csv").write_text("a\n")
    (tmp_path / "2011-12-02.csv").write_text("b\n")
    volume = "/Volumes/main/cs_bronze/landing/transactions"
    assert main(["upload", "--volume", volume, str(tmp_path)]) == 0
    assert fake_workspace.files == {f"{volume}/2011-12-01.csv": b"a\n", f"{volume}/2011-12-02.csv": b"b\n"}
    (tmp_path / "2011-12-03.csv").write_text("c\n")
    assert main(["upload", "--volume", volume, str(tmp_path)]) == 0
    assert len(fake_workspace.files) == 3
    assert "uploaded 1 file(s)" in capsys.readouterr().out.splitlines()[-1]


def test_upload_refuses_a_path_outside_volumes(fake_workspace, tmp_path, capsys):
    (tmp_path / "a.csv").write_text("a\n")
    assert main(["upload", "--volume", "/tmp/landing", str(tmp_path)]) == 2
    assert "is not a volume path" in capsys.readouterr().err


def test_trigger_runs_my_dev_job_and_reports_tasks(fake_workspace, capsys):
    assert main(["trigger", "--target", "dev", "--poll-seconds", "0.01"]) == 0
    assert fake_workspace.started == [7]
    out = capsys.readouterr().out
    for task in TASKS:
        assert task in out
    assert "0:01:00" in out and "run 101: SUCCESS" in out


def test_trigger_exits_non_zero_when_the_run_fails(fake_workspace, capsys):
    fake_workspace.run_result = "FAILED"
    assert main(["trigger", "--target", "prod", "--poll-seconds", "0.01"]) == 1
    assert fake_workspace.started == [9]
    assert "run 101: FAILED" in capsys.readouterr().out


def test_bad_credentials_are_one_clear_line(fake_workspace, monkeypatch, capsys):
    monkeypatch.setenv("DATABRICKS_TOKEN", "wrong")
    assert main(["trigger", "--poll-seconds", "0.01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot connect to Databricks")


def test_missing_configuration_is_one_clear_line(monkeypatch, tmp_path, capsys):
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "nope.cfg"))
    assert main(["upload", "--volume", "/Volumes/a/b/c/d", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot connect to Databricks" in err[0]

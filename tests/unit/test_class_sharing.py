"""Class-data sharing for local JVMs: when an archive is used, recorded, or left alone."""

import subprocess

import pytest

from customer_segmentation.core.spark import CLASS_ARCHIVE_ENV, class_sharing_options
from customer_segmentation.ops.cli import main


def test_an_existing_archive_is_used(monkeypatch, tmp_path):
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"archive")
    monkeypatch.setenv(CLASS_ARCHIVE_ENV, str(archive))
    assert f"-XX:SharedArchiveFile={archive}" in class_sharing_options()


@pytest.mark.parametrize("configured", [None, "missing.jsa"])
def test_without_an_archive_the_jvm_starts_as_usual(monkeypatch, tmp_path, configured):
    if configured:
        monkeypatch.setenv(CLASS_ARCHIVE_ENV, str(tmp_path / configured))
    else:
        monkeypatch.delenv(CLASS_ARCHIVE_ENV, raising=False)
    assert class_sharing_options() == []


def test_recording_replaces_using(monkeypatch, tmp_path):
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(b"archive")
    monkeypatch.setenv(CLASS_ARCHIVE_ENV, str(archive))
    options = class_sharing_options(record_to=tmp_path / "new.jsa")
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'new.jsa'}" in options
    assert not any(option.startswith("-XX:SharedArchiveFile") for option in options)


def test_an_archive_the_jvm_cannot_use_is_ignored_without_a_word(monkeypatch, tmp_path):
    # Another JDK's or class path's archive (here: not an archive at all) must not stop a run.
    archive = tmp_path / "classes.jsa"
    archive.write_bytes(bytes(range(256)) * 64)
    monkeypatch.setenv(CLASS_ARCHIVE_ENV, str(archive))
    result = subprocess.run(["java", *class_sharing_options(), "-version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "cds" not in (result.stdout + result.stderr).lower()


def test_class_archive_needs_somewhere_to_write(monkeypatch, capsys):
    monkeypatch.delenv(CLASS_ARCHIVE_ENV, raising=False)
    assert main(["class-archive"]) == 2
    assert capsys.readouterr().err.strip() == f"error: class-archive: give --out <file>, or set {CLASS_ARCHIVE_ENV}"

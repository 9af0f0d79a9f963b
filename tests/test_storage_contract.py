"""One contract for every storage backend: LocalStorage on a temporary directory and
SupabaseStorage against a fake of Supabase Storage's HTTP API on a localhost port
(tests/fake_supabase.py). Then what only the Supabase backend does: resumable chunked
uploads, resuming a dropped chunk, signed links, HTTP errors, and storage_from_env."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from shared.errors import StorageError
from shared.storage import LocalStorage, Storage, SupabaseStorage, storage_from_env

pytest.importorskip("werkzeug")
from fake_supabase import FakeSupabase  # noqa: E402

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fake():
    with FakeSupabase() as server:
        yield server


@pytest.fixture
def supa(fake):
    """A SupabaseStorage on a fresh fake: tiny list pages (to exercise paging), no backoff."""
    pytest.importorskip("storage3")
    fake.reset()
    store = SupabaseStorage(fake.url, fake.service_key, "training", retry_delay=0, page_size=2)
    yield store
    store.close()


@dataclass
class Backend:
    name: str
    store: Storage
    break_next_download: Callable[[], None]


@pytest.fixture(params=["local", "supabase"])
def backend(request, tmp_path, monkeypatch):
    if request.param == "local":
        import shared.storage.local as local
        real_copy = shutil.copyfileobj

        def break_next():
            def copy_half_then_fail(fin, fout, length=0):
                monkeypatch.setattr(local.shutil, "copyfileobj", real_copy)
                fout.write(fin.read(3))
                raise OSError("disk went away")
            monkeypatch.setattr(local.shutil, "copyfileobj", copy_half_then_fail)

        return Backend("local", LocalStorage(tmp_path / "store"), break_next)
    fake = request.getfixturevalue("fake")
    store = request.getfixturevalue("supa")
    return Backend("supabase", store, lambda: fake.fail_next("download", "disconnect", keep=3))


@pytest.fixture
def store(backend) -> Storage:
    return backend.store


# -- the contract -------------------------------------------------------------------------


def test_bytes_put_under_a_key_come_back_unchanged(store):
    data = bytes(range(256)) * 10
    assert store.put_bytes("jobs/j1/blob.bin", data) == len(data)
    assert store.get_bytes("jobs/j1/blob.bin") == data
    assert store.put_bytes("empty.txt", b"") == 0
    assert store.get_bytes("empty.txt") == b""


def test_a_file_put_under_a_key_comes_back_as_the_same_file(store, tmp_path):
    src = tmp_path / "src.json"
    src.write_text('{"a": 1}')
    assert store.put_file("jobs/j1/data set (v2).json", src) == src.stat().st_size
    dest = tmp_path / "out" / "nested" / "copy.json"
    store.get_file("jobs/j1/data set (v2).json", dest)
    assert dest.read_text() == '{"a": 1}'


def test_writing_a_key_twice_replaces_the_object(store, tmp_path):
    store.put_bytes("a/b.txt", b"first version, longer")
    store.put_bytes("a/b.txt", b"second")
    assert store.get_bytes("a/b.txt") == b"second"
    src = tmp_path / "third.txt"
    src.write_bytes(b"third")
    store.put_file("a/b.txt", src)
    assert store.get_bytes("a/b.txt") == b"third"
    assert store.list("a") == ["a/b.txt"]


def test_reading_a_missing_key_raises_an_error_naming_the_key_and_the_store(store, tmp_path):
    store.put_bytes("jobs/other.txt", b"x")
    for read in (lambda: store.get_bytes("jobs/missing.txt"),
                 lambda: store.get_file("jobs/missing.txt", tmp_path / "out.txt"),
                 lambda: store.size("jobs/missing.txt")):
        with pytest.raises(StorageError) as info:
            read()
        assert "'jobs/missing.txt'" in str(info.value)
        assert repr(store) in str(info.value)
        assert str(info.value).startswith("no object")
    assert not (tmp_path / "out.txt").exists()


def test_exists_is_true_only_for_objects_not_for_folders_or_missing_keys(store):
    store.put_bytes("jobs/j1/a_b.txt", b"x")
    assert store.exists("jobs/j1/a_b.txt")
    assert not store.exists("jobs/j1/a-b.txt")  # '_' is no wildcard
    assert not store.exists("jobs/j1/A_B.TXT")  # names are case-sensitive
    assert not store.exists("jobs/j1/a_b")      # nor prefix matches
    assert not store.exists("jobs/j1")          # a folder is not an object
    assert not store.exists("nothing/here.txt")


@pytest.mark.parametrize("key", ["../escape.txt", "/etc/passwd", "a/../../b", "a\\b", "",
                                 "a//b", "a/./b", "a/"])
def test_keys_that_could_escape_the_store_are_refused(store, key):
    for call in (lambda: store.put_bytes(key, b"x"), lambda: store.get_bytes(key),
                 lambda: store.exists(key), lambda: store.delete(key)):
        with pytest.raises(StorageError, match="invalid storage key"):
            call()


def test_list_returns_every_key_under_a_folder_recursively_and_sorted(store):
    keys = ["jobs/j1/metrics.jsonl", "jobs/j1/checkpoints/step-2/adapter.bin",
            "jobs/j1/checkpoints/step-10/adapter.bin", "jobs/j1/checkpoints/step-2/state.pt",
            "jobs/j10/metrics.jsonl", "jobs/j1.txt", "datasets/abc.json", "top.txt"]
    for key in keys:
        store.put_bytes(key, key.encode())
    assert store.list("jobs/j1") == sorted(k for k in keys if k.startswith("jobs/j1/"))
    assert store.list("jobs/j1/checkpoints/step-2") == [
        "jobs/j1/checkpoints/step-2/adapter.bin", "jobs/j1/checkpoints/step-2/state.pt"]
    assert store.list("") == sorted(keys)


def test_list_of_a_prefix_that_is_not_a_folder_is_empty(store):
    store.put_bytes("jobs/j1/metrics.jsonl", b"x")
    store.put_bytes("jobs/j1.txt", b"x")
    assert store.list("jobs/j") == []                   # a partial name is not a folder
    assert store.list("jobs/j1/metrics.jsonl") == []    # nor is an object
    assert store.list("no/such/folder") == []


def test_delete_removes_one_object_and_deleting_a_missing_one_is_fine(store):
    store.put_bytes("a/one.txt", b"1")
    store.put_bytes("a/two.txt", b"2")
    store.delete("a/one.txt")
    store.delete("a/one.txt")
    store.delete("never/was.txt")
    assert store.list("a") == ["a/two.txt"]
    assert not store.exists("a/one.txt")


def test_delete_prefix_removes_a_folder_and_nothing_beside_it(store):
    for key in ["jobs/j1/a.txt", "jobs/j1/deep/er/b.txt", "jobs/j10/c.txt", "jobs/j1.txt"]:
        store.put_bytes(key, b"x")
    store.delete_prefix("jobs/j1")
    assert store.list("jobs") == ["jobs/j1.txt", "jobs/j10/c.txt"]
    store.delete_prefix("nothing/here")


def test_size_is_the_number_of_bytes_stored(store):
    store.put_bytes("s/three.bin", b"abc")
    store.put_bytes("s/empty.bin", b"")
    assert store.size("s/three.bin") == 3
    assert store.size("s/empty.bin") == 0


def test_a_failed_download_leaves_the_destination_as_it_was_and_no_partial_file(backend, tmp_path):
    store = backend.store
    store.put_bytes("ckpt/state.pt", b"new contents " * 1000)
    dest_dir = tmp_path / "dl"
    dest_dir.mkdir()
    dest = dest_dir / "state.pt"
    dest.write_bytes(b"old")
    backend.break_next_download()
    with pytest.raises(StorageError, match="'ckpt/state.pt'"):
        store.get_file("ckpt/state.pt", dest)
    assert dest.read_bytes() == b"old"
    assert os.listdir(dest_dir) == ["state.pt"]
    store.get_file("ckpt/state.pt", dest)  # and the next try works
    assert dest.read_bytes() == b"new contents " * 1000


def test_signed_urls_are_links_a_store_can_make_or_none(backend):
    backend.store.put_bytes("dl/adapter.zip", b"zip")
    url = backend.store.signed_url("dl/adapter.zip", 60)
    if backend.name == "local":
        assert url is None  # the control plane serves the file and signs its own link
    else:
        assert url.startswith(("http://", "https://"))


# -- Supabase: chunked, resumable uploads -----------------------------------------------------


def test_a_20_mib_file_goes_up_in_four_resumable_chunks_of_at_most_6_mib(supa, fake, tmp_path):
    src = tmp_path / "optimizer.pt"
    data = os.urandom(MiB) * 20
    src.write_bytes(data)
    assert supa.put_file("jobs/j1/checkpoints/step-100/optimizer.pt", src) == 20 * MiB
    assert fake.patch_sizes == [6 * MiB, 6 * MiB, 6 * MiB, 2 * MiB]
    assert fake.max_body <= 6 * MiB
    assert fake.count("POST", "/storage/v1/object/training") == 0  # no one-shot upload
    assert fake.get("jobs/j1/checkpoints/step-100/optimizer.pt") == data
    assert supa.size("jobs/j1/checkpoints/step-100/optimizer.pt") == 20 * MiB
    dest = tmp_path / "back.pt"
    supa.get_file("jobs/j1/checkpoints/step-100/optimizer.pt", dest)
    assert dest.read_bytes() == data


def test_a_large_object_written_from_bytes_also_goes_up_in_chunks(supa, fake):
    data = os.urandom(7 * MiB)
    supa.put_bytes("big.bin", data)
    assert fake.patch_sizes == [6 * MiB, 1 * MiB]
    assert supa.get_bytes("big.bin") == data


def test_a_file_of_exactly_one_chunk_goes_up_in_one_plain_upload(supa, fake, tmp_path):
    src = tmp_path / "adapter.safetensors"
    src.write_bytes(b"\0" * (6 * MiB))
    supa.put_file("adapter.safetensors", src)
    assert fake.patch_sizes == []
    assert fake.count("POST", "/storage/v1/object/training/adapter.safetensors") == 1
    assert supa.size("adapter.safetensors") == 6 * MiB


def test_rewriting_a_large_object_through_the_resumable_endpoint_replaces_it(supa, fake):
    supa.put_bytes("big.bin", b"a" * (7 * MiB))
    supa.put_bytes("big.bin", b"b" * (8 * MiB))
    assert fake.get("big.bin") == b"b" * (8 * MiB)


@pytest.mark.parametrize("how", ["disconnect", "error"])
def test_a_dropped_chunk_is_resumed_from_the_offset_the_server_reports(supa, fake, how):
    data = os.urandom(13 * MiB)
    fake.fail_next("tus_patch", how, keep=MiB)
    supa.put_bytes("jobs/j1/state.pt", data)
    assert fake.failed == ["tus_patch"]
    assert fake.count("HEAD", "/storage/v1/upload/resumable/") == 1
    assert fake.get("jobs/j1/state.pt") == data
    assert max(fake.patch_sizes) <= 6 * MiB
    if how == "disconnect":  # the server kept 1 MiB of the dropped chunk; nothing is re-sent
        assert sum(fake.patch_sizes) - 6 * MiB + MiB == 13 * MiB


def test_an_upload_that_keeps_failing_gives_up_with_an_error_naming_the_key(supa, fake):
    fake.fail_next("tus_patch", "error", times=10)
    with pytest.raises(StorageError, match=r"could not upload 'jobs/j1/state.pt'.*4 failed tries"):
        supa.put_bytes("jobs/j1/state.pt", os.urandom(7 * MiB))
    assert fake.get("jobs/j1/state.pt") is None


# -- Supabase: signed links, errors, keys -------------------------------------------------------


def test_a_signed_url_downloads_the_object_without_credentials_until_it_expires(supa, fake):
    import httpx
    supa.put_bytes("jobs/j1/downloads/adapter.zip", b"PK zip bytes")
    url = supa.signed_url("jobs/j1/downloads/adapter.zip", 60)
    assert url.startswith(fake.url + "/storage/v1/object/sign/training/jobs/j1/downloads/adapter.zip?token=")
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b"PK zip bytes"
    fake.advance(61)
    r = httpx.get(url)
    assert r.status_code == 400 and r.json()["error"] == "InvalidJWT"


def test_a_signed_url_for_a_missing_key_raises_an_error_naming_it(supa):
    with pytest.raises(StorageError, match="no object 'nope.zip'"):
        supa.signed_url("nope.zip", 60)


def test_missing_objects_are_recognised_whether_supabase_answers_400_or_404(supa, fake, tmp_path):
    fake.real_status_codes = True
    with pytest.raises(StorageError, match="no object 'gone.txt'"):
        supa.get_bytes("gone.txt")
    with pytest.raises(StorageError, match="no object 'gone.txt'"):
        supa.signed_url("gone.txt", 60)


def test_http_errors_become_storage_errors_with_the_status_and_the_key(fake):
    fake.reset()
    wrong = SupabaseStorage(fake.url, "not-the-key", "training", retry_delay=0)
    with pytest.raises(StorageError, match=r"'a\.txt'.*HTTP 401"):
        wrong.put_bytes("a.txt", b"x")
    with pytest.raises(StorageError, match=r"'a\.txt'.*HTTP 401"):
        wrong.get_bytes("a.txt")
    with pytest.raises(StorageError, match=r"'big\.bin'.*HTTP 401"):
        wrong.put_bytes("big.bin", b"x" * (7 * MiB))
    wrong.close()
    no_bucket = SupabaseStorage(fake.url, fake.service_key, "nope", retry_delay=0)
    with pytest.raises(StorageError, match=r"'a\.txt'.*HTTP 400, statusCode 404 .*Bucket not found"):
        no_bucket.put_bytes("a.txt", b"x")
    no_bucket.close()


def test_an_unreachable_server_is_a_storage_error_not_an_httpx_exception(tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    down = SupabaseStorage(f"http://127.0.0.1:{port}", "k", "training", retry_delay=0, timeout=2)
    for call in (lambda: down.put_bytes("a.txt", b"x"), lambda: down.get_bytes("a.txt"),
                 lambda: down.get_file("a.txt", tmp_path / "a.txt"), lambda: down.list("a"),
                 lambda: down.exists("a.txt"), lambda: down.delete("a.txt"),
                 lambda: down.signed_url("a.txt", 5), lambda: down.put_bytes("b", b"x" * (7 * MiB))):
        with pytest.raises(StorageError, match="ConnectError"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_keys_supabase_cannot_store_are_refused_before_any_request(supa, fake):
    for key in ["caf\u00e9.txt", "a/b%20c.txt", "a#b.txt"]:
        with pytest.raises(StorageError, match="invalid storage key"):
            supa.put_bytes(key, b"x")
    assert fake.requests == []


def test_listing_walks_folders_and_pages_through_long_folders(supa, fake):
    keys = [f"events/{i:03d}.json" for i in range(7)] + ["events/sub/x.json"]
    for key in keys:
        fake.put("training", key, b"{}")
    assert supa.list("events") == sorted(keys)
    assert fake.count("POST", "/storage/v1/object/list/training") >= 5  # 4 pages + the sub-folder


def test_the_dashboards_empty_folder_placeholders_are_not_listed_but_go_with_their_folder(supa, fake):
    fake.put("training", "jobs/j1/.emptyFolderPlaceholder", b"")
    fake.put("training", "jobs/j1/a.txt", b"x")
    assert supa.list("jobs") == ["jobs/j1/a.txt"]
    supa.delete_prefix("jobs/j1")
    assert fake.objects == {}


def test_the_service_key_appears_in_no_repr_or_error(fake):
    secret = "sb_secret_do-not-print-me"
    store = SupabaseStorage(fake.url, secret, "training", retry_delay=0)
    assert secret not in repr(store)
    with pytest.raises(StorageError) as info:
        store.get_bytes("a.txt")
    assert secret not in str(info.value)
    store.close()


# -- configuration ----------------------------------------------------------------------------


def test_storage_from_env_builds_a_local_store_by_default(tmp_path):
    assert isinstance(storage_from_env({}), LocalStorage)
    store = storage_from_env({"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path)})
    assert store.root == tmp_path


def test_storage_from_env_builds_a_supabase_store_that_works(fake):
    fake.reset()
    store = storage_from_env({"STORAGE_BACKEND": "supabase", "SUPABASE_URL": fake.url + "/",
                              "SUPABASE_SERVICE_ROLE_KEY": fake.service_key})
    assert isinstance(store, SupabaseStorage)
    assert (store.bucket, store.chunk_size) == ("training", 6 * MiB)
    store.put_bytes("hello.txt", b"hi")
    assert store.get_bytes("hello.txt") == b"hi"
    store.close()
    store = storage_from_env({"STORAGE_BACKEND": "supabase", "SUPABASE_URL": fake.url,
                              "SUPABASE_SERVICE_KEY": fake.service_key,
                              "SUPABASE_BUCKET": "models", "SUPABASE_CHUNK_SIZE": "1048576"})
    assert (store.bucket, store.chunk_size) == ("models", MiB)
    store.close()


@pytest.mark.parametrize("env, named", [
    ({}, "SUPABASE_URL and SUPABASE_SERVICE_KEY (or SUPABASE_SERVICE_ROLE_KEY)"),
    ({"SUPABASE_URL": "https://p.supabase.co"}, "SUPABASE_SERVICE_KEY (or SUPABASE_SERVICE_ROLE_KEY)"),
    ({"SUPABASE_SERVICE_KEY": "k"}, "SUPABASE_URL"),
])
def test_storage_from_env_names_the_missing_supabase_variables(env, named):
    with pytest.raises(StorageError) as info:
        storage_from_env({"STORAGE_BACKEND": "supabase", **env})
    assert str(info.value) == f"STORAGE_BACKEND=supabase needs {named} in the environment"


def test_storage_from_env_refuses_a_bad_chunk_size_and_an_unknown_backend():
    env = {"STORAGE_BACKEND": "supabase", "SUPABASE_URL": "https://p.supabase.co",
           "SUPABASE_SERVICE_KEY": "k", "SUPABASE_CHUNK_SIZE": "6MB"}
    with pytest.raises(StorageError, match="SUPABASE_CHUNK_SIZE '6MB'"):
        storage_from_env(env)
    with pytest.raises(StorageError, match="unknown STORAGE_BACKEND 's3'"):
        storage_from_env({"STORAGE_BACKEND": "s3"})


def test_without_storage3_a_supabase_store_says_which_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "storage3", None)  # import storage3 -> ImportError
    with pytest.raises(StorageError, match="needs the storage3 package"):
        SupabaseStorage("https://p.supabase.co", "k", "training")


def test_shared_storage_imports_without_loading_httpx_or_storage3():
    code = ("import sys, shared.storage; "
            "print(sorted(m for m in ('httpx', 'storage3', 'supabase') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[]"

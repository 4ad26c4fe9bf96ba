"""The slicing routes over HTTP (TestClient, the app's own slice worker): upload → 201, slice → 202,
poll and stream to completion, G-code link, quote lines; problem details for bad models; a client
sees only their own files; staff of another studio see nothing."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from people.users import create_user, grant
from studio.slicing import samples
from tests.api_storefront import settings_for
from tests.people_world import PASSWORD, PASSWORDS, bearer, sign_in
from tests.slicing_world import make_studio, requires_slicer
from resources.storage import TMP
from resources.storage.settings import StorageSettings
from tests.studio_storage import FolderStorage
from warehouse.tenants import add_tenant


TMP_LIMIT = 300_000  # the tmp bucket's upload limit in these tests


@pytest.fixture
def world(engine, warehouse_url, tenant_id, tmp_path, monkeypatch):
    monkeypatch.setenv("SLICER_DISABLE", "0")
    monkeypatch.setenv("STUDIO_SLICING_POLL_S", "0.1")
    ids = make_studio(engine, tenant_id)
    with engine.begin() as conn:
        add_tenant(conn, f"{tenant_id}-x", "Another studio")
        users = {}
        for who, role, tenant, customer in (("owner", "tenant_owner", tenant_id, None),
                                            ("client", "customer", tenant_id, "11"),
                                            ("client2", "customer", tenant_id, "12"),
                                            ("nurse", "nurse", tenant_id, None),
                                            ("staff", "clinic_staff", tenant_id, None),  # studio.view only
                                            ("other", "tenant_owner", f"{tenant_id}-x", None)):
            email = f"{who}@{tenant_id}.test"
            grant(conn, create_user(conn, PASSWORDS, email, who, PASSWORD), tenant, role, customer_id=customer)
            users[who] = email
    app = create_app(settings_for(warehouse_url, 8000, worker_enabled=True), engine, storage=FolderStorage(tmp_path),
                     storage_settings=StorageSettings(max_upload_bytes={TMP: TMP_LIMIT}))
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {who: bearer(sign_in(c, email)["access_token"]) for who, email in users.items()}
        yield c, headers, ids, f"/studios/{tenant_id}/slicing"


def upload(c, headers, base, name, data):
    return c.post(f"{base}/files", headers=headers, files={"file": (name, data, "application/octet-stream")})


def wait(c, headers, url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = c.get(url, headers=headers).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"not done: {body}")


@requires_slicer
def test_upload_slice_poll_stream_and_price(world):
    c, h, ids, base = world
    made = upload(c, h["client"], base, "cube.stl", samples.stl(samples.cube()))
    assert made.status_code == 201, made.text
    file = made.json()
    assert made.headers["Location"] == file["statusUrl"] and file["status"] == "idle"
    assert file["mesh"]["size_mm"] == [20.0, 20.0, 20.0] and "storage_key" not in file
    asked = c.post(f"{base}/files/{file['id']}/slice", headers=h["client"],
                   json={"layerHeight": 0.2, "infill": 20, "supports": {"enabled": False},
                         "printerId": ids["printer"], "materialId": ids["material"]})
    assert asked.status_code == 202, asked.text
    done = wait(c, h["client"], asked.headers["Location"])
    assert done["fallback"] is False and done["metrics"]["grams"] > 3 and done["output"] is True
    with c.stream("GET", f"{base}/files/{file['id']}/events", headers=h["client"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert events[-1]["status"] == "completed" and events[-1]["metrics"] == done["metrics"]
    link = c.get(f"{base}/files/{file['id']}/gcode", headers=h["client"])
    assert link.status_code == 200 and link.json()["expiresIn"] <= 300 and link.json()["url"].endswith(
        str(int(link.json()["url"].rsplit("=", 1)[1])))
    lines = c.post(f"{base}/quote-lines", headers=h["owner"], json={"items": [{"fileId": file["id"], "quantity": 3}]})
    assert lines.status_code == 200, lines.text
    [line] = lines.json()["lines"]
    assert line["quantity"] == 3 and float(line["unit_price"]) >= 15 and line["fallback"] is False
    # the other client, and another studio's owner, see nothing of it
    assert c.get(f"{base}/files/{file['id']}", headers=h["client2"]).status_code == 404
    assert c.post(f"{base}/quote-lines", headers=h["client2"], json={"items": [{"fileId": file["id"]}]}).status_code == 404
    assert c.get(f"{base}/files/{file['id']}", headers=h["other"]).status_code == 403
    assert c.get(f"{base}/files/{file['id']}", headers=h["nurse"]).status_code == 403


@pytest.mark.parametrize("name, data, status, kind", [
    ("x.stl", b"", 422, "invalid-model-empty"),
    ("x.stl", b"hello, not a model", 422, "invalid-model-no-triangles"),
    ("x.3mf", b"PK\x03\x04 broken", 422, "invalid-model-not-a-mesh"),
    ("x.step", b"ISO-10303-21;", 422, "invalid-model-unsupported-type"),
])
def test_bad_models_are_problems(world, name, data, status, kind):
    c, h, _, base = world
    answer = upload(c, h["owner"], base, name, data)
    assert answer.status_code == status and answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith(kind) and answer.json()["detail"]


def test_oversized_model_and_printer_too_small(world, monkeypatch):
    c, h, ids, base = world
    file = upload(c, h["owner"], base, "cube.stl", samples.stl(samples.cube())).json()
    refused = c.post(f"{base}/files/{file['id']}/slice", headers=h["owner"],
                     json={"printerId": ids["small_printer"]})
    assert refused.status_code == 422 and "20.0 x 20.0 x 20.0 mm" in refused.json()["detail"]
    bad = c.post(f"{base}/files/{file['id']}/slice", headers=h["owner"], json={"supports": {"enabled": True,
                                                                                           "angle": 95}})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    c.app.state.slicing.settings = c.app.state.slicing.settings.model_copy(update={"max_upload_bytes": 2000})
    big = upload(c, h["owner"], base, "big.stl", samples.stl(samples.sphere(2000)))
    assert big.status_code == 413 and big.json()["status"] == 413


def test_disabled_slicer_answers_with_a_flagged_estimate(world):
    c, h, ids, base = world
    c.app.state.slicing.settings = c.app.state.slicing.settings.model_copy(update={"disable": True})
    file = upload(c, h["client"], base, "cyl.stl", samples.stl(samples.cylinder())).json()
    asked = c.post(f"{base}/files/{file['id']}/slice", headers=h["client"], json={"materialId": ids["material"]})
    assert asked.status_code == 202
    done = wait(c, h["client"], asked.headers["Location"])
    assert done["fallback"] is True and "SLICER_DISABLE" in done["error"] and done["metrics"]["grams"] > 2
    no_gcode = c.get(f"{base}/files/{file['id']}/gcode", headers=h["client"])
    assert no_gcode.status_code == 404 and no_gcode.json()["type"].endswith("no-gcode")


def test_read_only_staff_read_but_never_upload_or_slice(world):
    """``studio.view`` reads a client's file; uploading and (re-)slicing need ``studio.manage`` (or a
    portal client's own file)."""
    c, h, ids, base = world
    c.app.state.slicing.settings = c.app.state.slicing.settings.model_copy(update={"disable": True})
    file = upload(c, h["client"], base, "cube.stl", samples.stl(samples.cube())).json()
    assert c.get(f"{base}/files/{file['id']}", headers=h["staff"]).status_code == 200
    refused = upload(c, h["staff"], base, "cube.stl", samples.stl(samples.cube()))
    assert refused.status_code == 403 and "studio.manage" in refused.json()["detail"]
    asked = c.post(f"{base}/files/{file['id']}/slice", headers=h["staff"], json={"infill": 50})
    assert asked.status_code == 403 and c.get(f"{base}/files/{file['id']}", headers=h["staff"]).json()["status"] == "idle"
    assert upload(c, h["owner"], base, "cube.stl", samples.stl(samples.cube())).status_code == 201
    done = c.post(f"{base}/files/{file['id']}/slice", headers=h["owner"], json={"infill": 50})
    assert done.status_code == 202 and wait(c, h["staff"], done.headers["Location"])["fallback"] is True


def test_an_upload_is_refused_before_its_form_is_read(world):
    """No permission, no parsing: a broken form from a caller who may not upload is a 401 or 403 (not
    the 400 a broken form gets), so nobody can make the API spool a model it would refuse anyway."""
    c, h, _, base = world
    broken = {"content-type": "multipart/form-data; boundary=b"}
    body = b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"  # a part without its name
    assert c.post(f"{base}/files", headers=broken, content=body).status_code == 401
    for who in ("nurse", "staff", "other"):
        answer = c.post(f"{base}/files", headers={**h[who], **broken}, content=body)
        assert answer.status_code == 403 and answer.headers["content-type"].startswith("application/problem+json")
    assert c.post(f"{base}/files", headers={**h["client"], **broken}, content=body).status_code == 400
    missing = c.post(f"{base}/files", headers=h["client"], data={"other": "x"})
    assert missing.status_code == 422 and missing.json()["type"].endswith("/file-missing")


def test_an_upload_over_the_tmp_buckets_limit_is_a_413(world):
    c, h, _, base = world
    big = upload(c, h["client"], base, "big.stl", samples.stl(samples.cube()).ljust(TMP_LIMIT + 1, b" "))
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    assert big.json()["type"].endswith("/file-too-large") and big.json()["limit"] == TMP_LIMIT
    huge = c.post(f"{base}/files", headers={**h["client"], "content-type": "multipart/form-data; boundary=x"},
                  content=b"x" * (TMP_LIMIT + 70 * 1024))  # past the route's limit: refused on Content-Length
    assert huge.status_code == 413 and huge.json()["type"].endswith("/body-too-large")
    assert c.app.state.slicing.storage.list(TMP) == []


def test_a_client_lists_printers_materials_and_templates_without_the_studios_costs(world):
    """A client (studio.portal) chooses a printer and material and prices alone: the lists show them
    names, colours, printer status and build volume, a template's minimum and rush multiplier, and
    none of the studio's rates, costs, margins or profiles; staff see everything."""
    c, h, ids, base = world
    studio = base.rsplit("/", 1)[0]
    shown = {kind: c.get(f"{studio}/{kind}", headers=h["client"]) for kind in
             ("printers", "materials", "product-templates")}
    assert {kind: answer.status_code for kind, answer in shown.items()} == dict.fromkeys(shown, 200)
    printers, materials, templates = (shown[k].json() for k in ("printers", "materials", "product-templates"))
    assert {p["name"] for p in printers} == {"MK3S #1", "Mini"}
    assert set(printers[0]) == {"id", "name", "model", "status", "build_x_mm", "build_y_mm", "build_z_mm"}
    assert set(materials[0]) == {"id", "name", "kind", "colour"} and materials[0]["colour"] == "black"
    assert set(templates[0]) == {"id", "name", "minimum_price", "rush_multiplier"}
    staff = c.get(f"{studio}/printers", headers=h["owner"]).json()
    assert {"hourly_rate", "profile", "active"} <= set(staff[0])
    assert "cost_per_kg" in c.get(f"{studio}/materials", headers=h["owner"]).json()[0]
    assert "margin_percent" in c.get(f"{studio}/product-templates", headers=h["owner"]).json()[0]
    assert c.get(f"{studio}/printers", headers=h["nurse"]).status_code == 403
    assert c.get(f"{studio}/printers", headers=h["other"]).status_code == 403
    # a client's retired-rows request shows the active ones only
    with_retired = c.get(f"{studio}/materials", headers=h["client"], params={"include_retired": True})
    assert with_retired.json() == materials
    # ... and prices a model on what they listed, alone
    c.app.state.slicing.settings = c.app.state.slicing.settings.model_copy(update={"disable": True})
    file = upload(c, h["client"], base, "cube.stl", samples.stl(samples.cube())).json()
    mk3 = next(p["id"] for p in printers if p["name"] == "MK3S #1")
    asked = c.post(f"{base}/files/{file['id']}/slice", headers=h["client"],
                   json={"printerId": mk3, "materialId": materials[0]["id"]})
    wait(c, h["client"], asked.headers["Location"])
    priced = c.post(f"{base}/quote-lines", headers=h["client"],
                    json={"items": [{"fileId": file["id"]}], "templateId": templates[0]["id"]})
    assert priced.status_code == 200 and float(priced.json()["lines"][0]["unit_price"]) >= 15

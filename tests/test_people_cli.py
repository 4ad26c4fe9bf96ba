"""``storehouse users``: the first super admin from the CLI, grants, revocations and API keys."""

from __future__ import annotations

import sqlalchemy as sa
from typer.testing import CliRunner

from people.auth import Auth


def test_users_add_list_grant_revoke_keys(tmp_path, monkeypatch):
    from storehouse.cli import app

    monkeypatch.setenv("STOREHOUSE_HOME", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    env = {"COLUMNS": "200"}
    made = runner.invoke(app, ["users", "add", "Root@Example.test", "--name", "Root", "--super-admin"],
                         input="a long enough secret\na long enough secret\n")
    assert made.exit_code == 0, made.output
    assert "a long enough secret" not in made.output
    again = runner.invoke(app, ["users", "add", "root@example.test"], input="another secret!\nanother secret!\n")
    assert again.exit_code == 2 and "exists" in again.output
    assert runner.invoke(app, ["tenants", "add", "clinic-a"]).exit_code == 0
    assert runner.invoke(app, ["users", "add", "robot@example.test", "--no-password"]).exit_code == 0
    granted = runner.invoke(app, ["users", "grant", "robot@example.test", "clinic-a", "clinic_staff",
                                  "--remove", "data.export", "--expires", "2099-01-01T00:00:00"])
    assert granted.exit_code == 0, granted.output
    assert runner.invoke(app, ["users", "grant", "robot@example.test", "clinic-a", "emperor"]).exit_code == 2
    assert runner.invoke(app, ["users", "grant", "robot@example.test", "nowhere", "viewer"]).exit_code == 2
    assert runner.invoke(app, ["users", "grant", "robot@example.test", "clinic-a", "viewer",
                               "--add", "launch.missiles"]).exit_code == 2
    listed = runner.invoke(app, ["users", "list"], env=env)
    assert "root@example.test" in listed.output and "robot@example.test" in listed.output
    per_tenant = runner.invoke(app, ["users", "list", "--tenant", "clinic-a"], env=env)
    assert "clinic_staff" in per_tenant.output

    created = runner.invoke(app, ["users", "keys", "create", "robot@example.test", "nightly"])
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    auth = Auth(engine, b"cli-test-secret")
    robot = auth.principal(key)
    assert robot is not None and robot.email == "robot@example.test"
    access = auth.authorise(key, "clinic-a")[1]
    assert access.role == "clinic_staff" and not access.allows("data.export") and access.allows("invoices.view")
    assert auth.sign_in("root@example.test", "a long enough secret").access_token
    assert auth.principal(auth.sign_in("root@example.test", "a long enough secret").access_token).super_admin

    prefix = key.split("_")[1]
    assert "nightly" in runner.invoke(app, ["users", "keys", "list", "robot@example.test"], env=env).output
    assert runner.invoke(app, ["users", "keys", "revoke", "robot@example.test", prefix]).exit_code == 0
    assert auth.principal(key) is None
    assert runner.invoke(app, ["users", "revoke", "robot@example.test", "clinic-a"]).exit_code == 0
    with engine.connect() as conn:
        assert conn.execute(sa.text("select is_active from user_tenant_permissions")).scalar() in (0, False)


def test_demo_users_one_per_role_who_can_sign_in(engine, tenant_id):
    from people.roles import ROLE_PERMISSIONS
    from storehouse.demo_people import CLINICS, PASSWORD, demo_users
    from tests.people_world import seed_records
    from warehouse.tables.people import user_tenant_permissions, users
    from warehouse.tenants import add_tenant

    with engine.begin() as conn:  # the demo clinics (the shared test warehouse may hold them already)
        for clinic in CLINICS:
            add_tenant(conn, clinic)
        conn.execute(sa.delete(users).where(users.c.email.like(f"%@{CLINICS[0]}.demo")))
    with engine.connect() as conn:
        has_invoices = conn.execute(sa.text("select count(*) from invoices where tenant_id = :t"),
                                    {"t": CLINICS[0]}).scalar()
    if not has_invoices:
        seed_records(engine, CLINICS[0], 8, "DEMO")
    lines = demo_users(engine, "http://127.0.0.1:8000")
    assert demo_users(engine, "http://127.0.0.1:8000") == lines  # a second demo keeps them
    auth = Auth(engine, b"demo-test-secret")
    for role in ROLE_PERMISSIONS:
        email = f"{role.replace('_', '-')}@{CLINICS[0]}.demo"
        assert any(email in line for line in lines), role
        principal, access = auth.authorise(auth.sign_in(email, PASSWORD).access_token, CLINICS[0])
        assert principal.super_admin == (role == "super_admin") and access.role == role
    investor = auth.principal(auth.sign_in(f"investor@{CLINICS[0]}.demo", PASSWORD).access_token)
    assert [a.tenant_id for a in auth.live_grants(investor)] == list(CLINICS)
    assert any(PASSWORD in line for line in lines) and any("/auth/token" in line for line in lines)
    with engine.connect() as conn:
        customer = conn.execute(sa.select(user_tenant_permissions.c.customer_id).join(
            users, users.c.id == user_tenant_permissions.c.user_id).where(
            users.c.email == f"customer@{CLINICS[0]}.demo")).scalar()
    assert customer is not None

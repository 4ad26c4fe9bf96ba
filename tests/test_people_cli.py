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
    access = auth.access(robot, "clinic-a")
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

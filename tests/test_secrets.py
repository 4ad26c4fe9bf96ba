"""Tenant credentials are encrypted at rest, migrated, rotated; a wrong or missing key says so."""

from __future__ import annotations

import stat

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from storehouse.cli import app
from warehouse import secrets
from warehouse.db import make_engine
from warehouse.migrate import upgrade
from warehouse.secrets import Keyring, SecretsKeyError, generate_key
from warehouse.tables.core import tenant_connections
from warehouse.tenants import add_tenant, get_connection, set_connection

CREDS = {"merchant_id": 42, "consumer_key": "key-in-clear", "consumer_secret": "very-secret-value"}


def stored(engine, tenant_id: str) -> str:
    t = tenant_connections.c
    with engine.connect() as conn:
        return conn.execute(sa.select(t.credentials).where(t.tenant_id == tenant_id)).scalar_one()


def connect(engine, tenant_id: str, credentials=CREDS) -> None:
    with engine.begin() as conn:
        add_tenant(conn, tenant_id)
        set_connection(conn, tenant_id, "mx_merchant", "http://127.0.0.1:9/mx", credentials, {})


@pytest.fixture
def own_key(tmp_path, monkeypatch):
    """A key file of this test's own (the session's warehouse keeps the default one)."""
    path = tmp_path / "keys" / "secrets.key"
    monkeypatch.delenv("STOREHOUSE_SECRETS_KEY", raising=False)
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY_FILE", str(path))
    yield path
    secrets.forget()


@pytest.fixture
def private_warehouse(empty_warehouse, monkeypatch):
    """A migrated warehouse of this test's own (rotation rewrites every row of a warehouse)."""
    upgrade(empty_warehouse)
    monkeypatch.setenv("DATABASE_URL", empty_warehouse)
    engine = make_engine(empty_warehouse)
    yield engine
    engine.dispose()


def test_credentials_are_stored_encrypted_and_read_back_in_clear(engine, tenant_id):
    connect(engine, tenant_id)
    raw = stored(engine, tenant_id)
    assert "very-secret-value" not in raw and "key-in-clear" not in raw and "consumer_secret" not in raw
    with engine.connect() as conn:
        assert get_connection(conn, tenant_id, "mx_merchant").credentials == CREDS


def test_the_key_file_is_created_on_first_use_readable_by_its_owner_only(own_key, private_warehouse):
    assert not own_key.exists()
    connect(private_warehouse, "t1")
    assert stat.S_IMODE(own_key.stat().st_mode) == 0o600
    ring = Keyring(secrets.parse_keys(own_key.read_text()), "test")
    assert ring.unseal(stored(private_warehouse, "t1")) == CREDS


def test_the_migration_encrypts_rows_stored_in_clear(empty_warehouse, own_key):
    upgrade(empty_warehouse, "0001_foundation")
    engine = make_engine(empty_warehouse)
    try:
        json_value = "CAST(:c AS jsonb)" if engine.dialect.name == "postgresql" else ":c"
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tenants (tenant_id, name, status) VALUES ('t1', 'T1', 'active')"))
            conn.execute(sa.text("INSERT INTO tenant_connections (tenant_id, system, base_url, credentials, options) "
                                 f"VALUES ('t1', 'stripe', 'http://x', {json_value}, {json_value.replace('c', 'o')})"),
                         {"c": '{"secret_key": "sk_live_plain", "webhook_secret": ["whsec_a", "whsec_b"]}',
                          "o": "{}"})
        upgrade(empty_warehouse)
        raw = stored(engine, "t1")
        assert "sk_live_plain" not in raw and "whsec_a" not in raw
        with engine.connect() as conn:
            assert get_connection(conn, "t1", "stripe").credentials == {
                "secret_key": "sk_live_plain", "webhook_secret": ["whsec_a", "whsec_b"]}
    finally:
        engine.dispose()


def test_rotate_with_the_key_file_re_encrypts_every_row_under_a_new_key(own_key, private_warehouse):
    connect(private_warehouse, "t1")
    connect(private_warehouse, "t2", {**CREDS, "consumer_secret": "other"})
    old = secrets.parse_keys(own_key.read_text())
    done = CliRunner().invoke(app, ["secrets", "rotate"])
    assert done.exit_code == 0, done.output
    new = secrets.parse_keys(own_key.read_text())
    assert len(new) == 1 and new != old and stat.S_IMODE(own_key.stat().st_mode) == 0o600
    assert Keyring(new, "new").unseal(stored(private_warehouse, "t2"))["consumer_secret"] == "other"
    with pytest.raises(Exception):
        Keyring(old, "old").unseal(stored(private_warehouse, "t1"))
    with private_warehouse.connect() as conn:  # this process moves to the new key by itself
        assert get_connection(conn, "t1", "mx_merchant").credentials == CREDS
    assert new[0] not in done.output and old[0] not in done.output


def test_rotate_with_the_setting_moves_rows_to_its_first_key(monkeypatch, own_key, private_warehouse):
    old, new = generate_key(), generate_key()
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", old)
    connect(private_warehouse, "t1")
    refused = CliRunner().invoke(app, ["secrets", "rotate"])
    assert refused.exit_code == 2 and "STOREHOUSE_SECRETS_KEY" in refused.output
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", f"{new},{old}")
    done = CliRunner().invoke(app, ["secrets", "rotate"])
    assert done.exit_code == 0, done.output
    assert Keyring([new], "new").unseal(stored(private_warehouse, "t1")) == CREDS
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", new)
    with private_warehouse.connect() as conn:
        assert get_connection(conn, "t1", "mx_merchant").credentials == CREDS


def test_a_wrong_key_is_a_clear_error_naming_the_setting(monkeypatch, engine, tenant_id):
    connect(engine, tenant_id)
    token = stored(engine, tenant_id)
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", generate_key())
    with engine.connect() as conn, pytest.raises(SecretsKeyError) as caught:
        get_connection(conn, tenant_id, "mx_merchant")
    message = str(caught.value)
    assert "STOREHOUSE_SECRETS_KEY" in message and "not the key they were encrypted with" in message
    assert token not in message and "very-secret-value" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_or_malformed_key_is_a_clear_error_naming_the_setting(monkeypatch, own_key, private_warehouse):
    engine, tenant_id = private_warehouse, "t1"
    connect(engine, tenant_id)
    own_key.unlink()
    secrets.forget()  # as a process started now
    with engine.connect() as conn, pytest.raises(SecretsKeyError, match="STOREHOUSE_SECRETS_KEY is unset"):
        get_connection(conn, tenant_id, "mx_merchant")
    assert not own_key.exists()  # reading never makes a new key that could not open the rows anyway
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", "not-a-key")
    with engine.connect() as conn, pytest.raises(SecretsKeyError, match="STOREHOUSE_SECRETS_KEY is not a valid key"):
        get_connection(conn, tenant_id, "mx_merchant")


def test_a_sync_under_a_wrong_key_fails_at_once_naming_the_setting(monkeypatch, warehouse, engine, tenant_id):
    import dagster as dg

    from assets.partitions import mx_merchant_partitions
    from assets.transactions import mx_assets
    from resources.dagster_resources import MxMerchantResource
    from sensors.alerts import cause_of

    connect(engine, tenant_id)
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY", generate_key())
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(mx_merchant_partitions.name, [tenant_id])
    result = dg.materialize(mx_assets, partition_key=tenant_id, instance=instance, raise_on_error=False,
                            resources={"warehouse": warehouse, "mx_merchant": MxMerchantResource()})
    failures = [e for e in result.all_events if e.is_step_failure]
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not result.success and retries == [] and len(failures) == 1
    headline = cause_of(failures[0].step_failure_data.error)
    assert "STOREHOUSE_SECRETS_KEY" in headline and "\n" not in headline
    assert stored(engine, tenant_id) not in str(result.all_events) and "very-secret-value" not in headline


BLAZE_ADD = ["tenants", "add", "blaze-two", "--name", "B2", "--system", "blaze", "--base-url",
             "http://127.0.0.1:9/blaze", "--credential", "partner_key=p-secret", "--credential", "developer_key=d-secret"]


def tenant_ids(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(tenant_connections.c.tenant_id).order_by(tenant_connections.c.tenant_id))
                    .scalars())


def test_tenants_add_under_another_key_file_stores_nothing_and_makes_no_key(own_key, private_warehouse,
                                                                            tmp_path, monkeypatch):
    connect(private_warehouse, "t1")  # stored under the key file the warehouse was set up with
    other = tmp_path / "otherkey"
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY_FILE", str(other))
    refused = CliRunner().invoke(app, BLAZE_ADD, env={"COLUMNS": "200"})
    assert refused.exit_code == 2, refused.output
    assert "STOREHOUSE_SECRETS_KEY" in refused.output and "nothing stored" in refused.output
    assert "no new key is made" in refused.output
    assert not other.exists() and tenant_ids(private_warehouse) == ["t1"]
    assert "p-secret" not in refused.output and "Traceback" not in refused.output
    secrets.write_key_file(other, [generate_key()])  # a key file that exists but holds another key
    refused = CliRunner().invoke(app, BLAZE_ADD, env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "cannot be decrypted" in refused.output, refused.output
    assert tenant_ids(private_warehouse) == ["t1"]
    monkeypatch.setenv("STOREHOUSE_SECRETS_KEY_FILE", str(own_key))  # the right key: taken
    done = CliRunner().invoke(app, BLAZE_ADD)
    assert done.exit_code == 0, done.output
    assert tenant_ids(private_warehouse) == ["blaze-two", "t1"]


def test_rotate_refuses_a_row_it_cannot_open_naming_it_and_changes_nothing(own_key, private_warehouse):
    connect(private_warehouse, "t1")
    with private_warehouse.begin() as conn:  # t2's credentials under a key that is not in the file
        add_tenant(conn, "t2")
        conn.execute(sa.insert(tenant_connections).values(
            tenant_id="t2", system="blaze", base_url="http://127.0.0.1:9/blaze", options={},
            credentials=Keyring([generate_key()], "elsewhere").seal({"partner_key": "p", "developer_key": "d"})))
    keys, t1 = own_key.read_text(), stored(private_warehouse, "t1")
    for _ in range(2):
        refused = CliRunner().invoke(app, ["secrets", "rotate"], env={"COLUMNS": "80"})
        assert refused.exit_code == 1, refused.output
        cause = refused.output.strip().splitlines()[-1]  # one line, however narrow the terminal
        assert cause.startswith("not rotated") and "tenant t2's blaze connection cannot be decrypted" in cause
        assert "STOREHOUSE_SECRETS_KEY" in cause and "Traceback" not in refused.output
        assert isinstance(refused.exception, SystemExit)
        assert own_key.read_text() == keys and stored(private_warehouse, "t1") == t1


def test_rotation_holds_the_rows_so_a_connection_set_meanwhile_is_not_overwritten(own_key, private_warehouse):
    import threading

    from warehouse.tenants import resealed_credentials, store_credentials

    connect(private_warehouse, "t1")
    connect(private_warehouse, "t2")
    old = secrets.parse_keys(own_key.read_text())
    new = generate_key()
    changed = {**CREDS, "consumer_secret": "changed-meanwhile"}
    with private_warehouse.begin() as conn:
        sealed = resealed_credentials(conn, Keyring([new, *old], "test"))
        writer = threading.Thread(target=connect, args=(private_warehouse, "t1", changed))
        writer.start()
        writer.join(1.0)
        assert writer.is_alive()  # it waits for the rotation rather than writing beside it
        secrets.write_key_file(own_key, [new, *old])
        secrets.forget()
        store_credentials(conn, sealed)
    writer.join(30)
    assert not writer.is_alive()
    assert Keyring([new], "new").unseal(stored(private_warehouse, "t1")) == changed
    with private_warehouse.connect() as conn:
        assert get_connection(conn, "t1", "mx_merchant").credentials == changed

"""The Resend and Slack fakes over real HTTP: auth, idempotency, rate limits, what they recorded."""

from __future__ import annotations

import base64

import httpx
import pytest

KEY = "re_sandbox_storehouse_key"
HOOK = "/slack/services/T00SANDBOX/B00SANDBOX/sandbox0webhook0token00001"
EMAIL = {"from": "Storehouse <orders@storehouse.test>", "to": ["buyer@example.com"],
         "subject": "Your eSIM", "html": "<p>Scan the QR code</p>"}


@pytest.fixture
def client(sandbox_reset):
    with httpx.Client(base_url=sandbox_reset.url, timeout=10) as http:
        yield http


@pytest.fixture
def roomy(client):
    """Limits out of the way, for tests about something else than throttling."""
    client.put("/_sandbox/resend/limits", json={"emails": {"limit": 1000, "window_s": 1}})
    client.put("/_sandbox/slack/limits", json={"messages": {"limit": 1000, "window_s": 1}})
    return client


def send(client: httpx.Client, body: dict = EMAIL, **headers) -> httpx.Response:
    return client.post("/resend/emails", json=body, headers={"Authorization": f"Bearer {KEY}", **headers})


def test_resend_sends_and_records_attachments(roomy):
    pdf = b"%PDF-1.4 receipt" * 10
    body = {**EMAIL, "attachments": [{"filename": "receipt.pdf", "content": base64.b64encode(pdf).decode()}]}
    r = send(roomy, body)
    assert r.status_code == 200 and set(r.json()) == {"id"}
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(r.headers)
    sent = roomy.get("/_sandbox/resend/emails").json()["emails"]
    assert [e["id"] for e in sent] == [r.json()["id"]]
    assert sent[0]["attachments"][0]["filename"] == "receipt.pdf" and sent[0]["attachments"][0]["size"] == len(pdf)
    fetched = roomy.get(f"/resend/emails/{r.json()['id']}", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert fetched["object"] == "email" and fetched["subject"] == "Your eSIM"


def test_resend_auth_user_agent_and_validation(roomy):
    r = roomy.post("/resend/emails", json=EMAIL)
    assert r.status_code == 401 and r.json()["name"] == "missing_api_key"
    assert send(roomy, Authorization="Bearer re_unknown").status_code == 403
    with httpx.Client(base_url=str(roomy.base_url), timeout=10) as bare:
        del bare.headers["user-agent"]
        assert send(bare).status_code == 403
    r = send(roomy, {k: v for k, v in EMAIL.items() if k != "subject"})
    assert r.status_code == 422 and r.json() == {"statusCode": 422, "name": "missing_required_field",
                                                 "message": "Missing `subject` field."}
    assert send(roomy, {**EMAIL, "attachments": [{"filename": "x", "content": "%%%"}]}).status_code == 422
    assert roomy.get("/_sandbox/resend/emails").json()["emails"] == []


def test_resend_idempotency_key(roomy):
    first = send(roomy, **{"Idempotency-Key": "order-42/confirmation"})
    again = send(roomy, **{"Idempotency-Key": "order-42/confirmation"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    clash = send(roomy, {**EMAIL, "subject": "Other"}, **{"Idempotency-Key": "order-42/confirmation"})
    assert clash.status_code == 409 and clash.json()["name"] == "invalid_idempotent_request"
    assert send(roomy, **{"Idempotency-Key": "k" * 257}).status_code == 400
    assert len(roomy.get("/_sandbox/resend/emails").json()["emails"]) == 1


def test_resend_rate_limit_per_key(client):
    assert client.get("/_sandbox/resend/limits").json() == {"emails": {"limit": 2, "window_s": 1.0}}
    client.put("/_sandbox/resend/limits", json={"emails": {"limit": 2, "window_s": 60}})  # no timing races
    codes = [send(client) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json()["name"] == "rate_limit_exceeded" and int(codes[2].headers["retry-after"]) >= 1
    assert codes[2].headers["ratelimit-remaining"] == "0"
    assert len(client.get("/_sandbox/resend/emails").json()["emails"]) == 2


def test_slack_records_messages(roomy):
    r = roomy.post(HOOK, json={"text": "Order 42 provisioned via Airalo"})
    assert r.status_code == 200 and r.text == "ok"
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*low stock*"}}]
    assert roomy.post(HOOK, json={"blocks": blocks}).text == "ok"
    assert roomy.post(HOOK, data={"payload": '{"text": "form encoded"}'}).text == "ok"
    messages = roomy.get("/_sandbox/slack/messages").json()["messages"]
    assert [m["text"] for m in messages] == ["Order 42 provisioned via Airalo", None, "form encoded"]
    assert messages[1]["blocks"] == blocks and messages[0]["channel"] == "#storehouse-alerts"


def test_slack_plain_text_errors(roomy):
    assert (roomy.post(HOOK, json={"username": "x"}).status_code, roomy.post(HOOK, json={}).text) == (400, "no_text")
    bad = roomy.post(HOOK, content=b"{not json", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.text) == (400, "invalid_payload")
    unknown = roomy.post("/slack/services/T1/B1/nope", json={"text": "hi"})
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    wrong = roomy.post("/slack/services/T00SANDBOX/B00SANDBOX/wrong", json={"text": "hi"})
    assert (wrong.status_code, wrong.text) == (403, "invalid_token")
    hook = roomy.post("/_sandbox/slack/hooks", json={"channel": "#ops"}).json()
    roomy.put(f"/_sandbox/slack/hooks/{hook['token']}/state", json={"state": "channel_is_archived"})
    archived = roomy.post(hook["path"], json={"text": "hi"})
    assert (archived.status_code, archived.text) == (410, "channel_is_archived")
    assert roomy.get("/_sandbox/slack/messages").json()["messages"] == []


def test_slack_rate_limit(client):
    assert client.get("/_sandbox/slack/limits").json() == {"messages": {"limit": 3, "window_s": 3.0}}
    client.put("/_sandbox/slack/limits", json={"messages": {"limit": 3, "window_s": 60}})
    codes = [client.post(HOOK, json={"text": f"burst {i}"}) for i in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[3].text == "rate_limited" and int(codes[3].headers["Retry-After"]) >= 1
    assert len(client.get("/_sandbox/slack/messages").json()["messages"]) == 3

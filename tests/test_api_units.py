"""Pure pieces of the shop API: signatures, the state machine, error judgement, money, limits,
tokens, QR codes."""

import hashlib
import hmac
import struct
import time
import zlib
from decimal import Decimal

import httpx
import pytest
import qrcode

from api.ratelimit import RateLimiter
from commerce import orders as states
from commerce.attempts import ambiguous, counts_for_breaker
from commerce.checkout import fingerprint
from commerce.qr import qr_png
from commerce.tokens import OrderTokens
from resources.breaker import CircuitOpen
from resources.esim import MalformedEsim, OutOfStock
from resources.http import (
    AuthFailed,
    ConnectionFailed,
    RateLimited,
    RequestInvalid,
    ServerError,
)
from resources.stripe import (
    EventMalformed,
    SignatureRejected,
    SignatureStale,
    from_minor,
    parse_event,
    to_minor,
    verify_signature,
)

SECRET = "whsec_test_secret_one"
BODY = b'{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "data": {"object": {}}}'


def header(body: bytes, secret: str = SECRET, at: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    """Stripe's scheme, computed here independently of the SDK: v1 = HMAC-SHA256("{t}.{body}")."""
    t = int(time.time()) if at is None else at
    sig = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return ",".join([f"t={t}", *(f"v1={v}" for v in extra_v1), f"v1={sig}"])


def test_signature_accepts_genuine_and_rotated():
    verify_signature(BODY, header(BODY), (SECRET,))
    verify_signature(BODY, header(BODY, extra_v1=("00" * 32,)), (SECRET,))  # several v1 values: any may match
    verify_signature(BODY, header(BODY, secret="whsec_new"), ("whsec_old", "whsec_new"))  # our rotation


@pytest.mark.parametrize("bad", [
    None, "", "garbage", "t=abc,v1=00", header(BODY, secret="whsec_other"), header(BODY + b" "),
    header(BODY).replace("v1=", "v0="),
])
def test_signature_rejects_forgeries(bad):
    with pytest.raises(SignatureRejected) as caught:
        verify_signature(BODY, bad, (SECRET,))
    assert not isinstance(caught.value, SignatureStale)


def test_signature_older_than_tolerance_is_stale():
    verify_signature(BODY, header(BODY, at=int(time.time()) - 290), (SECRET,))
    with pytest.raises(SignatureStale):
        verify_signature(BODY, header(BODY, at=int(time.time()) - 301), (SECRET,))


def test_signature_from_the_future_is_stale_too():
    verify_signature(BODY, header(BODY, at=int(time.time()) + 290), (SECRET,))  # clocks drift a little
    for ahead in (301, 10 * 365 * 86400):  # ten years ahead is a replay waiting to happen, not clock drift
        with pytest.raises(SignatureStale, match="in the future"):
            verify_signature(BODY, header(BODY, at=int(time.time()) + ahead), (SECRET,))


def test_signature_needs_a_secret_and_utf8():
    with pytest.raises(SignatureRejected):
        verify_signature(BODY, header(BODY), ())
    raw = b"\xff\xfe not utf-8"
    with pytest.raises(SignatureRejected):
        verify_signature(raw, header(raw), (SECRET,))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"object": "event"}', b'{"id": "e", "object": "event",'
                                  b' "type": "x", "data": {}}', b'{"id": 1, "object": "event", "type": "x"}'])
def test_parse_event_rejects_non_events(body):
    with pytest.raises(EventMalformed):
        parse_event(body)


def test_payment_events_only_move_orders_up():
    # a late failure or expiry never undoes a payment; a late payment never resurrects a refund
    for late in (states.PAYMENT_FAILED, states.EXPIRED, states.AWAITING_PAYMENT):
        assert states.PAID not in states.payment_sources(late)
    assert states.REFUNDED not in states.payment_sources(states.PAID)
    assert set(states.payment_sources(states.PAID)) == {states.PENDING, states.AWAITING_PAYMENT,
                                                         states.PAYMENT_FAILED, states.EXPIRED}
    # fulfilment is the worker's: no payment event moves an order out of processing except a refund
    for target in (states.PAID, states.EXPIRED, states.PAYMENT_FAILED):
        assert not set(states.payment_sources(target)) & states.FULFILMENT
    assert states.PROCESSING in states.payment_sources(states.REFUNDED)
    assert states.FAILED not in states.payment_sources(states.REFUNDED)  # a failed order keeps its reason


def _conn_error(cause: Exception) -> ConnectionFailed:
    error = ConnectionFailed("p", "x")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "maybe_sold", "unhealthy"), [
    (OutOfStock("p", "none left"), False, False),
    (RequestInvalid("p", "bad package"), False, False),
    (AuthFailed("p", "bad key"), False, True),
    (RateLimited("p", "slow down", retry_after=1), False, True),
    (ServerError("p", "unavailable", status=503), False, True),
    (ServerError("p", "boom", status=500), True, True),
    (ServerError("p", "gateway timeout", status=504), True, True),
    (_conn_error(httpx.ConnectError("refused")), False, True),
    (_conn_error(httpx.ReadTimeout("slow")), True, True),
    (MalformedEsim("p", "no LPA"), False, True),
    (CircuitOpen("p", "open"), False, False),
    (ValueError("unreadable answer"), True, True),
])
def test_provider_errors_judged(error, maybe_sold, unhealthy):
    assert ambiguous(error) is maybe_sold
    assert counts_for_breaker(error) is unhealthy


def test_money_to_stripe_minor_units_and_back():
    assert to_minor(Decimal("3.99"), "USD") == 399
    assert to_minor(Decimal("12.345"), "eur") == 1235  # half up, never float
    assert to_minor(Decimal("500"), "JPY") == 500
    assert from_minor(399, "usd") == Decimal("3.99") and from_minor(500, "jpy") == Decimal(500)


def test_rate_limiter_refuses_past_the_burst_then_refills():
    limiter = RateLimiter(rate_per_s=50, burst=3)
    assert [limiter.hit("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.hit("a")
    assert 0 < wait <= 1 / 50 + 1e-6
    assert limiter.hit("b") == 0.0  # per client
    time.sleep(wait + 0.01)
    assert limiter.hit("a") == 0.0


def test_webhook_url_tokens_are_random_and_checked_by_hash():
    from commerce import webhook_tokens

    token = "tok-" + "x" * 40
    stored = webhook_tokens.digest(token)
    assert stored != token and len(stored) == 64
    assert webhook_tokens.matches(stored, token)
    assert not any(webhook_tokens.matches(stored, given) for given in (None, "", token[:-1], token + "x"))
    assert webhook_tokens.webhook_url("https://api.example/", "shop-a", "treez", "a+b/c") == \
        "https://api.example/shops/shop-a/webhooks/pos/treez?token=a%2Bb%2Fc"
    assert webhook_tokens.SIGNED.isdisjoint(webhook_tokens.UNSIGNED)


def test_uvicorn_never_believes_forwarded_headers_itself():
    """Our ForwardedClientMiddleware does, when configured (tests/test_api_process.py)."""
    from api.settings import ApiSettings

    assert ApiSettings().uvicorn_options()["proxy_headers"] is False
    trusted = ApiSettings(trust_forwarded_for=True, trusted_proxies=2).uvicorn_options()
    assert trusted["proxy_headers"] is False


def test_idle_connections_outlast_clients_and_load_balancers():
    """uvicorn's 5 s equals httpx's pool expiry: a request sent as the server closes is dropped."""
    from api.settings import ApiSettings

    assert ApiSettings().uvicorn_options()["timeout_keep_alive"] > 60
    assert ApiSettings(keep_alive_s=10).uvicorn_options()["timeout_keep_alive"] == 10


def test_the_forwarded_client_is_the_entry_trusted_proxies_places_from_the_right():
    from api.middleware import forwarded_client

    headers = [(b"x-forwarded-for", b"1.2.3.4, 6.6.6.1"), (b"host", b"x"), (b"x-forwarded-for", b" 10.9.9.9 ")]
    assert [forwarded_client(headers, n) for n in (1, 2, 3, 9)] == ["10.9.9.9", "6.6.6.1", "1.2.3.4", "1.2.3.4"]
    assert forwarded_client([(b"host", b"x")], 1) is None
    assert forwarded_client([(b"x-forwarded-for", b" , ")], 1) is None


def test_order_tokens_bind_tenant_and_order():
    tokens = OrderTokens(b"k")
    token = tokens.issue("shop-a", "ord_1")
    assert tokens.check("shop-a", "ord_1", token) and len(token) >= 43
    assert not tokens.check("shop-b", "ord_1", token) and not tokens.check("shop-a", "ord_2", token)
    assert not tokens.check("shop-a", "ord_1", None) and not OrderTokens(b"other").check("shop-a", "ord_1", token)


def test_checkout_fingerprint_ignores_email_case_only():
    assert fingerprint("p:1", 1, "A@x.io") == fingerprint("p:1", 1, "a@x.io")
    assert fingerprint("p:1", 1, "a@x.io") != fingerprint("p:1", 2, "a@x.io")


def test_qr_png_carries_exactly_the_qr_matrix():
    """Decode the PNG by hand (chunks, zlib, 1-bit rows) and sample every module's centre."""
    code = "LPA:1$smdp.example.com$K58CV-5W4A4-WCUGA-JWJEE"
    png = qr_png(code, scale=4, border=4)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = {}, 8
    while at < len(png):
        (length,), tag = struct.unpack(">I", png[at:at + 4]), png[at + 4:at + 8]
        data = png[at + 8:at + 8 + length]
        assert struct.unpack(">I", png[at + 8 + length:at + 12 + length])[0] == zlib.crc32(tag + data)
        chunks[tag] = data
        at += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width == height, depth, colour) == (True, 1, 0)
    raw, stride = zlib.decompress(chunks[b"IDAT"]), 1 + (width + 7) // 8
    rows = [raw[y * stride + 1:(y + 1) * stride] for y in range(height)]

    def dark(x: int, y: int) -> bool:
        return not rows[y][x // 8] >> (7 - x % 8) & 1

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(code)
    qr.make(fit=True)
    expected = qr.get_matrix()
    assert width == len(expected) * 4
    assert [[dark(x * 4 + 2, y * 4 + 2) for x in range(len(expected))] for y in range(len(expected))] == expected

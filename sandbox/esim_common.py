"""The eSIM wholesale world shared by the ``esimcard``, ``mobimatter`` and ``airalo`` fakes.

* Identifiers: Luhn-valid ICCIDs (E.118: ``89`` + country code + issuer + serial + check digit,
  19 or 20 digits), matching ids ``^[A-Z0-9-]+$`` and LPA activation codes
  ``LPA:1$<SM-DP+ host>$<MATCHING-ID>`` (SGP.22 §4.1), rendered as real QR-code PNGs.
* ``catalog()``: a seeded, deterministic list of ``Plan``s (country or region with ISO codes,
  data in MB or unlimited, validity in days, wholesale cost in USD). Every provider sells the
  same plans under its own ids, prices and wire format, so failover tests can ask each of them
  for "Japan, 1 GB, 7 days" (plan key ``jp-1gb-7d``).
* ``EsimShop``: one provider's mutable world: accounts, bearer tokens, stock per package, orders,
  sims and their usage, rate limits (a ``sandbox.ratelimit.SlidingWindowLimiter``).
  ``sandbox.esim_control.control_router`` builds the sandbox-only routes common to the three
  fakes; each provider adds only its wire format.
* ``Respond`` / ``RespondRoute``: answer from anywhere in a route in the provider's own format.
"""

from __future__ import annotations

import functools
import hmac
import math
import random
import secrets
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import qrcode
from fastapi.routing import APIRoute
from starlette.responses import Response

from sandbox.ratelimit import Limit, SlidingWindowLimiter

# ---- identifiers ---------------------------------------------------------------------------


def luhn_check_digit(payload: str) -> str:
    """The digit that makes ``payload + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def make_iccid(prefix: str, serial: int, length: int) -> str:
    """An ICCID of ``length`` digits (19 or 20): prefix (``89``…), zero-padded serial, Luhn digit."""
    body = prefix + str(serial).zfill(length - 1 - len(prefix))
    if not prefix.startswith("89") or len(body) != length - 1:
        raise ValueError(f"cannot fit serial {serial} after {prefix} in {length} digits")
    return body + luhn_check_digit(body)


_MATCHING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def make_matching_id(rng: random.Random) -> str:
    """A matching id in the common ``XXXXX-XXXXX-XXXXX-XXXXX`` shape."""
    return "-".join("".join(rng.choice(_MATCHING_ALPHABET) for _ in range(5)) for _ in range(4))


def make_lpa(smdp_host: str, matching_id: str) -> str:
    return f"LPA:1${smdp_host}${matching_id}"


@functools.lru_cache(maxsize=4096)
def qr_png(text: str, scale: int = 4) -> bytes:
    """A greyscale PNG of the QR code for ``text`` (written by hand: the sandbox has no Pillow).

    A provider renders a sim's QR code once and serves the same image ever after; so does this
    cache. The mask is fixed rather than scored: any of the eight masks makes a valid code, and
    scoring them all costs ~5 ms of CPU that a real provider spends on its own machines, not on
    the cores our tests and benchmarks share with the sandbox.
    """
    qr = qrcode.QRCode(border=4, mask_pattern=0)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    rows = []
    for row in matrix:
        line = b"\x00" + bytes(0 if dark else 255 for dark in row for _ in range(scale))
        rows.extend([line] * scale)
    size = len(matrix) * scale

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


# ---- catalog -----------------------------------------------------------------------------

# (ISO 3166-1 alpha-2, name, continent, cost per GB in USD)
COUNTRIES: tuple[tuple[str, str, str, float], ...] = (
    ("JP", "Japan", "Asia", 1.6), ("KR", "South Korea", "Asia", 1.8), ("TH", "Thailand", "Asia", 1.2),
    ("VN", "Vietnam", "Asia", 1.1), ("SG", "Singapore", "Asia", 1.7), ("ID", "Indonesia", "Asia", 1.4),
    ("MY", "Malaysia", "Asia", 1.3), ("PH", "Philippines", "Asia", 1.5), ("CN", "China", "Asia", 2.4),
    ("HK", "Hong Kong", "Asia", 1.5), ("TW", "Taiwan", "Asia", 1.6), ("IN", "India", "Asia", 1.9),
    ("AE", "United Arab Emirates", "Middle East", 3.2), ("TR", "Turkey", "Europe", 1.9),
    ("US", "United States", "North America", 2.2), ("CA", "Canada", "North America", 2.9),
    ("MX", "Mexico", "North America", 2.3), ("BR", "Brazil", "South America", 2.6),
    ("GB", "United Kingdom", "Europe", 1.3), ("FR", "France", "Europe", 1.2),
    ("DE", "Germany", "Europe", 1.3), ("IT", "Italy", "Europe", 1.2), ("ES", "Spain", "Europe", 1.2),
    ("PT", "Portugal", "Europe", 1.2), ("NL", "Netherlands", "Europe", 1.3),
    ("CH", "Switzerland", "Europe", 2.5), ("GR", "Greece", "Europe", 1.4),
    ("AU", "Australia", "Oceania", 2.0), ("NZ", "New Zealand", "Oceania", 2.4),
    ("ZA", "South Africa", "Africa", 3.1), ("EG", "Egypt", "Africa", 2.8), ("MA", "Morocco", "Africa", 2.7),
)
_CONTINENT = {iso: continent for iso, _, continent, _ in COUNTRIES}
COUNTRY_NAMES = {iso: name for iso, name, _, _ in COUNTRIES}
REGIONS: dict[str, tuple[str, tuple[str, ...], float]] = {
    "europe": ("Europe", tuple(c for c, cont in _CONTINENT.items() if cont == "Europe"), 1.6),
    "asia": ("Asia", tuple(c for c, cont in _CONTINENT.items() if cont == "Asia"), 2.1),
    "global": ("Global", tuple(_CONTINENT), 3.4),
}
# (MB or None for unlimited, validity days); the first is every country's entry plan.
DATA_OPTIONS: tuple[tuple[int | None, int], ...] = (
    (1024, 7), (500, 3), (3072, 15), (5120, 30), (10240, 30), (20480, 30), (None, 7), (None, 15))
CATALOG_SEED = 2024


@dataclass(frozen=True)
class Plan:
    key: str  # provider-independent, e.g. "jp-1gb-7d", "europe-unl-15d"
    scope: Literal["local", "regional", "global"]
    code: str  # ISO2 for local plans, region slug otherwise
    title: str  # "Japan", "Europe"
    region: str  # continent of a local plan, the region title otherwise
    countries: tuple[str, ...]
    data_mb: int | None  # None: unlimited
    validity_days: int
    cost: Decimal  # wholesale USD, before any provider's margin

    @property
    def data_label(self) -> str:
        if self.data_mb is None:
            return "Unlimited"
        return f"{self.data_mb // 1024} GB" if self.data_mb % 1024 == 0 else f"{self.data_mb} MB"


def _plan(rng: random.Random, scope, code, title, region, countries, per_gb, mb, days) -> Plan:
    size = "unl" if mb is None else (f"{mb // 1024}gb" if mb % 1024 == 0 else f"{mb}mb")
    raw = per_gb * days * 0.45 if mb is None else 0.6 + per_gb * (mb / 1024) ** 0.85
    cost = Decimal(str(round(raw * rng.uniform(0.92, 1.08), 2)))
    return Plan(f"{code.lower()}-{size}-{days}d", scope, code, title, region, countries, mb, days, cost)


def catalog(seed: int = CATALOG_SEED) -> tuple[Plan, ...]:
    """Every plan on the market, the same for the same seed: 3–5 per country, 3–4 per region."""
    rng = random.Random(seed)
    plans = []
    for iso, name, continent, per_gb in COUNTRIES:
        extra = rng.sample(DATA_OPTIONS[1:], rng.randint(2, 4))
        for mb, days in sorted([DATA_OPTIONS[0], *extra], key=lambda o: (o[0] or 10**9, o[1])):
            plans.append(_plan(rng, "local", iso, name, continent, (iso,), per_gb, mb, days))
    for slug, (title, countries, per_gb) in REGIONS.items():
        scope = "global" if slug == "global" else "regional"
        options = [DATA_OPTIONS[0], *rng.sample(DATA_OPTIONS[2:], rng.randint(2, 3))]
        for mb, days in sorted(options, key=lambda o: (o[0] or 10**9, o[1])):
            plans.append(_plan(rng, scope, slug, title, title, countries, per_gb, mb, days))
    return tuple(plans)


# ---- one provider's world ------------------------------------------------------------------

class ShopError(Exception):
    """A refusal the provider renders in its own wire format."""


class UnknownPackage(ShopError):
    pass


class OutOfStock(ShopError):
    def __init__(self, package_id: str, available: int) -> None:
        super().__init__(f"{package_id}: {available} left")
        self.package_id, self.available = package_id, available


class AccountRefused(ShopError):
    """The account's "fail orders" switch is on (the fakes render it as an empty wallet)."""


class UnknownSim(ShopError):
    pass


@dataclass
class Account:
    login: str
    secret: str
    fail_orders: bool = False
    unusable_sims: bool = False  # purchases go through but deliver an activation code with no matching id


@dataclass
class Sim:
    seq: int
    id: str
    iccid: str
    matching_id: str
    smdp_host: str
    account: str
    created_at: datetime
    bundles: list[Plan]  # top-ups append; usage is about the newest
    status: str = "NOT_ACTIVE"
    used_mb: int = 0
    activated_at: datetime | None = None
    unusable: bool = False  # bought, but its activation code lacks the matching id (a provider fault)

    @property
    def plan(self) -> Plan:
        return self.bundles[-1]

    @property
    def lpa(self) -> str:
        return make_lpa(self.smdp_host, "" if self.unusable else self.matching_id)

    @property
    def expires_at(self) -> datetime | None:
        return self.activated_at and self.activated_at + timedelta(days=self.plan.validity_days)

    @property
    def remaining_mb(self) -> int | None:
        return None if self.plan.data_mb is None else max(0, self.plan.data_mb - self.used_mb)


@dataclass
class Order:
    seq: int
    id: str
    account: str
    package_id: str
    plan: Plan
    quantity: int
    reference: str | None
    price: Decimal
    created_at: datetime
    sims: list[Sim]
    state: str = "completed"
    extra: dict = field(default_factory=dict)

    def view(self) -> dict:
        return {"id": self.id, "account": self.account, "package_id": self.package_id,
                "plan_key": self.plan.key, "quantity": self.quantity, "reference": self.reference,
                "state": self.state, "price": str(self.price), "iccids": [s.iccid for s in self.sims],
                "created_at": self.created_at.isoformat(), **self.extra}


_SERIALS: dict[str, int] = {}  # per provider: the highest serial handed out in this process
_SERIALS_LOCK = threading.Lock()
SERIAL_SPACE = 10**11  # fits the 12-digit serial field of every fake's ICCID; the clock wraps in ~3 years


def _next_serial_start(provider: str) -> int:
    """Where a fresh (or reset) fake starts numbering sims: the clock in milliseconds (a later
    process starts past an earlier one's sims, each of which took far longer than a millisecond
    to sell), and past any serial this process already used."""
    with _SERIALS_LOCK:
        return max(time.time_ns() // 1_000_000 % SERIAL_SPACE, _SERIALS.get(provider, -1) + 1)


def _used_serial(provider: str, serial: int) -> None:
    with _SERIALS_LOCK:
        _SERIALS[provider] = max(serial, _SERIALS.get(provider, -1))


class EsimShop:
    """One provider's accounts, tokens, stock, orders and sims; every method is thread-safe."""

    def __init__(self, name: str, *, package_id: Callable[[Plan], str], order_id: Callable[[int], str],
                 margin: str, smdp_host: str, iccid_prefix: str, iccid_length: int,
                 demo_accounts: dict[str, str], limits: dict[str, Limit] | None = None,
                 token_ttl_s: float | None = None, seed: int = 1) -> None:
        self.name, self.smdp_host, self.seed = name, smdp_host, seed
        self.iccid_prefix, self.iccid_length = iccid_prefix, iccid_length
        self._package_id, self._order_id = package_id, order_id
        self.margin, self.demo_accounts, self.token_ttl_s = Decimal(margin), demo_accounts, token_ttl_s
        self.plans = catalog()
        self.limiter = SlidingWindowLimiter(limits or {})
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            rng = random.Random(f"{self.name}:{self.seed}")
            self.packages = {self._package_id(p): p for p in self.plans}
            self.stock = {pid: self._initial_stock(rng, p) for pid, p in self.packages.items()}
            self.out_of_stock = False
            self.accounts = {login: Account(login, s) for login, s in self.demo_accounts.items()}
            self.tokens: dict[str, tuple[str, float]] = {}  # token -> (login, monotonic expiry)
            self.orders: list[Order] = []
            self._by_id: dict[tuple[str, str], Order] = {}  # (account, order id)
            self.sims: dict[str, Sim] = {}
            # Sims are numbered on from the clock (in ms), never from a fixed seed: a sandbox
            # restarted (or reset) for another demo run must not hand out an ICCID, matching id
            # or activation code that an earlier run's orders already hold.
            self._serial = _next_serial_start(self.name)
            self._rng = random.Random(f"{self.name}:{self.seed}:{self._serial}")
            self.limiter.reset()

    @staticmethod
    def _initial_stock(rng: random.Random, plan: Plan) -> int:
        # Entry plans are always well stocked; a few others start low or empty, as real ones do.
        roll = rng.random()
        if plan.key.endswith("-1gb-7d") or roll > 0.1:
            return rng.randint(40, 400)
        return 0 if roll < 0.03 else rng.randint(1, 9)

    def price(self, plan: Plan) -> Decimal:
        return (plan.cost * self.margin).quantize(Decimal("0.01"))

    # accounts and tokens
    def authenticate(self, login: str | None, secret: str | None) -> Account | None:
        with self.lock:
            account = self.accounts.get(login or "")
        if account and hmac.compare_digest(account.secret.encode(), (secret or "").encode()):
            return account
        return None

    def issue_token(self, account: Account) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (account.login, time.monotonic() + (self.token_ttl_s or math.inf))
        return token

    def account_for_token(self, authorization: str | None) -> Account | None:
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            login, expiry = self.tokens.get(token.strip(), ("", 0.0))
            if scheme.lower() != "bearer" or expiry < time.monotonic():
                return None
            return self.accounts.get(login)

    # orders
    def find_order(self, account: Account, order_id: str) -> Order | None:
        with self.lock:
            return self._by_id.get((account.login, order_id))

    def purchase(self, account: Account, package_id: str, quantity: int = 1, reference: str | None = None,
                 onto: Sim | None = None, state: str = "completed", extra: dict | None = None) -> Order:
        """Buy ``quantity`` sims (or one bundle onto ``onto``) and record the order.

        ``reference`` is kept on the order as the provider stores it (MobiMatter's ``label``,
        Airalo's ``description``) and nothing more: a repeated reference buys again, as it does at
        every real provider, none of which dedupes purchases by it.
        """
        with self.lock:
            plan = self.packages.get(package_id)
            if plan is None:
                raise UnknownPackage(package_id)
            if account.fail_orders:
                raise AccountRefused(account.login)
            available = 0 if self.out_of_stock else self.stock[package_id]
            if available < quantity:
                raise OutOfStock(package_id, available)
            self.stock[package_id] -= quantity
            now = datetime.now(UTC).replace(microsecond=0)
            if onto is not None:
                onto.bundles.append(plan)
                onto.used_mb, onto.status = 0, "NOT_ACTIVE" if onto.status == "NOT_ACTIVE" else "ACTIVE"
                sims = [onto]
            else:
                sims = [self._new_sim(account, plan, now) for _ in range(quantity)]
            seq = len(self.orders) + 1
            order = Order(seq, self._order_id(seq), account.login, package_id, plan, quantity, reference,
                          self.price(plan) * quantity, now, sims, state, dict(extra or {}))
            self.orders.append(order)
            self._by_id[(account.login, order.id)] = order
            return order

    def cancel(self, order: Order) -> None:
        """Cancel an order and put its units back on the shelf."""
        with self.lock:
            if order.state != "cancelled":
                order.state = "cancelled"
                self.stock[order.package_id] += order.quantity

    def _new_sim(self, account: Account, plan: Plan, now: datetime) -> Sim:
        self._serial += 1
        _used_serial(self.name, self._serial)
        seq = len(self.sims) + 1
        sim = Sim(seq, str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
                  make_iccid(self.iccid_prefix, self._serial, self.iccid_length),
                  make_matching_id(self._rng), self.smdp_host, account.login, now, [plan],
                  unusable=account.unusable_sims)
        self.sims[sim.iccid] = sim
        return sim

    def find_sim(self, account: Account, key: str) -> Sim | None:
        """A sim of this account by ICCID or by sim id."""
        with self.lock:
            sim = self.sims.get(key) or next((s for s in self.sims.values() if s.id == key), None)
            return sim if sim and sim.account == account.login else None

    def set_usage(self, iccid: str, status: str | None, used_mb: int | None) -> Sim:
        with self.lock:
            sim = self.sims.get(iccid)
            if sim is None:
                raise UnknownSim(iccid)
            if used_mb is not None:
                sim.used_mb = used_mb
            if status is None and used_mb:
                total = sim.plan.data_mb
                status = "FINISHED" if total is not None and used_mb >= total else "ACTIVE"
            if status:
                sim.status = status
            if sim.status != "NOT_ACTIVE" and sim.activated_at is None:
                sim.activated_at = datetime.now(UTC).replace(microsecond=0)
            return sim


# ---- routing helpers -----------------------------------------------------------------------


class Respond(Exception):
    """Raise (from a dependency too) to answer with ``response`` in the provider's own format."""

    def __init__(self, response: Response) -> None:
        self.response = response


class RespondRoute(APIRoute):
    """Route class turning ``Respond`` into its response; FastAPI's ``{"detail"}`` bodies would
    betray the fake, and the sandbox app has no per-provider exception handlers."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request):
            try:
                return await handler(request)
            except Respond as answer:
                return answer.response

        return route

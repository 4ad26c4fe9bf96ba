"""The canonical store the cannabis/retail POS fakes render.

One ``Store`` per account: product ``i`` and customer ``i`` are pure functions of
``(seed, i)`` (``make_product`` / ``make_customer``, LRU-cached), so 50 stores of 5,000 products
cost only what has been changed: quantities, ``updated_ms``, deactivations and deletions live in
small per-store overlays. Base ``updated_ms`` is ``BASE_MS + i * STEP_MS`` (so "updated since"
needs no generation); every mutation takes the next tick of a per-store monotonic clock.

Canonical product fields: ``sku, brand, name, size, category`` (flower, preroll, vape,
concentrate, edible, tincture, topical, beverage, accessory), ``strain_type`` (indica, sativa,
hybrid, cbd, or None) with ``strain_lean`` for hybrids, ``thc``/``cbd`` as ``(low, high)``
ranges over the batches (low == high when single-valued) in ``potency_unit`` ``%`` or ``mg``,
``effects, flavors, weight`` + ``weight_unit`` (g, ml, each), ``price_cents``, ``batches``
(lot, compliance id, packaged/tested/expiry dates, per-batch potency, quantity).

GOLDEN product, index 0 of every store (sku ``CRS-BD-0035``): brand Cresco, "Blue Dream",
size 3.5g, flower, hybrid leaning sativa, THC 22.5 %, CBD 0.1 %, 3.5 g, price 45.00 USD,
effects Happy/Uplifted/Creative, flavours Berry/Sweet/Herbal, quantity 24 in two batches
(BD-2406-A: 16 units, expires 2027-06-30, METRC 1A4FF0300000022000000101; BD-2409-B: 8 units,
expires 2027-09-30, METRC 1A4FF0300000022000000102). Native renderings (name / brand; potency;
weight; price):

* treez: "BLUE DREAM 3.5G" / "CRESCO"; lab_results PERCENTAGE 22.5-22.5; amount 3.5 GRAMS; 45.0
* dutchie: "Blue Dream | 3.5g" / brandName "Cresco"; thcContent 22.5 "%"; netWeight 3.5 "g"; recPrice 45.0
* blaze: "Blue Dream (3.5g)" / brandName "Cresco"; thc 22.5 (% implied); weightPerUnit EIGHTH; 45.0
* flowhub: "FLOWER - Blue Dream 3.5g [CRESCO]"; cannabinoidInformation 22.5 %; productWeight 3.5 g;
  priceInMinorUnits 4500
* cova: "Cresco - Blue Dream (3.5g)"; spec "THC Max" "225" mg/g; "Net Weight" "3.5" g; RegularPrice 45.0
* shopify: title "Blue Dream", variant "3.5g", vendor "Cresco"; tag "THC: 22.5%"; 0.125 oz (grams 4); "45.00"

Strain: Treez HYBRID, Dutchie Hybrid, Blaze "Sativa Dominant", Flowhub "Sativa-dom",
COVA "Sativa Dominant Hybrid", Shopify tag "Hybrid" + "Sativa-dominant". An eighth (1/8 oz)
is the trade 3.5 g, not 3.54 g. Also here: native ids that embed the index (``hex_id``,
``uuid_id``, ``index_of``) and ISO-8601 helpers. The HTTP plumbing the fakes share is in
``sandbox.pos_http``, their common control routes in ``sandbox.pos_control``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
STEP_MS = 37_000
GOLDEN_SKU = "CRS-BD-0035"

BRANDS = ["Rythm", "Verano", "Kiva", "Wyld", "Select", "Stiiizy", "Raw Garden", "Cookies", "Jeeter",
          "Camino", "Papa & Barkley", "Cann", "Breez", "Curaleaf", "Alien Labs", "Glass House"]
STRAINS = ["Blue Dream", "OG Kush", "Sour Diesel", "Gelato", "Wedding Cake", "GSC", "Jack Herer",
           "Granddaddy Purple", "Pineapple Express", "Northern Lights", "Durban Poison", "Zkittlez",
           "Runtz", "Ice Cream Cake", "Harlequin", "ACDC", "Green Crack", "Mimosa", "Do-Si-Dos"]
EFFECTS = ["Relaxed", "Happy", "Euphoric", "Uplifted", "Creative", "Sleepy", "Focused", "Energetic",
           "Hungry", "Calm"]
FLAVORS = ["Berry", "Citrus", "Earthy", "Pine", "Diesel", "Sweet", "Herbal", "Grape", "Lemon", "Skunk",
           "Spicy", "Vanilla", "Mint", "Tropical"]
# category: (weight, (size label, weight, unit) choices, potency unit, price range in cents)
CATEGORIES = {
    "flower": (30, [("1g", 1, "g"), ("3.5g", 3.5, "g"), ("7g", 7, "g"), ("14g", 14, "g"), ("28g", 28, "g")], "%",
               (1000, 25000)),
    "preroll": (12, [("1g", 1, "g"), ("5pk 0.5g", 2.5, "g")], "%", (800, 4000)),
    "vape": (14, [("0.5g", 0.5, "g"), ("1g", 1, "g")], "%", (2500, 6500)),
    "concentrate": (8, [("1g", 1, "g")], "%", (3000, 8000)),
    "edible": (14, [("10pk 100mg", 1, "each"), ("20pk 100mg", 1, "each")], "mg", (1200, 3000)),
    "tincture": (5, [("30ml", 30, "ml")], "mg", (3000, 7000)),
    "topical": (4, [("50ml", 50, "ml")], "mg", (2000, 5000)),
    "beverage": (5, [("355ml", 355, "ml")], "mg", (500, 1200)),
    "accessory": (8, [("each", 1, "each")], None, (500, 6000)),
}
FORMS = {"edible": ["Gummies", "Chocolate Bar", "Mints"], "tincture": ["Tincture"], "topical": ["Balm", "Lotion"],
         "beverage": ["Seltzer", "Lemonade"], "accessory": ["Glass Pipe", "Rolling Papers", "510 Battery", "Grinder"]}
FIRST = ["Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Olivia", "Ethan", "Sofia", "Mason", "Isla", "Leo",
         "Chloe", "Jack", "Nora", "Owen", "Zoe", "Caleb", "Ruby", "Miles"]
LAST = ["Thompson", "Carter", "Nguyen", "Patel", "Rossi", "Meyer", "Chen", "Brooks", "Alvarez", "Reid",
        "Novak", "Haddad", "Kim", "Okafor", "Larsen", "Silva"]
CITIES = [("Denver", "CO", "802"), ("Los Angeles", "CA", "900"), ("Chicago", "IL", "606"),
          ("Portland", "OR", "972"), ("Detroit", "MI", "482"), ("Phoenix", "AZ", "850")]


@dataclass(frozen=True, slots=True)
class Batch:
    lot: str
    compliance_id: str
    packaged: dt.date
    tested: dt.date
    expires: dt.date
    thc: float | None
    cbd: float | None
    quantity: int


@dataclass(frozen=True, slots=True)
class Product:
    index: int
    sku: str
    brand: str
    name: str
    size: str
    category: str
    strain_type: str | None
    strain_lean: str | None
    thc: tuple[float, float] | None
    cbd: tuple[float, float] | None
    potency_unit: str | None
    effects: tuple[str, ...]
    flavors: tuple[str, ...]
    weight: float
    weight_unit: str
    price_cents: int
    batches: tuple[Batch, ...]
    description: str

    @property
    def quantity(self) -> int:
        return sum(b.quantity for b in self.batches)


@dataclass(frozen=True, slots=True)
class Customer:
    index: int
    first_name: str
    last_name: str
    email: str
    phone: str
    birth_date: dt.date
    street: str
    city: str
    state: str
    postal_code: str
    gender: str
    medical_id: str | None
    loyalty_points: int
    created_ms: int
    updated_ms: int


def _golden() -> Product:
    d = dt.date
    b1 = Batch("BD-2406-A", "1A4FF0300000022000000101", d(2025, 6, 30), d(2025, 7, 3), d(2027, 6, 30), 22.5, 0.1, 16)
    b2 = Batch("BD-2409-B", "1A4FF0300000022000000102", d(2025, 9, 30), d(2025, 10, 2), d(2027, 9, 30), 22.5, 0.1, 8)
    return Product(0, GOLDEN_SKU, "Cresco", "Blue Dream", "3.5g", "flower", "hybrid", "sativa", (22.5, 22.5),
                   (0.1, 0.1), "%", ("Happy", "Uplifted", "Creative"), ("Berry", "Sweet", "Herbal"), 3.5, "g", 4500,
                   (b1, b2), "Sativa-dominant hybrid with sweet berry aroma; balanced, uplifting and creative.")


@lru_cache(maxsize=8192)
def make_product(seed: str, i: int) -> Product:
    """Product ``i`` of the store seeded ``seed``; index 0 is the golden product."""
    if i == 0:
        return _golden()
    r = random.Random(f"{seed}:p:{i}")
    category = r.choices(list(CATEGORIES), [c[0] for c in CATEGORIES.values()])[0]
    _, sizes, unit, (lo_price, hi_price) = CATEGORIES[category]
    size, weight, weight_unit = r.choice(sizes)
    brand = r.choice(BRANDS)
    strain = r.choice(STRAINS)
    cannabis = category != "accessory"
    smokable = category in ("flower", "preroll", "vape", "concentrate")
    name = strain if smokable else f"{r.choice(FLAVORS)} {r.choice(FORMS[category])}"
    strain_type = r.choice(["indica", "sativa", "hybrid", "hybrid", "cbd"]) if cannabis else None
    lean = r.choice([None, "indica", "sativa"]) if strain_type == "hybrid" else None
    batches = []
    for k in range(r.choice([1, 1, 2, 3])):
        if unit == "%":
            thc = round(r.uniform(3, 12) if strain_type == "cbd" else r.uniform(15, 32), 1)
            cbd = round(r.uniform(5, 15) if strain_type == "cbd" else r.uniform(0, 1), 1)
            if category in ("vape", "concentrate"):
                thc = round(min(thc * 2.8, 92.0), 1)
        elif unit == "mg":
            thc, cbd = (10.0, 100.0) if strain_type == "cbd" else (100.0, round(r.choice([0, 0, 5, 20]), 1))
        else:
            thc = cbd = None
        packaged = dt.date(2025, 1, 1) + dt.timedelta(days=r.randrange(0, 330))
        lot = f"{brand[:3].upper()}-{packaged:%y%m}-{k + 1:02d}{i % 100:02d}"
        tag = f"1A4FF03000000{hashlib.sha1(f'{seed}:{i}:{k}'.encode()).hexdigest()[:11].upper()}"
        batches.append(Batch(lot, tag, packaged, packaged + dt.timedelta(days=3),
                             packaged + dt.timedelta(days=r.choice([180, 365, 540])), thc, cbd, r.randrange(0, 60)))
    thcs = [b.thc for b in batches if b.thc is not None]
    cbds = [b.cbd for b in batches if b.cbd is not None]
    price = r.randrange(lo_price, hi_price, 25)
    return Product(
        i, f"{brand[:3].upper()}-{hashlib.sha1(f'{seed}:{i}'.encode()).hexdigest()[:6].upper()}", brand, name, size,
        category, strain_type, lean, (min(thcs), max(thcs)) if thcs else None, (min(cbds), max(cbds)) if cbds else None,
        unit, tuple(r.sample(EFFECTS, 3)) if cannabis else (), tuple(r.sample(FLAVORS, 2)) if cannabis else (),
        float(weight), weight_unit, price, tuple(batches), f"{name} by {brand}, {size}.")


@lru_cache(maxsize=4096)
def make_customer(seed: str, i: int) -> Customer:
    r = random.Random(f"{seed}:c:{i}")
    first, last = r.choice(FIRST), r.choice(LAST)
    city, state, zip3 = r.choice(CITIES)
    created = BASE_MS - 86_400_000 * 400 + i * 3_600_000
    return Customer(
        i, first, last, f"{first}.{last}{i}@example.com".lower(), f"555{r.randrange(1000000, 9999999)}",
        dt.date(1950, 1, 1) + dt.timedelta(days=r.randrange(0, 18000)), f"{r.randrange(10, 9999)} {r.choice(LAST)} St",
        city, state, f"{zip3}{r.randrange(10, 99)}", r.choice(["F", "M", "X"]),
        f"MMJ{r.randrange(100000, 999999)}" if r.random() < 0.3 else None, r.randrange(0, 2000),
        created, max(created, BASE_MS - 86_400_000 * 200) + r.randrange(0, 86_400_000 * 300))


def batch_quantities(p: Product, total: int) -> list[int]:
    """Spread a (possibly changed) total over the batches: oldest first, the rest on the last."""
    out, left = [], total
    for b in p.batches[:-1]:
        out.append(min(b.quantity, left))
        left -= out[-1]
    return out + [left]


@dataclass(slots=True)
class Listing:
    p: Product
    quantity: int
    updated_ms: int
    active: bool
    deleted: bool = False


class Store:
    """One account's catalog: generated on demand, mutations kept in small overlays."""

    def __init__(self, seed: str, products: int = 200, customers: int = 40,
                 factory: Callable[[str, int], object] = make_product) -> None:
        self.seed, self.n, self.n_customers, self.factory = seed, products, customers, factory
        self._qty: dict[int, int] = {}
        self._updated: dict[int, int] = {}
        self._inactive: set[int] = set()
        self._deleted: set[int] = set()
        self._clock = BASE_MS + products * STEP_MS
        self._lock = threading.Lock()
        self._by_name: list[int] | None = None

    def _tick(self) -> int:
        self._clock = max(int(time.time() * 1000), self._clock + 1)
        return self._clock

    def listing(self, i: int) -> Listing:
        p = self.factory(self.seed, i)
        return Listing(p, self._qty.get(i, p.quantity), self._updated.get(i, BASE_MS + i * STEP_MS),
                       i not in self._inactive and i not in self._deleted, i in self._deleted)

    def exists(self, i: int) -> bool:
        return 0 <= i < self.n

    def indices(self, *, include_deleted: bool = False) -> list[int]:
        if include_deleted or not self._deleted:
            return list(range(self.n))
        return [i for i in range(self.n) if i not in self._deleted]

    def updated_since(self, after_ms: int, until_ms: int | None = None, *, include_deleted: bool = False) -> list[int]:
        """Indices with after_ms < updated <= until_ms, oldest change first."""
        with self._lock:  # snapshot: mutations may land from other threads meanwhile
            updated, deleted = dict(self._updated), set(self._deleted)
        first = max(0, (after_ms - BASE_MS) // STEP_MS + 1)
        hits = {i for i in range(first, self.n) if i not in updated}
        hits.update(i for i, ms in updated.items() if ms > after_ms)
        if not include_deleted:
            hits -= deleted
        out = sorted(hits, key=lambda i: (updated.get(i, BASE_MS + i * STEP_MS), i))
        if until_ms is not None:
            out = [i for i in out if updated.get(i, BASE_MS + i * STEP_MS) <= until_ms]
        return out

    def by_name(self, name: Callable[[Product], str]) -> list[int]:
        """Live indices sorted by a display name (one naming per store; names never change, so cached)."""
        if self._by_name is None:
            self._by_name = sorted(range(self.n), key=lambda i: (name(self.factory(self.seed, i)).lower(), i))
        return [i for i in self._by_name if i not in self._deleted]

    def set_quantity(self, i: int, quantity: int) -> Listing:
        with self._lock:
            self._qty[i] = int(quantity)  # an oversold count stays negative, as a real POS shows it
            self._updated[i] = self._tick()
        return self.listing(i)

    def deactivate(self, i: int, *, hard: bool = False) -> Listing:
        with self._lock:
            (self._deleted if hard else self._inactive).add(i)
            self._updated[i] = self._tick()
        return self.listing(i)

    def customers(self) -> list[Customer]:
        return [make_customer(self.seed, i) for i in range(self.n_customers)]


# -- ids that embed the index, so a native id maps back without a lookup table ---------
def hex_id(seed: str, i: int, width: int = 24) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()[: width - 8] + f"{i:08x}"


def uuid_id(seed: str, i: int) -> str:
    h = hashlib.sha1(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{i:012x}"


def index_of(native: str, seed: str, maker: Callable[[str, int], str]) -> int | None:
    try:
        i = int(native.replace("-", "")[-8:], 16)
    except ValueError:
        return None
    return i if maker(seed, i) == native else None


def iso(ms: int, offset_h: int = 0, *, millis: bool = True, zulu: bool = True) -> str:
    """ISO-8601 for epoch ms; `offset_h` renders local time with that UTC offset."""
    t = dt.datetime.fromtimestamp(ms / 1000, dt.timezone(dt.timedelta(hours=offset_h)))
    s = t.isoformat(timespec="milliseconds" if millis else "seconds")
    return s.replace("+00:00", "Z") if zulu else s


def parse_ms(text: str) -> int | None:
    """Epoch ms from ISO-8601 (naive = UTC, `Z` accepted) or None if unparseable."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return int((t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).timestamp() * 1000)

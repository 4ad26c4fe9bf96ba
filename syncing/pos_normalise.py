"""POS records -> warehouse rows: pure functions, one set of rules for every system.

* Names: Unicode NFKC, typographic quotes/dashes folded, trade marks dropped; POS prefixes and
  suffixes removed (category, brand or "MED -" prefixes, "[BRAND]", "- Brand", "| 3.5g",
  "(3.5g)", a trailing size, which becomes the size when the POS has no size field); names
  sent ALL CAPS or all lower are title-cased (acronyms such as OG, GSC kept); mixed-case names
  are the source's deliberate spelling and kept.
* Categories: every category-like label maps through ``syncing.pos_categories`` (tenant
  overrides first, then exact alias, then the longest word-prefix alias); a product may land in
  several paths; ancestors of a more specific path are dropped; nothing matched -> ``unmapped``
  (kept and counted by a check), never dropped.
* Strain: indica / sativa / hybrid / cbd, plus the dominant side of a hybrid when the source
  says it ("Sativa Dominant", "Sativa-dom"); effects and flavours canonical and sorted, also
  picked out of unclassified tags.
* Units, potency and money: ``syncing.pos_units``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from syncing.pos_categories import (
    ACRONYMS, CATEGORY_ALIASES, EFFECTS, FLAVOURS, POS_PREFIXES, SMALL_WORDS, STRAIN_WORDS, UNMAPPED,
)
from syncing.pos_units import amount_in, cannabinoid_profile, exact, net_quantity, to_price
from resources.pos.base import PosCustomer, PosInventoryItem, PosProduct
from warehouse.types import now_utc

_TYPO = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "™": "", "®": "", "©": ""})
_SIZE_TOKEN = r"(?:\d+(?:\.\d+)?\s*(?:g|gr|grams?|mg|ml|l|oz|pk|pack|ct|count)\b|each\b|ea\b|eighth\b|\d/\d+\s*oz\b)"
_SIZE_PHRASE = rf"{_SIZE_TOKEN}(?:\s+{_SIZE_TOKEN})*"
_BRACKETED_SIZE = re.compile(rf"\s*[(\[{{]\s*({_SIZE_PHRASE})\s*[)\]}}]\s*$", re.I)
_TRAILING_SIZE = re.compile(rf"(?:\s*[|:-]\s*|\s+)({_SIZE_PHRASE})\s*$", re.I)


@lru_cache(maxsize=65536)  # pure, and the same labels and names come back on every sync
def clean_text(text: str | None) -> str:
    """NFKC, typographic punctuation folded, trade marks dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", (text or "").translate(_TYPO))  # fold first: NFKC turns ™ into "TM"
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=65536)
def label_key(label: str) -> str:
    """Fold a label for matching: camelCase split, accents and punctuation gone, lower case."""
    label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", clean_text(label))
    label = "".join(c for c in unicodedata.normalize("NFKD", label) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", " ", label.lower()).strip()


def smart_case(text: str) -> str:
    """Title-case text that arrived in one case; keep deliberate mixed case as sent."""
    letters = [c for c in text if c.isalpha()]
    if not letters or (any(c.isupper() for c in letters) and any(c.islower() for c in letters)):
        return text
    words = text.split(" ")
    out = []
    for n, word in enumerate(words):
        if word.upper() in ACRONYMS or any(c.isdigit() for c in word):
            out.append(word.upper() if word.upper() in ACRONYMS else word)
        elif n and word.lower() in SMALL_WORDS:
            out.append(word.lower())
        else:
            out.append(re.sub(r"[^\W\d_]+", lambda m: m[0].capitalize(), word.lower()))
    return " ".join(out)


def normalise_size(label: str | None) -> str | None:
    if not label or not clean_text(label):
        return None
    return re.sub(r"(\d)\s+(?=[a-z])", r"\1", clean_text(label).lower())


def standardise_name(raw: str, brand: str | None = None, labels: list[str] = (), size: str | None = None) -> tuple[str, str | None]:
    """(clean name, size label found in it): POS prefixes/suffixes removed, consistent case."""
    text, found = clean_text(raw), None
    words = {label_key(x) for x in [brand or "", *labels, *POS_PREFIXES] if x}
    for _ in range(4):  # prefixes and suffixes can nest ("FLOWER - Blue Dream 3.5g [CRESCO]")
        before = text
        if m := re.match(r"^(.+?)\s*[-:|]\s+(.+)$", text):
            if label_key(m[1]) in words:
                text = m[2]
        if m := re.match(r"^(.*\S)\s*[(\[{]([^)\]}]+)[)\]}]\s*$", text):
            if label_key(m[2]) in words:
                text = m[1]
        if m := re.match(r"^(.+?)\s*(?:[-|]|\bby\b)\s*([^-|]+)$", text):
            if label_key(m[2]) in words and label_key(m[2]) not in POS_PREFIXES:
                text = m[1]
        if brand and label_key(text).startswith(label_key(brand) + " ") and len(text) > len(brand) + 2:
            text = text[len(brand):].lstrip(" -:|")
        for pattern in (_BRACKETED_SIZE, _TRAILING_SIZE):
            if (m := pattern.search(text)) and m.start() > 0:
                found, text = found or m[1], text[:m.start()]
        text = text.strip(" -:|")
        if text == before:
            break
    return smart_case(text) or clean_text(raw), normalise_size(size) or normalise_size(found)


def _alias_index() -> dict[str, str]:
    index = {}
    for path, aliases in CATEGORY_ALIASES.items():
        index[label_key(path.rsplit("/", 1)[-1])] = path
        index.update({label_key(a): path for a in aliases})
    return index


ALIASES = _alias_index()


def resolve_label(label: str, overrides: dict[str, list[str]] | None = None) -> list[str]:
    """Category paths for one label: tenant override, exact alias, then the longest word-prefix alias."""
    key = label_key(label)
    if overrides and key in overrides:
        return [p for target in overrides[key] for p in ([target] if target in CATEGORY_ALIASES else resolve_label(target))]
    if key in ALIASES:
        return [ALIASES[key]]
    words = key.split()
    for n in range(len(words) - 1, 0, -1):
        if (prefix := " ".join(words[:n])) in ALIASES:
            return [ALIASES[prefix]]
    return []


def map_categories(labels: list[str], overrides: dict[str, list[str]] | None = None) -> list[str]:
    """Every category path of a product, most specific, in label order; ``[unmapped]`` if none."""
    paths: list[str] = []
    for label in labels:
        for path in resolve_label(label, overrides):
            if path not in paths:
                paths.append(path)
    paths = [p for p in paths if not any(q != p and q.startswith(p + "/") for q in paths)]
    return paths or [UNMAPPED]


def parse_overrides(options: dict[str, Any]) -> dict[str, list[str]]:
    raw = options.get("category_overrides") or {}
    return {label_key(k): [v] if isinstance(v, str) else list(v) for k, v in raw.items()}


def strain(labels: list[str], tags: list[str] = ()) -> tuple[str | None, str | None]:
    """(strain type, lean): indica / sativa / hybrid / cbd, and for hybrids the dominant side."""
    texts = labels or [t for t in tags if set(label_key(t).split()) & set(STRAIN_WORDS)]
    text = " ".join(label_key(t) for t in texts)
    lean = re.search(r"\b(indica|sativa)\s*(?:dom|dominant|leaning|lean)\b|\bmostly (indica|sativa)\b", text)
    lean_side = (lean[1] or lean[2]) if lean else None
    words = set(text.split())
    if "cbd" in words:
        return "cbd", None
    if lean_side or "hybrid" in words or {"indica", "sativa"} <= words:
        return "hybrid", lean_side
    return next((w for w in ("indica", "sativa") if w in words), None), None


def _vocab(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {label_key(w): name for name, words in table.items() for w in (name, *words)}


EFFECT_WORDS, FLAVOUR_WORDS = _vocab(EFFECTS), _vocab(FLAVOURS)


def effects_and_flavours(effects: list[str], flavours: list[str], tags: list[str] = ()) -> tuple[list[str], list[str]]:
    """Canonical effects and flavours (sorted), from explicit lists and from unclassified tags."""
    eff = {EFFECT_WORDS.get(label_key(e), smart_case(clean_text(e))) for e in effects if clean_text(e)}
    fla = {FLAVOUR_WORDS.get(label_key(f), smart_case(clean_text(f))) for f in flavours if clean_text(f)}
    for tag in tags:
        key = label_key(tag)
        if key in EFFECT_WORDS:
            eff.add(EFFECT_WORDS[key])
        elif key in FLAVOUR_WORDS:
            fla.add(FLAVOUR_WORDS[key])
    return sorted(eff), sorted(fla)


@dataclass(frozen=True)
class NormaliseOptions:
    """Per-tenant settings from the connection's options."""

    overrides: dict[str, list[str]] = field(default_factory=dict)
    currency: str = "USD"
    low_stock_threshold: Decimal = Decimal(5)
    weight_min_g: Decimal = Decimal(1)
    weight_increment_g: Decimal = Decimal("0.5")

    @classmethod
    def from_connection(cls, options: dict[str, Any]) -> "NormaliseOptions":
        return cls(parse_overrides(options), str(options.get("currency", "USD")).upper(),
                   Decimal(str(options.get("low_stock_threshold", 5))), Decimal(str(options.get("weight_min_g", 1))),
                   Decimal(str(options.get("weight_increment_g", "0.5"))))


def product_row(tenant_id: str, p: PosProduct, opts: NormaliseOptions = NormaliseOptions()) -> dict[str, Any]:
    """One ``products`` row for a POS product."""
    brand = smart_case(clean_text(p.brand)) if p.brand and clean_text(p.brand) else None
    name, size = standardise_name(p.name, brand, p.category_labels, p.size)
    grams, ml = net_quantity(size, p.net_amount, p.net_unit)
    profile = cannabinoid_profile(p.potency, grams)
    categories = map_categories(p.category_labels, opts.overrides)
    strain_type, lean = strain(p.strain_labels, p.tags)
    effects, flavours = effects_and_flavours(p.effects, p.flavors, p.tags)
    pct = {k: v for k, v in profile.items() if v["unit"] == "%"}
    mg = {k: v for k, v in profile.items() if v["unit"] == "mg"}
    return {
        "tenant_id": tenant_id, "source": p.source, "product_id": p.source_id, "sku": p.sku, "name": name,
        "source_name": p.name, "brand": brand, "size": size, "category": categories[0], "categories": categories,
        "source_category": " / ".join(p.category_labels) or None, "strain_type": strain_type, "strain_lean": lean,
        "effects": effects, "flavors": flavours,
        "cannabinoids": {k: {**v, "min": str(v["min"]), "max": str(v["max"])} for k, v in profile.items()},
        "thc_min_pct": pct.get("thc", {}).get("min"), "thc_max_pct": pct.get("thc", {}).get("max"),
        "cbd_min_pct": pct.get("cbd", {}).get("min"), "cbd_max_pct": pct.get("cbd", {}).get("max"),
        "thc_mg": mg.get("thc", {}).get("max"), "cbd_mg": mg.get("cbd", {}).get("max"),
        "weight_g": exact(grams) or None, "volume_ml": exact(ml) or None, "alcohol_pct": exact(p.alcohol_pct),
        "price": to_price(p.price), "currency": (p.currency or opts.currency).upper(),
        "status": "deleted" if p.deleted else ("active" if p.active else "inactive"),
        "stock_ref": p.stock_ref, "attributes": p.attributes, "source_updated_at": p.updated_at,
        "deleted_at": (p.updated_at or now_utc()) if p.deleted else None,
    }


def inventory_row(tenant_id: str, item: PosInventoryItem, opts: NormaliseOptions = NormaliseOptions(),
                  product_id: str | None = None) -> dict[str, Any]:
    """One ``inventory`` row: quantity-, lot- or weight-based, with availability and low stock."""
    grams, _ = amount_in(item.quantity, item.quantity_unit) if item.quantity_unit else (None, None)
    by_weight = grams is not None
    quantity = exact(grams if by_weight else item.quantity)
    live = item.active and not item.deleted
    threshold = opts.low_stock_threshold * (opts.weight_min_g if by_weight else 1)
    return {
        "tenant_id": tenant_id, "source": item.source, "location_id": item.location_id,
        "product_id": product_id or item.product_id, "lot_id": item.lot_id, "sku": item.sku,
        "tracking": "weight" if by_weight else ("lot" if item.lot_id else "quantity"),
        "quantity": quantity, "quantity_unit": "g" if by_weight else "each",
        "min_quantity": opts.weight_min_g if by_weight else Decimal(1),
        "increment": opts.weight_increment_g if by_weight else Decimal(1),
        "available": live and quantity > 0, "low_stock_threshold": threshold,
        "low_stock": live and 0 < quantity <= threshold,
        "quantity_capped": item.capped_at is not None and item.quantity >= item.capped_at,
        "compliance_id": item.compliance_id, "expires_on": item.expires_on, "packaged_on": item.packaged_on,
        "source_updated_at": item.updated_at, "deleted_at": (item.updated_at or now_utc()) if item.deleted else None,
    }


_GENDERS = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M",
            "x": "X", "other": "X", "non binary": "X", "nonbinary": "X"}
_TYPES = {"medical": "medical", "med": "medical", "patient": "medical", "adult": "recreational",
          "recreational": "recreational", "rec": "recreational", "adult use": "recreational"}


def phone_e164(phone: str | None, country: str | None = "US") -> str | None:
    """+<digits>; ten-digit North American numbers get +1 (all our POS markets are US/CA)."""
    digits = re.sub(r"\D", "", phone or "")
    if not digits:
        return None
    if (phone or "").strip().startswith("+"):
        return f"+{digits}"
    if len(digits) == 10 and (country or "US").upper() in ("US", "CA"):
        return f"+1{digits}"
    return f"+{digits}" if len(digits) == 11 and digits.startswith("1") else digits


def customer_row(tenant_id: str, c: PosCustomer) -> dict[str, Any]:
    """One ``customers`` row (PII lives only in that table; the analytics view drops it)."""
    def name(x: str | None) -> str | None:
        return smart_case(clean_text(x)) or None if x else None

    medical = _TYPES.get(label_key(c.customer_type or ""), "medical" if c.medical_id else None)
    postal = clean_text(c.postal_code).upper() or None
    return {
        "tenant_id": tenant_id, "source": c.source, "customer_id": c.source_id,
        "first_name": name(c.first_name), "last_name": name(c.last_name),
        "email": clean_text(c.email).lower() or None, "phone": phone_e164(c.phone, c.country),
        "birth_date": c.birth_date, "street": name(c.street), "city": name(c.city),
        "state": clean_text(c.state).upper() or None, "postal_code": postal,
        "country": clean_text(c.country).upper() or None, "medical_id": clean_text(c.medical_id) or None,
        "medical_id_expires_on": c.medical_id_expires_on if clean_text(c.medical_id or "") else None,
        "gender": _GENDERS.get(label_key(c.gender or "")), "customer_type": medical,
        "loyalty_points": exact(c.loyalty_points), "marketing_opt_in": c.marketing_opt_in,
        "status": "deleted" if c.deleted else (label_key(c.status or "") or "active"),
        "birth_year": c.birth_date.year if c.birth_date else None,
        "postal_prefix": postal.replace(" ", "")[:3] if postal else None,
        "source_created_at": c.created_at, "source_updated_at": c.updated_at,
        "deleted_at": (c.updated_at or now_utc()) if c.deleted else None,
    }
